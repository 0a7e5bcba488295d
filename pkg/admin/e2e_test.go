package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/ops"
	"github.com/inletdev/inlet/pkg/testenv"
)

// The API over real failure queues: a discard is audited with the
// operator's name and the token's role; a dry run writes nothing.
func TestAuditedOnRealQueues(t *testing.T) {
	env := testenv.Embedded(t)
	tp := env.CreateTopics(t, nil)
	codec := env.Codec(t, tp)
	// A dead-lettered record as the processor writes it.
	env.DeadLetter(t, tp, codec, "shop", "orders/updated", "wh-1", "sink answered 400")
	q, err := ops.New([]kgo.Opt{kgo.SeedBrokers(env.Brokers...)}, tp, codec)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	a, err := New(Tokens{Read: "r", Write: "w"}, Deps{Queues: q, Topics: tp})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	defer srv.Close()

	// The entry is on the DLQ; wait until the API lists it.
	testenv.Eventually(t, 20*time.Second, "the DLQ entry to be listed", func() bool {
		_, m, _ := call(t, srv, "GET", "/v1/depth", "r", "")
		n, _ := m["dlq"].(float64)
		return n == 1
	})
	if code, m, _ := call(t, srv, "POST", "/v1/dlq/discard", "w", `{"filter":{"source":"shop"},"reason":"cancelled","dry_run":true}`); code != 200 || m["count"].(float64) != 1 {
		t.Fatalf("dry run: %d %v", code, m)
	}
	if code, m, _ := call(t, srv, "GET", "/v1/depth", "r", ""); code != 200 || m["dlq"].(float64) != 1 {
		t.Fatalf("depth after dry run: %d %v", code, m)
	}
	if code, m, _ := call(t, srv, "POST", "/v1/dlq/discard", "w", `{"filter":{"source":"shop"},"reason":"cancelled upstream"}`, HeaderOperator, "alice"); code != 200 || m["count"].(float64) != 1 {
		t.Fatalf("discard: %d %v", code, m)
	}
	if code, m, _ := call(t, srv, "GET", "/v1/depth", "r", ""); code != 200 || m["dlq"].(float64) != 0 {
		t.Fatalf("depth after discard: %d %v", code, m)
	}
	audit := env.ReadAll(t, tp.Audit, 1, 300*time.Millisecond, 10*time.Second)
	if len(audit) != 1 {
		t.Fatalf("%d audit records, want 1 (the dry run must write none)", len(audit))
	}
	var d ops.Decision
	if err := json.Unmarshal(audit[0].Value, &d); err != nil || d.Who != "alice (admin-token:write)" || d.Why != "cancelled upstream" || d.Action != "discard" {
		t.Fatalf("audit %s (%v)", audit[0].Value, err)
	}
	if code, m, _ := call(t, srv, "GET", "/v1/dlq?all=true", "r", ""); code != http.StatusOK || m["count"].(float64) != 1 {
		t.Fatalf("list all: %d %v", code, m)
	}
}

package admin

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/ops"
	"github.com/inletdev/inlet/pkg/retry"
	"github.com/inletdev/inlet/pkg/testenv"
)

// realQueues serves the API with tokens over real failure queues holding
// one dead-lettered record, as the processor writes it (its id returned),
// once the API lists it.
func realQueues(t *testing.T, tokens Tokens) (*testenv.Env, kafka.Topics, *httptest.Server, string) {
	t.Helper()
	env := testenv.Embedded(t)
	tp := env.CreateTopics(t, nil)
	codec := env.Codec(t, tp)
	id := env.DeadLetter(t, tp, codec, "shop", "orders/updated", "wh-1", "sink answered 400")
	q, err := ops.New([]kgo.Opt{kgo.SeedBrokers(env.Brokers...)}, tp, codec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	a, err := New(tokens, Deps{Queues: q, Topics: tp})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	token := cmp.Or(tokens.Read, tokens.Write)
	testenv.Eventually(t, 20*time.Second, "the DLQ entry to be listed", func() bool {
		_, m, _ := call(t, srv, "GET", "/v1/depth", token, "")
		n, _ := m["dlq"].(float64)
		return n == 1
	})
	return env, tp, srv, id
}

// The API over real failure queues: a discard is audited with the
// operator's name and the token's role; a dry run writes nothing.
func TestAuditedOnRealQueues(t *testing.T) {
	env, tp, srv, _ := realQueues(t, Tokens{Read: "r", Write: "w"})
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

// TestDecisionByIDSaysWhatItDidNotDecide: over real queues, a decision
// naming ids answers which of them it did not decide and why: 404 when
// none is on the queue (an id of the other queue, a mistyped offset), 409
// when every one was already decided (with that decision), else 200
// listing them; its dry run answers the same. A filter matching nothing
// still answers 200 with a count of 0. Before, each decision by id
// answered 200 {"count":0}.
func TestDecisionByIDSaysWhatItDidNotDecide(t *testing.T) {
	_, _, srv, id := realQueues(t, Tokens{Write: "w"})
	typo := id[:strings.LastIndexByte(id, '/')+1] + "999" // an id ls would print, naming nothing
	type miss struct {
		ID       string        `json:"id"`
		Reason   string        `json:"reason"`
		Decision *ops.Decision `json:"decision"`
	}
	decide := func(path string, ids []string, dry bool) (int, map[string]any, []miss) {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"ids": ids, "reason": "cancelled upstream", "dry_run": dry})
		code, m, _ := call(t, srv, "POST", path, "w", string(b))
		var ms []miss
		raw, _ := json.Marshal(m["unmatched"])
		_ = json.Unmarshal(raw, &ms)
		return code, m, ms
	}
	for _, dry := range []bool{true, false} {
		for path, ids := range map[string][]string{"/v1/invalid/discard": {id}, "/v1/dlq/discard": {typo, typo + "1"}} {
			code, m, ms := decide(path, ids, dry)
			if msg, _ := m["error"].(string); code != http.StatusNotFound || !strings.Contains(msg, ids[0]) || len(ms) != len(ids) {
				t.Fatalf("%s %q (dry run %v): %d %v; want 404 naming the ids", path, ids, dry, code, m)
			}
		}
		code, m, ms := decide("/v1/dlq/discard", []string{id, typo}, dry)
		if code != http.StatusOK || m["count"] != 1.0 || len(ms) != 1 || ms[0].ID != typo || !strings.Contains(ms[0].Reason, "not on this queue") {
			t.Fatalf("[real, typo] (dry run %v): %d %v; want 200, 1 decided and %s unmatched", dry, code, m, typo)
		}
	}
	code, m, ms := decide("/v1/dlq/discard", []string{id, id}, false)
	if msg, _ := m["error"].(string); code != http.StatusConflict || !strings.Contains(msg, "already decided") ||
		len(ms) != 1 || ms[0].ID != id || ms[0].Decision == nil || ms[0].Decision.Action != "discard" {
		t.Fatalf("again: %d %v; want 409 with the decision made", code, m)
	}
	if code, m, ms := decide("/v1/dlq/requeue", []string{id, typo}, true); code != http.StatusOK || m["count"] != 0.0 || len(ms) != 2 {
		t.Fatalf("[decided, typo]: %d %v; want 200 listing both", code, m)
	}
	code, m, _ = call(t, srv, "POST", "/v1/dlq/discard", "w", `{"filter":{"source":"nobody"},"reason":"x"}`)
	if code != http.StatusOK || m["count"] != 0.0 {
		t.Fatalf("filter matching nothing: %d %v; want 200 and 0", code, m)
	}
}

// TestForeignRecordOnRealQueues: a record another producer wrote to the
// DLQ (plain JSON, no headers) was answered with every field blank and an
// empty payload, and a requeue of it alone sent it to the retry tier as an
// event (200). The entry says what is wrong and shows its value; the
// requeue is refused as one that cannot succeed (409); the good entry is
// listed as before.
func TestForeignRecordOnRealQueues(t *testing.T) {
	env, tp, srv, good := realQueues(t, Tokens{Write: "w"})
	res := env.Client(t).ProduceSync(context.Background(), &kgo.Record{Topic: tp.DLQ, Key: []byte("k"), Value: []byte(`{"hello":"world"}`)})
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	id := retry.Coordinates(res[0].Record)
	code, m, _ := call(t, srv, "GET", "/v1/dlq?id="+url.QueryEscape(id), "w", "")
	if p, _ := m["problem"].(string); code != http.StatusOK || !strings.Contains(p, "not an Inlet envelope") {
		t.Errorf("show %s: %d %v; want what is wrong with it", id, code, m)
	}
	if v, _ := m["value"].(map[string]any); v["hello"] != "world" {
		t.Errorf("show %s: %v; want its value", id, m)
	}
	code, m, _ = call(t, srv, "GET", "/v1/dlq", "w", "")
	if n, _ := m["count"].(float64); code != http.StatusOK || n != 2 || !strings.Contains(fmt.Sprint(m["entries"]), good) || !strings.Contains(fmt.Sprint(m["entries"]), "not an Inlet envelope") {
		t.Errorf("list: %d %v; want both entries", code, m)
	}
	code, m, _ = call(t, srv, "POST", "/v1/dlq/requeue", "w", `{"ids":["`+id+`"],"reason":"sink fixed"}`)
	if msg, _ := m["error"].(string); code != http.StatusConflict || !strings.Contains(msg, id) || !strings.Contains(msg, "not an Inlet envelope") {
		t.Errorf("requeue %s alone: %d %v; want 409 saying why", id, code, m)
	}
}

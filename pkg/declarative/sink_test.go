package declarative

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/contract"
	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/router"
	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/schemas/contracts"
)

// TestSinkBodyIsPlainJSON: a sink receives the processed record as plain
// JSON. It used to get hamba's union form, the hook's repository under
// {"inlet.contracts.github.ping.Repository": {...}}.
func TestSinkBodyIsPlainJSON(t *testing.T) {
	bodies := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- b
	}))
	defer srv.Close()
	sources, err := source.Parse([]byte(`sources:
  gh:
    kind: github
    secrets_env: [GH_SECRET]
    events:
      ping:
        contract: github/ping
        entity_key: "github:hook:{/hook_id}"
        sink: {url: "`+srv.URL+`"}
`), source.WithoutSecrets())
	if err != nil {
		t.Fatal(err)
	}
	reg, err := contract.Load(contracts.FS)
	if err != nil {
		t.Fatal(err)
	}
	rt := router.New()
	if err := Register(rt, sources, reg); err != nil {
		t.Fatal(err)
	}
	payload, err := fs.ReadFile(contracts.FS, "github/ping/fixtures/v1/ping.repository.json")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	env := &envelope.Envelope{Source: "gh", EventType: "ping", EventID: "d-1", IdempotencyKey: "d-1", CorrelationID: "c-1",
		SchemaVersion: "v1", Channel: envelope.ChannelWebhook, Payload: payload, OccurredAt: &at, ReceivedAt: at}
	h, _, err := rt.Lookup("gh", "ping", "v1")
	if err != nil {
		t.Fatal(err)
	}
	ev := &router.Event{Envelope: env, Attempt: 1}
	out, err := h.Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.(router.Deliverer).Deliver(context.Background(), ev, out); err != nil {
		t.Fatal(err)
	}
	var body struct {
		Data struct {
			Repository map[string]any `json:"repository"`
		} `json:"data"`
	}
	b := <-bodies
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatal(err)
	}
	var fixture struct {
		Repository map[string]any `json:"repository"`
	}
	_ = json.Unmarshal(payload, &fixture)
	if body.Data.Repository["full_name"] == nil || body.Data.Repository["full_name"] != fixture.Repository["full_name"] {
		t.Fatalf("sink body data.repository = %v; want the fixture's repository (full_name %v) as a plain object\nbody: %s",
			body.Data.Repository, fixture.Repository["full_name"], b)
	}
}

package declarative

import (
	"context"
	"io/fs"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/inletdev/inlet/pkg/contract"
	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/router"
	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/schemas/contracts"
)

// fuzzEntries are events entries as an operator writes them: the shipped
// billing entry (payload and envelope time, events lines too), a natural
// key of two values, and a GitHub entry whose time a pointer reads.
const fuzzEntries = `sources:
  billing:
    kind: standard-webhooks
    secrets_env: [X]
    events:
      "*":
        contract: standardwebhooks/event
        entity_key: "billing:{/type}:{/data/id}"
        natural_key: "{/data/id}:{/data/status}:{$event_id}"
        occurred_at: /timestamp
  github:
    kind: github
    secrets_env: [X]
    events:
      issues:
        contract: github/issues
        entity_key: "github:issue:{/repository/full_name}:{/issue/number}"
        occurred_at: /issue/updated_at
`

// FuzzHandle runs declarative handlers on arbitrary payloads, schema
// versions, channels and envelope times. Invariants:
//
//   - Handle never panics, and every error it returns is a validation
//     error (router.IsValidation): a payload no retry can fix must go to
//     the invalid topic, never through the retry tiers to the DLQ;
//   - the same event gives the same output every time (keys, time);
//   - an output has an entity key, and its value encodes with its schema,
//     or the processor could write it nowhere.
func FuzzHandle(f *testing.F) {
	handlers := fuzzHandlers(f)
	for _, name := range []string{"standardwebhooks/event/fixtures/v1/invoice.paid.json", "standardwebhooks/event/fixtures/v1/user.created.json",
		"standardwebhooks/event/fixtures/v1/ping.scalar_data.json", "github/issues/fixtures/v1/issues.opened.json"} {
		b, err := fs.ReadFile(contracts.FS, name)
		if err != nil {
			f.Fatal(err)
		}
		for which := range uint8(len(handlers)) {
			f.Add(which, false, b, "v1", int64(0))
			f.Add(which, true, b, "v1", int64(1735689600000000))
		}
	}
	for _, p := range []string{
		`{"type":"invoice.paid","timestamp":"2025-01-01T00:00:00Z","data":{"id":"inv_A","id":"inv_B"}}`,
		`{"type":"invoice.paid","timestamp":"last tuesday","data":{"id":"inv_1","status":"paid"}}`,
		`{"type":"invoice.paid","timestamp":1e400,"data":{"id":1.0,"status":"\ud800"}}`,
		`{"id":"l1","type":"invoice.paid","data":{"id":"inv_1"}}`,
		`{"id":5}`, `[]`, `null`, ``,
	} {
		f.Add(uint8(0), false, []byte(p), "v1", int64(0))
		f.Add(uint8(0), true, []byte(p), "v1", int64(-62135596800000000))
	}
	f.Fuzz(func(t *testing.T, which uint8, line bool, payload []byte, version string, micros int64) {
		h := handlers[int(which)%len(handlers)]
		env := &envelope.Envelope{Source: h.source, EventType: "invoice.paid", EventID: "msg_1", SchemaVersion: version,
			Channel: envelope.ChannelWebhook, Payload: payload, ReceivedAt: time.UnixMicro(1735689600000000).UTC()}
		if h.pattern != "*" {
			env.EventType = h.pattern
		}
		if line {
			env.Channel = envelope.ChannelEvents
		}
		if micros != 0 {
			at := time.UnixMicro(micros).UTC()
			env.OccurredAt = &at
		}
		out, err := h.Handle(context.Background(), &router.Event{Envelope: env, Attempt: 1})
		out2, err2 := h.Handle(context.Background(), &router.Event{Envelope: env, Attempt: 1})
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("handled twice: %v, then %v", err, err2)
		}
		if err != nil {
			if !router.IsValidation(err) {
				t.Fatalf("%s %q: %v is no validation error: the event would be retried, then dead-lettered", h.source, payload, err)
			}
			return
		}
		if out.EntityKey == "" || out.EntityKey != out2.EntityKey || out.NaturalKey != out2.NaturalKey || !out.OccurredAt.Equal(out2.OccurredAt) {
			t.Fatalf("outputs differ or lack an entity key: %+v, %+v", out, out2)
		}
		if _, err := avro.Marshal(out.Schema, out.Value); err != nil {
			t.Fatalf("%s %q: the output does not encode: %v", h.source, payload, err)
		}
	})
}

// fuzzHandlers are the handlers of fuzzEntries.
func fuzzHandlers(tb testing.TB) []*Handler {
	tb.Helper()
	reg, err := contract.Load(contracts.FS)
	if err != nil {
		tb.Fatal(err)
	}
	file, err := source.Parse([]byte(fuzzEntries), source.WithoutSecrets())
	if err != nil {
		tb.Fatal(err)
	}
	var out []*Handler
	for _, name := range file.Names() {
		src, _ := file.Get(name)
		for pattern, spec := range src.Events {
			h, err := newHandler(src, pattern, spec, reg)
			if err != nil {
				tb.Fatal(err)
			}
			out = append(out, h)
		}
	}
	return out
}

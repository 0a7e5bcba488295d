package processor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/retry"
	"github.com/inletdev/inlet/pkg/router"
	"github.com/inletdev/inlet/pkg/store"
	"github.com/inletdev/inlet/pkg/testenv"
	"github.com/inletdev/inlet/pkg/testenv/syncbuf"
)

// jsonLine decodes one JSON log line into its top-level keys and values,
// failing on a key that appears twice: JSON pipelines keep one of the two
// and drop the other without a word.
func jsonLine(t *testing.T, line string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object (%v): %s", err, line)
	}
	m := map[string]any{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		k := tok.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if _, dup := m[k]; dup {
			t.Errorf("key %q twice in: %s", k, line)
		}
		m[k] = v
	}
	return m
}

// logLines are the JSON lines written to buf.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l != "" {
			out = append(out, jsonLine(t, l))
		}
	}
	return out
}

// TestOutcomeLogLines: an event's outcome line has each key once: "stage"
// is the pipeline's (process, as ingest's lines say ingest), and the step
// of processing that failed is "failed_stage". A wait is a duration as Go
// writes it ("30s"), not nanoseconds.
func TestOutcomeLogLines(t *testing.T) {
	env := &envelope.Envelope{CorrelationID: "corr-1", Source: "shop", EventType: "orders/updated", EventID: "wh-1"}
	for _, c := range []struct {
		name string
		it   item
		msg  string
		want map[string]any
	}{
		{"dead-lettered", item{env: env, ev: &router.Event{Attempt: 3}, outcome: DeadLetter, stage: "deliver",
			next: retry.Decision{DeadLetter: true, Reason: "retry budget exhausted"}, failure: errors.New("sink answered 400")},
			"event dead-lettered", map[string]any{"stage": "process", "failed_stage": "deliver", "outcome": "dlq", "reason": "retry budget exhausted"}},
		{"retried", item{env: env, ev: &router.Event{Attempt: 1}, outcome: Retried, stage: "handle",
			next: retry.Decision{Delay: 30 * time.Second, NextAttempt: 2}, failure: errors.New("sink answered 503")},
			"event will be retried", map[string]any{"stage": "process", "failed_stage": "handle", "outcome": "retried", "retry_in": "30s"}},
		{"invalid", item{env: env, ev: &router.Event{Attempt: 1}, outcome: Invalid, reason: errors.New("missing id")},
			"event invalid", map[string]any{"stage": "process", "outcome": "invalid"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			p := &Processor{log: slog.New(slog.NewJSONHandler(&buf, nil))}
			p.logOutcome(&c.it)
			lines := logLines(t, &buf)
			if len(lines) != 1 {
				t.Fatalf("%d lines, want 1:\n%s", len(lines), buf.String())
			}
			m := lines[0]
			if m["msg"] != c.msg || m["correlation_id"] != "corr-1" || m["event_id"] != "wh-1" {
				t.Errorf("line %v, want %q about corr-1/wh-1", m, c.msg)
			}
			for k, v := range c.want {
				if m[k] != v {
					t.Errorf("%s = %#v, want %#v in: %s", k, m[k], v, buf.String())
				}
			}
		})
	}
}

// TestWaitLogLines: the lines logged while waiting out an outage give the
// wait as a duration string, and so does the one line saying it ended.
func TestWaitLogLines(t *testing.T) {
	var buf bytes.Buffer
	p := &Processor{log: slog.New(slog.NewJSONHandler(&buf, nil)), cfg: Config{BackoffMax: time.Second}}
	n := 0
	err := p.waitOut(context.Background(), context.Background(), time.Now().Add(time.Minute), "schema registry", func() (bool, error) {
		n++
		return n == 1, io.ErrUnexpectedEOF
	})
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("waitOut: %v", err)
	}
	lines := logLines(t, &buf)
	if len(lines) != 2 || lines[0]["retry_in"] != "50ms" {
		t.Fatalf("lines %v, want a wait with retry_in 50ms and its end:\n%s", lines, buf.String())
	}
	if end := lines[1]; end["msg"] != "schema registry available again; resuming" || end["level"] != "INFO" {
		t.Fatalf("last line %v, want the wait's end at info", end)
	} else if d, err := time.ParseDuration(fmt.Sprint(end["waited"])); err != nil || d < 50*time.Millisecond {
		t.Fatalf("waited %v (%v), want the wait as a duration string, at least the 50ms backoff", end["waited"], err)
	}
}

// TestStaleAfterDecideLineCarriesTheEvent: the warning that an event
// decided newer (perhaps delivered to its sink) turned stale when applied
// names it as every line about an event does: it had no correlation id
// to find its history by, no event type, stage or outcome.
func TestStaleAfterDecideLineCarriesTheEvent(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t))
	logs := &syncbuf.Buffer{}
	h.log = bufLog(logs)
	cfg := h.config()
	cfg.InstanceID = h.env.Prefix + "-x"
	p, err := New(cfg, h.deps(cfg))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	newer := time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)
	// Another writer moved the entity on, as when the lock was lost.
	if _, err := p.d.Store.ApplyBatch(ctx, []store.Update{{EntityKey: "shopify:order:9", EventTime: newer, EventID: "other"}}); err != nil {
		t.Fatal(err)
	}
	env := &envelope.Envelope{Source: "shop", EventType: "orders/updated", EventID: "wh-9", CorrelationID: "corr-wh-9"}
	it := &item{env: env, out: &router.Output{EntityKey: "shopify:order:9", OccurredAt: newer.Add(-time.Hour)}, decided: true, outcome: Processed}
	if err := p.applyDecided(ctx, ctx, []*item{it}, time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	lines := linesWith(t, logs, "an event decided newer became stale before it was applied (entity lock lost: claim lease too short?)")
	if len(lines) != 1 {
		t.Fatalf("%d lines, want 1", len(lines))
	}
	want := map[string]string{"correlation_id": "corr-wh-9", "source": "shop", "event_type": "orders/updated", "event_id": "wh-9", "stage": "process", "outcome": "stale", "entity_key": "shopify:order:9"}
	for k, v := range want {
		if lines[0][k] != v {
			t.Errorf("%s = %v, want %q (line %v)", k, lines[0][k], v, lines[0])
		}
	}
}

package processor

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/ops"
	"github.com/inletdev/inlet/pkg/testenv"
)

// TestJourneyDeadLetterRequeued follows one event from the raw topic to
// the DLQ, through an operator's requeue, to processed, using only what
// Inlet emits: its spans, log lines, alert and history all name the same
// correlation id, and the requeued attempt's span continues the event's
// trace as the child of the attempt that dead-lettered it.
func TestJourneyDeadLetterRequeued(t *testing.T) {
	sink := &downstream{always: 400}
	h, rcv := failureHarness(t, testenv.Embedded(t), sink)
	spans, logs := observe(t, h)
	h.start("a", nil)
	h.send("shop", "orders/updated", "wh-rq", "2025-01", envelope.ChannelWebhook, shopOrder(51, time.Date(2025, 1, 4, 0, 0, 0, 0, time.UTC), "paid", true))
	h.waitAll(1)

	sink.mu.Lock()
	sink.always = 0
	sink.mu.Unlock()
	q, ctx := queues(t, h)
	if res, err := q.Requeue(ctx, h.topics.DLQ, ops.Filter{}, "alice", "sink fixed", false); err != nil || res.Count != 1 {
		t.Fatalf("requeue: %d entries, %v", res.Count, err)
	}
	testenv.Eventually(t, 20*time.Second, "the requeued event to be processed", func() bool { return h.total(Processed) == 1 })

	const corr = "corr-wh-rq"
	t.Run("spans: one trace, the requeued attempt a child of the dead-lettered one", func(t *testing.T) {
		var dead, done sdktrace.ReadOnlySpan
		for _, s := range spans.Ended() {
			if s.Name() != "process" || spanAttr(s, "inlet.correlation_id") != corr {
				continue
			}
			switch spanAttr(s, "inlet.outcome") {
			case "dlq":
				dead = s
			case "processed":
				done = s
			}
		}
		if dead == nil || done == nil {
			t.Fatalf("spans: dlq %v, processed %v", dead != nil, done != nil)
		}
		if done.SpanContext().TraceID().String() != senderTrace || done.Parent().SpanID() != dead.SpanContext().SpanID() {
			t.Fatalf("requeued attempt in trace %s under %s, want %s under the dead-lettered attempt %s",
				done.SpanContext().TraceID(), done.Parent().SpanID(), senderTrace, dead.SpanContext().SpanID())
		}
	})
	t.Run("the alert names the correlation id", func(t *testing.T) {
		testenv.Eventually(t, 5*time.Second, "the dlq alert", func() bool { return len(rcv.got()) == 1 })
		if a := rcv.got()[0]; a.CorrelationID != corr || a.EventID != "wh-rq" {
			t.Fatalf("alert %+v", a.Alert)
		}
	})
	t.Run("every log line about the event has its correlation id", func(t *testing.T) {
		n := 0
		for _, line := range logs.Lines() {
			if !strings.Contains(line, "wh-rq") {
				continue
			}
			n++
			var m map[string]any
			_ = json.Unmarshal([]byte(line), &m)
			if m["correlation_id"] != corr {
				t.Errorf("line without the correlation id: %s", line)
			}
		}
		if n < 2 {
			t.Fatalf("%d lines about the event, want the dead letter's and the processed one's", n)
		}
	})
	t.Run("the history tells the whole journey", func(t *testing.T) {
		es, err := h.hist.Get(context.Background(), corr)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := stages(es), "received,written,attempt:dlq,requeued,attempt:processed"; got != want {
			t.Fatalf("stages %s, want %s", got, want)
		}
	})
}

// senderTrace is the trace id harness.send puts in every raw record's
// traceparent.
const senderTrace = "4bf92f3577b34da6a3ce929d0e0e4736"

// spanAttr is the value of span attribute k, or "".
func spanAttr(s sdktrace.ReadOnlySpan, k string) string {
	for _, a := range s.Attributes() {
		if string(a.Key) == k {
			return a.Value.Emit()
		}
	}
	return ""
}

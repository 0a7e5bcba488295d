package processor

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/telemetry"
	"github.com/inletdev/inlet/pkg/testenv"
)

func hasAttr(s sdktrace.ReadOnlySpan, match func(attribute.Key) bool) bool {
	for _, a := range s.Attributes() {
		if match(a.Key) {
			return true
		}
	}
	return false
}

// TestRetriedAttemptSpans follows one event through a sink that
// answers 503, its retry tier, and a second attempt that succeeds
// (journeys 2 and 6), using only the spans and the sink's requests.
func TestRetriedAttemptSpans(t *testing.T) {
	sink := &downstream{script: []int{503}}
	ds := httptest.NewServer(sink)
	t.Cleanup(ds.Close)
	h := newHarnessWith(t, testenv.Embedded(t), shopSinkSources(ds.URL, `
    retry: {tiers: [1s, 2s], max_attempts: 3}`), testTiers, nil)
	spans := tracetest.NewSpanRecorder()
	tel, err := telemetry.New(context.Background(), "test", telemetry.WithSpanProcessor(spans))
	if err != nil {
		t.Fatal(err)
	}
	h.tel = tel
	h.start("a", nil)
	h.send("shop", "orders/updated", "wh-journey", "2025-01", envelope.ChannelWebhook, shopOrder(41, time.Date(2025, 1, 3, 0, 0, 0, 0, time.UTC), "paid", true))
	testenv.Eventually(t, 20*time.Second, "the retried event to be processed", func() bool { return h.total(Processed) == 1 })

	var attempts [3]sdktrace.ReadOnlySpan // by inlet.attempt
	testenv.Eventually(t, 5*time.Second, "both attempts' spans", func() bool {
		for _, s := range spans.Ended() {
			if s.Name() == "process" && s.SpanContext().TraceID().String() == senderTrace {
				switch spanAttr(s, "inlet.attempt") {
				case "1":
					attempts[1] = s
				case "2":
					attempts[2] = s
				}
			}
		}
		return attempts[1] != nil && attempts[2] != nil
	})
	first, second := attempts[1], attempts[2]

	t.Run("the attempts are one trace, the second the first's child", func(t *testing.T) {
		if second.Parent().SpanID() != first.SpanContext().SpanID() {
			t.Fatalf("attempt 2's parent %s, want attempt 1's span %s", second.Parent().SpanID(), first.SpanContext().SpanID())
		}
	})

	t.Run("the failed attempt's span says it failed and why", func(t *testing.T) {
		if spanAttr(first, "inlet.outcome") != "retried" {
			t.Fatalf("attempt 1 outcome %q, want retried", spanAttr(first, "inlet.outcome"))
		}
		why := first.Status().Description
		for _, e := range first.Events() {
			for _, a := range e.Attributes {
				why += " " + a.Value.Emit()
			}
		}
		if first.Status().Code != codes.Error || !strings.Contains(why, "503") {
			t.Errorf("attempt 1 (retried after the sink answered 503): status %v %q, events %v; want status Error and the failure (503) on the span",
				first.Status().Code, first.Status().Description, first.Events())
		}
	})

	t.Run("each attempt's span names its record: topic, partition, offset", func(t *testing.T) {
		for _, s := range []sdktrace.ReadOnlySpan{first, second} {
			partition := hasAttr(s, func(k attribute.Key) bool { return strings.Contains(string(k), "partition") })
			offset := hasAttr(s, func(k attribute.Key) bool { return strings.Contains(string(k), "offset") })
			if !partition || !offset {
				t.Errorf("attempt %s span attributes %v: no partition or offset of the record it processed", spanAttr(s, "inlet.attempt"), s.Attributes())
			}
		}
	})

	t.Run("each sink request continues the attempt's trace", func(t *testing.T) {
		reqs := sink.requests()
		if len(reqs) != 2 {
			t.Fatalf("%d sink requests, want 2", len(reqs))
		}
		for i, hd := range reqs {
			if hd.Get("X-Correlation-ID") != "corr-wh-journey" {
				t.Errorf("request %d X-Correlation-ID %q", i+1, hd.Get("X-Correlation-ID"))
			}
			if tp := hd.Get("traceparent"); !strings.HasPrefix(tp, "00-"+senderTrace+"-") {
				t.Errorf("request %d traceparent %q: want the event's trace (%s), so the sink's own spans join it", i+1, tp, senderTrace)
			}
		}
	})
}

// TestRedisSpansHangUnderTheBatch: with spans exported, each of a batch's
// Redis round trips (claims, newest-wins, done marks) started a trace of
// its own, linked to nothing. They are now children of a "process batch"
// span that links to the batch's events.
func TestRedisSpansHangUnderTheBatch(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t))
	spans := tracetest.NewSpanRecorder()
	tel, err := telemetry.New(context.Background(), "test", telemetry.WithSpanProcessor(spans))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	if err := tel.InstrumentRedis(h.rdb); err != nil {
		t.Fatal(err)
	}
	h.tel = tel
	h.start("a", nil)
	h.send("stripe", "payment_intent.succeeded", "evt_rs", "2024-06-20", envelope.ChannelWebhook, paymentIntent("evt_rs", "pi_rs", "succeeded", 1700000000))
	h.waitAll(1)

	var event, batch sdktrace.ReadOnlySpan
	testenv.Eventually(t, 10*time.Second, "the event's and the batch's spans", func() bool {
		for _, s := range spans.Ended() {
			switch s.Name() {
			case "process":
				event = s
			case "process batch":
				batch = s
			}
		}
		return event != nil && batch != nil
	})
	linked := false
	for _, l := range batch.Links() {
		linked = linked || l.SpanContext.SpanID() == event.SpanContext().SpanID()
	}
	if !linked {
		t.Errorf("the batch span's links %v do not name the event's span", batch.Links())
	}
	under := 0
	for _, s := range spans.Ended() {
		if strings.Contains(s.InstrumentationScope().Name, "redis") && s.Parent().SpanID() == batch.SpanContext().SpanID() {
			under++
		}
	}
	if under == 0 {
		t.Errorf("no Redis span under the batch's span")
	}
}

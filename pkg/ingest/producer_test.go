package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/testenv"
)

// TestWriteOneAfterATimeout: a write that gave up before its
// acknowledgement leaves that acknowledgement to nobody; the next write
// must wait for its own.
func TestWriteOneAfterATimeout(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t), nil)
	w := h.srv.w
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 100 {
		// Another topic: franz-go fails the batch a record with a done
		// context is in, so the good writes must not share it.
		if err := w.writeOne(gone, &kgo.Record{Topic: h.topics.Invalid, Value: []byte("x")}); !errors.Is(err, ErrNotAcknowledged) {
			t.Fatalf("write %d with a done context: %v, want ErrNotAcknowledged", i, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := w.writeOne(ctx, &kgo.Record{Topic: h.topics.Raw, Key: fmt.Appendf(nil, "k%d", i), Value: []byte("x")})
		cancel()
		if err != nil {
			t.Fatalf("write %d after a given-up one: %v", i, err)
		}
	}
}

func TestRecord(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t), nil)
	h.srv.propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	e := &envelope.Envelope{
		ID: "0190c0de-0000-7000-8000-000000000001", Source: "stripe", EventType: "payment_intent.succeeded",
		EventID: "evt_1", IdempotencyKey: envelope.IdempotencyKey("stripe", "evt_1"), SchemaVersion: "2024-06-20",
		ReceivedAt: time.UnixMicro(1700000001000000).UTC(), CorrelationID: "order-42", Channel: envelope.ChannelWebhook,
		Payload: []byte(`{}`), ContentType: "application/json",
	}
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ctx := h.srv.propagator.Extract(context.Background(), propagation.MapCarrier{"traceparent": tp, "tracestate": "v=1", "baggage": "k=v"})
	for name, ctx := range map[string]context.Context{"without trace context": context.Background(), "with trace context": ctx} {
		t.Run(name, func(t *testing.T) {
			r, _, err := h.srv.record(ctx, e)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{HeaderCorrelationID: "order-42", HeaderSource: "stripe", HeaderEventType: "payment_intent.succeeded"}
			if trace.SpanContextFromContext(ctx).IsValid() {
				want["traceparent"], want["tracestate"], want["baggage"] = tp, "v=1", baggage.FromContext(ctx).String()
			}
			if len(r.Headers) != len(want) {
				t.Fatalf("headers %v, want %v", r.Headers, want)
			}
			for i, rh := range r.Headers {
				if string(rh.Value) != want[rh.Key] {
					t.Errorf("header %s = %q, want %q", rh.Key, rh.Value, want[rh.Key])
				}
				if i < 3 && cap(rh.Value) != len(rh.Value) { // ours share one array
					t.Errorf("header %s has room to grow into its neighbour", rh.Key)
				}
			}
			if string(r.Key) != e.IdempotencyKey || cap(r.Key) != len(r.Key) || r.Topic != h.topics.Raw || !r.Timestamp.Equal(e.ReceivedAt) {
				t.Errorf("record key %q (cap %d), topic %s, timestamp %s", r.Key, cap(r.Key), r.Topic, r.Timestamp)
			}
			got, err := h.codec.Decode(context.Background(), r.Value)
			if err != nil || got.ID != e.ID {
				t.Fatalf("value decodes to %+v, %v", got, err)
			}
		})
	}
}

// TestProducersWriteToAddedPartitions: partitions added to the raw topic
// (an SRE scaling out) got no webhooks for up to 5 minutes, franz-go's
// default metadata refresh.
func TestProducersWriteToAddedPartitions(t *testing.T) {
	env := testenv.Embedded(t)
	h := newHarness(t, env, nil)
	adm := kadm.NewClient(env.Client(t))
	ctx := context.Background()
	// Written to first, through every producer (a key picks one), so
	// each holds the topic's metadata.
	for i := range 20 {
		if a := do(t, h.signed(t, "open", fmt.Appendf(nil, `{"id":"evt_before_%d","type":"thing.happened"}`, i), nil)); a.status != http.StatusAccepted {
			t.Fatalf("webhook before: %d %s", a.status, a.raw)
		}
	}
	if _, err := adm.UpdatePartitions(ctx, 6, h.topics.Raw); err != nil {
		t.Fatal(err)
	}
	added := func() bool {
		ends, err := adm.ListEndOffsets(ctx, h.topics.Raw)
		if err != nil {
			return false
		}
		n := int64(0)
		ends.Each(func(o kadm.ListedOffset) {
			if o.Partition >= 3 {
				n += o.Offset
			}
		})
		return n > 0
	}
	i := 0
	testenv.Eventually(t, 20*time.Second, "a webhook written to a partition added while ingest runs", func() bool {
		for range 8 {
			i++
			if a := do(t, h.signed(t, "open", fmt.Appendf(nil, `{"id":"evt_scale_%d","type":"thing.happened"}`, i), nil)); a.status != http.StatusAccepted {
				t.Fatalf("webhook %d: %d %s", i, a.status, a.raw)
			}
		}
		return added()
	})
}

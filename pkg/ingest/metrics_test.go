package ingest

import (
	"context"
	"fmt"
	"maps"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/inletdev/inlet/pkg/telemetry"
	"github.com/inletdev/inlet/pkg/telemetry/telemetrytest"
	"github.com/inletdev/inlet/pkg/testenv"
)

// TestMetricsEventTypeLimit: the label cache in front of the limiter gives
// the labels the limiter alone gives, in any order of arrival, and stays
// bounded however many event types senders invent.
func TestMetricsEventTypeLimit(t *testing.T) {
	for _, tt := range []struct {
		name   string
		events []string
	}{
		{"repeats and fold", []string{"a", "b", "a", "c", "d", "a", "c", "b"}},
		{"a literal other before the limit", []string{"other", "a", "other", "b", "a"}},
		{"a literal other after the limit", []string{"a", "b", "other", "c", "other", "a"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			count := func(m *Metrics, r *sdkmetric.ManualReader) map[string]int64 {
				ctx := context.Background()
				for _, e := range tt.events {
					m.event(ctx, "stripe", e, outcomeAccepted, "")
					m.event(ctx, "stripe", e, outcomeRejected, reasonMalformed)
				}
				return telemetrytest.Int64s(t, r, "inlet.ingest.requests", "event_type", "outcome")
			}
			r := sdkmetric.NewManualReader()
			m, err := NewMetrics(sdkmetric.NewMeterProvider(sdkmetric.WithReader(r)).Meter("t"), telemetry.NewLimiter(2))
			if err != nil {
				t.Fatal(err)
			}
			got := count(m, r)
			// The reference: the limiter's answers, counted directly.
			lim := telemetry.NewLimiter(2)
			want := map[string]int64{}
			for _, e := range tt.events {
				l := lim.EventType("stripe", e)
				want[l+"|"+outcomeAccepted]++
				want[l+"|"+outcomeRejected]++
			}
			if !maps.Equal(got, want) {
				t.Fatalf("counts %v, want %v", got, want)
			}
		})
	}
	t.Run("bounded", func(t *testing.T) {
		m, err := NewMetrics(nil, telemetry.NewLimiter(3))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 1000 {
			m.event(context.Background(), "stripe", fmt.Sprintf("type.%d", i), outcomeAccepted, "")
		}
		if n := m.events.Len(); n != 4 {
			t.Fatalf("%d cached label sets after 1000 event types with a limit of 3, want 4 (3 types and other)", n)
		}
	})
}

// BenchmarkMetricsEvent is the cost of counting one answer with the SDK
// meter provider the services use, from as many goroutines as a loaded
// ingest runs handlers on.
func BenchmarkMetricsEvent(b *testing.B) {
	m, err := NewMetrics(sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader())).Meter("b"), telemetry.NewLimiter(100))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			m.event(ctx, "stripe", "payment_intent.succeeded", outcomeAccepted, "")
		}
	})
}

// TestMetricsDeclaredTypesKeepTheirLabel: a sender inventing event types
// on a source anyone may post to (kind none) fills its label places, and
// the event types the sources file declares must still be counted under
// their own names: dashboards and alerts select them by name.
func TestMetricsDeclaredTypesKeepTheirLabel(t *testing.T) {
	reader, tel := newMetered(t)
	h := newHarnessSources(t, testenv.Embedded(t), `
sources:
  open:
    kind: none
    events:
      order.paid: {contract: shopify/order, entity_key: "open:order:{/id}"}
      "order.*": {contract: shopify/order, entity_key: "open:order:{/id}"}
`, func(c *Config) {}, tel)
	ctx := context.Background()
	for i := range 100 {
		h.srv.metrics.event(ctx, "open", fmt.Sprintf("hostile.%d", i), outcomeAccepted, "")
	}
	h.srv.metrics.event(ctx, "open", "order.paid", outcomeAccepted, "")
	h.srv.metrics.event(ctx, "open", "order.refunded", outcomeAccepted, "") // a glob's: anyone can invent those
	got := telemetrytest.Int64s(t, reader, "inlet.ingest.requests", "event_type")
	if got["order.paid"] != 1 {
		t.Errorf("declared type order.paid counted %d times under its name after 100 invented types (labels %d, other %d), want 1", got["order.paid"], len(got), got[telemetry.Other])
	}
	if got[telemetry.Other] != 1 || len(got) != 102 {
		t.Errorf("%d labels, other %d: want 100 invented types, order.paid and other (order.refunded)", len(got), got[telemetry.Other])
	}
}

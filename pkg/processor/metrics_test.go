package processor

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/telemetry"
	"github.com/inletdev/inlet/pkg/telemetry/telemetrytest"
)

// TestMetricsEventTypeLimit: the option caches in front of the limiter give
// the labels the limiter alone gives, in any order of arrival, and stay
// bounded however many event types senders invent.
func TestMetricsEventTypeLimit(t *testing.T) {
	topics := kafka.TopicNames("t", kafka.DefaultRetryTiers)
	item := func(typ string, o Outcome) *item {
		it := &item{rec: &kgo.Record{Topic: topics.Raw}, outcome: o}
		if typ != "" { // "": undecodable, no envelope
			it.env = &envelope.Envelope{Source: "shop", EventType: typ, ReceivedAt: time.Now()}
		}
		return it
	}
	events := []string{"a", "b", "", "a", "c", "d", "a", "other", "c", "b", ""}
	r := sdkmetric.NewManualReader()
	m, err := newMetrics(sdkmetric.NewMeterProvider(sdkmetric.WithReader(r)).Meter("t"), telemetry.NewLimiter(2))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		m.observe(context.Background(), item(e, Processed), topics, time.Now())
		m.observe(context.Background(), item(e, Duplicate), topics, time.Now())
	}
	got := telemetrytest.Int64s(t, r, "inlet.events", "event_type", "outcome")
	// The reference: the limiter's answers, counted directly.
	lim := telemetry.NewLimiter(2)
	want := map[string]int64{}
	for _, e := range events {
		l := "unknown"
		if e != "" {
			l = lim.EventType("shop", e)
		}
		want[l+"|"+string(Processed)]++
		want[l+"|"+string(Duplicate)]++
	}
	if !maps.Equal(got, want) {
		t.Fatalf("counts %v, want %v", got, want)
	}

	m, err = newMetrics(nil, telemetry.NewLimiter(3))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		m.observe(context.Background(), item(fmt.Sprintf("type.%d", i), Processed), topics, time.Now())
	}
	if n, l := m.eventSets.Len(), m.latencySets.Len(); n != 4 || l != 4 {
		t.Fatalf("%d and %d cached label sets after 1000 event types with a limit of 3, want 4 and 4 (3 types and other)", n, l)
	}
}

package processor

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/telemetry"
	"github.com/inletdev/inlet/pkg/telemetry/telemetrytest"
	"github.com/inletdev/inlet/pkg/testenv"
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

type fakeDepths struct {
	n   []int
	err error
}

func (f *fakeDepths) Refresh(context.Context) ([]int, error) { return f.n, f.err }

// TestQueueDepthsAreNeverGuessed: the DLQ and invalid gauges say nothing
// until the queues were measured once, and a failed measurement leaves
// them at their last value (it reported both queues empty, which resolved
// InletFailureQueueUnresolved while millions of entries waited).
func TestQueueDepthsAreNeverGuessed(t *testing.T) {
	env := testenv.Embedded(t)
	r := sdkmetric.NewManualReader()
	m, err := newMetrics(sdkmetric.NewMeterProvider(sdkmetric.WithReader(r)).Meter("t"), telemetry.NewLimiter(10))
	if err != nil {
		t.Fatal(err)
	}
	p := &Processor{metrics: m, log: slog.New(slog.DiscardHandler), cfg: Config{Group: "depths-test"}, d: Deps{Topics: kafka.TopicNames("t", kafka.DefaultRetryTiers)}}
	adm := kadm.NewClient(env.Client(t))
	gauges := func() (map[string]int64, map[string]int64) {
		return telemetrytest.Int64s(t, r, "inlet.dlq.depth"), telemetrytest.Int64s(t, r, "inlet.invalid.depth")
	}
	ctx := context.Background()
	f := &fakeDepths{err: kafka.ErrIncomplete}
	p.measureDepths(ctx, adm, f)
	if d, i := gauges(); len(d) != 0 || len(i) != 0 {
		t.Fatalf("before any measurement: dlq %v, invalid %v; want no value", d, i)
	}
	f.n, f.err = []int{7, 2}, nil
	p.measureDepths(ctx, adm, f)
	if d, i := gauges(); d[""] != 7 || i[""] != 2 {
		t.Fatalf("measured: dlq %v, invalid %v; want 7, 2", d, i)
	}
	f.n, f.err = nil, kafka.ErrIncomplete
	p.measureDepths(ctx, adm, f)
	if d, i := gauges(); d[""] != 7 || i[""] != 2 {
		t.Fatalf("after a failed measurement: dlq %v, invalid %v; want the last values 7, 2", d, i)
	}
	// The lag failing (here: ctx already ended) does not keep the queues
	// from being measured.
	ended, cancel := context.WithCancel(ctx)
	cancel()
	f.n, f.err = []int{5, 1}, nil
	p.measureDepths(ended, adm, f)
	if d, i := gauges(); d[""] != 5 || i[""] != 1 {
		t.Fatalf("with the lag failing: dlq %v, invalid %v; want 5, 1", d, i)
	}
	// A value that could not be measured for staleDepths is withdrawn: one
	// instance stuck on it would hold max() across instances.
	p.metrics.mu.Lock()
	p.metrics.depths.queuesAt = time.Now().Add(-staleDepths - time.Minute)
	p.metrics.mu.Unlock()
	f.n, f.err = nil, kafka.ErrIncomplete
	p.measureDepths(ctx, adm, f)
	if d, i := gauges(); len(d) != 0 || len(i) != 0 {
		t.Fatalf("stale: dlq %v, invalid %v; want no value", d, i)
	}
}

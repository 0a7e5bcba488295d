package processor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/telemetry"
	"github.com/inletdev/inlet/pkg/telemetry/telemetrytest"
	"github.com/inletdev/inlet/pkg/testenv"
)

// TestMetricsUnknownSourcesStayBounded: a raw record's envelope names its source,
// and the processor labels its metrics and keys its Counts with it. Records
// naming sources the sources file does not have (another producer on the
// raw topic, a source removed from the file) all go to the invalid topic;
// 2,000 distinct ones must not make 2,000 series, counters and cached
// attribute sets that live as long as the process (nor copy the limiter's
// and the option caches' maps once per new source: quadratic, 48 s of CPU
// for 10,000).
func TestMetricsUnknownSourcesStayBounded(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t))
	r := sdkmetric.NewManualReader()
	tel, err := telemetry.New(context.Background(), "t", telemetry.WithReader(r))
	if err != nil {
		t.Fatal(err)
	}
	cfg := h.config()
	d := h.deps(cfg)
	d.Telemetry = tel
	p, err := New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.closeWorkers)
	if p.queues != nil {
		t.Cleanup(p.queues.Close)
	}
	const forged = 2_000
	for i := range forged {
		it := &item{rec: &kgo.Record{Topic: h.topics.Raw}, outcome: Invalid,
			env: &envelope.Envelope{Source: fmt.Sprint("forged-", i), EventType: "x", ReceivedAt: time.Now()}}
		p.metrics.observe(context.Background(), it, h.topics, time.Now())
		p.count.add(p.countKey(it), 1)
	}
	// The configured sources (3), plus one label for every other.
	const bound = 4
	series := telemetrytest.Int64s(t, r, "inlet.events", "source", "event_type", "outcome")
	cached, counts := p.metrics.eventSets.Len(), len(p.Counts().Snapshot())
	if len(series) > bound || cached > bound || counts > bound {
		t.Fatalf("%d forged sources made %d inlet.events series, %d cached option sets and %d Counts keys; want at most %d each",
			forged, len(series), cached, counts, bound)
	}
}

package processor

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/router"
)

// TestOutputsHaveTheirOwnHeaders: the processed and state records shared
// one header slice, sized with room for a traceparent, so the producer
// hook setting each record's traceparent (kotel, when traces are exported)
// gave the processed record the state record's span.
func TestOutputsHaveTheirOwnHeaders(t *testing.T) {
	p := &Processor{propagator: propagation.TraceContext{}}
	p.d.Topics = kafka.TopicNames("t", kafka.DefaultRetryTiers)
	it := &item{
		rec:     &kgo.Record{Topic: p.d.Topics.Raw, Partition: 1, Offset: 7},
		ctx:     context.Background(),
		outcome: Processed,
		out:     &router.Output{EntityKey: "e1"},
		value:   []byte("v"),
	}
	recs := p.outputs(it)
	if len(recs) != 2 {
		t.Fatalf("%d outputs, want the processed and the state record", len(recs))
	}
	for i, tp := range []string{"00-11111111111111111111111111111111-1111111111111111-01", "00-22222222222222222222222222222222-2222222222222222-01"} {
		kotel.NewRecordCarrier(recs[i]).Set("traceparent", tp)
	}
	for i, want := range []string{"00-11111111111111111111111111111111-1111111111111111-01", "00-22222222222222222222222222222222-2222222222222222-01"} {
		if got := kotel.NewRecordCarrier(recs[i]).Get("traceparent"); got != want {
			t.Errorf("%s: traceparent %q, want %q: the records share their headers", recs[i].Topic, got, want)
		}
	}
}

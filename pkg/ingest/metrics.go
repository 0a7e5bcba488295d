package ingest

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/inletdev/inlet/pkg/telemetry"
)

// Request outcomes and rejection reasons, as metric labels.
const (
	outcomeAccepted    = "accepted"
	outcomeRejected    = "rejected"
	outcomeUnavailable = "unavailable"

	reasonSignature     = "signature"
	reasonSize          = "size"
	reasonMalformed     = "malformed"
	reasonUnknownSource = "unknown_source"
	// A configured source without the events endpoint (no batch tokens,
	// not batch.signed) was sent a batch: a producer's or the sources
	// file's mistake, not a stranger probing paths.
	reasonBatchDisabled = "batch_disabled"
	reasonDraining      = "draining"
	reasonKafka         = "kafka"
	// The body did not arrive whole: the read timeout passed, or the
	// connection failed (a reset). Not the sender's content: it may retry.
	reasonReadTimeout = "read_timeout"
	reasonReadError   = "read_error"
	// A body read before its signature was checked was cut by
	// -body-idle-timeout or -body-min-rate: stalled or trickling, as a
	// slowloris holds the body budget, or a sender's link that bad. Its
	// own reason, so that a dashboard tells it from -read-timeout's.
	reasonSlowBody = "slow_body"
	// The request bodies in memory were at -max-body-bytes-in-flight: the
	// request was refused (503) before its body was read whole.
	reasonMemory = "memory"
	// The webhook declared a compressing Content-Encoding (415).
	reasonEncoding = "encoding"
)

// Metrics are the ingest service's instruments.
type Metrics struct {
	requests metric.Int64ObservableCounter
	duration metric.Float64Histogram
	limit    *telemetry.Limiter
	// conns and maxConns are the webhook listener's open connections and
	// -max-conns, read by the gauges' callback; connsFull counts the
	// accepts that filled the limit (see connLimit).
	conns     atomic.Int64
	maxConns  atomic.Int64
	connsFull metric.Int64Counter
	// events counts answers by the label values seen (event types as the
	// limiter answered, so as bounded as it is); the requests counter
	// reports them at collection. A synchronous counter's Add cost 0.2 to
	// 0.9 µs a request under load (the SDK resolves the attribute set and
	// offers an exemplar on every call); an atomic add costs a few ns. The
	// counter has no exemplars for it: the latency histogram keeps its.
	events telemetry.OptionCache[eventLabels, *eventCount]
	// The options of the latency histogram's label values seen, kept as
	// the slices the variadic call takes.
	durations telemetry.OptionCache[durationLabels, []metric.RecordOption]
}

type eventLabels struct{ source, eventType, outcome, reason string }

// eventCount is one label set's count of answers.
type eventCount struct {
	attrs metric.ObserveOption
	n     atomic.Int64
}
type durationLabels struct {
	source string
	class  int
}

// NewMetrics builds the instruments from meter (nil: no-op). limit bounds
// event-type label values.
func NewMetrics(meter metric.Meter, limit *telemetry.Limiter) (*Metrics, error) {
	if meter == nil {
		meter = noop.NewMeterProvider().Meter("")
	}
	m := &Metrics{limit: limit}
	var err error
	if m.requests, err = meter.Int64ObservableCounter("inlet.ingest.requests",
		metric.WithDescription("Ingest requests (events for /events lines) by source, event type, outcome and rejection reason.")); err != nil {
		return nil, err
	}
	if _, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		m.events.Range(func(_ eventLabels, c *eventCount) {
			o.ObserveInt64(m.requests, c.n.Load(), c.attrs)
		})
		return nil
	}, m.requests); err != nil {
		return nil, err
	}
	if m.duration, err = meter.Float64Histogram("inlet.ingest.request.duration", metric.WithUnit("s"),
		metric.WithDescription("Ingest request latency, from the first byte read to the answer."),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)); err != nil {
		return nil, err
	}
	if err := m.connInstruments(meter); err != nil {
		return nil, err
	}
	return m, nil
}

// connInstruments builds the connection instruments: gauges read at
// collection (an accept or close costs an atomic add, not a metric call)
// and the counter of accepts that filled the limit.
func (m *Metrics) connInstruments(meter metric.Meter) error {
	open, err := meter.Int64ObservableGauge("inlet.ingest.connections.open",
		metric.WithDescription("Open connections on the webhook listener (not the admin one), idle keep-alive ones included."))
	if err != nil {
		return err
	}
	limit, err := meter.Int64ObservableGauge("inlet.ingest.connections.limit",
		metric.WithDescription("The webhook listener's connection limit (-max-conns); 0 before it serves."))
	if err != nil {
		return err
	}
	if m.connsFull, err = meter.Int64Counter("inlet.ingest.connections.limit_reached",
		metric.WithDescription("Connections accepted that filled the webhook listener to -max-conns: after each, new connections wait unserved in the listen backlog until one closes.")); err != nil {
		return err
	}
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(open, m.conns.Load())
		o.ObserveInt64(limit, m.maxConns.Load())
		return nil
	}, open, limit)
	return err
}

// event counts one event or request.
func (m *Metrics) event(_ context.Context, source, eventType, outcome, reason string) {
	if m == nil {
		return
	}
	label := eventType
	if eventType != "" {
		label = m.limit.EventType(source, eventType)
	}
	k := eventLabels{source, label, outcome, reason}
	c, ok := m.events.Get(k)
	if !ok {
		m.events.Put(k, &eventCount{attrs: metric.WithAttributeSet(attribute.NewSet(
			attribute.String("source", source), attribute.String("event_type", label),
			attribute.String("outcome", outcome), attribute.String("reason", reason)))})
		c, _ = m.events.Get(k) // the one cached, if another call put it first
	}
	c.n.Add(1)
}

// request records a request's latency by status class.
func (m *Metrics) request(ctx context.Context, source string, status int, start time.Time) {
	if m == nil {
		return
	}
	k := durationLabels{source, status / 100}
	opt, ok := m.durations.Get(k)
	if !ok {
		opt = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(
			attribute.String("source", source), attribute.String("code", strconv.Itoa(status/100)+"xx")))}
		m.durations.Put(k, opt)
	}
	m.duration.Record(ctx, time.Since(start).Seconds(), opt...)
}

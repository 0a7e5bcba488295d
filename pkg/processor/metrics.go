package processor

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/ops"
	"github.com/inletdev/inlet/pkg/telemetry"
)

// metrics are the processor's instruments (names as in deploy/prometheus).
type metrics struct {
	events     metric.Int64Counter
	retries    metric.Int64Counter
	processing metric.Float64Histogram
	e2e        metric.Float64Histogram
	retryWait  metric.Float64Histogram
	limit      *telemetry.Limiter
	// The per-event instruments' options by label values (event types as
	// the limiter answered, so as bounded as it is): building a set sorts
	// and allocates, about 0.5 µs per event in bench-processor.
	eventSets   telemetry.OptionCache[outcomeLabels, []metric.AddOption]
	latencySets telemetry.OptionCache[typeLabels, []metric.RecordOption]

	mu     sync.Mutex
	depths depths
}

// depths are the last measured queue depths, read by the gauges.
type depths struct {
	retry   map[string]int64 // tier name → records not yet consumed
	lag     map[string]int64 // topic → processor group lag
	dlq     int64
	invalid int64
	// known: retry and lag hold a measurement (taken at lagAt);
	// queuesKnown: dlq and invalid do (taken at queuesAt).
	known, queuesKnown bool
	lagAt, queuesAt    time.Time
}

var latencyBuckets = metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)

func newMetrics(meter metric.Meter, limit *telemetry.Limiter) (*metrics, error) {
	if meter == nil {
		meter = noop.NewMeterProvider().Meter("")
	}
	m := &metrics{limit: limit}
	var err error
	if m.events, err = meter.Int64Counter("inlet.events", metric.WithDescription("Events by source, event type and outcome (processed, duplicate, stale, invalid, dlq; retried on the way).")); err != nil {
		return nil, err
	}
	if m.retries, err = meter.Int64Counter("inlet.retries", metric.WithDescription("Events sent to a retry tier.")); err != nil {
		return nil, err
	}
	if m.processing, err = meter.Float64Histogram("inlet.processing.latency", metric.WithUnit("s"), latencyBuckets,
		metric.WithDescription("Ingest receipt to committed outcome.")); err != nil {
		return nil, err
	}
	if m.e2e, err = meter.Float64Histogram("inlet.end_to_end.latency", metric.WithUnit("s"), latencyBuckets,
		metric.WithDescription("The event's own occurred-at to processed: delivery delay and backlog included.")); err != nil {
		return nil, err
	}
	if m.retryWait, err = meter.Float64Histogram("inlet.retry.wait", metric.WithUnit("s"), latencyBuckets,
		metric.WithDescription("Time an event waited in a retry tier.")); err != nil {
		return nil, err
	}
	retryDepth, err := meter.Int64ObservableGauge("inlet.retry.depth", metric.WithDescription("Records waiting in each retry tier."))
	if err != nil {
		return nil, err
	}
	dlqDepth, err := meter.Int64ObservableGauge("inlet.dlq.depth", metric.WithDescription("Unresolved dead-lettered records."))
	if err != nil {
		return nil, err
	}
	invalidDepth, err := meter.Int64ObservableGauge("inlet.invalid.depth", metric.WithDescription("Unresolved invalid records."))
	if err != nil {
		return nil, err
	}
	lag, err := meter.Int64ObservableGauge("inlet.consumer.lag", metric.WithDescription("Records behind, processor group, per topic."))
	if err != nil {
		return nil, err
	}
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.depths.known {
			for tier, n := range m.depths.retry {
				o.ObserveInt64(retryDepth, n, metric.WithAttributes(attribute.String("tier", tier)))
			}
			for topic, n := range m.depths.lag {
				o.ObserveInt64(lag, n, metric.WithAttributes(attribute.String("topic", topic)))
			}
		}
		if m.depths.queuesKnown {
			o.ObserveInt64(dlqDepth, m.depths.dlq)
			o.ObserveInt64(invalidDepth, m.depths.invalid)
		}
		return nil
	}, retryDepth, dlqDepth, invalidDepth, lag)
	return m, err
}

// observe records one committed item.
func (m *metrics) observe(ctx context.Context, it *item, topics kafka.Topics, now time.Time) {
	src, typ := "unknown", "unknown"
	if it.env != nil {
		src, typ = it.env.Source, it.env.EventType
	}
	m.events.Add(ctx, 1, m.eventOpts(src, typ, it.outcome, it.env != nil)...)
	if it.outcome == Retried {
		m.retries.Add(ctx, 1, metric.WithAttributes(attribute.String("source", src), attribute.String("event_type", m.label(src, typ, it.env != nil)),
			attribute.String("tier", kafka.TierName(it.tier))))
	}
	if tier, ok := tierOf(topics, it.rec.Topic); ok {
		m.retryWait.Record(ctx, now.Sub(it.rec.Timestamp).Seconds(), metric.WithAttributes(attribute.String("tier", tier)))
	}
	if it.env == nil || it.outcome == Retried {
		return
	}
	st := m.latencyOpts(src, typ)
	m.processing.Record(ctx, now.Sub(it.env.ReceivedAt).Seconds(), st...)
	if it.outcome == Processed && it.out != nil && !it.out.OccurredAt.IsZero() {
		m.e2e.Record(ctx, now.Sub(it.out.OccurredAt).Seconds(), st...)
	}
}

type outcomeLabels struct {
	source, eventType string
	outcome           Outcome
}

type typeLabels struct{ source, eventType string }

// label is the event_type label value: the limiter's answer for a
// decoded event, else typ as it is ("unknown").
func (m *metrics) label(src, typ string, decoded bool) string {
	if !decoded {
		return typ
	}
	return m.limit.EventType(src, typ)
}

// eventOpts returns the inlet.events options for an outcome.
func (m *metrics) eventOpts(src, typ string, outcome Outcome, decoded bool) []metric.AddOption {
	k := outcomeLabels{src, m.label(src, typ, decoded), outcome}
	opt, ok := m.eventSets.Get(k)
	if !ok {
		opt = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(
			attribute.String("source", k.source), attribute.String("event_type", k.eventType), attribute.String("outcome", string(outcome))))}
		m.eventSets.Put(k, opt)
	}
	return opt
}

// latencyOpts returns the latency histograms' options.
func (m *metrics) latencyOpts(src, typ string) []metric.RecordOption {
	k := typeLabels{src, m.limit.EventType(src, typ)}
	opt, ok := m.latencySets.Get(k)
	if !ok {
		opt = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(
			attribute.String("source", k.source), attribute.String("event_type", k.eventType)))}
		m.latencySets.Put(k, opt)
	}
	return opt
}

func tierOf(t kafka.Topics, topic string) (string, bool) {
	for i, r := range t.Retry {
		if r == topic {
			return kafka.TierName(t.RetryTiers[i]), true
		}
	}
	return "", false
}

// depthLoop measures lag and queue depths every interval until stop.
func (p *Processor) depthLoop(ctx context.Context, interval time.Duration) {
	// Its own client: the session's may be replaced after a failure.
	cl, err := kgo.NewClient(p.d.KafkaOpts...)
	if err != nil {
		p.log.Warn("depth gauges disabled", "error", err)
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var tracker queueDepths
	if p.queues != nil {
		tracker = ops.NewTracker(p.queues, p.d.Topics.DLQ, p.d.Topics.Invalid)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		p.measureDepths(ctx, adm, tracker)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// queueDepths is what measureDepths needs of *ops.Tracker.
type queueDepths interface {
	Refresh(ctx context.Context) ([]int, error)
}

// staleDepths is how long a gauge keeps its last value while it cannot be
// measured; then it is withdrawn. Alert rules take max() across instances,
// so one instance stuck on an old high value would keep an alert firing
// after the queue was cleared.
const staleDepths = 10 * time.Minute

func (p *Processor) measureDepths(ctx context.Context, adm *kadm.Client, tracker queueDepths) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	now := time.Now()
	p.metrics.mu.Lock()
	d := p.metrics.depths
	p.metrics.mu.Unlock()
	if lags, err := adm.Lag(ctx, p.cfg.Group); err != nil {
		p.log.Debug("lag measurement failed", "error", err)
		if d.known && now.Sub(d.lagAt) > staleDepths {
			d.known = false
			p.log.Warn("lag not measured for too long; the lag and retry depth gauges are withdrawn until it is", "since", d.lagAt, "error", err)
		}
	} else {
		d.retry, d.lag, d.known, d.lagAt = map[string]int64{}, map[string]int64{}, true, now
		for _, gl := range lags {
			for _, l := range gl.Lag.Sorted() {
				if l.Lag < 0 {
					continue
				}
				d.lag[l.Topic] += l.Lag
				if tier, ok := tierOf(p.d.Topics, l.Topic); ok {
					d.retry[tier] += l.Lag
				}
			}
		}
	}
	if tracker != nil {
		// Incremental: the first refresh reads the queues whole (over
		// several ticks if they are long), later ones only what is new.
		// Until one succeeds the gauges say nothing, and a failed one
		// leaves them at their last value for staleDepths: never 0 for
		// "not measured".
		switch n, err := tracker.Refresh(ctx); {
		case err == nil:
			d.dlq, d.invalid, d.queuesKnown, d.queuesAt = int64(n[0]), int64(n[1]), true, now
		case d.queuesKnown && now.Sub(d.queuesAt) > staleDepths:
			d.queuesKnown = false
			p.log.Warn("failure-queue depths not measured for too long; their gauges are withdrawn until they are", "since", d.queuesAt, "error", err)
		case d.queuesKnown:
			p.log.Warn("failure-queue depths not refreshed; the gauges keep their last value", "error", err)
		case d.queuesAt.IsZero() && ctx.Err() != nil:
			p.log.Info("still reading the failure queues for their depth gauges", "error", err)
		default:
			p.log.Warn("failure-queue depths not measured; their gauges stay absent", "error", err)
		}
	}
	p.metrics.mu.Lock()
	p.metrics.depths = d
	p.metrics.mu.Unlock()
}

package processor

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/ops"
	"github.com/inletdev/inlet/pkg/retry"
	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/pkg/telemetry"
)

// metrics are the processor's instruments (names as in deploy/prometheus).
type metrics struct {
	events     metric.Int64Counter
	retries    metric.Int64Counter
	processing metric.Float64Histogram
	e2e        metric.Float64Histogram
	future     metric.Int64Counter
	retryWait  metric.Float64Histogram
	// redelivered counts records Kafka handed out again after their events
	// were processed (see lostcommit.go).
	redelivered metric.Int64Counter
	// leftOpen counts partitions where Kafka left a worker's transaction
	// open (see hanging.go), repaired or not.
	leftOpen metric.Int64Counter
	limit    *telemetry.Limiter
	// sources are the configured sources: any other a raw record's
	// envelope names is labelled "unknown", as ingest labels it (nil:
	// labels as named). Records naming sources the file does not have
	// (another producer, a source removed) each made a series, a cached
	// option set and a Counts key for the process's life.
	sources *source.File
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

// retryWaitBuckets resolve waits just past each default tier delay (30s,
// 2m, 15m) and a 1h tier: a healthy wait is the delay plus a second or so,
// and with a bound exactly on the delay it fell in the bucket above, whose
// interpolation read p99 as 2-4 times the delay (901 s near 3600). Short
// ones are requeues, due at once, and Retry-Afters below a tier's delay.
var retryWaitBuckets = metric.WithExplicitBucketBoundaries(0.1, 1, 5, 10, 30, 31, 35, 45, 60, 120, 125, 150, 180, 300, 600, 900, 905, 960, 1200, 1800, 3600, 3605, 3660, 7200)

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
		metric.WithDescription("Ingest receipt (a requeued event: its requeue) to committed outcome.")); err != nil {
		return nil, err
	}
	if m.e2e, err = meter.Float64Histogram("inlet.end_to_end.latency", metric.WithUnit("s"), latencyBuckets,
		metric.WithDescription("The event's own occurred-at (a requeued event: its requeue) to processed: delivery delay and backlog included.")); err != nil {
		return nil, err
	}
	if m.future, err = meter.Int64Counter("inlet.events.future_dated",
		metric.WithDescription("Processed events whose occurred-at was later than their processing: the sender's clock is ahead (their end-to-end latency is recorded as 0).")); err != nil {
		return nil, err
	}
	if m.retryWait, err = meter.Float64Histogram("inlet.retry.wait", metric.WithUnit("s"), retryWaitBuckets,
		metric.WithDescription("Time an event waited in a retry tier.")); err != nil {
		return nil, err
	}
	if m.redelivered, err = meter.Int64Counter("inlet.redelivered",
		metric.WithDescription("Records Kafka handed out again after their events were processed and marked done: a commit it acknowledged and then lost (a broker failing over while writing a transaction's markers), or the group's offsets rewound or expired. Each is processed again.")); err != nil {
		return nil, err
	}
	if m.leftOpen, err = meter.Int64Counter("inlet.transactions.left_open",
		metric.WithDescription("Partitions where Kafka answered the end of a processor transaction and skipped its marker (a broker in controlled shutdown), found after a dropped connection: repaired (the marker written with the fate Kafka gave), or unresolved (the fate unknown; read_committed readers and the group's offsets wait there).")); err != nil {
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
		src, typ = m.source(it.env.Source), it.env.EventType
	}
	m.events.Add(ctx, 1, m.eventOpts(src, typ, it.outcome, it.env != nil)...)
	if it.outcome == Retried {
		m.retries.Add(ctx, 1, metric.WithAttributes(attribute.String("source", src), attribute.String("event_type", m.label(src, typ, it.env != nil)),
			attribute.String("tier", kafka.TierName(it.tier))))
	}
	tier, onTier := tierOf(topics, it.rec.Topic)
	if onTier {
		// The timestamp is its writer's clock (another processor, an
		// operator's requeue): one ahead of ours is a wait of 0, not a
		// negative one pulling _sum down, as for the latencies below.
		m.retryWait.Record(ctx, max(now.Sub(it.rec.Timestamp), 0).Seconds(), metric.WithAttributes(attribute.String("tier", tier)))
	}
	if it.env == nil || it.outcome == Retried {
		return
	}
	// A requeued event's latencies count from its requeue: the days it
	// waited on the DLQ or invalid topic for a decision are no backlog,
	// and counted they held p99 at the top bucket (and
	// InletEndToEndLatencyHigh firing) while a large requeue went through.
	from, occurred := it.env.ReceivedAt, time.Time{}
	if it.out != nil {
		occurred = it.out.OccurredAt
	}
	if onTier {
		if at := requeuedAt(it.rec); !at.IsZero() {
			from, occurred = later(from, at), later(occurred, at)
		}
	}
	// Latencies below 0 are recorded as 0: ingest's clock may be ahead of
	// ours, and a sender's business time may be up to max_future ahead of
	// receipt. A negative value would land in the lowest bucket and pull
	// _sum down; future-dated events are counted instead, so a sender with
	// a fast clock shows.
	st := m.latencyOpts(src, typ)
	m.processing.Record(ctx, max(now.Sub(from), 0).Seconds(), st...)
	if it.outcome == Processed && it.out != nil && !it.out.OccurredAt.IsZero() {
		if it.out.OccurredAt.After(now) {
			m.future.Add(ctx, 1, metric.WithAttributes(attribute.String("source", src)))
		}
		m.e2e.Record(ctx, max(now.Sub(occurred), 0).Seconds(), st...)
	}
}

// requeuedAt is when an operator last requeued r's event (the
// retry.StageRequeue entry pkg/ops writes into the error history), or the
// zero time. Only records on a retry tier can hold one.
func requeuedAt(r *kgo.Record) time.Time {
	var at time.Time
	for _, e := range retry.History(r.Headers) {
		if e.Stage == retry.StageRequeue {
			at = later(at, e.At)
		}
	}
	return at
}

// countLeftOpen counts partitions found with a transaction Kafka left
// open, by outcome (repaired, unresolved).
func (m *metrics) countLeftOpen(ctx context.Context, outcome string, n int) {
	if m == nil || n == 0 {
		return
	}
	m.leftOpen.Add(ctx, int64(n), metric.WithAttributes(attribute.String("outcome", outcome)))
}

// countRedelivered counts items' records that came back, per topic.
func (m *metrics) countRedelivered(ctx context.Context, items []*item) {
	per := map[string]int64{}
	for _, it := range items {
		per[it.rec.Topic]++
	}
	for topic, n := range per {
		m.redelivered.Add(ctx, n, metric.WithAttributes(attribute.String("topic", topic)))
	}
}

type outcomeLabels struct {
	source, eventType string
	outcome           Outcome
}

type typeLabels struct{ source, eventType string }

// label is the event_type label value: the limiter's answer for a
// decoded event, else typ as it is ("unknown").
// source is src as metrics label it: a configured source's name, else
// "unknown".
func (m *metrics) source(src string) string {
	if m.sources == nil {
		return src
	}
	if _, ok := m.sources.Get(src); ok {
		return src
	}
	return "unknown"
}

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

// depthLoop measures lag and queue depths, and checks that the consumed
// topics exist, every interval until stop.
func (p *Processor) depthLoop(ctx context.Context, interval time.Duration) {
	// Its own client: the session's may be replaced after a failure.
	cl, err := kgo.NewClient(p.d.KafkaOpts...)
	if err != nil {
		p.log.Warn("depth gauges disabled", "error", err)
		return
	}
	defer cl.Close()
	lm := newLagMeter(cl)
	var tracker queueDepths
	if p.queues != nil {
		tracker = ops.NewTracker(p.queues, p.d.Topics.DLQ, p.d.Topics.Invalid)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		p.measureDepths(ctx, lm, tracker)
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

func (p *Processor) measureDepths(ctx context.Context, lm *lagMeter, tracker queueDepths) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	now := time.Now()
	p.metrics.mu.Lock()
	d := p.metrics.depths
	p.metrics.mu.Unlock()
	p.checkTopics(ctx, lm.adm, now)
	p.checkStranded(ctx, lm.adm, lm.opts, now)
	lags, err := lm.adm.Lag(ctx, p.cfg.Group)
	p.foldLag(ctx, &d, lm, lags, err, now)
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

// foldLag folds a kadm.Lag result (lags, err) into d's lag and retry
// depths, with exact counts from lm (nil: the offset lags as they are)
// where it takes them. A failed measurement leaves d's last values, for
// staleDepths at most: a gauge that vanished for a tick would restart the
// `for:` timers of the rules on it.
func (p *Processor) foldLag(ctx context.Context, d *depths, lm *lagMeter, lags kadm.DescribedGroupLags, err error, now time.Time) {
	if err == nil {
		// kadm.Lag returns no error when the group could not be described
		// or its offsets fetched (its coordinator loading, say): the
		// result says so, and holds no lag then.
		err = lags.Error()
	}
	var exact map[topicPartition]int64
	if err == nil && lm != nil {
		exact, err = lm.exact(ctx, lags)
	}
	if err != nil {
		p.log.Debug("lag measurement failed", "error", err)
		if d.known && now.Sub(d.lagAt) > staleDepths {
			d.known = false
			p.log.Warn("lag not measured for too long; the lag and retry depth gauges are withdrawn until it is", "since", d.lagAt, "error", err)
		}
		return
	}
	d.retry, d.lag, d.known, d.lagAt = map[string]int64{}, map[string]int64{}, true, now
	for _, gl := range lags {
		for _, l := range gl.Lag.Sorted() {
			n := l.Lag
			if n < 0 {
				continue
			}
			if e, ok := exact[topicPartition{l.Topic, l.Partition}]; ok {
				n = e
			}
			d.lag[l.Topic] += n
			if tier, ok := tierOf(p.d.Topics, l.Topic); ok {
				d.retry[tier] += n
			}
		}
	}
}

// exactLag is the largest offset lag lagMeter counts record by record.
const exactLag = 100

// lagMeter measures the processor group's lag. kadm.Lag measures it
// against the high watermark, which counts transaction markers and aborted
// records: a partition written in transactions (retry copies, ops
// requeues) ends in a commit marker the group's offset (last record + 1)
// never passes, so a drained one showed a lag of 1 forever, more after an
// aborted batch. Where the offset lag is at most exactLag, the meter counts
// instead the committed records between the group's offset and the last
// stable offset, reading them read_committed (kafka.ReadSpan, as
// ops.Tracker counts the failure queues); an open transaction's records,
// past the last stable offset, are not waiting yet and do not count.
//
// Beyond exactLag the offset lag stands (the approximation that keeps the
// cost bounded), overstated by one marker per transaction that wrote to
// the partition since the group's offset, and by any aborted records
// there: markers are one per transaction, each after at least one of its
// records, so (aborts aside) at least half of a lag that large is a real
// backlog, while what the gauges must get right, 0 once drained, is
// exact. The exception: an aborted batch that left more than exactLag
// records on one partition at its tail reads as that many until a later
// record is consumed there. A count is kept per partition while its
// offsets stay the same, so a drained partition is read once; a tick reads
// at most exactLag records of each partition that moved. Not safe for
// concurrent use.
type lagMeter struct {
	adm     *kadm.Client
	opts    []kgo.Opt // for the reads
	counted map[topicPartition]counted
}

type topicPartition struct {
	topic     string
	partition int32
}

// counted is the committed records found in span.
type counted struct {
	span [2]int64
	n    int64
}

func newLagMeter(cl *kgo.Client) *lagMeter {
	return &lagMeter{adm: kadm.NewClient(cl), opts: cl.Opts()}
}

// exact returns the records not yet consumed on each partition of lags
// whose offset lag is in (0, exactLag]. On error (ctx ended, a read
// stopped short) there is no count: a guess would be the phantom backlog
// this exists to remove.
func (m *lagMeter) exact(ctx context.Context, lags kadm.DescribedGroupLags) (map[topicPartition]int64, error) {
	from := map[string]map[int32]int64{} // per topic and partition, the first offset not consumed
	for _, gl := range lags {
		for _, l := range gl.Lag.Sorted() {
			if l.Err != nil || l.Lag <= 0 || l.Lag > exactLag {
				continue
			}
			at := l.Commit.At
			if l.Start.Err == nil {
				at = max(at, l.Start.Offset) // retention may have deleted past it
			}
			if at < 0 {
				continue
			}
			if from[l.Topic] == nil {
				from[l.Topic] = map[int32]int64{}
			}
			from[l.Topic][l.Partition] = at
		}
	}
	if len(from) == 0 {
		m.counted = nil
		return nil, nil
	}
	topics := slices.Sorted(maps.Keys(from))
	stable, err := m.adm.ListCommittedOffsets(ctx, topics...)
	if err == nil {
		err = stable.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list stable offsets: %w", err)
	}
	out := map[topicPartition]int64{}
	kept := map[topicPartition]counted{}
	for _, topic := range topics {
		read := kafka.Span{}
		for p, at := range from[topic] {
			tp := topicPartition{topic, p}
			lso, ok := stable.Lookup(topic, p)
			if !ok {
				continue // not listed: the offset lag stands
			}
			span := [2]int64{at, lso.Offset}
			switch c, ok := m.counted[tp]; {
			case span[1] <= span[0]:
				out[tp] = 0 // only an open transaction's records past the offset
			case ok && c.span == span:
				out[tp], kept[tp] = c.n, c
			default:
				out[tp] = 0
				read[p] = span
			}
		}
		err := kafka.ReadSpan(ctx, m.opts, topic, read, func(r *kgo.Record) error {
			out[topicPartition{topic, r.Partition}]++
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("count records behind the group: %w", err)
		}
		for p, span := range read {
			tp := topicPartition{topic, p}
			kept[tp] = counted{span, out[tp]}
		}
	}
	m.counted = kept
	return out, nil
}

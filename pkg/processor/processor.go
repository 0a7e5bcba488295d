package processor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/inletdev/inlet/pkg/alert"
	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/history"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/ops"
	"github.com/inletdev/inlet/pkg/registry"
	"github.com/inletdev/inlet/pkg/retry"
	"github.com/inletdev/inlet/pkg/router"
	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/pkg/store"
	"github.com/inletdev/inlet/pkg/telemetry"
)

// Record header names, as the retry package defines them.
const (
	HeaderCorrelationID = retry.HeaderCorrelationID
	HeaderTraceparent   = retry.HeaderTraceparent
	HeaderAttempt       = retry.HeaderAttempt
	HeaderErrors        = retry.HeaderErrors
	HeaderOrigin        = retry.HeaderOrigin
	HeaderSource        = retry.HeaderSource
	HeaderEventType     = retry.HeaderEventType
	HeaderReason        = retry.HeaderReason
)

// Deps are what the processor reads from and writes to.
type Deps struct {
	// KafkaOpts connect to the cluster (brokers, SASL, TLS, logger); the
	// processor adds group and transaction options.
	KafkaOpts []kgo.Opt
	Topics    kafka.Topics
	Sources   *source.File
	Router    *router.Router
	Registry  *registry.Client
	Codec     *envelope.Codec
	Store     *store.Store
	// Alerter is told about dead-lettered and invalid events (optional).
	Alerter *alert.Alerter
	// Telemetry provides metrics and traces (optional).
	Telemetry *telemetry.Telemetry
	// History records each event's stages by correlation id (optional).
	History *history.Store
	// MaxEventTypes bounds event-type label values per source (default 100).
	MaxEventTypes int
	// DepthEvery is how often lag and queue depths are measured for the
	// gauges; default 15s.
	DepthEvery time.Duration
	// FillReplay is set by a fill replay (pkg/replay) to its id: a record
	// whose retry.HeaderReplayApplied holds that id is a duplicate, claim
	// or no claim (its copy found the event to be its entity's stored
	// state). Empty, as in the ordinary processor, the header means
	// nothing: there an event whose state was written by an attempt that
	// failed afterwards applies again when retried.
	FillReplay string
	// PositionTag, when set, is appended to the position ("<topic>/
	// <partition>/<offset>@<tag>") each dedup claim is marked done at
	// (store.Store.ClaimBatchAt). A replay sets it to the run of its id:
	// replay rm deletes its topic, and the same id run again makes it
	// anew, offsets from 0, so its copies land where the removed run's
	// did; a claim done there read as the copy's own lost commit, and
	// the event was processed again. No spaces.
	PositionTag string
	Log         *slog.Logger
}

// Processor is one instance of the processor group: Config.Workers
// transactional members sharing its handlers, Redis store and metrics.
type Processor struct {
	cfg     Config
	d       Deps
	log     *slog.Logger
	workers []*worker
	// queues reads the DLQ and invalid depths for the gauges.
	queues     *ops.Queues
	metrics    *metrics
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
	retry      map[string]time.Duration // retry topic names, to their delays
	tier       map[time.Duration]int
	// policies are the sources' retry budgets as this processor applies
	// them; see retryPolicy.
	policies map[string]retry.Policy
	ids      schemaIDs
	count    Counts
	// waits are the outages being waited out now (see Waiting).
	waits waits
	// missing are the consumed topics Kafka has not got (depthLoop
	// checks).
	missing missingTopics
	// stranded are the retry topics of other tiers reported holding
	// events, and strandedAt when they were last looked for (depthLoop
	// only; see checkStranded).
	stranded   map[string]bool
	strandedAt time.Time
	// releaseWarned: a release that found Redis down while stopping has
	// been logged (once per processor; see release).
	releaseWarned atomic.Bool

	// crashBeforeCommit, set by tests, simulates a crash between writing
	// the outputs and committing: Run returns at once, leaving the
	// transaction open and the claims unconfirmed. The whole process
	// crashes: once one worker has, no other commits again.
	crashBeforeCommit func() bool
	crashed           atomic.Bool
	// heldBeforeClaim, set by tests, runs between a batch's poll and its
	// claims: blocking in it stands for a process paused with the batch
	// in hand (a GC pause, SIGSTOP, a VM frozen) while the group moves on.
	heldBeforeClaim func()
}

var errCrashed = errors.New("simulated crash before commit")

// errStopping is why a batch gives up waiting when the processor stops (its
// run context ends: a signal, or another worker failed for good) before
// the batch deadline.
var errStopping = errors.New("the processor is stopping")

// errRebalance is why a batch gives up waiting for its claims when the
// consumer group waits on its worker to rebalance.
var errRebalance = errors.New("a rebalance of the consumer group is waiting on this worker")

// errSuperseded is why a batch is dropped whose records another member
// processed and committed while this worker held them: their keys are done
// at the very offsets in hand, as after a lost commit, but the group's
// committed offsets are past them. Only a member whose partitions moved
// on without it holds such a batch (paused longer than its session or
// the group's rebalance wait: a GC pause, SIGSTOP, a frozen VM); its
// commit would be fenced anyway.
var errSuperseded = errors.New("another member committed its records while this worker held them (its group session lapsed: paused longer than the group waits)")

// newPartitionsWithin bounds how long partitions added to the raw or retry
// topics wait before the group consumes them (see New).
const newPartitionsWithin = 10 * time.Second

// cleanupTimeout bounds a release of claims or the abort of a given-up
// batch while the processor is running: the batch's own context may be
// spent by then (a Redis round trip that hung runs to its end).
const cleanupTimeout = 10 * time.Second

// New connects the processor's transactional group sessions, one per
// worker.
func New(cfg Config, d Deps) (*Processor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Router == nil || d.Registry == nil || d.Codec == nil || d.Store == nil || d.Sources == nil {
		return nil, errors.New("processor: router, registry, codec, store and sources are required")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	p := &Processor{cfg: cfg, d: d, log: d.Log, retry: map[string]time.Duration{}, tier: map[time.Duration]int{}, policies: map[string]retry.Policy{}}
	p.ids.m = map[schemaKey]int{}
	p.tracer, p.propagator = tracenoop.NewTracerProvider().Tracer(""), propagation.TraceContext{}
	var meter metric.Meter
	if d.Telemetry != nil {
		meter, p.tracer, p.propagator = d.Telemetry.Meter, d.Telemetry.Tracer, d.Telemetry.Propagator
	}
	m, err := newMetrics(meter, d.Sources.TypesLimiter(d.MaxEventTypes))
	if err != nil {
		return nil, err
	}
	p.metrics = m
	m.sources = d.Sources
	for i, t := range d.Topics.Retry {
		p.retry[t] = d.Topics.RetryTiers[i]
		p.tier[d.Topics.RetryTiers[i]] = i
	}
	if p.policies, err = RetryPolicies(d.Sources, d.Topics.RetryTiers); err != nil {
		return nil, err
	}
	opts := append([]kgo.Opt{}, d.KafkaOpts...)
	opts = append(opts,
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(append([]string{d.Topics.Raw}, d.Topics.Retry...)...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.TransactionTimeout(cfg.TxnTimeout),
		kgo.ProducerBatchMaxBytes(kafka.MaxMessageBytes),
		kgo.ProducerLinger(0),
		// A resumed retry partition joins the next fetch, which waits for
		// the one in flight: its max wait bounds how late a retry runs.
		kgo.FetchMaxWait(500*time.Millisecond),
		// Finish the batch in hand before a rebalance moves partitions,
		// instead of aborting it; AllowRebalance follows each End.
		kgo.BlockRebalanceOnPoll(),
		// A rebalance waits for every member, and a member learns of it
		// from its next heartbeat: every 3s by default (the first 500ms
		// after a cooperative sync), so a joining worker waited ~0.5s for
		// its partitions and a rebalance could stall the group for
		// seconds. Four small requests a second per member to the
		// coordinator make that a fraction of a second.
		kgo.HeartbeatInterval(250*time.Millisecond),
		// Eager sticky: a membership change is one rebalance round in which
		// every member hands back its partitions (each finishing its batch
		// first, see BlockRebalanceOnPoll) and most get the same ones back.
		// franz-go's default, cooperative-sticky, takes two rounds to move a
		// partition; with workers starting together that left one worker
		// processing alone for 0.25–0.4 s in most runs of bench-processor:
		// median 31.1k events/s over 14 runs, against 36.9k over 17 eager.
		// The price is that every member pauses at each rebalance, for
		// the length of the batch in hand.
		kgo.Balancers(kgo.StickyBalancer()),
		// The group takes on partitions added to its topics when its
		// leader next refreshes metadata: every 5 min by default, while
		// ingest (and the workers' own retry copies) may write to them
		// at once. Records there waited up to 5 min unprocessed, and
		// outside the lag gauge, which counts only assigned partitions.
		// One metadata request per member every newPartitionsWithin.
		kgo.MetadataMaxAge(newPartitionsWithin),
		// A broker blip holds a failing partition's produces until the
		// next metadata refresh: see kafka.MetadataMinAge (a worker
		// idled 4.0–4.7 s after each blip with franz-go's 5 s).
		kgo.MetadataMinAge(kafka.MetadataMinAge),
	)
	opts = append(opts, FetchOpts()...)
	for i := range cfg.Workers {
		// Worker 0 keeps the instance's transactional id, so a restarted
		// instance fences what its predecessor left open.
		txnID := "inlet-processor-" + cfg.instanceID()
		if i > 0 {
			txnID += "-w" + strconv.Itoa(i)
		}
		w, err := newWorker(p, txnID, append(opts[:len(opts):len(opts)], kgo.TransactionalID(txnID)))
		if err != nil {
			p.closeWorkers()
			return nil, err
		}
		p.workers = append(p.workers, w)
	}
	if p.queues, err = ops.New(d.KafkaOpts, d.Topics, d.Codec); err != nil {
		p.closeWorkers()
		return nil, err
	}
	p.queues.SetLogger(p.log)
	return p, nil
}

// retryPolicy is a source's retry budget on a processor with the given
// tiers: the tiers the source names, or all of the processor's when it
// names none; and the attempts it sets, or one per tier plus the first.
func retryPolicy(spec source.RetrySpec, tiers []time.Duration) retry.Policy {
	var p retry.Policy
	for _, t := range spec.Tiers {
		p.Tiers = append(p.Tiers, t.D())
	}
	if p.Tiers == nil {
		p.Tiers = slices.Clone(tiers)
	}
	p.MaxAttempts = cmp.Or(int(spec.MaxAttempts), len(p.Tiers)+1)
	return p
}

// FetchOpts size the processor's fetches: at most 256 KiB per partition
// and 1 MiB per request, a few hundred typical envelopes per partition. A
// record larger than that still comes whole (Kafka returns the first batch
// of a partition whatever its size), so no event is too big to fetch.
//
// The limits count compressed bytes, and franz-go decompresses a whole
// fetch as it arrives: snappy shrinks a body of repeated bytes (valid JSON
// under the default max_body) 20x and more, so what a worker holds is
// about brokers x these limits x the ratio, twice over while a batch is in
// hand. With 1 MiB per partition and 4 MiB per request, one processor (2
// workers) on 12 partitions of 3 brokers held 1.1 GiB of live heap on
// 1000 KiB events of that kind, over the manifest's 512 MiB limit, and
// again after every restart; with these limits 360 MiB. Typical events
// went as fast (30,000 in 2.1 s against 2.0 s, one broker).
//
// Fetches this size let the first batch start sooner, and a member that
// loses partitions at a rebalance drops less prefetched data:
// with 1 MiB per partition and 4 MiB per request, bench-processor's first
// outcome came after 110–130 ms instead of 240–260 ms with 4 MiB and
// 16 MiB, and its events/s rose by about 15%. The benchmark's bare and
// naive modes use these options too, so they fetch as the processor does.
//
// A batch may decompress to maxDecompressedBatch at most (franz-go's
// default is 1 GiB: a zstd batch of zeros a few KiB on the wire would take
// that much heap, and again after every restart). See worker.fetchError
// for what a larger one does.
func FetchOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.FetchMaxBytes(1 << 20),
		kgo.FetchMaxPartitionBytes(256 << 10),
		kgo.MaxDecompressBatchBytes(maxDecompressedBatch),
	}
}

// maxDecompressedBatch bounds what one fetched record batch decompresses
// to: 16 times the largest batch an Inlet producer writes (their batches
// are at most kafka.MaxMessageBytes before compression).
const maxDecompressedBatch = 16 * kafka.MaxMessageBytes

// Run processes until ctx ends, then each worker finishes the batch in
// hand (bounded by the drain timeout), commits it, and leaves the group. A
// crash instead (no commit) loses nothing: uncommitted records are
// redelivered to whichever member gets their partitions, and their outputs
// were never committed. When a worker fails for good, the others stop as
// on ctx's end and Run returns the error.
func (p *Processor) Run(ctx context.Context) error {
	defer func() {
		if ctx.Err() == nil { // a worker failed: its error says it
			p.closeWorkers()
			return
		}
		// Leaving waits for a rebalance in progress to end, up to the
		// session timeout of a member that died (45 s by default): a
		// SIGTERM then looked hung, logging nothing.
		start := time.Now()
		p.log.Info("batches finished; leaving the consumer group (a rebalance in progress holds this up to a dead member's session timeout)")
		p.closeWorkers()
		p.log.Info("left the consumer group", durationAttr("took", time.Since(start)))
	}()
	defer p.queues.Close()
	every := p.d.DepthEvery
	if every <= 0 {
		every = 15 * time.Second
	}
	dctx, stopDepths := context.WithCancel(context.Background())
	depthDone := make(chan struct{})
	go func() { p.depthLoop(dctx, every); close(depthDone) }()
	defer func() { stopDepths(); <-depthDone }()
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	errs := make([]error, len(p.workers))
	var wg sync.WaitGroup
	for i, w := range p.workers {
		wg.Go(func() {
			if errs[i] = w.run(wctx); errs[i] != nil {
				stop()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// closeWorkers closes every worker's session; it is idempotent. Every
// session lets rebalances go on first: one closed while another still
// held a poll (a worker that stopped mid-batch) waited in LeaveGroup for a
// rebalance the other held back, and the processor never stopped. The
// sessions then close in parallel, so the members leave in one round trip
// instead of one rebalance after another.
func (p *Processor) closeWorkers() {
	for _, w := range p.workers {
		w.sess.AllowRebalance()
	}
	var wg sync.WaitGroup
	for _, w := range p.workers {
		wg.Go(w.close)
	}
	wg.Wait()
}

// Counts are the committed outcomes so far.
func (p *Processor) Counts() *Counts { return &p.count }

func (p *Processor) isRetry(topic string) bool {
	_, ok := p.retryDelay(topic)
	return ok
}

// retryDelay is the delay of topic's retry tier, if it is a retry topic.
func (p *Processor) retryDelay(topic string) (time.Duration, bool) {
	d, ok := p.retry[topic]
	return d, ok
}

// item is one record's way through a batch.
type item struct {
	rec     *kgo.Record
	span    trace.Span
	ctx     context.Context // carries the item's span
	env     *envelope.Envelope
	ev      *router.Event
	handler router.Handler
	out     *router.Output
	value   []byte // encoded processed record
	outcome Outcome
	reason  error // why invalid
	failure error // why processing failed (retry or DLQ)
	// wait: the envelope could not be decoded yet, because the registry
	// holding its writer schema is unavailable; see awaitRegistry.
	wait  error
	stage string
	next  retry.Decision
	tier  time.Duration // the delay of the retry tier next picked (Retried)
	dedup string
	lock  string
	pos   string // the record's position for its dedup claim (see position)
	src   *source.Source
	// decided: newest-wins was decided by deliverInOrder, not yet
	// written; applyDecided writes it.
	decided bool
}

// countKey is the counter its outcome adds to. The event type is the
// metrics' label (telemetry.Limiter): past its limit of types per source,
// "other". Counts lives as long as the processor, and a sender inventing
// a type per event grew it by one counter each.
func (p *Processor) countKey(it *item) CountKey {
	k := CountKey{Source: "unknown", EventType: "unknown", Outcome: it.outcome}
	if it.env != nil {
		k.Source = p.metrics.source(it.env.Source)
		k.EventType = p.metrics.label(k.Source, it.env.EventType, true)
	}
	return k
}

// dropTombstones leaves out the tombstones (null values) on the raw topic:
// deletions of their keys, written by another producer (Inlet writes
// none), such as an erasure of a payload the compacted topic would
// otherwise keep for good. They are not events: sent to the invalid topic
// as undecodable, each raised the invalid alert. Their offsets are
// committed with the batch's. One info line per batch says so. (A null
// value on a retry topic, which is not compacted, is no deletion: it is
// undecodable.)
func (p *Processor) dropTombstones(recs []*kgo.Record) []*kgo.Record {
	var kept []*kgo.Record // nil until the first tombstone
	var first *kgo.Record
	for i, r := range recs {
		if r.Value != nil || r.Topic != p.d.Topics.Raw {
			if kept != nil {
				kept = append(kept, r)
			}
			continue
		}
		if kept == nil {
			kept, first = append(make([]*kgo.Record, 0, len(recs)), recs[:i]...), r
		}
	}
	if kept == nil {
		return recs
	}
	p.log.Info("tombstones on the raw topic skipped: deletions of their keys by another producer, not events",
		"count", len(recs)-len(kept), "first", retry.Coordinates(first))
	return kept
}

// prepare decodes and routes one record and runs its handler.
func (p *Processor) prepare(ctx context.Context, r *kgo.Record) *item {
	it := &item{rec: r}
	// The span joins the trace ingest started (traceparent header).
	it.ctx, it.span = p.tracer.Start(p.propagator.Extract(ctx, kotel.NewRecordCarrier(r)), "process",
		trace.WithSpanKind(trace.SpanKindConsumer))
	// Attributes only for a span that records: without an exporter they
	// were built for nothing on every event.
	recording := it.span.IsRecording()
	if recording {
		it.span.SetAttributes(attribute.String("messaging.source.name", r.Topic),
			attribute.String("messaging.destination.partition.id", strconv.Itoa(int(r.Partition))),
			attribute.Int64("messaging.kafka.message.offset", r.Offset), attribute.Int("inlet.attempt", attempt(r)),
			attribute.String("inlet.correlation_id", retry.Get(r.Headers, HeaderCorrelationID)))
	}
	env, err := p.d.Codec.Decode(ctx, r.Value)
	if registry.IsUnavailable(err) {
		it.wait = err
		return it
	}
	if err != nil {
		it.outcome, it.reason = Invalid, fmt.Errorf("undecodable envelope: %w", err)
		return it
	}
	it.env = env
	if recording {
		it.span.SetAttributes(attribute.String("inlet.source", env.Source), attribute.String("inlet.event_type", env.EventType),
			attribute.String("inlet.event_id", env.EventID), attribute.String("inlet.correlation_id", env.CorrelationID))
	}
	it.src, _ = p.d.Sources.Get(env.Source)
	it.ev = &router.Event{Envelope: env, Attempt: attempt(r)}
	h, _, err := p.d.Router.Lookup(env.Source, env.EventType, env.SchemaVersion)
	if err != nil {
		it.outcome, it.reason = Invalid, err
		return it
	}
	it.handler = h
	var out *router.Output
	err = p.guard(it, "Handle", func() (err error) {
		out, err = h.Handle(it.ctx, it.ev)
		return err
	})
	switch {
	case err == nil && out == nil:
		// A handler bug, not a failure a retry mends: read past, the nil
		// Output crashed the processor, outside the guard, on every start.
		it.outcome, it.reason = Invalid, &router.ValidationError{Reason: "handler returned no output and no error"}
		return it
	case err == nil:
		if out.EntityKey == "" || out.Schema == nil || out.SchemaText == "" {
			it.outcome, it.reason = Invalid, &router.ValidationError{Reason: "handler returned no entity key or schema"}
			return it
		}
		if err := checkBusinessTime(it.src, env, out); err != nil {
			it.outcome, it.reason = Invalid, err
			return it
		}
		it.out = out
		natural := out.NaturalKey
		if natural == "" {
			natural = env.IdempotencyKey
		} else {
			natural = env.Source + ":" + natural
		}
		it.dedup = "dedup:" + natural
		it.lock = "lock:" + out.EntityKey
		if p.d.PositionTag != "" {
			it.pos = origin(it) + "@" + p.d.PositionTag
		}
	case router.IsValidation(err):
		it.outcome, it.reason = Invalid, err
	default:
		it.failure, it.stage = err, "handle"
	}
	return it
}

func attempt(r *kgo.Record) int { return retry.Attempt(r.Headers) }

// checkBusinessTime refuses a business time further after the event's receipt
// than the source's max_future: applied, it would stay the entity's time
// and make every real update stale until then. It refuses one outside the
// range the store compares too (the envelope's occurred_at of a record not
// written by ingest, a Go handler's time): the store refuses the whole
// batch for it, which stalled the worker's partitions on every redelivery.
func checkBusinessTime(src *source.Source, env *envelope.Envelope, out *router.Output) error {
	if out.OccurredAt.IsZero() {
		return nil
	}
	limit := source.DefaultMaxFuture
	if src != nil {
		limit = src.MaxFuture.D()
	}
	if out.OccurredAt.After(env.ReceivedAt.Add(limit)) {
		return &router.ValidationError{
			Reason: fmt.Sprintf("business time is %v after the event was received (max_future %v)", out.OccurredAt.Sub(env.ReceivedAt).Round(time.Second), limit),
			Fields: []router.FieldProblem{{Path: "occurred_at", Expected: "at most " + env.ReceivedAt.Add(limit).UTC().Format(time.RFC3339), Actual: out.OccurredAt.UTC().Format(time.RFC3339)}},
		}
	}
	if first, last := store.EventTimeRange(); out.OccurredAt.Before(first) || out.OccurredAt.After(last) {
		return &router.ValidationError{
			Reason: "business time out of range",
			Fields: []router.FieldProblem{{Path: "occurred_at", Expected: "a time from " + first.Format(time.DateOnly) + " to " + last.Format(time.DateOnly), Actual: out.OccurredAt.UTC().Format(time.RFC3339)}},
		}
	}
	return nil
}

// claim takes the dedup claims and entity locks for the batch's valid
// items. Items whose claim is done are duplicates; a duplicate of an
// earlier item in the same batch is one too, and so is, in a fill replay,
// a copy marked already applied (see Deps.FillReplay). Busy claims and
// locks (held by another member) are tried again with backoff. It returns
// the keys it holds; on an error, every key it may hold (a round cut off
// midway may have taken some), so that they are released at once rather
// than blocking the redelivered batch until their lease runs out.
//
// A receive on rebalance (the group waits on this worker: see
// worker.blocked; nil for none) ends a wait at once with errRebalance: the
// batch holds nothing yet, and a wait held the whole group's rebalance
// (BlockRebalanceOnPoll) up to the batch deadline, stalling every member.
//
// sent is when the round trip that took the keys was sent: the entity
// locks' lease runs from a moment after it (Redis's), so counting from it
// never trusts a lock Redis has already let go when an answer was slow.
//
// committedPast (nil: not asked) tells whether the group's committed
// offsets are past records that came back done at their own offsets; see
// errSuperseded.
func (p *Processor) claim(ctx, stop context.Context, items []*item, token string, deadline time.Time, rebalance <-chan struct{}, committedPast func(context.Context, []*item) (bool, error)) (claimed []string, sent time.Time, err error) {
	// Sized for the batch: growing these maps showed in allocation profiles.
	seen := make(map[string]bool, len(items))
	locks := make(map[string]bool, len(items))
	pending := make([]string, 0, 2*len(items))
	byKey := make(map[string]*item, len(items))
	for _, it := range items {
		if it.out == nil {
			continue
		}
		if seen[it.dedup] || (p.d.FillReplay != "" && retry.Get(it.rec.Headers, retry.HeaderReplayApplied) == p.d.FillReplay) {
			it.outcome = Duplicate
			continue
		}
		seen[it.dedup] = true
		byKey[it.dedup] = it
		pending = append(pending, it.dedup)
		if !locks[it.lock] {
			locks[it.lock] = true
			pending = append(pending, it.lock)
		}
	}
	// All or nothing: when any key is held elsewhere, give back what this
	// attempt took and try again after a jittered wait. Holding some locks
	// while waiting for others lets two members block each other for good
	// (an entity's events sit on several partitions).
	backoff := 50 * time.Millisecond
	var down *outage // the Redis outage this loop waits on, if any
	defer func() { p.waits.done(down) }()
	// A dedup key names the record it is claimed for, so that one done by
	// this very record (a commit Kafka lost) is told from a duplicate.
	at := make([]string, 0, len(pending))
	for len(pending) > 0 {
		at = at[:0]
		for _, k := range pending {
			if it := byKey[k]; it != nil {
				at = append(at, position(it))
			} else {
				at = append(at, store.AtLock)
			}
		}
		sent = time.Now()
		res, err := p.d.Store.ClaimBatchAt(ctx, pending, at, token)
		busy := 0 // keys held by another member, or 0 with err set
		if err != nil {
			if !store.IsUnavailable(err) && ctx.Err() == nil {
				return pending, sent, err
			}
			if store.IsUnavailable(err) {
				down = p.waits.failed(waitRedis, down)
			}
			p.log.Warn("redis unavailable; waiting", "error", err, durationAttr("retry_in", backoff))
		} else {
			p.waits.available(waitRedis, p.log)
			acquired := make([]string, 0, len(pending))
			var held []string // by another member
			var lost []string // done by this very record: a commit Kafka lost
			var back []*item  // their items
			prepared := 0     // keys marked done before a commit that did not land
			for i, k := range pending {
				switch res[i] {
				case store.ClaimAcquired:
					acquired = append(acquired, k)
				case store.ClaimDoneHere:
					lost = append(lost, k)
					if it := byKey[k]; it != nil {
						back = append(back, it)
					}
				case store.ClaimPreparedHere:
					// Marked done before a commit that did not land (the
					// attempt died or failed before or during it): the
					// record's own redelivery, processed again.
					lost = append(lost, k)
					prepared++
				case store.ClaimDone:
					if it := byKey[k]; it != nil {
						it.outcome = Duplicate
					}
				case store.ClaimBusy:
					held = append(held, k)
				}
			}
			if len(back) > 0 && committedPast != nil {
				// A lost commit leaves the group's offsets short of its
				// records; past them, this batch is stale (see
				// errSuperseded), and nothing of it is retaken.
				past, cerr := committedPast(ctx, back)
				if cerr == nil && past {
					return acquired, sent, fmt.Errorf("%w (%s)", errSuperseded, spans(back))
				}
				if cerr != nil {
					p.log.Debug("group offsets unread; taking the records for a lost commit", "error", cerr)
				}
			}
			if len(back) > 0 {
				// See lostcommit.go.
				p.log.Error("kafka redelivered records that were processed and marked done at the same offsets: the commit that covered them did not land (a broker failing over while writing a transaction's markers), or the group's offsets were reset over them; their outputs may be missing, so they are processed again, not skipped as duplicates",
					"records", len(back), "where", spans(back))
				p.metrics.countRedelivered(ctx, back)
			}
			if prepared > 0 {
				p.log.Info("records came back whose keys were marked done before a commit that did not land (the attempt died or failed before or during it); processing them again",
					"keys", prepared)
			}
			if len(lost) > 0 {
				var taken []store.ClaimResult
				taken, err = p.d.Store.RetakeDone(ctx, lost, token)
				switch {
				case err != nil && !store.IsUnavailable(err) && ctx.Err() == nil:
					return append(acquired, lost...), sent, fmt.Errorf("take back the claims of a lost commit: %w", err)
				case err != nil:
					// Waited out as a failed claim: all tried again.
					held = append(held, lost...)
					down = p.waits.failed(waitRedis, down)
					p.log.Warn("redis unavailable; waiting", "error", err, durationAttr("retry_in", backoff))
				default:
					for i, k := range lost {
						if taken[i] == store.ClaimAcquired {
							acquired = append(acquired, k)
						} else {
							held = append(held, k)
						}
					}
				}
			}
			if len(held) == 0 {
				return acquired, sent, nil
			}
			if err := p.d.Store.ReleaseBatch(ctx, acquired, token); err != nil {
				p.log.Warn("releasing claims after a busy one", "error", err)
			}
			if err == nil {
				busy = len(held)
			}
			pending = append(acquired, held...)
		}
		// Why the batch gives up, as it is: the processor stopping (the
		// run context ended: a signal, or another worker failed for good)
		// or the batch deadline passing, while Redis is down or keys are
		// held by another member.
		var why error
		switch {
		case busy > 0:
			why = fmt.Errorf("%d claims or entity locks held by another member (%d keys not claimed)", busy, len(pending))
		case store.IsUnavailable(err):
			why = fmt.Errorf("redis unavailable (%d keys not claimed): %w", len(pending), err)
		default:
			why = fmt.Errorf("redis (%d keys not claimed): %w", len(pending), err)
		}
		if stop.Err() != nil {
			return pending, sent, fmt.Errorf("%w while waiting for %w", errStopping, why)
		}
		if time.Now().After(deadline) {
			return pending, sent, fmt.Errorf("batch deadline (%v) passed while waiting for %w", p.cfg.BatchDeadline, why)
		}
		t := time.NewTimer(backoff/2 + time.Duration(rand.Int64N(int64(backoff))))
		select {
		case <-t.C:
		case <-rebalance:
			t.Stop()
			return pending, sent, fmt.Errorf("%w while waiting for %w", errRebalance, why)
		case <-ctx.Done():
			t.Stop()
			return pending, sent, ctx.Err()
		}
		backoff = min(backoff*2, p.cfg.BackoffMax)
	}
	return nil, sent, nil
}

// apply runs the newest-wins compare-and-set for the items pick chooses
// among those with an output and no failure: Applied makes them
// Processed, Stale stale. An item without a business time is Processed
// without one.
func (p *Processor) apply(ctx, stop context.Context, items []*item, deadline time.Time, pick func(*item) bool) error {
	ups := make([]store.Update, 0, len(items))
	which := make([]*item, 0, len(items))
	for _, it := range items {
		if it.out == nil || it.failure != nil || !pick(it) {
			continue
		}
		if it.out.OccurredAt.IsZero() {
			it.outcome = Processed
			continue
		}
		ups = append(ups, store.Update{EntityKey: it.out.EntityKey, EventTime: it.out.OccurredAt, ReceivedAt: it.env.ReceivedAt, EventID: it.env.EventID})
		which = append(which, it)
	}
	if len(ups) == 0 {
		return nil
	}
	var res []store.ApplyResult
	err := p.waitOut(ctx, stop, deadline, waitRedis, func() (bool, error) {
		var err error
		res, err = p.d.Store.ApplyBatch(ctx, ups)
		return store.IsUnavailable(err), err
	})
	if err != nil {
		return err
	}
	for i, r := range res {
		if r == store.Stale {
			which[i].outcome = Stale
		} else {
			which[i].outcome = Processed
		}
	}
	return nil
}

// delivers reports whether the item's handler calls a sink.
func delivers(it *item) bool {
	_, ok := it.handler.(router.Deliverer)
	return ok
}

// undecided: an item with an output still to be decided (no outcome, no
// failure).
func undecided(it *item) bool { return it.outcome == "" && it.failure == nil }

// sinkEntities are the entities of the batch with at least one event to
// deliver to a sink: all their events, delivered or not, are decided by
// deliverInOrder, the others by one apply.
func sinkEntities(items []*item) map[string]bool {
	var m map[string]bool
	for _, it := range items {
		if it.out != nil && undecided(it) && delivers(it) {
			if m == nil {
				m = map[string]bool{}
			}
			m[it.out.EntityKey] = true
		}
	}
	return m
}

// deliverInOrder decides newest-wins for the events of entities with a
// sink, delivering as it goes, one entity's events in batch order: an
// event is compared with the entity's newest time so far — stored, or of
// an earlier event of the batch that was applied (delivered, for one with
// a sink). So a failed delivery, whose event goes to a retry tier or the
// DLQ unwritten, neither moves the entity's time nor makes a later, older
// event stale. (Applying first would: older updates arriving meanwhile
// would be dropped against an event that was never written, and lost for
// good if it is discarded.) The batch holds the entities' locks, so the
// stored times read here stay true until applyDecided writes the applied
// events' times, in batch order, and the outputs follow the same order.
// Entities proceed concurrently; deliveries share maxDeliveries and end
// at deliveryDeadline (see deliverOne).
func (p *Processor) deliverInOrder(ctx, stop context.Context, items []*item, sinky map[string]bool, deadline time.Time) error {
	if len(sinky) == 0 {
		return nil
	}
	byEntity := make(map[string][]*item, len(sinky))
	keys := make([]string, 0, len(sinky))
	for _, it := range items {
		if it.out == nil || !undecided(it) || !sinky[it.out.EntityKey] {
			continue
		}
		k := it.out.EntityKey
		if _, ok := byEntity[k]; !ok {
			keys = append(keys, k)
		}
		byEntity[k] = append(byEntity[k], it)
	}
	var stored []store.Stamp
	err := p.waitOut(ctx, stop, deadline, waitRedis, func() (bool, error) {
		var err error
		stored, err = p.d.Store.EntityTimes(ctx, keys)
		return store.IsUnavailable(err), err
	})
	if err != nil {
		return err
	}
	dctx, cancel := context.WithDeadline(ctx, p.deliveryDeadline(ctx))
	defer cancel()
	sem := make(chan struct{}, maxDeliveries)
	var wg sync.WaitGroup
	for i, k := range keys {
		cur := stored[i]
		wg.Go(func() {
			for _, it := range byEntity[k] {
				ts := store.Stamp{EventTime: it.out.OccurredAt, ReceivedAt: it.env.ReceivedAt}
				if !ts.EventTime.IsZero() && !cur.EventTime.IsZero() && ts.Before(cur) {
					it.outcome = Stale
					continue
				}
				if d, ok := it.handler.(router.Deliverer); ok {
					if err := p.deliverOne(dctx, sem, d, it); err != nil {
						it.failure, it.stage = err, "deliver"
						continue
					}
				}
				it.outcome = Processed
				if !ts.EventTime.IsZero() {
					cur, it.decided = ts, true
				}
			}
		})
	}
	wg.Wait()
	return p.applyDecided(ctx, stop, items, deadline)
}

// deliveryDeadline bounds a batch's deliveries: a batch deadline of their
// own from when they start — time the batch spent waiting for Redis, the
// registry or a busy lock is not taken from the sinks, or healthy
// deliveries would be cut short and charged a retry attempt — but always
// half a drain timeout before the batch's own bound (ctx's deadline), left
// for the transaction.
func (p *Processor) deliveryDeadline(ctx context.Context) time.Time {
	dl := time.Now().Add(p.cfg.BatchDeadline)
	if bd, ok := ctx.Deadline(); ok && bd.Add(-p.cfg.DrainTimeout/2).Before(dl) {
		dl = bd.Add(-p.cfg.DrainTimeout / 2)
	}
	return dl
}

// applyDecided writes the newest-wins times deliverInOrder decided. The
// entity locks make Applied certain; a Stale here means a lock was lost
// (the batch outlived the claim lease) and the event was decided, and
// perhaps delivered, against a time another worker has since moved:
// logged.
func (p *Processor) applyDecided(ctx, stop context.Context, items []*item, deadline time.Time) error {
	err := p.apply(ctx, stop, items, deadline, func(it *item) bool { return it.decided && it.outcome == Processed })
	if err != nil {
		return err
	}
	for _, it := range items {
		if it.decided && it.outcome == Stale {
			p.log.Warn("an event decided newer became stale before it was applied (entity lock lost: claim lease too short?)",
				"stage", "process", "outcome", string(Stale), "correlation_id", it.env.CorrelationID, "source", it.env.Source,
				"event_type", it.env.EventType, "event_id", it.env.EventID, "entity_key", retry.Truncate(it.out.EntityKey, maxHistoryKey))
		}
	}
	return nil
}

// answered reports whether a call that returned err heard from the server:
// not when our context ended first, nor for an argument refused before
// anything was sent.
func answered(err error) bool {
	return err == nil || !(errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, store.ErrInvalidArgument))
}

// waitOut calls try until it reports no outage, waiting with backoff (50
// ms, doubling up to BackoffMax) between calls while try reports what as
// unavailable. Past the batch deadline, or once stop ends, it gives up
// with the outage's error; any other error ends it at once.
func (p *Processor) waitOut(ctx, stop context.Context, deadline time.Time, what string, try func() (outage bool, err error)) error {
	backoff := 50 * time.Millisecond
	var down *outage
	defer func() { p.waits.done(down) }()
	for {
		out, err := try()
		if !out {
			// Any answer from Redis is a round trip; a registry's may come
			// from the client's cache, so only one after a failure here
			// counts (see also noteDecoded and schemaID). An error that
			// never reached the server (our own context ended, an argument
			// refused before sending) is no answer at all.
			if (down != nil || what == waitRedis) && answered(err) {
				p.waits.available(what, p.log)
			}
			return err
		}
		down = p.waits.failed(what, down)
		if registry.IsDenied(err) {
			// Not an outage that passes: somebody has to fix the
			// credentials, and nothing is processed until then.
			p.log.Error(what+" refused our credentials; waiting (check INLET_SCHEMA_REGISTRY_USER/_PASSWORD/_TOKEN and the user's permissions)", "error", err, durationAttr("retry_in", backoff))
		} else {
			p.log.Warn(what+" unavailable; waiting", "error", err, durationAttr("retry_in", backoff))
		}
		if stop.Err() != nil {
			return fmt.Errorf("%w while waiting for %s: %w", errStopping, what, err)
		}
		if time.Now().After(deadline) || !sleep(ctx, backoff) {
			return fmt.Errorf("%s unavailable past the batch deadline (%v): %w", what, p.cfg.BatchDeadline, err)
		}
		backoff = min(backoff*2, p.cfg.BackoffMax)
	}
}

// confirm turns the committed items' keys, marked done with the batch's
// token before the commit (markDone), into plain done marks for the
// source's dedup window, and releases the entity locks. While Redis is
// unavailable it retries until leaseEnd, not only while the batch's
// context lasts (a long batch may have spent it): the locks it fails to
// release hold their entities' next events until -lock-lease ends. The
// keys stay done either way. Once stop ends (shutdown) the batch's context
// bounds it again, the drain budget: the process is stopped at the end of
// its grace period anyway.
func (p *Processor) confirm(bctx, stop context.Context, leaseEnd time.Time, items []*item, held []string, token string) {
	// At least a few seconds, for a batch settled late (see worker.settle):
	// its outputs are committed, so a key nobody took since is rightly
	// marked done, and one taken meanwhile is reported as lost.
	leaseEnd = later(leaseEnd, time.Now().Add(5*time.Second))
	ctx, cancel := context.WithDeadline(context.WithoutCancel(bctx), leaseEnd)
	defer cancel()
	stopAfter := context.AfterFunc(stop, func() {
		select {
		case <-bctx.Done():
			cancel()
		case <-ctx.Done():
		}
	})
	defer stopAfter()
	keys, at, windows, locks := doneKeys(items, held)
	// One round trip: confirming and releasing are both needed before the
	// next batch can claim these keys without finding them busy.
	if len(keys) == 0 && len(locks) == 0 {
		return
	}
	_, err := p.retryRedis(ctx, true, func() error {
		err := p.d.Store.Settle(ctx, token, keys, at, windows, locks)
		if store.IsLostClaim(err) {
			// The output is committed; the claim had expired. Logged,
			// not retried: a duplicate output is possible.
			p.log.Error("dedup claim lost before confirm: its lease ran out (-claim-lease too short, or the worker stalled), or Redis lost the key (restarted without persistence, evicted it, or failed over)", "error", err)
			return nil
		}
		return err
	})
	if err != nil {
		// A warning: the events are committed and their keys done since
		// markDone; what is left is locks that expire on their own.
		p.log.Warn("confirm dedup claims and release entity locks failed: the events are processed and their keys marked done; their entities' locks are held until -lock-lease ends", "error", err)
	}
}

// doneKeys splits the keys a batch holds into those its commit makes done
// — the claims of its processed and stale events, with the position of
// each one's record and its dedup window — and the rest (entity locks,
// and the claims of events that go on to a retry tier or the DLQ), which
// are released so that the retry (or a requeue) can claim them again.
func doneKeys(items []*item, held []string) (keys, at []string, windows []time.Duration, rest []string) {
	heldSet := make(map[string]bool, len(held))
	for _, k := range held {
		heldSet[k] = true
	}
	for _, it := range items {
		if it.out == nil || !heldSet[it.dedup] || (it.outcome != Processed && it.outcome != Stale) {
			continue
		}
		keys = append(keys, it.dedup)
		at = append(at, position(it))
		w := source.DefaultDedupWindow
		if it.src != nil {
			w = it.src.DedupWindow.D()
		}
		windows = append(windows, w)
	}
	done := make(map[string]bool, len(keys))
	for _, k := range keys {
		done[k] = true
	}
	for _, k := range held {
		if !done[k] {
			rest = append(rest, k)
		}
	}
	return keys, at, windows, rest
}

// markDone marks the keys the batch's commit makes done (see doneKeys)
// before the commit, with the position of each one's record
// ([store.Store.Prepare]): an attempt that dies between its commit and its
// confirm (a SIGKILL, the node lost) leaves its events done rather than
// claims that expire after -claim-lease and let the events' next delivery
// through, processed twice. A commit that does not land brings the records
// back at the same positions, which find their keys prepared by them and
// are processed again. It waits while Redis is unavailable, up to the
// batch deadline, as claims do; a claim found no longer this batch's
// (its lease ran out) is an error: the batch must not commit.
func (p *Processor) markDone(ctx, stop context.Context, items []*item, held []string, token string, deadline time.Time) error {
	keys, at, windows, _ := doneKeys(items, held)
	if len(keys) == 0 {
		return nil
	}
	var lost []string
	err := p.waitOut(ctx, stop, deadline, waitRedis, func() (bool, error) {
		var err error
		lost, err = p.d.Store.Prepare(ctx, token, keys, at, windows)
		return store.IsUnavailable(err), err
	})
	if err != nil {
		return fmt.Errorf("mark the batch's keys done before its commit: %w", err)
	}
	if len(lost) > 0 {
		return fmt.Errorf("%d dedup claims were lost before the commit (their lease, -claim-lease, ran out): the batch is redelivered", len(lost))
	}
	return nil
}

// release gives back every claim and lock after an abort, so the
// redelivered records can claim them at once. One never released is
// harmless: it expires at the end of its lease (Config.ClaimLease from
// when it was taken), and the redelivered records wait for it until then.
//
// The batch's context may be spent (that may be why it aborts): the
// release retries while Redis is unavailable for 10 s of its own, or the
// claims would block the redelivery for the rest of their lease. Once stop
// has ended (the processor is stopping) the batch's context (its drain
// budget) bounds it too, less half a drain timeout left for the abort that
// follows (as deliveryDeadline leaves for the transaction): the process must
// end within its grace period. A release that Redis being down defeats
// then is an expected end, not a failure: one warning per processor says
// the claims will expire, instead of an error per batch.
func (p *Processor) release(ctx, stop context.Context, held []string, token string) {
	if len(held) == 0 {
		return
	}
	d := cleanupTimeout
	if bd, ok := ctx.Deadline(); ok && stop.Err() != nil {
		// At least one try.
		d = max(min(d, time.Until(bd)-p.cfg.DrainTimeout/2), 100*time.Millisecond)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d)
	defer cancel()
	// Stopping, a release Redis defeats is one warning below, not a
	// line per try.
	down, err := p.retryRedis(rctx, stop.Err() == nil, func() error { return p.d.Store.ReleaseBatch(rctx, held, token) })
	switch {
	case err == nil:
	case down && stop.Err() != nil:
		log := p.log.Warn
		if !p.releaseWarned.CompareAndSwap(false, true) {
			log = p.log.Debug // said once already
		}
		log("could not release the claims of a batch abandoned while the processor is stopping: redis unavailable; any it holds expire within the claim lease (-claim-lease) of being taken, and its events' redelivery waits for them until then",
			"keys", len(held), durationAttr("claim_lease", p.cfg.ClaimLease), "error", err)
	default:
		p.log.Error("release claims failed", "error", err)
	}
}

// retryRedis calls f, again while Redis is unavailable, until it succeeds
// or ctx ends, and returns f's last error and whether Redis was found
// unavailable meanwhile (a call cut by ctx's end fails with ctx's error,
// not an outage). A release that never happens is harmless (the lease
// expires); a confirm that never happens lets a later duplicate through,
// hence the retries. With warn, each try that finds Redis unavailable
// logs "redis unavailable; waiting", as a claim's does.
func (p *Processor) retryRedis(ctx context.Context, warn bool, f func() error) (down bool, err error) {
	backoff := 50 * time.Millisecond
	var o *outage
	defer func() { p.waits.done(o) }()
	for {
		err := f()
		if err == nil {
			p.waits.available(waitRedis, p.log)
			return down, nil
		}
		if !store.IsUnavailable(err) {
			return down, err
		}
		down = true
		o = p.waits.failed(waitRedis, o)
		if warn {
			p.log.Warn("redis unavailable; waiting", "error", err, durationAttr("retry_in", backoff))
		}
		if !sleep(ctx, backoff) {
			return down, err
		}
		backoff = min(backoff*2, p.cfg.BackoffMax)
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// maxOutputBytes bounds a processed record's value and key: what a Kafka
// record may hold (kafka.MaxMessageBytes) less room for its headers, as for
// ingest's bodies.
const maxOutputBytes = kafka.MaxBodyBytes

// encodeAll encodes the processed values of the claimed events (those
// still without an outcome) before the newest-wins update and the
// transaction. While the registry is unavailable it waits, as for Redis;
// past the batch deadline the batch is abandoned (and redelivered). A
// processed schema the registry refuses sends the event to the DLQ. A
// value that does not fit its own schema, or that is bigger than a body
// may be, makes that event invalid: the bound is on the uncompressed size,
// like ingest's, because one that Kafka refused (an incompressible one)
// would fail the transaction on every redelivery and hold its partition
// for good. (Canonical JSON can outgrow the body it
// came from, e.g. invalid UTF-8 becomes U+FFFD: three bytes for one.)
func (p *Processor) encodeAll(ctx, stop context.Context, items []*item, deadline time.Time) error {
	// A schema the registry refused is refused for the whole batch: asked
	// once, not once per event while the claims' lease runs. (Looked up
	// only once there is a refusal: the key hashes the schema text.)
	var refused map[schemaKey]error
	for _, it := range items {
		if it.out == nil || it.outcome != "" {
			continue
		}
		var id int
		var err error
		if refused != nil {
			err = refused[schemaKey{it.out.Subject, it.out.SchemaText}]
		}
		if err == nil {
			if id, err = p.awaitSchemaID(ctx, stop, it.out, deadline); registry.IsUnavailable(err) {
				return err
			} else if err != nil {
				if refused == nil {
					refused = map[schemaKey]error{}
				}
				refused[schemaKey{it.out.Subject, it.out.SchemaText}] = err
			}
		}
		if err != nil {
			// The registry refused the processed schema (incompatible
			// with what its subject holds): no retry changes that until
			// the contract or the subject is fixed, so straight to the
			// DLQ, whose alert says why.
			it.failure, it.stage = retry.Permanent(fmt.Errorf("register processed schema: %w", err)), "encode"
			continue
		}
		if it.value, err = p.d.Registry.Encode(nil, id, it.out.Schema, it.out.Value); err != nil {
			it.outcome, it.reason = Invalid, &router.ValidationError{Reason: "processed value does not fit its schema: " + err.Error()}
			continue
		}
		if n := len(it.value) + len(it.out.EntityKey); n > maxOutputBytes {
			it.outcome, it.reason = Invalid, &router.ValidationError{Reason: fmt.Sprintf("processed record is %d bytes, over the %d a Kafka record may hold here", n, maxOutputBytes)}
			it.value = nil
		}
	}
	return nil
}

// awaitRegistry decodes again, with backoff, the records whose writer
// schema could not be fetched because the registry was unavailable: an
// outage is no verdict on an event, so it must not make it invalid. Past
// the batch deadline (or on stop) it gives up and the batch is abandoned
// and polled again, as when Redis is down.
func (p *Processor) awaitRegistry(ctx, stop context.Context, items []*item, deadline time.Time) error {
	first := true // the items were just prepared
	return p.waitOut(ctx, stop, deadline, waitRegistry, func() (bool, error) {
		var cause error
		for i, it := range items {
			if first {
				p.noteDecoded(it)
			}
			if it.wait == nil {
				continue
			}
			if !first {
				it.span.End()
				items[i] = p.prepare(ctx, it.rec)
			}
			if items[i].wait != nil {
				cause = items[i].wait
			}
		}
		first = false
		return cause != nil, cause
	})
}

// noteDecoded tells the registry's outage tracking about a record just
// prepared: one whose writer schema could not be fetched notes the schema
// id; one decoded with a schema id noted so (the registry answered for
// it, perhaps to another worker's batch) ends the outage.
func (p *Processor) noteDecoded(it *item) {
	if it.wait == nil && p.waits.nUnfetched.Load() == 0 {
		return
	}
	id, err := p.d.Registry.SchemaID(it.rec.Value)
	switch {
	case err != nil:
	case it.wait != nil:
		p.waits.notFetched(id)
	case p.waits.wasUnfetched(id):
		p.waits.available(waitRegistry, p.log)
	}
}

// awaitSchemaID is schemaID, waiting with backoff while the registry is
// unavailable, up to the batch deadline.
func (p *Processor) awaitSchemaID(ctx, stop context.Context, out *router.Output, deadline time.Time) (int, error) {
	var id int
	err := p.waitOut(ctx, stop, deadline, waitRegistry, func() (bool, error) {
		var err error
		id, err = p.schemaID(ctx, out)
		return registry.IsUnavailable(err), err
	})
	return id, err
}

// outputs are the records an item writes in the transaction.
func (p *Processor) outputs(it *item) []*kgo.Record {
	switch it.outcome {
	case Processed:
		val := it.value
		h := p.carry(it)
		if named, ok := it.out.Schema.(interface{ FullName() string }); ok {
			h = append(h, kgo.RecordHeader{Key: retry.HeaderRecordName, Value: []byte(named.FullName())})
		}
		// Each record its own headers: a producer hook (kotel) sets each
		// record's traceparent in place, and with one slice the processed
		// record carried the state record's span.
		return []*kgo.Record{
			{Topic: p.d.Topics.Processed, Key: []byte(it.out.EntityKey), Value: val, Headers: h},
			{Topic: p.d.Topics.State, Key: []byte(it.out.EntityKey), Value: val, Headers: slices.Clone(h)},
		}
	case Invalid:
		return []*kgo.Record{p.invalidRecord(it)}
	case Retried:
		return []*kgo.Record{p.retryRecord(it)}
	case DeadLetter:
		return []*kgo.Record{p.deadLetterRecord(it)}
	}
	return nil
}

// carry builds the headers every output carries: correlation id, trace
// context, attempt and origin.
func (p *Processor) carry(it *item) []kgo.RecordHeader {
	r := it.rec
	// Sized for what is appended below and by outputs, traceparent
	// included: growing the slice twice per event showed in profiles.
	h := make([]kgo.RecordHeader, 2, len(r.Headers)+5)
	// A record from a retry tier (or requeued) carries the raw record's
	// coordinates already: the origin stays the raw record.
	var origin []byte
	for _, rh := range r.Headers {
		if rh.Key == HeaderOrigin {
			origin = rh.Value
			break
		}
	}
	if origin == nil {
		origin = make([]byte, 0, len(r.Topic)+24)
		origin = append(append(origin, r.Topic...), '/')
		origin = append(strconv.AppendInt(origin, int64(r.Partition), 10), '/')
		origin = strconv.AppendInt(origin, r.Offset, 10)
	}
	h[0] = kgo.RecordHeader{Key: HeaderOrigin, Value: origin}
	h[1] = kgo.RecordHeader{Key: HeaderAttempt, Value: strconv.AppendInt(nil, int64(attempt(r)), 10)}
	for _, rh := range r.Headers {
		switch rh.Key {
		case HeaderCorrelationID, HeaderTraceparent, "tracestate", HeaderSource, HeaderEventType, HeaderErrors, retry.HeaderReplay:
			h = append(h, rh)
		}
	}
	// The outputs carry this stage's span as their parent context.
	out := &kgo.Record{Headers: h}
	p.propagator.Inject(it.ctx, kotel.NewRecordCarrier(out))
	return out.Headers
}

// durationAttr is a wait or age in a log line, as Go writes a duration
// ("30s", "50ms"): slog's JSON handler would write a time.Duration as
// nanoseconds. Every duration the processor logs goes through it.
func durationAttr(key string, d time.Duration) slog.Attr {
	return slog.String(key, d.String())
}

// logOutcome logs an event's outcome. "stage" is the pipeline's, process
// (ingest's lines say ingest), as on every line about an event; for a
// retry or a dead letter, the step of processing that failed (handle,
// encode, deliver) is "failed_stage": one key, one meaning, so JSON log
// pipelines (which keep one of two equal keys) lose neither.
func (p *Processor) logOutcome(it *item) {
	switch it.outcome {
	case Processed, Duplicate, Stale:
		// The common case logs at debug: skip building its attributes
		// when that level is off.
		if !p.log.Enabled(context.Background(), slog.LevelDebug) {
			return
		}
	}
	attrs := []any{"stage", "process", "outcome", string(it.outcome)}
	if it.env != nil {
		attrs = append(attrs, "correlation_id", it.env.CorrelationID, "source", it.env.Source, "event_type", it.env.EventType, "event_id", it.env.EventID)
	} else if corr := retry.Get(it.rec.Headers, HeaderCorrelationID); corr != "" {
		// Undecodable: the header is what its history is kept under.
		attrs = append(attrs, "correlation_id", corr)
	}
	if it.out != nil {
		attrs = append(attrs, "entity_key", retry.Truncate(it.out.EntityKey, maxHistoryKey))
	}
	switch it.outcome {
	case Invalid:
		p.log.Warn("event invalid", append(attrs, "error", failureText(it.reason))...)
		return
	case DeadLetter:
		p.log.Error("event dead-lettered", append(attrs, "reason", it.next.Reason, "failed_stage", it.stage, "error", failureText(it.failure), "attempt", it.ev.Attempt)...)
		return
	case Retried:
		p.log.Warn("event will be retried", append(attrs, "attempt", it.ev.Attempt, durationAttr("retry_in", it.next.Delay), "failed_stage", it.stage, "error", failureText(it.failure))...)
		return
	}
	p.log.Debug("event done", attrs...)
}

// RetryPolicies returns each source's retry policy over the retry topics'
// tiers, or why a source's settings cannot be served: a tier no retry
// topic has, or more attempts than its tiers allow. New checks the same;
// a caller may check before anything starts.
func RetryPolicies(sources *source.File, tiers []time.Duration) (map[string]retry.Policy, error) {
	out := map[string]retry.Policy{}
	var errs []error
	for _, name := range sources.Names() {
		src, _ := sources.Get(name)
		policy := retryPolicy(src.Retry, tiers)
		if policy.MaxAttempts > len(policy.Tiers)+1 {
			errs = append(errs, fmt.Errorf("processor: source %q: retry.max_attempts %d is more than its %d tiers allow (one first try plus one per tier: %d)", name, policy.MaxAttempts, len(policy.Tiers), len(policy.Tiers)+1))
		}
		for _, tier := range policy.Tiers {
			if !slices.Contains(tiers, tier) {
				errs = append(errs, fmt.Errorf("processor: source %q retries after %v but there is no retry topic for that delay (the processor's tiers, -retry-tiers or INLET_RETRY_TIERS: %v)", name, tier, tiers))
			}
		}
		out[name] = policy
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// schemaIDs caches registry IDs of processed schemas by subject and text.
type schemaIDs struct {
	mu sync.Mutex
	m  map[schemaKey]int
}

// schemaKey identifies a registered schema by the output's Subject (empty:
// derived from the schema's name) and schema text. A struct rather than one
// joined string: joining copied the schema text (1.6 KB) for every event;
// the derived subject is only built on a miss.
type schemaKey struct{ subject, text string }

func (p *Processor) schemaID(ctx context.Context, out *router.Output) (int, error) {
	key := schemaKey{out.Subject, out.SchemaText}
	p.ids.mu.Lock()
	id, ok := p.ids.m[key]
	p.ids.mu.Unlock()
	if !ok {
		subjects := []string{out.Subject}
		if out.Subject == "" {
			named, ok := out.Schema.(interface{ FullName() string })
			if !ok {
				return 0, errors.New("processed schema is not a named record")
			}
			// The state topic's records carry the same schema: registered
			// under its subject too (the same text, the same id), so a
			// tool looking it up by subject for inlet.state finds it.
			subjects = []string{p.d.Topics.ProcessedSubject(named.FullName()), p.d.Topics.StateSubject(named.FullName())}
		}
		for i, subject := range subjects {
			got, _, err := p.d.Registry.Register(ctx, subject, out.SchemaText)
			if err != nil {
				return 0, err
			}
			if i == 0 {
				id = got
			}
		}
		p.waits.available(waitRegistry, p.log) // it answered
		p.ids.mu.Lock()
		p.ids.m[key] = id
		p.ids.mu.Unlock()
	}
	return id, nil
}

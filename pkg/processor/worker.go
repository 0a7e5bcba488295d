package processor

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/store"
)

// worker is one transactional member of the group: its own session
// (client, transactional id, partitions) and retry-partition pauser, taking
// one batch at a time from poll to commit. A processor runs Config.Workers
// of them so that one decodes, validates and encodes while another waits on
// Redis or Kafka.
type worker struct {
	p    *Processor
	opts []kgo.Opt
	sess *kgo.GroupTransactSession
	// txnID is the session's transactional id; see awaitPreviousTxn.
	txnID string
	// noTxnDescribe is set once Kafka refused to describe txnID (no
	// ACL, or a broker without the request).
	noTxnDescribe bool
	pause         *pauser
	once          sync.Once
	// unsettled is the batch whose commit went unanswered, decided once
	// the session is renewed (see settle).
	unsettled *unsettled
	// revoked is set when a rebalance takes partitions from this member;
	// see run.
	revoked atomic.Bool
	// syncedGen is the group generation of the member's latest sync and
	// revokedGen that of its latest revoke; synced receives after each
	// sync. See awaitSync.
	syncedGen, revokedGen atomic.Int32
	synced                chan struct{}
	// blocked receives when the group waits on this worker's
	// AllowRebalance to run a partition callback (franz-go's
	// OnPartitionsCallbackBlocked); see allowWhenBlocked.
	blocked chan struct{}
	// batchStart is when the batch in hand was taken, and quickAbandons
	// how many batches in a row were abandoned sooner than -backoff-max
	// after it (see abandon).
	batchStart    time.Time
	quickAbandons int
	// fetchErrs limits the fetch errors logged; errBackoff paces polls
	// that return only errors.
	fetchErrs  fetchErrLog
	errBackoff pollBackoff
	// lookedAgain is when madeAgain last asked Kafka.
	lookedAgain time.Time
	// ended are the transactions ended since the last check for markers
	// Kafka skipped, and disc notes dropped connections (see
	// checkMarkers).
	ended []endedTxn
	disc  *disconnects
	// inHand is what the transaction in hand wrote, kept until its end is
	// known; orphans are records Kafka left open that its end decides.
	inHand  *txnWrites
	orphans []orphan
	// markerCheckFailing is set while checks for skipped markers fail
	// (logged once); describeForbiddenLogged once partitions Kafka would
	// not describe were logged.
	markerCheckFailing      bool
	describeForbiddenLogged bool
}

// commitBlockedGrace is how long a worker ending its transaction keeps
// the group waiting (BlockRebalanceOnPoll) before it lets the group
// through: a commit takes milliseconds, and a group that waits longer has
// usually lost its session. See allowWhenBlocked.
const commitBlockedGrace = 5 * time.Second

func newWorker(p *Processor, txnID string, opts []kgo.Opt) (*worker, error) {
	w := &worker{p: p, txnID: txnID, synced: make(chan struct{}, 1), blocked: make(chan struct{}, 1), disc: &disconnects{}}
	// franz-go calls this at the end of every sync, even with nothing new.
	assigned := func(_ context.Context, cl *kgo.Client, added map[string][]int32) {
		// A retry partition paused before a rebalance must not stay
		// paused: resume on assignment; hold re-pauses it if its head is
		// still not due.
		newPauser(cl).resumeAll(added, p.isRetry)
		_, gen := cl.GroupMetadata()
		w.syncedGen.Store(gen)
		select {
		case w.synced <- struct{}{}:
		default:
		}
	}
	mark := func(_ context.Context, cl *kgo.Client, gone map[string][]int32) {
		if len(gone) > 0 {
			_, gen := cl.GroupMetadata()
			w.revokedGen.Store(gen)
			w.revoked.Store(true)
		}
	}
	blocked := func(context.Context, *kgo.Client) {
		select {
		case w.blocked <- struct{}{}:
		default:
		}
	}
	w.opts = append(opts[:len(opts):len(opts)],
		kgo.OnPartitionsAssigned(assigned), kgo.OnPartitionsRevoked(mark), kgo.OnPartitionsLost(mark),
		kgo.OnPartitionsCallbackBlocked(blocked), kgo.WithHooks(w.disc))
	sess, err := kgo.NewGroupTransactSession(w.opts...)
	if err != nil {
		return nil, err
	}
	w.sess, w.pause = sess, newPauser(sess.Client())
	return w, nil
}

// close stops the pauser and closes the session (leaving the group); only
// the first call does anything.
func (w *worker) close() {
	w.once.Do(func() {
		w.pause.stop()
		// Close would wait for a rebalance that BlockRebalanceOnPoll holds back.
		w.sess.CloseAllowingRebalance()
	})
}

// run processes batches until ctx ends, then finishes the batch in hand
// (bounded by the drain timeout) and commits it.
func (w *worker) run(ctx context.Context) error {
	p := w.p
	if err := w.fence(ctx); err != nil && ctx.Err() == nil {
		// Not fatal: the first transaction fences too, only later.
		p.log.Warn("could not fence earlier transactions of this instance id at start; going on", "error", err)
	}
	for {
		if ctx.Err() != nil {
			return nil
		}
		// The group waits on a worker only while it holds a poll: a
		// signal from before this one is stale.
		select {
		case <-w.blocked:
		default:
		}
		if w.markersDue() {
			w.checkMarkersLogged(ctx, nil)
		}
		fetches, timedOut := w.poll(ctx)
		if fetches.IsClientClosed() {
			return nil
		}
		if timedOut {
			w.sess.AllowRebalance()
			continue
		}
		fetches.EachError(w.fetchError)
		if topic, ok := recreatedTopic(fetches); ok && w.madeAgain(ctx, topic) {
			// A new session drops the records polled, to be polled again
			// from the committed offsets.
			w.sess.AllowRebalance()
			w.p.log.Info("topic "+topic+" was deleted and made again; opening a new session to consume the new one", "topic", topic)
			if err := w.openSession(ctx); err != nil {
				if ctx.Err() != nil {
					return err
				}
				if rerr := w.renewSession(ctx, fmt.Errorf("topic %s made again: %w", topic, err)); rerr != nil {
					return rerr
				}
			}
			continue
		}
		recs := w.pause.hold(fetches.Records(), p.retryDelay, time.Now())
		if len(recs) == 0 {
			w.sess.AllowRebalance()
			if fetches.Err() != nil && !sleep(ctx, w.errBackoff.next()) {
				return nil
			}
			continue
		}
		w.errBackoff.reset()
		if w.revoked.Swap(false) {
			// Partitions were taken from this member since its last
			// transaction ended, and franz-go's session then aborts the
			// next commit whatever it holds (the revoked mark lasts until
			// an End). Ending an empty transaction now clears the mark and
			// rewinds to the committed offsets, so the batch is polled
			// again instead of processed only to be aborted. A
			// cooperative revoke is followed by a rejoin, and a commit
			// that overlaps it is aborted too: so the batch is polled
			// again only once the group has synced.
			if err := w.clearRevoked(ctx); err != nil {
				w.sess.AllowRebalance()
				if ctx.Err() != nil {
					return err
				}
				if rerr := w.renewSession(ctx, err); rerr != nil {
					return rerr
				}
				continue
			}
			w.sess.AllowRebalance()
			w.awaitSync(ctx)
			continue
		}
		// The batch in hand is finished even when ctx ends meanwhile:
		// work is bounded by the drain timeout, not cut mid-way.
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.DrainTimeout+p.cfg.BatchDeadline)
		err := w.processBatch(bctx, ctx, recs)
		cancel()
		if errors.Is(err, errCrashed) {
			return err
		}
		w.sess.AllowRebalance()
		if err != nil {
			if ctx.Err() != nil {
				w.dropUnsettled("stopping")
				return err
			}
			if rerr := w.renewSession(ctx, err); rerr != nil {
				w.dropUnsettled("no new session")
				return rerr
			}
			w.settle(ctx, ctx)
		}
	}
}

// awaitSync waits until the member has synced in a generation after that
// of its latest revoke, bounded by the batch deadline (another member
// finishing its batch holds the rejoin back about that long at most) and
// by ctx.
func (w *worker) awaitSync(ctx context.Context) {
	t := time.NewTimer(w.p.cfg.BatchDeadline)
	defer t.Stop()
	for w.syncedGen.Load() <= w.revokedGen.Load() {
		select {
		case <-w.synced:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// clearRevoked ends an empty transaction with TryAbort.
func (w *worker) clearRevoked(ctx context.Context) error {
	if err := w.sess.Begin(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if _, err := w.end(ctx, kgo.TryAbort); err != nil {
		return fmt.Errorf("abort empty transaction: %w", err)
	}
	w.revoked.Store(false)
	return nil
}

// renewSession replaces a transactional session that failed (End or Begin
// returned an error: franz-go says not to continue with it). It waits
// until the cluster answers, so the old member's LeaveGroup reaches the
// coordinator and the new member joins at once, then opens a new session
// with the same transactional id, whose InitProducerID fences and aborts
// whatever the old one left open. A broker answering is not the
// transaction coordinator answering (its broker down while the others are
// up, or its partition loading or leaderless): the fence is tried again
// until it succeeds, waited out as Kafka. Before, its failure, once
// franz-go's retry timeout (30 s) had passed, stopped the processor.
func (w *worker) renewSession(ctx context.Context, cause error) error {
	w.p.log.Error("transactional session failed; opening a new one", "error", cause)
	backoff := 100 * time.Millisecond
	var down *outage
	defer func() { w.p.waits.done(down) }()
	wait := func(msg string, err error) bool {
		if ctx.Err() == nil {
			down = w.p.waits.failed(waitKafka, down)
			w.p.log.Warn(msg, "error", err, durationAttr("retry_in", backoff))
		}
		if !sleep(ctx, backoff) {
			return false
		}
		backoff = min(backoff*2, 2*time.Second)
		return true
	}
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := w.sess.Client().Ping(pctx)
		cancel()
		if err == nil {
			break
		}
		if !wait("kafka unavailable; waiting", err) {
			return cause
		}
	}
	// Before the fence: it aborts the transaction the old session left
	// open, and that abort would decide records Kafka left open on the
	// same partitions too. Partitions whose leaders are still coming back
	// answer nothing for a moment: asked again, within a bound.
	for start := time.Now(); w.checkMarkersLogged(ctx, w.inHand) != nil && time.Since(start) < fenceCheckWait; {
		if !sleep(ctx, 250*time.Millisecond) {
			return cause
		}
	}
	if err := w.newSession(); err != nil {
		return fmt.Errorf("%w; new session: %w", cause, err)
	}
	for {
		// Each try bounded, so that Waiting lists the outage from its
		// first seconds, not after franz-go's retry timeout.
		fctx, cancel := context.WithTimeout(ctx, fenceTry)
		err := w.fence(fctx)
		cancel()
		if err == nil {
			w.p.waits.available(waitKafka, w.p.log)
			return nil
		}
		if !wait("kafka transaction coordinator unavailable (the new session cannot fence its transactional id); waiting", err) {
			return cause
		}
	}
}

// fenceTry bounds one try of a renewed session's fence, and
// fenceCheckWait the check for skipped markers before it.
const (
	fenceTry       = 5 * time.Second
	fenceCheckWait = 10 * time.Second
)

// openSession replaces the worker's session with a new one and fences.
func (w *worker) openSession(ctx context.Context) error {
	if err := w.newSession(); err != nil {
		return err
	}
	return w.fence(ctx)
}

// newSession replaces the worker's session with a new one (a new client:
// it knows nothing of the old one's metadata).
func (w *worker) newSession() error {
	w.pause.stop()
	w.sess.CloseAllowingRebalance()
	sess, err := kgo.NewGroupTransactSession(w.opts...)
	if err != nil {
		return err
	}
	w.sess = sess
	w.revoked.Store(false)
	w.pause = newPauser(sess.Client())
	return nil
}

// committedPast tells whether the group's committed offset of any of
// items' partitions is past the item's record there (see errSuperseded).
// Committed offsets only: a transaction pending elsewhere in the group
// neither counts nor holds the answer.
func (w *worker) committedPast(ctx context.Context, items []*item) (bool, error) {
	offs, err := kadm.NewClient(w.sess.Client()).FetchOffsets(ctx, w.p.cfg.Group)
	if err != nil {
		return false, err
	}
	for _, it := range items {
		o, ok := offs.Lookup(it.rec.Topic, it.rec.Partition)
		if ok && o.Err == nil && o.At > it.rec.Offset {
			return true, nil
		}
	}
	return false, nil
}

// fence sends InitProducerID with the worker's transactional id now, not
// at its first transaction's Begin, which comes after a poll: it aborts a
// transaction a previous session (or a crashed process with this instance
// id) left open, whose pending offsets would otherwise hold the group's
// offset fetch (UNSTABLE_OFFSET_COMMIT), and with it that first poll,
// until the transaction timeout.
func (w *worker) fence(ctx context.Context) error {
	_, _, err := w.sess.Client().ProducerID(ctx)
	return err
}

// processBatch takes one polled batch to a committed (or aborted)
// transaction. stop is the run context: when it ends, waits for Redis give
// up early and the batch is aborted for another member to redo.
func (w *worker) processBatch(ctx, stop context.Context, recs []*kgo.Record) error {
	p := w.p
	w.inHand = nil
	recs = p.dropTombstones(recs)
	items := make([]*item, len(recs))
	w.batchStart = time.Now()
	deadline := w.batchStart.Add(p.cfg.BatchDeadline)
	// Decoding, validation and keying are pure and CPU-bound: spread them
	// over the cores.
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range min(runtime.GOMAXPROCS(0), len(recs)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(recs); i = int(next.Add(1) - 1) {
				items[i] = p.prepare(ctx, recs[i])
			}
		})
	}
	wg.Wait()
	if len(items) > 0 && items[0].span.IsRecording() {
		// The Redis round trips (claims, newest-wins, done marks,
		// history) are the batch's, not one event's: they hang under a
		// span of the batch, linked to its events' spans, instead of each
		// starting a trace of its own that leads nowhere.
		links := make([]trace.Link, 0, len(items))
		for _, it := range items {
			links = append(links, trace.Link{SpanContext: it.span.SpanContext()})
		}
		var span trace.Span
		ctx, span = p.tracer.Start(ctx, "process batch", trace.WithLinks(links...),
			trace.WithAttributes(attribute.Int("messaging.batch.message_count", len(items))))
		defer span.End()
	}
	token := store.NewToken()
	if err := p.awaitRegistry(ctx, stop, items, deadline); err != nil {
		return w.abandon(ctx, stop, items, nil, token, err)
	}
	if p.heldBeforeClaim != nil {
		p.heldBeforeClaim()
	}
	claimed, claimSent, err := p.claim(ctx, stop, items, token, deadline, w.blocked, w.committedPast)
	if err != nil {
		return w.abandon(ctx, stop, items, claimed, token, err)
	}
	// Every claim was taken before now (claim may have gone round for a
	// while): none outlives this, the bound of confirming them.
	leaseEnd := time.Now().Add(p.cfg.ClaimLease)
	locks := p.keepLocks(heldLocks(items, claimed), token, claimSent)
	defer locks.close()
	// Encoded before the newest-wins update: an event whose processed
	// record cannot be written becomes invalid without having moved its
	// entity's stored time.
	if err := p.encodeAll(ctx, stop, items, deadline); err != nil {
		return w.abandon(ctx, stop, items, claimed, token, err)
	}
	// Entities with an event for a sink are decided while delivering (see
	// deliverInOrder); the others in one newest-wins round trip.
	sinky := sinkEntities(items)
	if err := p.apply(ctx, stop, items, deadline, func(it *item) bool { return undecided(it) && !sinky[it.out.EntityKey] }); err != nil {
		return w.abandon(ctx, stop, items, claimed, token, err)
	}
	if err := p.deliverInOrder(ctx, stop, items, sinky, deadline); err != nil {
		return w.abandon(ctx, stop, items, claimed, token, err)
	}
	p.route(items)
	if err := locks.err(); err != nil {
		return w.abandon(ctx, stop, items, claimed, token, err)
	}
	if err := p.markDone(ctx, stop, items, claimed, token, deadline); err != nil {
		return w.abandon(ctx, stop, items, claimed, token, err)
	}
	stopAllowing := w.allowWhenBlocked(commitBlockedGrace)
	defer stopAllowing()
	if err := w.sess.Begin(); err != nil {
		endSpans(items, "batch abandoned")
		p.release(ctx, stop, claimed, token) // or they block the redelivery for their lease
		return fmt.Errorf("begin transaction: %w", err)
	}
	var produceErr error // the first
	var failed, produced int
	var mu sync.Mutex
	writes := &txnWrites{}
	w.inHand = writes
	for _, it := range items {
		for _, r := range p.outputs(it) {
			produced++
			w.sess.Produce(ctx, r, func(r *kgo.Record, err error) {
				if err != nil {
					mu.Lock()
					if failed++; produceErr == nil {
						produceErr = fmt.Errorf("%s: %w", r.Topic, err)
					}
					mu.Unlock()
					return
				}
				writes.produced(r)
			})
		}
	}
	if p.crashBeforeCommit != nil && (p.crashed.Load() || p.crashBeforeCommit()) {
		p.crashed.Store(true)
		endSpans(items, "crashed")
		return errCrashed // tests: the process dies with the transaction open
	}
	// End flushes first, so every produce has answered by the time it
	// decides, but it commits whatever the produces said: a record Kafka
	// refused would be missing from a committed transaction (its event
	// counted, its offset committed, its output nowhere). Any failed
	// produce aborts, and the batch is redelivered.
	end := kgo.TryCommit
	if err := w.sess.Client().Flush(ctx); err != nil {
		end = kgo.TryAbort
	}
	mu.Lock()
	if produceErr != nil {
		end = kgo.TryAbort
		p.log.Error("records of the batch could not be written; aborting the transaction, the batch will be redelivered", "records", len(recs), "failed", failed, "first_error", produceErr)
	}
	mu.Unlock()
	if err := locks.err(); err != nil && end == kgo.TryCommit {
		end = kgo.TryAbort
		p.log.Error("aborting the transaction: the batch no longer holds its entity locks; it will be redelivered", "records", len(recs), "error", err)
	}
	if produced == 0 && end == kgo.TryCommit {
		w.awaitPreviousTxn(ctx)
	}
	if w.markersDue() {
		// Before this end: its marker would decide whatever Kafka left
		// open on the partitions this transaction shares.
		w.checkMarkersLogged(ctx, writes)
	}
	// The commit stores the batch's token with each offset: if its answer
	// is lost, the group's offsets say whether this commit is the one that
	// landed (see settle).
	sent := map[string]map[int32]int64{} // the offsets the commit stores
	committed, err := w.end(kgo.PreTxnCommitFnContext(ctx, writes.stamping(stampOffsets(token, sent))), end)
	stopAllowing()
	w.revoked.Store(false) // End cleared the session's own mark
	if err == nil && (committed || end == kgo.TryAbort || len(sent) == 0) {
		w.noteEnded(writes, committed)
		w.inHand = nil
		w.settleOrphans(ctx, committed)
	}
	if end == kgo.TryCommit && (err != nil || !committed) && len(sent) > 0 {
		// The commit was sent. Its answer may be lost (err), or franz-go
		// may have turned an unknown answer into an abort (!committed,
		// e.g. UNKNOWN_SERVER_ERROR): either way it may have landed.
		// Treated as aborted, a committed batch was never counted nor
		// confirmed, and its released claims let duplicates through.
		w.unsettled = &unsettled{items: items, claimed: claimed, token: token, leaseEnd: leaseEnd, next: sent}
		if err == nil {
			// The session is usable and the transaction over: decide now,
			// the rebalance allowed as after a commit (a confirm waiting
			// for Redis must not hold the group).
			w.sess.AllowRebalance()
			w.settle(ctx, stop)
			return nil
		}
		// The session is renewed (whose fence finishes or aborts the
		// transaction), then the group's offsets tell which it was.
		return fmt.Errorf("end transaction (outcome unknown; settled once the session is renewed): %w", err)
	}
	if err != nil || !committed {
		endSpans(items, "aborted")
		p.release(ctx, stop, claimed, token)
		if err != nil {
			return fmt.Errorf("end transaction: %w", err)
		}
		p.log.Info("transaction aborted (rebalance or produce failure); records will be redelivered", "records", len(recs))
		return nil
	}
	// Committed: the partitions may move to another member now. Held
	// through the confirm, which waits while Redis is away, a rebalance
	// would wait past the group's rebalance timeout.
	w.sess.AllowRebalance()
	w.quickAbandons = 0
	w.finish(ctx, stop, items, claimed, token, leaseEnd)
	return nil
}

// fetchError logs a fetch's error. A batch that decompresses past
// maxDecompressedBatch stops its partition for good (franz-go fetches it
// no more; a restart stops at it again): no Inlet producer writes one, so
// someone else wrote to the topic, and skipping it without a word would
// lose whatever events it holds. It is an error that says where the batch
// is and how to move the group past it; the partition's lag grows
// meanwhile (InletProcessorLag).
func (w *worker) fetchError(topic string, part int32, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	var big *kgo.ErrDecompressTooLarge
	if errors.As(err, &big) {
		w.p.log.Error("a record batch decompresses to more than any Inlet producer writes; this partition is stopped at it until the group is moved past it (docs/runbooks/processor-lag.md)",
			"topic", big.Topic, "partition", big.Partition, "offset", big.Offset, "skip_to", big.NextOffset,
			"limit_bytes", maxDecompressedBatch)
		return
	}
	if n, ok := w.fetchErrs.allow(topic, part, err, time.Now()); ok {
		w.p.log.Warn("fetch error", "topic", topic, "partition", part, "error", err, "repeats", n)
	}
}

// recreatedTopic is a topic fetches found deleted since the session
// learnt its id (UNKNOWN_TOPIC_ID): deleted, or deleted and made again.
// franz-go does not take a new id for a topic it consumes (its cursors
// keep the one they began with), so a session that met it fetched it
// for good without a wait, and never the topic made again.
func recreatedTopic(fetches kgo.Fetches) (string, bool) {
	var topic string
	fetches.EachError(func(t string, _ int32, err error) {
		if topic == "" && errors.Is(err, kerr.UnknownTopicID) {
			topic = t
		}
	})
	return topic, topic != ""
}

// madeAgain tells whether topic, which the session found deleted, exists
// again: then a new session, whose client learns the new id, consumes it
// from the group's committed offsets (Kafka drops those of a deleted
// topic: from the start, ConsumeResetOffset). Asked once a second at most;
// until then the worker goes on with its other partitions, and the
// processor's Waiting lists the topic as missing (see checkTopics).
func (w *worker) madeAgain(ctx context.Context, topic string) bool {
	if time.Since(w.lookedAgain) < time.Second {
		return false
	}
	w.lookedAgain = time.Now()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	tds, err := kadm.NewClient(w.sess.Client()).ListTopics(ctx, topic)
	td, ok := tds[topic]
	return err == nil && ok && td.Err == nil
}

// fetchErrLog limits fetch errors to a line per partition and error per
// fetchErrEvery, counting the ones left out: a partition whose fetch
// fails at once (a topic deleted under the group) failed every poll,
// tens of thousands of lines a second.
type fetchErrLog struct {
	seen map[fetchErrKey]*fetchErrSeen
}

type fetchErrKey struct {
	topic string
	part  int32
	err   string
}

type fetchErrSeen struct {
	at      time.Time
	skipped int
}

const fetchErrEvery = time.Minute

// allow tells whether to log err now, and how many like it were left out
// since the last line.
func (l *fetchErrLog) allow(topic string, part int32, err error, now time.Time) (int, bool) {
	if l.seen == nil {
		l.seen = map[fetchErrKey]*fetchErrSeen{}
	}
	k := fetchErrKey{topic, part, err.Error()}
	s := l.seen[k]
	if s != nil && now.Sub(s.at) < fetchErrEvery {
		s.skipped++
		return 0, false
	}
	if len(l.seen) >= 1000 {
		clear(l.seen) // bounded: error texts may hold anything
	}
	n := 0
	if s != nil {
		n = s.skipped
	}
	l.seen[k] = &fetchErrSeen{at: now}
	return n, true
}

// pollBackoff is a wait doubling from 100 ms to 2 s, for polls that return
// errors and no records (franz-go returns a failing partition's error at
// once, poll after poll).
type pollBackoff struct{ d time.Duration }

func (b *pollBackoff) next() time.Duration {
	b.d = min(max(b.d*2, 100*time.Millisecond), 2*time.Second)
	return b.d
}

func (b *pollBackoff) reset() { b.d = 0 }

// allowWhenBlocked lets the group through (AllowRebalance) if it waits on
// this worker for grace, counted from now at the earliest, before stop is
// called; stop ends the watch and waits for it (later calls do nothing).
// It covers writing a batch, Begin to End.
//
// A heartbeat that fails for good (the coordinator's broker killed: its
// dials refused) ends franz-go's heartbeat loop, and the OnPartitionsLost
// that follows waits for AllowRebalance. End, once its offsets are sent,
// waits for a heartbeat it forces through that loop, or for a revoke or
// loss, or for its context (kgo txn.go, End): with the loop ended and the
// loss held back, until the batch's context ended, up to -drain-timeout
// plus -batch-deadline from the batch's start (a drill's processors
// stalled 12 s after the broker was back). Let through, the loss aborts
// the transaction (or End aborts it before committing offsets), as
// GroupTransactSession does whenever a rebalance overtakes a
// transaction, and the batch is redelivered (or settled, if its offsets
// were sent). An ordinary rebalance keeps waiting for the commit, which
// ends within milliseconds (End's forced heartbeat is answered); one let
// through by a commit slower than grace aborts it, as above.
func (w *worker) allowWhenBlocked(grace time.Duration) (stop func()) {
	sess, log := w.sess, w.p.log
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		select {
		case <-w.blocked:
		case <-done:
			return
		}
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			log.Warn("the consumer group waited on this worker's commit; letting it rebalance (a lost group session aborts the transaction, and the batch is redelivered)",
				durationAttr("waited_at_least", grace))
			sess.AllowRebalance()
		case <-done:
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			<-finished
		})
	}
}

// offsetMark is the commit metadata of a batch's offsets: its token.
func offsetMark(token string) string { return "inlet-batch:" + token }

// stampOffsets sets the metadata of every offset a transaction commits to
// the batch's mark, and records the offsets in sent: on a retry partition
// the pauser may have rewound to a record not due, so they are not always
// the batch's last offsets plus one. Called within End.
func stampOffsets(token string, sent map[string]map[int32]int64) func(*kmsg.TxnOffsetCommitRequest) error {
	mark := offsetMark(token)
	return func(req *kmsg.TxnOffsetCommitRequest) error {
		for i := range req.Topics {
			t := &req.Topics[i]
			if sent[t.Topic] == nil {
				sent[t.Topic] = map[int32]int64{}
			}
			for j := range t.Partitions {
				t.Partitions[j].Metadata = &mark
				sent[t.Topic][t.Partitions[j].Partition] = t.Partitions[j].Offset
			}
		}
		return nil
	}
}

// finish settles a committed batch: claims confirmed, then each item's
// metrics, log line, alert, span and history, and its count.
func (w *worker) finish(ctx, stop context.Context, items []*item, claimed []string, token string, leaseEnd time.Time) {
	p := w.p
	p.confirm(ctx, stop, leaseEnd, items, claimed, token)
	now := time.Now()
	for _, it := range items {
		p.metrics.observe(it.ctx, it, p.d.Topics, now)
		p.logOutcome(it)
		p.alert(it)
		if it.span.IsRecording() {
			it.span.SetAttributes(attribute.String("inlet.outcome", string(it.outcome)))
			// A failed attempt is an error span saying why, retried or
			// not: the trace is where an SRE reads it.
			switch it.outcome {
			case Retried, DeadLetter:
				it.span.SetAttributes(attribute.String("inlet.failed_stage", it.stage))
				it.span.SetStatus(codes.Error, failureText(it.failure))
			case Invalid:
				it.span.SetStatus(codes.Error, failureText(it.reason))
			}
		}
		it.span.End()
	}
	// Its own context: a confirm that waited for Redis may have spent the
	// batch's. Best effort, so briefly, and within the drain budget when
	// shutting down.
	base := context.WithoutCancel(ctx)
	if stop.Err() != nil {
		base = ctx
	}
	hctx, cancel := context.WithTimeout(base, 5*time.Second)
	p.recordHistory(hctx, items, now)
	cancel()
	// Counted last: once Counts says an outcome is final, its log line,
	// metrics and history are written too (tests and bench-processor wait
	// on Counts).
	for _, it := range items {
		p.count.add(p.countKey(it), 1)
	}
}

// unsettled is a batch whose commit was sent but not answered.
type unsettled struct {
	items    []*item
	claimed  []string
	token    string
	leaseEnd time.Time
	next     map[string]map[int32]int64 // the offsets its commit stores
}

// settle decides the batch left unsettled by a commit without an answer,
// once its transaction is over (the renewed session's fence finished or
// aborted it, or franz-go aborted it), from the group's stable offsets of
// the partitions the commit named:
//   - each at the offset the commit stored, with the batch's mark: the
//     commit landed, and the batch is finished as any committed batch;
//   - each short of it: it did not (offsets only move forward), and the
//     claims are released for the redelivery;
//   - another member committed past the batch: landed if every key the
//     batch marked done still holds its mark (a redo retakes them before
//     committing past; see store.PreparedBy), else unknown as below;
//   - anything else (the offsets cannot be read, or no key to tell by):
//     unknown. Nothing is confirmed, counted or
//     released; the claims expire after their lease, but for the keys of
//     its processed and stale events, marked done before the commit (see
//     markDone): done if it landed, and if not, their records come back
//     and find them prepared here, processed again. Confirming a batch
//     another member redid would mark done the key of an event it sent to
//     a retry tier, and the retry would be dropped as a duplicate.
func (w *worker) settle(ctx, stop context.Context) {
	u := w.unsettled
	if u == nil {
		// A failed session's transaction with no commit sent: fenced
		// (aborted) by the new session.
		w.inHand = nil
		w.settleOrphans(ctx, false)
		return
	}
	w.unsettled = nil
	writes := w.inHand
	w.inHand = nil
	p := w.p
	// The answer is worth waiting for while the batch's claims hold (till
	// leaseEnd): a commit that landed, its fate read once the batch
	// deadline had passed (a coordinator loading for a few seconds after
	// the fence), was never counted nor confirmed. Stopping, the batch
	// deadline bounds it again: the process must end within its grace.
	start := time.Now()
	deadline := start.Add(p.cfg.BatchDeadline)
	if stop.Err() == nil {
		deadline = later(deadline, u.leaseEnd)
	}
	sctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	stopAfter := context.AfterFunc(stop, func() { time.AfterFunc(time.Until(start.Add(p.cfg.BatchDeadline)), cancel) })
	defer stopAfter()
	backoff := 50 * time.Millisecond
	for {
		fate, err := batchFate(sctx, w.sess.Client(), p.cfg.Group, u.next, offsetMark(u.token))
		switch {
		case err == nil && fate == fateCommitted:
			p.log.Info("the unanswered commit landed; finishing the batch", "records", len(u.items))
			w.noteSettled(writes, true) // the fence made the coordinator forget it
			w.settleOrphans(sctx, true)
			w.finish(sctx, stop, u.items, u.claimed, u.token, u.leaseEnd)
			return
		case err == nil && fate == fateAborted:
			p.log.Info("the commit did not land; records will be redelivered", "records", len(u.items))
			w.noteSettled(writes, false)
			w.settleOrphans(sctx, false)
			endSpans(u.items, "aborted")
			p.release(sctx, stop, u.claimed, u.token)
			return
		case err == nil:
			// Another member committed past the batch (it took the
			// partitions while this session was renewed). Had the
			// commit not landed, that member redid the batch first,
			// retaking each of its keys: all still marked by this
			// batch, the commit is the one that landed.
			keys, at, _, _ := doneKeys(u.items, u.claimed)
			ok, perr := p.d.Store.PreparedBy(sctx, u.token, keys, at)
			if perr == nil && ok {
				p.log.Info("the unanswered commit landed (another member has committed past it, and the batch's keys are still marked by it); finishing the batch", "records", len(u.items))
				w.noteSettled(writes, true)
				w.settleOrphans(sctx, true)
				w.finish(sctx, stop, u.items, u.claimed, u.token, u.leaseEnd)
				return
			}
			why := "another member committed past it"
			if perr != nil {
				why += ", and its keys could not be read: " + perr.Error()
			}
			w.abandonUnsettled(u, why)
			return
		}
		if !sleep(sctx, backoff) {
			w.abandonUnsettled(u, "its group offsets could not be read: "+err.Error())
			return
		}
		backoff = min(backoff*2, p.cfg.BackoffMax)
	}
}

// dropUnsettled abandons the unsettled batch, if any (see abandonUnsettled).
func (w *worker) dropUnsettled(why string) {
	if u := w.unsettled; u != nil {
		w.unsettled = nil
		w.abandonUnsettled(u, why)
	}
}

// abandonUnsettled gives up on deciding an unanswered commit: its claims
// are left to expire (a redelivery waits that long at most) and its
// events are not counted here.
func (w *worker) abandonUnsettled(u *unsettled, why string) {
	w.dropOrphans(context.Background(), why)
	w.p.log.Error("the outcome of an unanswered commit is unknown; its claims are left to expire and its events are not counted here", "records", len(u.items), "why", why)
	endSpans(u.items, "outcome unknown")
}

type fate int

const (
	fateUnknown fate = iota
	fateCommitted
	fateAborted
)

// batchFate reads group's offsets of the partitions in next (those the
// commit marked mark stores) and tells what became of the commit. Only
// those partitions are asked for, stable: a transaction of another member
// pending elsewhere in the group does not hold the answer.
func batchFate(ctx context.Context, cl *kgo.Client, group string, next map[string]map[int32]int64, mark string) (fate, error) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group, req.RequireStable = group, true
	for t, ps := range next {
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic = t
		for p := range ps {
			rt.Partitions = append(rt.Partitions, p)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fateUnknown, err
	}
	type got struct {
		at   int64
		meta string
	}
	have := map[string]map[int32]got{}
	add := func(topic string, p int32, at int64, meta *string, code int16) error {
		if err := kerr.ErrorForCode(code); err != nil {
			return fmt.Errorf("%s/%d: %w", topic, p, err) // UNSTABLE_OFFSET_COMMIT among others: asked again
		}
		if have[topic] == nil {
			have[topic] = map[int32]got{}
		}
		have[topic][p] = got{at, ""}
		if meta != nil {
			have[topic][p] = got{at, *meta}
		}
		return nil
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return fateUnknown, err
	}
	if len(resp.Groups) > 0 { // v8+
		g := resp.Groups[0]
		if err := kerr.ErrorForCode(g.ErrorCode); err != nil {
			return fateUnknown, err
		}
		for _, t := range g.Topics {
			for _, p := range t.Partitions {
				if err := add(t.Topic, p.Partition, p.Offset, p.Metadata, p.ErrorCode); err != nil {
					return fateUnknown, err
				}
			}
		}
	} else {
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := add(t.Topic, p.Partition, p.Offset, p.Metadata, p.ErrorCode); err != nil {
					return fateUnknown, err
				}
			}
		}
	}
	n, landed, short := 0, 0, 0
	for t, ps := range next {
		for part, end := range ps {
			n++
			o, ok := have[t][part]
			switch {
			case !ok || o.at < end:
				short++
			case o.at == end && o.meta == mark:
				landed++
			}
		}
	}
	switch {
	case landed == n:
		return fateCommitted, nil
	case short == n:
		return fateAborted, nil
	}
	return fateUnknown, nil
}

func endSpans(items []*item, why string) {
	for _, it := range items {
		it.span.SetStatus(codes.Error, why)
		it.span.End()
	}
}

// abandon gives up on a batch before anything of it is written: logged,
// with why (the processor stopping, a rebalance waiting on the worker, or
// the batch deadline passing while a dependency is down), then aborted.
func (w *worker) abandon(ctx, stop context.Context, items []*item, claimed []string, token string, why error) error {
	msg, log := "batch abandoned before writing; it will be redelivered", w.p.log.Warn
	switch {
	case errors.Is(why, errStopping):
		msg = "batch abandoned before writing because the processor is stopping; it will be redelivered"
	case errors.Is(why, errRebalance):
		// Contention meeting a rebalance: expected, not a warning.
		msg, log = "batch abandoned before writing to let the consumer group rebalance; it will be redelivered", w.p.log.Info
	case errors.Is(why, errSuperseded):
		msg = "batch dropped before writing: another member committed its records while this worker held them (its group session lapsed: paused longer than the group waits)"
	}
	log(msg, "records", len(items), "error", why)
	err := w.abort(ctx, stop, items, claimed, token)
	if errors.Is(why, errStopping) || errors.Is(why, errRebalance) || errors.Is(why, errSuperseded) || time.Since(w.batchStart) >= w.p.cfg.BackoffMax {
		w.quickAbandons = 0 // it waited already, or must not
		return err
	}
	// Refused at once, by an answer that will come again (a key of the
	// wrong type under Inlet's prefix, a value Inlet did not write): polled
	// again at once, the batch looped hot, a warning each time. Wait as
	// for an outage, giving way to a rebalance and to the stop.
	w.quickAbandons++
	t := time.NewTimer(min(25*time.Millisecond<<min(w.quickAbandons, 10), w.p.cfg.BackoffMax))
	defer t.Stop()
	select {
	case <-t.C:
	case <-w.blocked:
	case <-stop.Done():
	}
	return err
}

func (w *worker) abort(ctx, stop context.Context, items []*item, claimed []string, token string) error {
	p := w.p
	endSpans(items, "batch abandoned")
	p.release(ctx, stop, claimed, token)
	if err := w.sess.Begin(); err != nil {
		return err
	}
	// The batch's context may be spent: a Redis round trip that hung (a
	// stalled server) runs to its end. The abort failed on it, and the
	// session was renewed, the group rejoined, for Redis stalling. It has
	// time of its own, as release does, but within the drain budget once
	// stopping.
	if stop.Err() == nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
	}
	// Ending an empty transaction with TryAbort rewinds the group to its
	// committed offsets, so the batch is polled again.
	if _, err := w.end(ctx, kgo.TryAbort); err != nil {
		return fmt.Errorf("abort: %w", err)
	}
	w.revoked.Store(false)
	return nil
}

// maxPreviousTxnWait bounds awaitPreviousTxn: Kafka writes a
// transaction's markers within milliseconds; past this the commit is
// tried anyway (an abort is redone as before).
const maxPreviousTxnWait = time.Second

// awaitPreviousTxn waits until Kafka has finished the worker's previous
// transaction (its markers written), for a transaction that holds only
// offsets: a batch that wrote nothing (all duplicates, say). With
// transactions v2 (Kafka 4.x) such a commit goes straight to
// TxnOffsetCommit, which Kafka answers CONCURRENT_TRANSACTIONS while the
// previous transaction is still being completed, and franz-go ends the
// transaction as an abort for it rather than retrying: measured on Kafka
// 4.4, 37% of back-to-back offset-only transactions and 87% of those right
// after one that produced were aborted, and each aborted batch was polled
// and decided again. A transaction that produces is safe without this:
// its produce requests are retried until the previous one is complete.
func (w *worker) awaitPreviousTxn(ctx context.Context) {
	if w.noTxnDescribe {
		return
	}
	adm := kadm.NewClient(w.sess.Client())
	deadline := time.Now().Add(maxPreviousTxnWait)
	backoff := time.Millisecond
	for {
		coord, err := kafka.DescribeTxn(ctx, adm, w.txnID)
		if err != nil {
			if errors.Is(err, kerr.TransactionalIDAuthorizationFailed) || errors.Is(err, kerr.UnsupportedVersion) {
				w.noTxnDescribe = true
				w.p.log.Info("cannot describe the worker's transaction; batches that write nothing are committed without waiting for the previous transaction, and may be aborted and redone on Kafka 4.x", "transactional_id", w.txnID, "error", err)
			}
			return
		}
		switch coord.State {
		case "PrepareCommit", "PrepareAbort", "PrepareEpochFence":
		default:
			return
		}
		if time.Now().Add(backoff).After(deadline) || !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, 20*time.Millisecond)
	}
}

// end ends the session's transaction. One that does not commit rewinds
// the session to the committed offsets, which may put a retry partition
// the pauser holds (paused until the record it was rewound to is due)
// back at records before that one, already due: the held partitions are
// resumed at once, to be polled and held again, instead of waiting for
// the timer, up to a whole tier. A failed End leaves the session to be
// renewed, whose new client pauses nothing.
func (w *worker) end(ctx context.Context, try kgo.TransactionEndTry) (bool, error) {
	committed, err := w.sess.End(ctx, try)
	if err == nil && !committed {
		w.pause.release()
	}
	return committed, err
}

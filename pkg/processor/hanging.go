package processor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inletdev/inlet/pkg/kafka"
)

// A Kafka broker in controlled shutdown can answer a transaction's EndTxn
// and then skip its markers: its transaction coordinator finds no leader
// for the transaction's partitions in its metadata, takes them for
// deleted (TransactionMarkerChannelManager: "these partitions are likely
// deleted already and hence can be skipped") and completes the
// transaction without them. Seen on Kafka 4.4 with one broker, whose
// partitions all lose their leader while it stops. The records and
// pending offsets of that transaction stay open on those partitions for
// good: read_committed readers stop at them (the last stable offset holds),
// a group's offset fetch answers UNSTABLE_OFFSET_COMMIT until they are
// completed (the worker never gets its partitions back), and the next
// marker this producer writes there decides them — an abort throws away
// outputs whose events were counted processed.
//
// The worker keeps what it knows of its recent transactions (producer id,
// epoch, whether Kafka committed them) and, after its connections to a
// broker dropped, looks for its own open transactions that the coordinator
// considers finished; it writes the markers Kafka skipped, with the fate
// Kafka gave (WriteTxnMarkers, as Kafka's own admin abort does, which
// needs CLUSTER_ACTION). An open range whose last writer it cannot vouch
// for is reported, not touched.

// offsetsTopic is Kafka's internal topic of group offsets, where a
// transaction's offset commit is pending until its marker.
const offsetsTopic = "__consumer_offsets"

// maxEnded bounds the transactions a worker remembers between checks:
// markers are skipped only around a broker stopping, which drops the
// worker's connections and triggers a check long before this many more
// transactions end.
const maxEnded = 64

// endedTxn is a transaction whose end Kafka answered.
type endedTxn struct {
	pid     int64
	epoch   int16
	commit  bool
	wrote   map[string][]int32 // partitions it produced to
	offsets bool               // it sent the group's offsets
}

// wroteTo tells whether e wrote to the partition (on the offsets topic:
// sent offsets, all to the group's one partition).
func (e endedTxn) wroteTo(topic string, partition int32) bool {
	if topic == offsetsTopic {
		return e.offsets
	}
	return slices.Contains(e.wrote[topic], partition)
}

// txnWrites collects, while a transaction runs, its producer id and epoch
// (from its acknowledged records and its offset commit) and the partitions
// it wrote.
type txnWrites struct {
	mu      sync.Mutex
	known   bool
	offsets bool
	pid     int64
	epoch   int16
	wrote   map[string][]int32
	first   map[string]map[int32]int64 // the first offset it wrote, per partition
}

func (t *txnWrites) saw(pid int64, epoch int16) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.known, t.pid, t.epoch = true, pid, epoch
}

func (t *txnWrites) produced(r *kgo.Record) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.known, t.pid, t.epoch = true, r.ProducerID, r.ProducerEpoch
	if t.wrote == nil {
		t.wrote = map[string][]int32{}
	}
	if !slices.Contains(t.wrote[r.Topic], r.Partition) {
		t.wrote[r.Topic] = append(t.wrote[r.Topic], r.Partition)
	}
	if r.Offset < 0 {
		return
	}
	if t.first == nil {
		t.first = map[string]map[int32]int64{}
	}
	if t.first[r.Topic] == nil {
		t.first[r.Topic] = map[int32]int64{}
	}
	if at, ok := t.first[r.Topic][r.Partition]; !ok || r.Offset < at {
		t.first[r.Topic][r.Partition] = r.Offset
	}
}

// firstAt is the first offset the transaction wrote on a partition.
func (t *txnWrites) firstAt(topic string, partition int32) (int64, bool) {
	if t == nil {
		return 0, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	at, ok := t.first[topic][partition]
	return at, ok
}

// stamping wraps a PreTxnCommitFn to learn the producer id and epoch the
// offset commit is sent with.
func (t *txnWrites) stamping(fn func(*kmsg.TxnOffsetCommitRequest) error) func(*kmsg.TxnOffsetCommitRequest) error {
	return func(req *kmsg.TxnOffsetCommitRequest) error {
		t.saw(req.ProducerID, req.ProducerEpoch)
		t.mu.Lock()
		t.offsets = true
		t.mu.Unlock()
		return fn(req)
	}
}

// disconnects is a franz-go hook noting that a connection to a broker
// closed: a broker stopping closes them all, and only then can markers
// have been skipped.
type disconnects struct{ seen atomic.Bool }

func (d *disconnects) OnBrokerDisconnect(kgo.BrokerMetadata, net.Conn) { d.seen.Store(true) }

// noteEnded records a transaction Kafka answered the end of (committed or
// not); one that wrote nothing and committed no offsets cannot be open
// anywhere.
func (w *worker) noteEnded(t *txnWrites, committed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.known || w.noTxnDescribe {
		return
	}
	if len(w.ended) == maxEnded {
		w.ended = slices.Delete(w.ended, 0, 1)
	}
	w.ended = append(w.ended, endedTxn{pid: t.pid, epoch: t.epoch, commit: committed, wrote: t.wrote, offsets: t.offsets})
}

// noteSettled remembers a transaction whose end settle told, and has it
// checked: Kafka may have skipped its markers too, and the renewed
// session's fence made the coordinator forget its fate.
func (w *worker) noteSettled(t *txnWrites, committed bool) {
	if t == nil {
		return
	}
	w.noteEnded(t, committed)
	w.disc.seen.Store(true)
}

// markersDue tells whether the ended transactions should be checked: some
// are unchecked and a connection dropped since the last check.
func (w *worker) markersDue() bool {
	return len(w.ended) > 0 && w.disc.seen.Load() && !w.noTxnDescribe
}

// errMarkersUnchecked is checkMarkers' answer when Kafka could not be
// asked; the check is due again.
var errMarkersUnchecked = errors.New("transaction markers not checked")

// checkMarkers looks for open transactions of the worker's producer on the
// partitions its ended transactions wrote (and the group offsets topic)
// that Kafka's coordinator no longer runs, and writes the markers Kafka
// skipped where it knows the fate. cur is the worker's transaction in
// hand, or the one a failed session left (nil if none): its own open
// records are not skipped markers, but where it wrote after records Kafka
// left open, its end decides those too; the committed ones among them
// are kept as orphans, written again should it not commit (see
// rewriteOrphans).
func (w *worker) checkMarkers(ctx context.Context, cl *kgo.Client, cur *txnWrites) error {
	if len(w.ended) == 0 {
		return nil
	}
	inFlight := cur.inFlight()
	w.disc.seen.Store(false) // a drop from now on asks again
	adm := kadm.NewClient(cl)
	topics := kadm.TopicsSet{offsetsTopic: nil}
	for _, e := range w.ended {
		for t, ps := range e.wrote {
			topics.Add(t, ps...)
		}
	}
	coord, err := kafka.DescribeTxn(ctx, adm, w.txnID)
	if errors.Is(err, kerr.TransactionalIDAuthorizationFailed) || errors.Is(err, kerr.UnsupportedVersion) {
		w.noTxnDescribe = true
		w.ended = nil
		w.p.log.Warn("cannot describe the worker's transaction; transactions a stopping broker leaves open are not looked for (see docs/runbooks/open-transactions.md)", "transactional_id", w.txnID, "error", err)
		return nil
	}
	if err != nil {
		w.disc.seen.Store(true)
		return fmt.Errorf("%w: describe transaction %s: %w", errMarkersUnchecked, w.txnID, err)
	}
	producers, err := adm.DescribeProducers(ctx, topics)
	if err != nil {
		w.disc.seen.Store(true)
		return fmt.Errorf("%w: describe producers: %w", errMarkersUnchecked, err)
	}
	pl := planMarkers(coord, producers, w.ended, cur)
	heal, unknown, unanswered := pl.heal, pl.unknown, pl.unanswered
	if len(pl.forbidden) > 0 && !w.describeForbiddenLogged {
		w.describeForbiddenLogged = true
		w.p.log.Warn("kafka refuses to describe the producers of some partitions (the processor's principal lacks READ): transactions a stopping broker leaves open there are not looked for", "partitions", strings.Join(pl.forbidden, ", "))
	}
	w.p.log.Debug("checked for transaction markers Kafka skipped", "transactional_id", w.txnID,
		"coordinator_state", coord.State, "coordinator_producer_id", coord.ProducerID, "coordinator_epoch", coord.ProducerEpoch,
		"open", strings.Join(pl.seen, "; "), "ended", len(w.ended), "in_flight_epoch", inFlight)
	var errs []error
	repaired := 0
	defer func() {
		w.p.metrics.countLeftOpen(ctx, "repaired", repaired)
		w.p.metrics.countLeftOpen(ctx, "unresolved", len(unknown))
	}()
	for _, o := range heal {
		err := kafka.WriteMarker(ctx, cl, o.p, o.commit)
		switch {
		case errors.Is(err, kerr.ClusterAuthorizationFailed):
			// Not retried: reported with the rest the worker cannot settle.
			unknown = append(unknown, o.p)
			w.p.log.Error("kafka left a transaction of this worker open on a partition (its markers skipped, as a broker in controlled shutdown does), and refused the marker that settles it: the processor's principal needs CLUSTER_ACTION on the cluster to write it",
				"topic", o.p.Topic, "partition", o.p.Partition, "producer_id", o.p.ProducerID, "producer_epoch", o.p.ProducerEpoch,
				"from_offset", o.p.CurrentTxnStartOffset, "committed", o.commit)
		case err != nil:
			errs = append(errs, fmt.Errorf("%s/%d: %w", o.p.Topic, o.p.Partition, err))
		default:
			repaired++
			w.p.log.Warn("kafka left a transaction of this worker open on a partition (its markers skipped, as a broker in controlled shutdown does); wrote the marker it skipped",
				"topic", o.p.Topic, "partition", o.p.Partition, "producer_id", o.p.ProducerID, "producer_epoch", o.p.ProducerEpoch,
				"from_offset", o.p.CurrentTxnStartOffset, "committed", o.commit)
		}
	}
	w.addOrphans(pl.orphans)
	if len(errs) > 0 || len(unanswered) > 0 {
		// Asked again: what it cannot settle is reported then, once.
		unknown = nil
		w.disc.seen.Store(true)
		return fmt.Errorf("%w: %w", errMarkersUnchecked, errors.Join(append(errs, unanswered...)...))
	}
	if len(unknown) > 0 {
		var where []string
		for _, p := range unknown {
			where = append(where, fmt.Sprintf("%s/%d from offset %d (producer %d epoch %d)", p.Topic, p.Partition, p.CurrentTxnStartOffset, p.ProducerID, p.ProducerEpoch))
		}
		w.p.log.Error("transactions of this worker are left open on partitions and the worker cannot settle them: read_committed readers wait at them, and on "+offsetsTopic+" the group's offset fetch; see docs/runbooks/open-transactions.md",
			"transactional_id", w.txnID, "open", strings.Join(where, "; "))
	}
	w.ended = w.ended[:0]
	return nil
}

// openTxn is an open transaction on a partition and the fate to settle it
// with.
type openTxn struct {
	p      kadm.DescribedProducer
	commit bool
}

// markerPlan is what checkMarkers does about the open transactions of the
// worker's producers: the markers to write, the open ones it cannot
// settle, the orphans the transaction in hand decides, the partitions
// Kafka could not describe, and everything open (for the debug log).
type markerPlan struct {
	heal       []openTxn
	unknown    []kadm.DescribedProducer
	orphans    []orphan
	unanswered []error
	forbidden  []string // partitions Kafka refuses to describe (no READ): not retried
	seen       []string
}

// planMarkers classifies the open transactions of the producers of ended
// and of the coordinator's. The transaction in hand (cur, where it wrote)
// and one the coordinator still runs are left to their end, noting
// orphans before cur's records. One whose fate the worker knows is
// settled with it: the fate of its ended transactions of that producer
// and epoch that wrote the partition — under transactions v1 every
// transaction of a session shares its epoch, so the epoch alone does not
// tell them apart, and differing fates there are unknown. Failing that,
// the coordinator's last completed transaction decides, if it is the one;
// the rest are unknown.
func planMarkers(coord kadm.DescribedTransaction, producers kadm.DescribedProducersTopics, ended []endedTxn, cur *txnWrites) markerPlan {
	var pl markerPlan
	inFlight := cur.inFlight()
	ours := map[int64]bool{coord.ProducerID: true}
	later := map[int64]map[int16]bool{} // epochs the worker ran, by producer
	for _, e := range ended {
		ours[e.pid] = true
		if later[e.pid] == nil {
			later[e.pid] = map[int16]bool{}
		}
		later[e.pid][e.epoch] = true
	}
	producers.EachPartition(func(dp kadm.DescribedProducersPartition) {
		if kafka.SortDescribeErr(dp, &pl.forbidden, &pl.unanswered) {
			return
		}
		for _, p := range dp.ActiveProducers {
			if !ours[p.ProducerID] || p.CurrentTxnStartOffset < 0 {
				continue
			}
			pl.seen = append(pl.seen, fmt.Sprintf("%s/%d from %d (producer %d epoch %d)", p.Topic, p.Partition, p.CurrentTxnStartOffset, p.ProducerID, p.ProducerEpoch))
			first, inHand := cur.firstAt(p.Topic, p.Partition)
			inHand = inHand && p.ProducerEpoch == inFlight && p.ProducerID == coord.ProducerID
			if inHand || kafka.CoordinatorRuns(coord, p) {
				// The transaction in hand, or one the coordinator is
				// still ending: its marker will settle the partition.
				// Records before its own there are earlier ones Kafka
				// left open, which that marker decides with it.
				if inHand && p.CurrentTxnStartOffset < first {
					if eps := committedOn(ended, p, inFlight); len(eps) > 0 {
						pl.orphans = append(pl.orphans, orphan{topic: p.Topic, partition: p.Partition, from: p.CurrentTxnStartOffset, to: first, pid: p.ProducerID, epochs: eps})
					}
				}
				continue
			}
			if commit, known, mixed := fateOn(ended, p); known {
				pl.heal = append(pl.heal, openTxn{p, commit})
			} else if mixed || later[p.ProducerID][p.ProducerEpoch+1] {
				// Differing fates, or transactions v1 where the
				// coordinator's completed epoch may be a later
				// transaction's.
				pl.unknown = append(pl.unknown, p)
			} else if commit, known := kafka.CoordinatorDecided(coord, p); known {
				pl.heal = append(pl.heal, openTxn{p, commit})
			} else {
				pl.unknown = append(pl.unknown, p)
			}
		}
	})
	return pl
}

// fateOn is the fate of the ended transactions of p's producer and epoch
// that wrote p's partition: known if there are some and they agree, mixed
// if they do not.
func fateOn(ended []endedTxn, p kadm.DescribedProducer) (commit, known, mixed bool) {
	for _, e := range ended {
		if e.pid != p.ProducerID || e.epoch != p.ProducerEpoch || !e.wroteTo(p.Topic, p.Partition) {
			continue
		}
		if known && e.commit != commit {
			return false, false, true
		}
		commit, known = e.commit, true
	}
	return commit, known, false
}

// committedOn lists the epochs (up to the one in hand's: under
// transactions v1 they are all one) whose ended transactions that wrote
// p's partition all committed: their records there, before the
// transaction in hand's, are to survive it.
func committedOn(ended []endedTxn, p kadm.DescribedProducer, upTo int16) map[int16]bool {
	out := map[int16]bool{}
	aborted := map[int16]bool{}
	for _, e := range ended {
		if e.pid != p.ProducerID || e.epoch > upTo || !e.wroteTo(p.Topic, p.Partition) {
			continue
		}
		if e.commit {
			out[e.epoch] = true
		} else {
			aborted[e.epoch] = true
		}
	}
	for e := range aborted {
		delete(out, e) // which records of the epoch were whose cannot be told
	}
	return out
}

// inFlight is the epoch of the transaction's acknowledged records, -1
// before any (or for no transaction).
func (t *txnWrites) inFlight() int16 {
	if t == nil {
		return -1
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.known {
		return -1
	}
	return t.epoch
}

// markerCheckTry bounds one check for skipped markers.
const markerCheckTry = 5 * time.Second

// checkMarkersLogged runs checkMarkers, bounded, and logs why it could not
// (it is due again then); the error is checkMarkers'.
func (w *worker) checkMarkersLogged(ctx context.Context, cur *txnWrites) error {
	cctx, cancel := context.WithTimeout(ctx, markerCheckTry)
	defer cancel()
	err := w.checkMarkers(cctx, w.sess.Client(), cur)
	switch {
	case err == nil:
		w.markerCheckFailing = false
	case ctx.Err() != nil:
	case !w.markerCheckFailing:
		// Once per outage: the check is tried on every poll meanwhile.
		w.markerCheckFailing = true
		w.p.log.Warn("could not check for transaction markers Kafka skipped; checking again until it can", "error", err)
	default:
		w.p.log.Debug("could not check for transaction markers Kafka skipped", "error", err)
	}
	return err
}

// markerPoll caps a poll while ended transactions are unchecked: a worker
// whose group rejoin waits on offsets a skipped marker holds gets nothing
// from its poll, and must come back to check.
const markerPoll = time.Second

// poll polls a batch; timedOut says the poll ended at markerPoll with
// nothing.
func (w *worker) poll(ctx context.Context) (fetches kgo.Fetches, timedOut bool) {
	if len(w.ended) == 0 {
		return w.sess.PollRecords(ctx, w.p.cfg.BatchSize), false
	}
	pctx, cancel := context.WithTimeout(ctx, markerPoll)
	defer cancel()
	fetches = w.sess.PollRecords(pctx, w.p.cfg.BatchSize)
	if pctx.Err() != nil && ctx.Err() == nil && len(fetches.Records()) == 0 {
		return nil, true
	}
	return fetches, false
}

// orphan is a stretch of a partition where Kafka left records of the
// worker's committed transactions open, and a later transaction of the
// worker wrote after them: that one's marker decides them with its own.
type orphan struct {
	topic     string
	partition int32
	from, to  int64 // [from, to): the open records before the later transaction's
	pid       int64
	epochs    map[int16]bool // the committed transactions' epochs
}

// addOrphans adds found to the worker's orphans, once per partition and
// start.
func (w *worker) addOrphans(found []orphan) {
	for _, o := range found {
		if !slices.ContainsFunc(w.orphans, func(have orphan) bool {
			return have.topic == o.topic && have.partition == o.partition && have.from == o.from
		}) {
			w.orphans = append(w.orphans, o)
		}
	}
}

// settleOrphans follows the end of the transaction the orphans were
// found under: committed, its marker committed them too; aborted, it
// threw them away with its own records, and they are written again.
func (w *worker) settleOrphans(ctx context.Context, committed bool) {
	if len(w.orphans) == 0 {
		return
	}
	orphans := w.orphans
	w.orphans = nil
	if committed {
		return
	}
	n, err := w.rewriteOrphans(ctx, orphans)
	if err != nil {
		w.p.metrics.countLeftOpen(ctx, "unresolved", len(orphans))
		w.p.log.Error("records of committed transactions that Kafka left open were thrown away by a later abort, and could not be written again: their events were counted processed and have no output; see docs/runbooks/open-transactions.md",
			"where", describeOrphans(orphans), "error", err)
		return
	}
	w.p.metrics.countLeftOpen(ctx, "repaired", len(orphans))
	w.p.log.Warn("records of committed transactions that Kafka left open were thrown away by a later abort; wrote them again",
		"records", n, "where", describeOrphans(orphans))
}

// dropOrphans gives up on orphans whose fate cannot be told (the end of
// the transaction they were found under is unknown).
func (w *worker) dropOrphans(ctx context.Context, why string) {
	if len(w.orphans) == 0 {
		return
	}
	w.p.metrics.countLeftOpen(ctx, "unresolved", len(w.orphans))
	w.p.log.Error("records of committed transactions that Kafka left open were decided by a later transaction whose end is unknown: if it did not commit, their events were counted processed and have no output; see docs/runbooks/open-transactions.md",
		"where", describeOrphans(w.orphans), "why", why)
	w.orphans = nil
}

func describeOrphans(orphans []orphan) string {
	var where []string
	for _, o := range orphans {
		where = append(where, fmt.Sprintf("%s/%d offsets %d-%d (producer %d)", o.topic, o.partition, o.from, o.to-1, o.pid))
	}
	return strings.Join(where, "; ")
}

// orphanRead bounds reading the orphans back and writing them again.
const orphanRead = 30 * time.Second

// rewriteOrphans reads the orphans' records back (uncommitted: they are
// aborted now) and writes copies of those of the committed epochs with
// an idempotent producer: key, value, headers and timestamp as they were,
// to the same partition.
func (w *worker) rewriteOrphans(ctx context.Context, orphans []orphan) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, orphanRead)
	defer cancel()
	parts := map[string]map[int32]kgo.Offset{}
	left := map[string]map[int32]int64{} // the offset to read to
	for _, o := range orphans {
		if parts[o.topic] == nil {
			parts[o.topic], left[o.topic] = map[int32]kgo.Offset{}, map[int32]int64{}
		}
		if at, ok := parts[o.topic][o.partition]; !ok || o.from < at.EpochOffset().Offset {
			parts[o.topic][o.partition] = kgo.NewOffset().At(o.from)
		}
		left[o.topic][o.partition] = max(left[o.topic][o.partition], o.to)
	}
	rd, err := kgo.NewClient(append(w.p.d.KafkaOpts[:len(w.p.d.KafkaOpts):len(w.p.d.KafkaOpts)],
		kgo.ConsumePartitions(parts), kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
		// Markers too: the last offset before a stretch's end may be one.
		kgo.KeepControlRecords())...)
	if err != nil {
		return 0, err
	}
	defer rd.Close()
	var copies []*kgo.Record
	for pending := len(orphans); pending > 0; {
		fs := rd.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("reading them back: %w", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			for _, o := range orphans {
				if !r.Attrs.IsControl() && r.Topic == o.topic && r.Partition == o.partition && r.Offset >= o.from && r.Offset < o.to &&
					r.ProducerID == o.pid && o.epochs[r.ProducerEpoch] {
					copies = append(copies, &kgo.Record{Topic: r.Topic, Partition: r.Partition, Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: r.Timestamp})
					break
				}
			}
			if to, ok := left[r.Topic][r.Partition]; ok && r.Offset+1 >= to {
				delete(left[r.Topic], r.Partition)
				pending = countLeft(left)
			}
		})
	}
	if len(copies) == 0 {
		return 0, nil
	}
	wr, err := kgo.NewClient(append(w.p.d.KafkaOpts[:len(w.p.d.KafkaOpts):len(w.p.d.KafkaOpts)],
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(kafka.MaxMessageBytes), kgo.ProducerLinger(0))...)
	if err != nil {
		return 0, err
	}
	defer wr.Close()
	if err := wr.ProduceSync(ctx, copies...).FirstErr(); err != nil {
		return 0, fmt.Errorf("writing them again: %w", err)
	}
	return len(copies), nil
}

func countLeft(left map[string]map[int32]int64) int {
	n := 0
	for _, ps := range left {
		n += len(ps)
	}
	return n
}

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
	pid    int64
	epoch  int16
	commit bool
	wrote  map[string][]int32 // partitions it produced to
}

// txnWrites collects, while a transaction runs, its producer id and epoch
// (from its acknowledged records and its offset commit) and the partitions
// it wrote.
type txnWrites struct {
	mu    sync.Mutex
	known bool
	pid   int64
	epoch int16
	wrote map[string][]int32
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
}

// stamping wraps a PreTxnCommitFn to learn the producer id and epoch the
// offset commit is sent with.
func (t *txnWrites) stamping(fn func(*kmsg.TxnOffsetCommitRequest) error) func(*kmsg.TxnOffsetCommitRequest) error {
	return func(req *kmsg.TxnOffsetCommitRequest) error {
		t.saw(req.ProducerID, req.ProducerEpoch)
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
	if !t.known {
		return
	}
	if len(w.ended) == maxEnded {
		w.ended = slices.Delete(w.ended, 0, 1)
	}
	w.ended = append(w.ended, endedTxn{pid: t.pid, epoch: t.epoch, commit: committed, wrote: t.wrote})
}

// markersDue tells whether the ended transactions should be checked: some
// are unchecked and a connection dropped since the last check.
func (w *worker) markersDue() bool {
	return len(w.ended) > 0 && w.disc.seen.Load()
}

// errMarkersUnchecked is checkMarkers' answer when Kafka could not be
// asked; the check is due again.
var errMarkersUnchecked = errors.New("transaction markers not checked")

// checkMarkers looks for open transactions of the worker's producer on the
// partitions its ended transactions wrote (and the group offsets topic)
// that Kafka's coordinator no longer runs, and writes the markers Kafka
// skipped where it knows the fate. inFlight is the epoch of the worker's
// transaction in progress (-1 if none): its own open records are not
// skipped markers.
func (w *worker) checkMarkers(ctx context.Context, cl *kgo.Client, inFlight int16) error {
	if len(w.ended) == 0 {
		return nil
	}
	w.disc.seen.Store(false) // a drop from now on asks again
	adm := kadm.NewClient(cl)
	topics := kadm.TopicsSet{offsetsTopic: nil}
	fate := map[int64]map[int16]bool{} // pid → epoch → committed
	for _, e := range w.ended {
		for t, ps := range e.wrote {
			topics.Add(t, ps...)
		}
		if fate[e.pid] == nil {
			fate[e.pid] = map[int16]bool{}
		}
		fate[e.pid][e.epoch] = e.commit
	}
	described, err := adm.DescribeTransactions(ctx, w.txnID)
	if err == nil {
		err = described[w.txnID].Err
	}
	if err != nil {
		w.disc.seen.Store(true)
		return fmt.Errorf("%w: describe transaction %s: %w", errMarkersUnchecked, w.txnID, err)
	}
	coord := described[w.txnID]
	producers, err := adm.DescribeProducers(ctx, topics)
	if err != nil {
		w.disc.seen.Store(true)
		return fmt.Errorf("%w: describe producers: %w", errMarkersUnchecked, err)
	}
	type open struct {
		p      kadm.DescribedProducer
		commit bool
	}
	var heal []open
	var unknown []kadm.DescribedProducer
	var unanswered []error
	var seen []string // for the debug log
	producers.EachPartition(func(dp kadm.DescribedProducersPartition) {
		if dp.Err != nil {
			unanswered = append(unanswered, fmt.Errorf("%s/%d: %w", dp.Topic, dp.Partition, dp.Err))
			return
		}
		for _, p := range dp.ActiveProducers {
			byEpoch, ours := fate[p.ProducerID]
			if (!ours && p.ProducerID != coord.ProducerID) || p.CurrentTxnStartOffset < 0 {
				continue
			}
			seen = append(seen, fmt.Sprintf("%s/%d from %d (producer %d epoch %d)", p.Topic, p.Partition, p.CurrentTxnStartOffset, p.ProducerID, p.ProducerEpoch))
			if p.ProducerEpoch == inFlight && p.ProducerID == coord.ProducerID {
				continue // the transaction in hand
			}
			if coordinatorRuns(coord, p) {
				continue // the coordinator is still writing its markers
			}
			if commit, known := byEpoch[p.ProducerEpoch]; known {
				heal = append(heal, open{p, commit})
			} else if _, later := byEpoch[p.ProducerEpoch+1]; later {
				// Transactions v1: the coordinator's completed epoch
				// may be a later transaction's.
				unknown = append(unknown, p)
			} else if commit, known := decided(coord, p); known {
				heal = append(heal, open{p, commit})
			} else {
				unknown = append(unknown, p)
			}
		}
	})
	w.p.log.Debug("checked for transaction markers Kafka skipped", "transactional_id", w.txnID,
		"coordinator_state", coord.State, "coordinator_producer_id", coord.ProducerID, "coordinator_epoch", coord.ProducerEpoch,
		"open", strings.Join(seen, "; "), "ended", len(w.ended), "in_flight_epoch", inFlight)
	var errs []error
	repaired := 0
	defer func() {
		w.p.metrics.countLeftOpen(ctx, "repaired", repaired)
		w.p.metrics.countLeftOpen(ctx, "unresolved", len(unknown))
	}()
	for _, o := range heal {
		err := writeMarker(ctx, cl, o.p, o.commit)
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
	if len(unknown) > 0 {
		var where []string
		for _, p := range unknown {
			where = append(where, fmt.Sprintf("%s/%d from offset %d (producer %d epoch %d)", p.Topic, p.Partition, p.CurrentTxnStartOffset, p.ProducerID, p.ProducerEpoch))
		}
		w.p.log.Error("transactions of this worker are left open on partitions and the worker cannot settle them: read_committed readers wait at them, and on "+offsetsTopic+" the group's offset fetch; see docs/runbooks/open-transactions.md",
			"transactional_id", w.txnID, "open", strings.Join(where, "; "))
	}
	if len(errs) == 0 && len(unanswered) == 0 {
		w.ended = w.ended[:0]
		return nil
	}
	// Asked again, the same open transactions would be counted again.
	unknown = nil
	w.disc.seen.Store(true)
	return fmt.Errorf("%w: %w", errMarkersUnchecked, errors.Join(append(errs, unanswered...)...))
}

// coordinatorRuns tells whether the coordinator is still ending (or running) the
// transaction that wrote p's open records: it then writes their markers
// itself.
func coordinatorRuns(coord kadm.DescribedTransaction, p kadm.DescribedProducer) bool {
	if coord.ProducerID != p.ProducerID {
		return false
	}
	switch coord.State {
	case "PrepareCommit", "PrepareAbort", "PrepareEpochFence":
		// Transactions v2 bumps the epoch when it prepares.
		return coord.ProducerEpoch == p.ProducerEpoch || coord.ProducerEpoch == p.ProducerEpoch+1
	case "Ongoing":
		return coord.ProducerEpoch == p.ProducerEpoch
	}
	return false
}

// decided tells the fate the coordinator gave the transaction that wrote
// p's open records, when it is the last one it completed: the
// transaction's end, whose answer the worker may not have had.
// Transactions v2 completes at the next epoch.
func decided(coord kadm.DescribedTransaction, p kadm.DescribedProducer) (commit, known bool) {
	if coord.ProducerID != p.ProducerID || (coord.ProducerEpoch != p.ProducerEpoch && coord.ProducerEpoch != p.ProducerEpoch+1) {
		return false, false
	}
	switch coord.State {
	case "CompleteCommit":
		return true, true
	case "CompleteAbort":
		return false, true
	}
	return false, false
}

// writeMarker writes a commit or abort marker for p's open transaction on
// its partition, at the epoch its records carry and the coordinator epoch
// the partition knows (the checks a partition applies to a marker).
func writeMarker(ctx context.Context, cl *kgo.Client, p kadm.DescribedProducer, commit bool) error {
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch = p.ProducerID, p.ProducerEpoch, commit, p.CoordinatorEpoch
	t := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	t.Topic, t.Partitions = p.Topic, []int32{p.Partition}
	m.Topics = append(m.Topics, t)
	req.Markers = append(req.Markers, m)
	resp, err := req.RequestWith(ctx, cl.Broker(int(p.Leader)))
	if err != nil {
		return err
	}
	for _, m := range resp.Markers {
		for _, t := range m.Topics {
			for _, pr := range t.Partitions {
				if err := kerr.ErrorForCode(pr.ErrorCode); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// inFlight is the epoch of the transaction's acknowledged records, -1
// before any.
func (t *txnWrites) inFlight() int16 {
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
// (it is due again then).
func (w *worker) checkMarkersLogged(ctx context.Context, inFlight int16) {
	cctx, cancel := context.WithTimeout(ctx, markerCheckTry)
	defer cancel()
	err := w.checkMarkers(cctx, w.sess.Client(), inFlight)
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

package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
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
// transaction without them. The records stay open on those partitions
// for good: read_committed readers stop at them, and the same producer's
// next marker there decides them with its own. This file holds the
// Kafka-level pieces that find and settle such transactions (the
// coordinator's view, the marker Kafka skipped), used by the processor
// (pkg/processor/hanging.go), and MarkerGuard, which confirms the commits
// of requeue/discard and of a replay's copy.

// DescribeTxn reads the coordinator's view of txnID: its producer id and
// epoch, the state of its last transaction and, while one runs, its
// partitions.
func DescribeTxn(ctx context.Context, adm *kadm.Client, txnID string) (kadm.DescribedTransaction, error) {
	described, err := adm.DescribeTransactions(ctx, txnID)
	if err == nil {
		err = described[txnID].Err
	}
	return described[txnID], err
}

// CoordinatorRuns tells whether the coordinator is still ending (or
// running) the transaction that wrote p's open records: it then writes
// their markers itself.
func CoordinatorRuns(coord kadm.DescribedTransaction, p kadm.DescribedProducer) bool {
	if coord.ProducerID != p.ProducerID {
		return false
	}
	// Under transactions v1 an earlier transaction has the running one's
	// epoch: where the coordinator lists the running one's partitions,
	// only those are its.
	if len(coord.Topics) > 0 && !coord.Topics.Lookup(p.Topic, p.Partition) {
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

// CoordinatorDecided tells the fate the coordinator gave the transaction
// that wrote p's open records, when it is the last one it completed: the
// transaction's end, whose answer the writer may not have had.
// Transactions v2 completes at the next epoch.
func CoordinatorDecided(coord kadm.DescribedTransaction, p kadm.DescribedProducer) (commit, known bool) {
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

// WriteMarker writes a commit or abort marker for p's open transaction on
// its partition, at the epoch its records carry and the coordinator epoch
// the partition knows (the checks a partition applies to a marker). It
// needs CLUSTER_ACTION on the cluster, as Kafka's own admin abort does.
func WriteMarker(ctx context.Context, cl *kgo.Client, p kadm.DescribedProducer, commit bool) error {
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

// CannotDescribeTxn tells whether err, from DescribeTransactions or
// DescribeProducers, means the check can never run on this cluster: the
// principal lacks DESCRIBE on the transactional id, or Kafka is too old.
func CannotDescribeTxn(err error) bool {
	return errors.Is(err, kerr.TransactionalIDAuthorizationFailed) || errors.Is(err, kerr.UnsupportedVersion) ||
		errors.Is(err, kerr.ClusterAuthorizationFailed)
}

// EndedTxn is a transaction whose end Kafka answered: its producer id and
// epoch (those its records carry) and the partitions it wrote.
type EndedTxn struct {
	PID   int64
	Epoch int16
	Wrote map[string][]int32
}

// Settled is what a MarkerGuard found open: the transactions it wrote
// the skipped marker of (with the fate written), and those it could not
// settle (the coordinator no longer says how they ended, or Kafka refused
// the marker).
type Settled struct {
	Repaired  []Healed
	Unsettled []kadm.DescribedProducer
}

// Healed is an open transaction on a partition and the marker written.
type Healed struct {
	kadm.DescribedProducer
	Commit bool
}

// String lists where, for logs.
func (h Healed) String() string {
	return fmt.Sprintf("%s/%d from offset %d (producer %d epoch %d, committed %v)", h.Topic, h.Partition, h.CurrentTxnStartOffset, h.ProducerID, h.ProducerEpoch, h.Commit)
}

func describeOpen(ps []kadm.DescribedProducer) string {
	var where []string
	for _, p := range ps {
		where = append(where, fmt.Sprintf("%s/%d from offset %d (producer %d epoch %d)", p.Topic, p.Partition, p.CurrentTxnStartOffset, p.ProducerID, p.ProducerEpoch))
	}
	return strings.Join(where, "; ")
}

// settlePlan is what one look at the coordinator and the partitions
// found: the markers to write, the open transactions whose fate the
// coordinator no longer tells, whether the coordinator is still writing
// markers (asked again), the partitions Kafka refuses to describe (no
// READ: not asked again) and those that did not answer (asked again).
type settlePlan struct {
	heal       []Healed
	unsettled  []kadm.DescribedProducer
	pending    bool
	forbidden  []string
	unanswered []error
}

// planSettle classifies the open transactions of producers that match
// (those of the coordinator's producer id, and of the ended transaction
// when confirming one): one the coordinator still runs or ends is left
// to it (pending when waitRunning: a commit just answered whose markers
// are in flight); one it completed last is settled with the fate it
// gave; the rest are unsettled.
func planSettle(coord kadm.DescribedTransaction, producers kadm.DescribedProducersTopics, match func(kadm.DescribedProducer) bool, waitRunning bool) settlePlan {
	var pl settlePlan
	producers.EachPartition(func(dp kadm.DescribedProducersPartition) {
		if SortDescribeErr(dp, &pl.forbidden, &pl.unanswered) {
			return
		}
		for _, p := range dp.ActiveProducers {
			if p.CurrentTxnStartOffset < 0 || p.ProducerID != coord.ProducerID || (match != nil && !match(p)) {
				continue
			}
			if CoordinatorRuns(coord, p) {
				pl.pending = pl.pending || waitRunning
				continue
			}
			if commit, known := CoordinatorDecided(coord, p); known {
				pl.heal = append(pl.heal, Healed{p, commit})
			} else {
				pl.unsettled = append(pl.unsettled, p)
			}
		}
	})
	return pl
}

// MarkerCheckWait bounds one MarkerGuard check, waits and retries
// included: past it the operation goes on without the check.
const MarkerCheckWait = 10 * time.Second

// MarkerGuard looks, for the writer of one transactional id, for the
// markers of its transactions a stopping broker skipped, and writes them.
// It never fails nor holds up the writer past MarkerCheckWait: a check
// that cannot run is logged (once until one runs again) and the writer
// goes on without it. Where Kafka refuses to describe the transactional
// id (no DESCRIBE on it) or is too old to, it warns once and looks no
// more; partitions it may not describe (no READ) are warned of once and
// left out. Safe for concurrent use.
type MarkerGuard struct {
	txnID string
	log   *slog.Logger

	mu             sync.Mutex
	off            bool
	forbiddenNoted bool
	failing        bool
}

// NewMarkerGuard guards the transactions of txnID; log may be nil
// (nothing is logged).
func NewMarkerGuard(txnID string, log *slog.Logger) *MarkerGuard {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &MarkerGuard{txnID: txnID, log: log}
}

// Off tells whether the guard gave up for good (Kafka cannot describe
// the transactional id).
func (g *MarkerGuard) Off() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.off
}

// Confirm makes sure the markers of t, a transaction of the guarded id
// whose commit Kafka just answered, landed on every partition it wrote:
// it waits while the coordinator still writes them, and where Kafka
// skipped them writes the marker with the fate the coordinator gave.
// Run before the writer's next transaction begins. Bounded by
// MarkerCheckWait and ctx.
func (g *MarkerGuard) Confirm(ctx context.Context, cl *kgo.Client, t EndedTxn) Settled {
	if len(t.Wrote) == 0 {
		return Settled{}
	}
	ours := func(p kadm.DescribedProducer) bool { return p.ProducerID == t.PID && p.ProducerEpoch == t.Epoch }
	return g.check(ctx, cl, t.Wrote, ours, true, "confirm the markers of a commit")
}

// SettleCompleted writes the markers Kafka skipped of the last
// transaction the coordinator completed under the guarded id, on the
// partitions of topics where it is still open. Run before a new client
// takes the id (InitProducerID makes the coordinator forget that
// transaction's fate): a writer that stopped before its Confirm ran may
// have left records open. Bounded by MarkerCheckWait and ctx.
func (g *MarkerGuard) SettleCompleted(ctx context.Context, cl *kgo.Client, topics ...string) Settled {
	return g.check(ctx, cl, topics, nil, false, "settle the last transaction's markers")
}

// check asks the coordinator, then the partitions (in that order: the
// coordinator completes a transaction only once its markers are written
// or skipped), until it can tell, and writes the markers planSettle
// finds due.
// where is either the partitions to look at (map[string][]int32) or the
// topics, all of whose partitions are looked at ([]string).
func (g *MarkerGuard) check(ctx context.Context, cl *kgo.Client, where any, match func(kadm.DescribedProducer) bool, waitRunning bool, what string) Settled {
	if g.Off() {
		return Settled{}
	}
	ctx, cancel := context.WithTimeout(ctx, MarkerCheckWait)
	defer cancel()
	var s Settled
	backoff := 50 * time.Millisecond
	for {
		done, err := g.once(ctx, cl, where, match, waitRunning, &s)
		if done {
			g.mu.Lock()
			g.failing = false
			g.mu.Unlock()
			g.report(s)
			return s
		}
		select {
		case <-ctx.Done():
			g.mu.Lock()
			first := !g.failing
			g.failing = true
			g.mu.Unlock()
			lvl := slog.LevelDebug
			if first {
				lvl = slog.LevelWarn // once until a check runs again
			}
			g.log.Log(context.WithoutCancel(ctx), lvl, "could not "+what+" (to find transactions a stopping broker left open); going on without it; see docs/runbooks/open-transactions.md",
				"transactional_id", g.txnID, "error", err)
			g.report(s)
			return s
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Second)
	}
}

// once is one look; done says the check is over (nothing pending, or it
// can never run).
func (g *MarkerGuard) once(ctx context.Context, cl *kgo.Client, where any, match func(kadm.DescribedProducer) bool, waitRunning bool, s *Settled) (done bool, err error) {
	s.Unsettled = s.Unsettled[:0] // as this look finds them; Repaired stays: those are written
	adm := kadm.NewClient(cl)
	topics := kadm.TopicsSet{}
	switch w := where.(type) {
	case map[string][]int32:
		for tp, ps := range w {
			topics.Add(tp, ps...)
		}
	case []string:
		if len(w) == 0 {
			return true, nil
		}
		td, err := adm.ListTopics(ctx, w...)
		if err != nil {
			return false, fmt.Errorf("list the partitions of %s: %w", strings.Join(w, ", "), err)
		}
		for _, d := range td {
			switch {
			case errors.Is(d.Err, kerr.UnknownTopicOrPartition):
				// Not made (yet): nothing of the id's is open there.
			case d.Err != nil:
				return false, fmt.Errorf("list the partitions of %s: %w", d.Topic, d.Err)
			default:
				for p := range d.Partitions {
					topics.Add(d.Topic, p)
				}
			}
		}
		if len(topics) == 0 {
			return true, nil
		}
	}
	coord, err := DescribeTxn(ctx, adm, g.txnID)
	if errors.Is(err, kerr.TransactionalIDNotFound) {
		return true, nil // never used: nothing of it can be open
	}
	if CannotDescribeTxn(err) {
		g.giveUp(err)
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("describe transaction %s: %w", g.txnID, err)
	}
	producers, err := adm.DescribeProducers(ctx, topics)
	if CannotDescribeTxn(err) {
		g.giveUp(err)
		return true, nil
	}
	var pl settlePlan
	switch {
	case errors.Is(err, kerr.TopicAuthorizationFailed):
		// kadm answers so when every partition asked refused.
		topics.EachPartitions(func(t string, ps []int32) {
			for _, p := range ps {
				pl.forbidden = append(pl.forbidden, fmt.Sprintf("%s/%d", t, p))
			}
		})
	case err != nil:
		return false, fmt.Errorf("describe producers: %w", err)
	default:
		pl = planSettle(coord, producers, match, waitRunning)
	}
	if len(pl.forbidden) > 0 {
		g.mu.Lock()
		first := !g.forbiddenNoted
		g.forbiddenNoted = true
		g.mu.Unlock()
		if first {
			g.log.Warn("kafka refuses to describe the producers of some partitions (the principal lacks READ): transactions a stopping broker leaves open there are not looked for",
				"transactional_id", g.txnID, "partitions", strings.Join(pl.forbidden, ", "))
		}
	}
	if pl.pending || len(pl.unanswered) > 0 {
		if pl.pending {
			return false, errors.New("the transaction coordinator is still writing the transaction's markers")
		}
		return false, errors.Join(pl.unanswered...)
	}
	var errs []error
	for _, h := range pl.heal {
		err := WriteMarker(ctx, cl, h.DescribedProducer, h.Commit)
		switch {
		case errors.Is(err, kerr.ClusterAuthorizationFailed):
			s.Unsettled = append(s.Unsettled, h.DescribedProducer)
		case err != nil:
			errs = append(errs, fmt.Errorf("write the marker on %s/%d: %w", h.Topic, h.Partition, err))
		default:
			s.Repaired = append(s.Repaired, h)
		}
	}
	s.Unsettled = append(s.Unsettled, pl.unsettled...)
	if len(errs) > 0 {
		return false, errors.Join(errs...)
	}
	return true, nil
}

func (g *MarkerGuard) giveUp(err error) {
	g.mu.Lock()
	first := !g.off
	g.off = true
	g.mu.Unlock()
	if first {
		g.log.Warn("cannot describe the transactional id (the principal lacks DESCRIBE on it, or Kafka is too old): transactions a stopping broker leaves open are not looked for; see docs/runbooks/open-transactions.md",
			"transactional_id", g.txnID, "error", err)
	}
}

func (g *MarkerGuard) report(s Settled) {
	for _, h := range s.Repaired {
		g.log.Warn("kafka left a transaction open on a partition (its markers skipped, as a broker in controlled shutdown does); wrote the marker it skipped",
			"transactional_id", g.txnID, "where", h.String())
	}
	if len(s.Unsettled) > 0 {
		g.log.Error("transactions are left open on partitions and cannot be settled here (the coordinator no longer says how they ended, or Kafka refused the marker: writing it needs CLUSTER_ACTION): read_committed readers wait at them; see docs/runbooks/open-transactions.md",
			"transactional_id", g.txnID, "open", describeOpen(s.Unsettled))
	}
}

// SortDescribeErr files a described partition's error: refused for want
// of READ (forbidden: not asked again, the check goes on without it) or
// any other (unanswered: asked again). It reports whether there was one.
func SortDescribeErr(dp kadm.DescribedProducersPartition, forbidden *[]string, unanswered *[]error) bool {
	switch {
	case errors.Is(dp.Err, kerr.TopicAuthorizationFailed):
		*forbidden = append(*forbidden, fmt.Sprintf("%s/%d", dp.Topic, dp.Partition))
	case dp.Err != nil:
		*unanswered = append(*unanswered, fmt.Errorf("%s/%d: %w", dp.Topic, dp.Partition, dp.Err))
	default:
		return false
	}
	return true
}

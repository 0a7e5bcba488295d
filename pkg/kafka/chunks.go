package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Chunks writes a long series of records through a transactional client as
// a series of transactions: one begins at the first record after a commit,
// and the caller commits when its chunk is full or old enough. One
// transaction for the whole series stays open while the input is read,
// outlives its timeout on a long input, and holds back every
// read_committed reader of the topics it writes meanwhile.
//
// A commit is checked by reading one of its records back (see Commit):
// franz-go 1.22.3's EndTransaction can abort a producer-only transaction
// it was asked to commit, and answer nil.
type Chunks struct {
	cl       *kgo.Client
	readOpts []kgo.Opt
	mu       sync.Mutex
	// errs are the open transaction's produce failures, each text once
	// (at most maxErrs), and repeats counts the records whose failure is
	// not among them: a fenced transaction fails every record with the
	// same error, and joining them all made an error of one line per
	// record (20,000 for a fenced requeue chunk).
	errs    []error
	repeats int
	acked   *kgo.Record        // a record of the open transaction Kafka acknowledged
	wrote   map[string][]int32 // the partitions it acknowledged records on
	open    bool
	opened  time.Time
	n       int
	guard   *chunkGuard
}

type chunkGuard struct {
	g      *MarkerGuard
	when   func() bool
	report func(Settled)
}

// Guard makes Commit confirm, through g, the markers of each transaction
// it commits before it reads one of its records back (see
// MarkerGuard.Confirm): where a stopping broker answered the commit and
// skipped markers, they are written. when is asked after each commit
// (nil: always); report, when not nil, is given what was found open. The
// confirm never fails a commit: a check that cannot run is logged by g.
func (c *Chunks) Guard(g *MarkerGuard, when func() bool, report func(Settled)) {
	c.guard = &chunkGuard{g: g, when: when, report: report}
}

// NewChunks writes through cl, which must have a transactional id;
// readOpts (seed brokers, TLS, SASL: no consuming options) make the client
// that reads a record of each commit back.
func NewChunks(cl *kgo.Client, readOpts []kgo.Opt) *Chunks {
	return &Chunks{cl: cl, readOpts: readOpts}
}

// ErrClientAborted is returned by Commit when the transaction was aborted
// although it was asked to commit: nothing of it was written. Right after
// a client's first records to a topic, franz-go 1.22.3 sometimes loses
// track of the partitions its transaction wrote, takes the transaction
// for one that wrote nothing, aborts it to clear it broker-side ("no
// produce succeeded in this transaction but produces were attempted") and
// answers the commit with nil (6 of 1,200 runs of two replay tests, three
// at a time on 2 cores). A replay's copy then reported copies that were
// never readable, and ended its processing early.
var ErrClientAborted = errors.New("the Kafka client aborted the transaction it was asked to commit")

// ClientAbortRetries bounds a caller's tries at writing what a commit that
// failed with ErrClientAborted did not write: requeue and discard write a
// chunk again that many times after the first, a replay's copy runs that
// many times in all.
const ClientAbortRetries = 3

// ErrUnconfirmed wraps a commit whose answer did not come: the coordinator
// may have committed it.
var ErrUnconfirmed = errors.New("commit sent but not confirmed")

// commitTry is what Commit asks EndTransaction for; a test sets TryAbort
// to make the client do what franz-go did (see ErrClientAborted).
var commitTry = kgo.TryCommit

// Produce adds r to the open transaction, beginning one when none is.
func (c *Chunks) Produce(ctx context.Context, r *kgo.Record) error {
	if !c.open {
		if err := c.cl.BeginTransaction(); err != nil {
			return err
		}
		c.open, c.opened, c.n = true, time.Now(), 0
		c.mu.Lock()
		c.acked, c.wrote = nil, nil // of the transaction before, which failed
		c.mu.Unlock()
	}
	c.n++
	c.cl.Produce(ctx, r, func(r *kgo.Record, err error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		switch {
		case err != nil && len(c.errs) < maxErrs && !slices.ContainsFunc(c.errs, func(e error) bool { return e.Error() == err.Error() }):
			c.errs = append(c.errs, err)
		case err != nil:
			c.repeats++
		default:
			if c.acked == nil {
				c.acked = r
			}
			if c.wrote == nil {
				c.wrote = map[string][]int32{}
			}
			if !slices.Contains(c.wrote[r.Topic], r.Partition) {
				c.wrote[r.Topic] = append(c.wrote[r.Topic], r.Partition)
			}
		}
	})
	return nil
}

// Open reports whether a transaction is open.
func (c *Chunks) Open() bool { return c.open }

// Len is the number of records in the open transaction.
func (c *Chunks) Len() int { return c.n }

// Age is how long the open transaction has been open.
func (c *Chunks) Age() time.Duration {
	if !c.open {
		return 0
	}
	return time.Since(c.opened)
}

// Commit waits for the open transaction's records and commits it; without
// one it does nothing. A record that failed fails the commit (nothing of
// the transaction is written; call Abort), and so does a commit the
// coordinator refused (see Refused), and so does one the client turned
// into an abort (ErrClientAborted; Refused is true). An error wrapping
// ErrUnconfirmed means the commit was sent and its outcome is unknown.
func (c *Chunks) Commit(ctx context.Context) error {
	if !c.open {
		return nil
	}
	if err := c.cl.Flush(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	err, repeats, acked := errors.Join(c.errs...), c.repeats, c.acked
	c.mu.Unlock()
	if err != nil && repeats > 0 {
		return fmt.Errorf("a record was refused: %w (and %d more records of the transaction refused)", err, repeats)
	}
	if err != nil {
		return fmt.Errorf("a record was refused: %w", err)
	}
	if err := c.cl.EndTransaction(ctx, commitTry); err != nil {
		if Refused(err) {
			return fmt.Errorf("commit refused: %w", err)
		}
		return fmt.Errorf("%w: %w", ErrUnconfirmed, err)
	}
	c.open, c.n = false, 0
	c.mu.Lock()
	wrote := c.wrote
	c.acked, c.wrote = nil, nil
	c.mu.Unlock()
	if acked == nil {
		return nil
	}
	// Before the read-back, which would wait on a partition whose marker
	// Kafka skipped until checkWait and call the commit unconfirmed.
	if g := c.guard; g != nil && (g.when == nil || g.when()) {
		s := g.g.Confirm(ctx, c.cl, EndedTxn{PID: acked.ProducerID, Epoch: acked.ProducerEpoch, Wrote: wrote})
		if g.report != nil && (len(s.Repaired) > 0 || len(s.Unsettled) > 0) {
			g.report(s)
		}
	}
	// One record tells: a transaction's records are all committed or all
	// aborted.
	ok, err := committed(ctx, c.cl, c.readOpts, acked.Topic, acked.Partition, acked.Offset)
	if err != nil {
		return fmt.Errorf("%w: reading a record of it back: %w", ErrUnconfirmed, err)
	}
	if !ok {
		return fmt.Errorf("%w (its record %s/%d/%d reads as aborted); nothing of it was written", ErrClientAborted, acked.Topic, acked.Partition, acked.Offset)
	}
	return nil
}

// committed reports whether the record at topic/partition/offset, written
// in a transaction that has ended, is committed: read_committed returns
// it. The transaction's marker may land after its end was answered, so
// the partition's last stable offset is waited for past the record first:
// at most checkWait, as another producer's transaction open since before
// the record holds it back until that one ends.
func committed(ctx context.Context, cl *kgo.Client, readOpts []kgo.Opt, topic string, partition int32, offset int64) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, checkWait)
	defer cancel()
	adm := kadm.NewClient(cl)
	for {
		l, err := adm.ListCommittedOffsets(ctx, topic)
		if err == nil {
			err = l.Error()
		}
		if err != nil {
			return false, err
		}
		if o, ok := l.Lookup(topic, partition); ok && o.Offset > offset {
			break
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("%s/%d: last stable offset not past %d: %w", topic, partition, offset, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	var seen bool
	err := ReadSpan(ctx, readOpts, topic, Span{partition: {offset, offset + 1}}, func(r *kgo.Record) error {
		seen = true
		return nil
	})
	return seen, err
}

// checkWait bounds the read-back of a commit (see committed): a
// transaction's default timeout in Kafka is one minute.
const checkWait = 2 * time.Minute

// Refused reports whether the transaction coordinator answered that the
// transaction cannot commit: another client took its transactional id
// (fencing aborts the open transaction), or it outlived its timeout and
// was aborted. Either way nothing of it was written. Under KIP-890 the
// commit of a transaction aborted by fencing is answered INVALID_TXN_STATE
// rather than PRODUCER_FENCED (the coordinator sees a retry of an ended
// transaction whose outcome differs); counting that as unconfirmed sent an
// operator off to check entries that were certainly not decided. A
// commit the client turned into an abort (ErrClientAborted) wrote nothing
// either.
func Refused(err error) bool {
	return errors.Is(err, ErrClientAborted) || errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.InvalidTxnState) || errors.Is(err, kerr.InvalidProducerIDMapping)
}

// Abort drops the open transaction's buffered records and aborts it. It
// uses a context of its own, bounded by 10 s: ctx may be what ended, and
// an abort that is not sent leaves the transaction holding back
// read_committed readers until its timeout.
func (c *Chunks) Abort(ctx context.Context) error {
	if !c.open {
		return nil
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := c.cl.AbortBufferedRecords(actx); err != nil {
		return err
	}
	if err := c.cl.EndTransaction(actx, kgo.TryAbort); err != nil {
		return err
	}
	c.open, c.n = false, 0
	c.mu.Lock()
	c.errs, c.repeats = nil, 0
	c.mu.Unlock()
	return nil
}

// maxErrs bounds the distinct produce failures a commit's error names.
const maxErrs = 4

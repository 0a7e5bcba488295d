package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Chunks writes a long series of records through a transactional client as
// a series of transactions: one begins at the first record after a commit,
// and the caller commits when its chunk is full or old enough. One
// transaction for the whole series stays open while the input is read,
// outlives its timeout on a long input, and holds back every
// read_committed reader of the topics it writes meanwhile.
type Chunks struct {
	cl     *kgo.Client
	mu     sync.Mutex
	err    error // produce failures of the open transaction
	open   bool
	opened time.Time
	n      int
}

// NewChunks writes through cl, which must have a transactional id.
func NewChunks(cl *kgo.Client) *Chunks { return &Chunks{cl: cl} }

// ErrUnconfirmed wraps a commit whose answer did not come: the coordinator
// may have committed it.
var ErrUnconfirmed = errors.New("commit sent but not confirmed")

// Produce adds r to the open transaction, beginning one when none is.
func (c *Chunks) Produce(ctx context.Context, r *kgo.Record) error {
	if !c.open {
		if err := c.cl.BeginTransaction(); err != nil {
			return err
		}
		c.open, c.opened, c.n = true, time.Now(), 0
	}
	c.n++
	c.cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
		if err != nil {
			c.mu.Lock()
			c.err = errors.Join(c.err, err)
			c.mu.Unlock()
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
// coordinator refused (see Refused). An error wrapping ErrUnconfirmed means
// the commit was sent and its outcome is unknown.
func (c *Chunks) Commit(ctx context.Context) error {
	if !c.open {
		return nil
	}
	if err := c.cl.Flush(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("a record was refused: %w", err)
	}
	if err := c.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		if Refused(err) {
			return fmt.Errorf("commit refused: %w", err)
		}
		return fmt.Errorf("%w: %w", ErrUnconfirmed, err)
	}
	c.open, c.n = false, 0
	return nil
}

// Refused reports whether the transaction coordinator answered that the
// transaction cannot commit: another client took its transactional id
// (fencing aborts the open transaction), or it outlived its timeout and
// was aborted. Either way nothing of it was written. Under KIP-890 the
// commit of a transaction aborted by fencing is answered INVALID_TXN_STATE
// rather than PRODUCER_FENCED (the coordinator sees a retry of an ended
// transaction whose outcome differs); counting that as unconfirmed sent an
// operator off to check entries that were certainly not decided.
func Refused(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) ||
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
	c.err = nil
	c.mu.Unlock()
	return nil
}

package processor

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// lockKeeper renews the entity locks a batch holds while it runs. Locks
// take a short lease (store.LockLease, -lock-lease) so that those of a
// crashed worker free their entities soon: an entity's events sit on every
// partition, and each partition's batch waits at its first event of an
// entity whose lock another member holds. A live batch may take longer
// than that lease (a slow sink, a Redis or registry wait), so it renews
// its locks every third of the lease. A lock it could not keep (its
// renewals failed for a whole lease, or it expired and was taken) means
// another attempt may be applying the entity: the batch must not write.
type lockKeeper struct {
	stopped chan struct{}
	done    chan struct{}
	once    sync.Once
	// margin is how long before the locks' lease ends the batch stops
	// counting on them: a renewal's period, which also covers the round
	// trip that took or renewed them.
	margin time.Duration
	lease  time.Duration

	mu    sync.Mutex
	lost  error
	until time.Time // the locks' lease ends then at the earliest
}

// keepLocks starts renewing locks (keys claimed at store.AtLock by token
// in a round trip sent at taken) until close. None: nothing runs.
func (p *Processor) keepLocks(locks []string, token string, taken time.Time) *lockKeeper {
	lease := p.d.Store.LockLease()
	every := max(lease/3, time.Millisecond)
	k := &lockKeeper{stopped: make(chan struct{}), done: make(chan struct{}), margin: every, lease: lease, until: taken.Add(lease)}
	if len(locks) == 0 {
		k.until = time.Time{}
		close(k.done)
		return k
	}
	go func() {
		defer close(k.done)
		t := time.NewTicker(every)
		defer t.Stop()
		renewed := taken
		for {
			select {
			case <-k.stopped:
				return
			case <-t.C:
			}
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), every)
			gone, err := p.d.Store.RenewLocks(ctx, locks, token)
			cancel()
			switch {
			case err == nil && len(gone) == 0:
				renewed = start
				k.mu.Lock()
				k.until = start.Add(lease)
				k.mu.Unlock()
				continue
			case err == nil:
				k.fail(fmt.Errorf("%d of the batch's %d entity locks expired before they were renewed (first %q): another attempt may be applying those entities", len(gone), len(locks), gone[0]))
				return
			case time.Since(renewed) >= lease:
				k.fail(fmt.Errorf("the batch's entity locks could not be renewed for their lease (%v), so another attempt may be applying those entities: %w", lease, err))
				return
			}
			p.log.Warn("renewing the batch's entity locks failed; trying again", "locks", len(locks), "error", err)
		}
	}()
	return k
}

func (k *lockKeeper) fail(err error) {
	k.mu.Lock()
	k.lost = err
	k.mu.Unlock()
}

// err is why the batch can no longer count on its locks, or nil: one was
// lost, or their lease ends within a renewal's period (renewals failing:
// Redis away). Checked before writing and again just before the commit,
// so that a batch never commits the state of an entity another attempt
// may have applied a newer event of meanwhile.
func (k *lockKeeper) err() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.lost == nil && !k.until.IsZero() && time.Until(k.until) < k.margin {
		return fmt.Errorf("the batch's entity locks were last renewed %v ago and their lease ends in less than %v: another attempt may soon apply those entities", time.Since(k.until.Add(-k.lease)).Round(time.Millisecond), k.margin)
	}
	return k.lost
}

// close stops the renewals and waits for one in flight; later calls do
// nothing.
func (k *lockKeeper) close() {
	k.once.Do(func() { close(k.stopped) })
	<-k.done
}

// heldLocks are the entity locks among the keys a batch claimed.
func heldLocks(items []*item, claimed []string) []string {
	locks := make(map[string]bool, len(items))
	for _, it := range items {
		if it.out != nil {
			locks[it.lock] = true
		}
	}
	var held []string
	for _, k := range claimed {
		if locks[k] {
			held = append(held, k)
			delete(locks, k)
		}
	}
	return held
}

package ingest

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// deadlines hands out the contexts that bound the wait for Kafka's
// acknowledgement. Requests that start within the same short window share
// one context: a context with its own timer per request cost about 2 µs
// of CPU at tens of thousands of requests a second, for a bound that only
// needs to be about right. A request's wait is therefore between
// timeout-granularity and timeout, never longer.
type deadlines struct {
	timeout     time.Duration
	granularity time.Duration

	mu  sync.Mutex // serialises window creation
	cur atomic.Pointer[window]
}

type window struct {
	ctx context.Context
	// cancel is never called: the context's own timer cancels it at the
	// deadline, which releases it, and nothing may end a shared wait early.
	cancel context.CancelFunc
	// until is when requests stop joining this window.
	until time.Time
}

func newDeadlines(timeout time.Duration) *deadlines {
	return &deadlines{timeout: timeout, granularity: min(50*time.Millisecond, timeout/10)}
}

// context returns a context done at most d.timeout after now.
func (d *deadlines) context(now time.Time) context.Context {
	if w := d.cur.Load(); w != nil && now.Before(w.until) {
		return w.ctx
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if w := d.cur.Load(); w != nil && now.Before(w.until) {
		return w.ctx
	}
	// The window opens at now and closes granularity later; its deadline is
	// timeout after it opens, so a late joiner waits a little less.
	ctx, cancel := context.WithDeadline(context.Background(), now.Add(d.timeout))
	d.cur.Store(&window{ctx: ctx, cancel: cancel, until: now.Add(d.granularity)})
	return ctx
}

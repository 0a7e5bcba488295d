package admin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/ops"
	"github.com/inletdev/inlet/pkg/testenv"
)

// blockingQueues holds every Page until release is closed (its
// context's end too), counting the
// calls inside it.
type blockingQueues struct {
	*fakeQueues
	release     chan struct{}
	free        func() // closes release, once
	inside, max atomic.Int64
}

func newBlocking() *blockingQueues {
	b := &blockingQueues{fakeQueues: newFake(), release: make(chan struct{})}
	b.free = sync.OnceFunc(func() { close(b.release) })
	return b
}

func (b *blockingQueues) Page(ctx context.Context, topic string, f ops.Filter, cursor string, limit int) (ops.Listing, error) {
	n := b.inside.Add(1)
	defer b.inside.Add(-1)
	for {
		m := b.max.Load()
		if n <= m || b.max.CompareAndSwap(m, n) {
			break
		}
	}
	<-b.release // past its Timeout too: a slot held that long
	return b.fakeQueues.Page(ctx, topic, f, cursor, limit)
}

// TestConcurrentCallsBounded: each listing reads the whole queue with
// Kafka clients of its own; 50 at once on a 40 MB DLQ took the processor
// (the API runs in it) to 2.5 GiB of heap, against 112 MiB one after
// another, and stalled /metrics 1.5 s. Past MaxConcurrent, calls wait for
// a slot; one that waits out Timeout answers 503 with Retry-After.
func TestConcurrentCallsBounded(t *testing.T) {
	const limit, calls = 4, 12
	q := newBlocking()
	a, err := New(Tokens{Read: "r-token"}, Deps{Queues: q, Topics: topics, MaxConcurrent: limit})
	if err != nil {
		t.Fatal(err)
	}
	var arrived atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		a.ServeHTTP(w, r)
	}))
	defer srv.Close()
	defer q.free() // before Close, which waits for the calls
	codes := make([]int, calls)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() { codes[i], _, _ = call(t, srv, "GET", "/v1/dlq", "r-token", "") })
	}
	testenv.Eventually(t, 10*time.Second, "every call to arrive and the limit's to be listing", func() bool {
		return arrived.Load() == calls && q.inside.Load() == limit
	})
	q.free()
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("call %d: %d, want 200 once a slot was free", i, c)
		}
	}
	if m := q.max.Load(); m > limit {
		t.Fatalf("%d calls listed at once, want at most %d", m, limit)
	}

	t.Run("a call that waits out Timeout answers 503", func(t *testing.T) {
		q := newBlocking()
		a, err := New(Tokens{Read: "r-token"}, Deps{Queues: q, Topics: topics, MaxConcurrent: 1, Timeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(a)
		defer srv.Close()
		defer q.free()
		done := make(chan struct{})
		go func() { defer close(done); call(t, srv, "GET", "/v1/dlq", "r-token", "") }()
		testenv.Eventually(t, 10*time.Second, "the first call to take the slot", func() bool { return q.inside.Load() == 1 })
		code, m, h := call(t, srv, "GET", "/v1/depth", "r-token", "")
		if msg, _ := m["error"].(string); code != http.StatusServiceUnavailable || msg == "" || h.Get("Retry-After") == "" {
			t.Fatalf("%d %v Retry-After %q, want 503 saying why, with Retry-After", code, m, h.Get("Retry-After"))
		}
		q.free()
		<-done
	})
}

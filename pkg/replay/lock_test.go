package replay

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/inletdev/inlet/pkg/testenv"
	"github.com/inletdev/inlet/pkg/testenv/syncbuf"
)

// TestReplayLock: the lock that keeps a second run of a replay id out
// (see TestReplaySameIDTwiceAtOnceIsRefused) is renewed while its run
// lives, expires within its lease once the run is gone without releasing
// it (a killed process), is released only by its own run, and tells its
// run when it was lost.
func TestReplayLock(t *testing.T) {
	defer func(d time.Duration) { lockLease = d }(lockLease)
	lockLease = 300 * time.Millisecond
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	const key = "inlet:replay:a:lock"
	never := func(err error) { t.Errorf("lock lost: %v", err) }

	t.Run("a second run is refused, naming the first", func(t *testing.T) {
		l, err := lock(ctx, rdb, key, "a", never)
		if err != nil {
			t.Fatal(err)
		}
		_, err = lock(ctx, rdb, key, "a", never)
		var running *RunningError
		host, _ := os.Hostname()
		if !errors.As(err, &running) || !errors.Is(err, ErrRunning) || running.Holder.PID != os.Getpid() || running.Holder.Host != host ||
			time.Since(running.Holder.Since) > time.Minute || running.Holder.Token != "" {
			t.Fatalf("second lock: %v (%+v); want a RunningError naming this host and pid", err, running)
		}
		if err := l.unlock(ctx); err != nil {
			t.Fatal(err)
		}
		if mr.Exists(key) {
			t.Fatal("the lock is still there after its run released it")
		}
		l, err = lock(ctx, rdb, key, "a", never)
		if err != nil {
			t.Fatalf("after the release: %v", err)
		}
		_ = l.unlock(ctx)
	})

	t.Run("renewed while its run lives", func(t *testing.T) {
		l, err := lock(ctx, rdb, key, "a", never)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = l.unlock(ctx) }()
		for range 3 { // three leases, each nearly run out: renewed each time
			mr.FastForward(lockLease - 50*time.Millisecond)
			testenv.Eventually(t, 5*time.Second, "renewed", func() bool { return mr.TTL(key) > lockLease/2 })
		}
	})

	t.Run("a killed run's lock expires within the lease", func(t *testing.T) {
		l, err := lock(ctx, rdb, key, "a", never)
		if err != nil {
			t.Fatal(err)
		}
		close(l.stop) // the process is gone: no renewal, no release
		l.wg.Wait()
		if _, err := lock(ctx, rdb, key, "a", never); !errors.Is(err, ErrRunning) {
			t.Fatalf("within the lease: %v; want ErrRunning", err)
		}
		mr.FastForward(lockLease)
		l2, err := lock(ctx, rdb, key, "a", never)
		if err != nil {
			t.Fatalf("after the lease: %v", err)
		}
		_ = l2.unlock(ctx)
	})

	t.Run("a lock taken over tells its run, and is not released by it", func(t *testing.T) {
		lost := make(chan error, 1)
		l, err := lock(ctx, rdb, key, "a", func(err error) { lost <- err })
		if err != nil {
			t.Fatal(err)
		}
		mr.FastForward(lockLease)  // expired (a long pause)...
		mr.Set(key, "another run") // ...and taken
		select {
		case err := <-lost:
			if !errors.Is(err, ErrLockLost) {
				t.Fatalf("lost with %v; want ErrLockLost", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the run was not told it lost its lock")
		}
		if err := l.unlock(ctx); err != nil {
			t.Fatal(err)
		}
		if v, _ := mr.Get(key); v != "another run" {
			t.Fatalf("the lock is %q: the run that lost it released the other's", v)
		}
	})
}

// TestReplayStopsWhenItsLockIsLost: a run whose lock was taken over (it
// expired while the run could not renew it, and another run took it)
// stops, saying so, rather than processing beside the other run.
func TestReplayStopsWhenItsLockIsLost(t *testing.T) {
	defer func(d time.Duration) { lockLease = d }(lockLease)
	lockLease = 300 * time.Millisecond
	h := newHarness(t)
	h.send("stripe", "evt_1", "pi_1", 1700000100)
	h.process(1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d := h.deps()
	var logs syncbuf.Buffer
	d.Log = slog.New(slog.NewTextHandler(&logs, nil))
	taken := false
	d.Progress = func(p Progress) {
		if p.Phase == "delete" && !taken {
			taken = true
			if err := h.rdb.Set(ctx, h.env.Prefix+":replay:lost:lock", "another run", 0).Err(); err != nil {
				t.Error(err)
			}
			// Held here until the run found it out (its next renewal).
			for end := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "lost the lock") && time.Now().Before(end); {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	sum, err := Run(ctx, Config{ID: "lost", Source: "stripe", Mode: Rebuild, Processor: h.pcfg()}, d)
	if !errors.Is(err, ErrLockLost) || errors.Is(err, context.Canceled) || ctx.Err() != nil || sum.Complete {
		t.Fatalf("run whose lock was taken: %+v, %v; want it stopped with ErrLockLost", sum, err)
	}
	if v, _ := h.rdb.Get(context.Background(), h.env.Prefix+":replay:lost:lock").Result(); v != "another run" {
		t.Fatalf("the lock is %q: the run that lost it released the other's", v)
	}
}

package processor

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/inletdev/inlet/pkg/store"
	"github.com/inletdev/inlet/pkg/testenv"
)

func lockKeeperSetup(t *testing.T, lease time.Duration) (*Processor, *miniredis.Miniredis, *redis.Client, string) {
	t.Helper()
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr(), MaxRetries: -1, DialTimeout: 50 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	st := store.New(rdb, store.LockLease(lease))
	p := &Processor{cfg: DefaultConfig(), d: Deps{Store: st}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	token := store.NewToken()
	res, err := st.ClaimBatchAt(context.Background(), []string{"lock:e1", "lock:e2"}, []string{store.AtLock, store.AtLock}, token)
	if err != nil || res[0] != store.ClaimAcquired || res[1] != store.ClaimAcquired {
		t.Fatalf("claim = %v, %v", res, err)
	}
	return p, m, rdb, token
}

// TestLockKeeperRenews: a batch that runs for several leases keeps its
// locks, and they are free soon after it stops renewing them.
func TestLockKeeperRenews(t *testing.T) {
	p, m, _, token := lockKeeperSetup(t, 300*time.Millisecond)
	k := p.keepLocks([]string{"lock:e1", "lock:e2"}, token, time.Now())
	start := time.Now()
	// miniredis' clock moves only when told: move it with real time, so
	// an unrenewed lock expires.
	testenv.Eventually(t, 5*time.Second, "a second, three leases, to pass", func() bool {
		m.FastForward(20 * time.Millisecond)
		return time.Since(start) > time.Second
	})
	if err := k.err(); err != nil {
		t.Fatalf("locks lost while renewed: %v", err)
	}
	if v, _ := m.Get("inlet:dedup:lock:e1"); v != token {
		t.Fatalf("lock holds %q after three leases, want the token", v)
	}
	k.close()
	m.FastForward(400 * time.Millisecond)
	if m.Exists("inlet:dedup:lock:e1") {
		t.Fatal("the lock outlived its lease after renewals stopped")
	}
}

// TestLockKeeperSaysWhenALockIsLost: a lock that expired and was taken by
// another attempt (its renewals too late) makes the batch stop counting
// on its locks.
func TestLockKeeperSaysWhenALockIsLost(t *testing.T) {
	p, m, _, token := lockKeeperSetup(t, 300*time.Millisecond)
	m.Set("inlet:dedup:lock:e2", "another-token")
	k := p.keepLocks([]string{"lock:e1", "lock:e2"}, token, time.Now())
	defer k.close()
	testenv.Eventually(t, 5*time.Second, "the lost lock to be noticed", func() bool { return k.err() != nil })
	if err := k.err(); !strings.Contains(err.Error(), `"lock:e2"`) {
		t.Fatalf("err = %v, want it to name the lost lock", err)
	}
}

// TestLockKeeperGivesUpWhenRedisIsAway: renewals failing, the batch stops
// counting on its locks before their lease ends, so it never commits an
// entity another attempt may be applying.
func TestLockKeeperGivesUpWhenRedisIsAway(t *testing.T) {
	p, m, _, token := lockKeeperSetup(t, 600*time.Millisecond)
	k := p.keepLocks([]string{"lock:e1"}, token, time.Now())
	defer k.close()
	m.Close()
	down := time.Now()
	testenv.Eventually(t, 5*time.Second, "the keeper to give up its locks", func() bool { return k.err() != nil })
	if since := time.Since(down); since > 600*time.Millisecond {
		t.Errorf("gave up %v after Redis went away, want before the 600ms lease ended", since)
	}
}

// TestLockKeeperCountsTheLeaseFromTheClaim: the locks' lease runs from
// when Redis took them, before the claim's answer came back; a batch whose
// claim answer was slow must not count on a whole lease from the answer
// (until 2026-11-30 it did: with an answer delayed past a third of the
// lease, the batch trusted locks Redis had already let go).
func TestLockKeeperCountsTheLeaseFromTheClaim(t *testing.T) {
	p, _, _, token := lockKeeperSetup(t, 10*time.Second)
	k := p.keepLocks([]string{"lock:e1"}, token, time.Now().Add(-8*time.Second))
	defer k.close()
	if err := k.err(); err == nil || !strings.Contains(err.Error(), "lease ends in less than") {
		t.Fatalf("err = %v for locks claimed 8s into a 10s lease, want the batch to stop counting on them", err)
	}
}

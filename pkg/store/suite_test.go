package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// runSuite is the behavioural suite every Redis backend must pass, with
// scripts called per chunk of keys (a single server) or, perKey, per key
// (Redis Cluster).
func runSuite(t *testing.T, newEnv newEnvFunc, perKey bool) {
	// base is a time with no sub-microsecond part, so stored times compare
	// equal to the ones written.
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }

	setup := func(t *testing.T, opts ...Opt) (*env, *Store) {
		t.Helper()
		e := newEnv(t)
		s := New(e.rdb, append([]Opt{KeyPrefix(e.prefix)}, opts...)...)
		s.perKey = s.perKey || perKey
		return e, s
	}
	// setupShortLease is setup with the backend's lease for tests that let
	// claims expire.
	setupShortLease := func(t *testing.T) (*env, *Store) {
		t.Helper()
		e := newEnv(t)
		s := New(e.rdb, KeyPrefix(e.prefix), ClaimLease(e.lease))
		s.perKey = s.perKey || perKey
		return e, s
	}
	ctx := context.Background()

	t.Run("claim", func(t *testing.T) {
		t.Run("concurrent claims: exactly one acquires each key", func(t *testing.T) {
			_, s := setup(t)
			keys := []string{"order:1:paid"}
			for i := range 49 {
				keys = append(keys, fmt.Sprintf("order:%d:paid", i+2))
			}
			const workers = 10
			results := make([][]ClaimResult, workers)
			errs := make([]error, workers)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for w := range workers {
				wg.Go(func() {
					<-start
					results[w], errs[w] = s.ClaimBatch(ctx, keys, NewToken())
				})
			}
			close(start)
			wg.Wait()
			for w := range workers {
				if errs[w] != nil {
					t.Fatalf("worker %d: %v", w, errs[w])
				}
			}
			for k := range keys {
				var acquired, busy int
				for w := range workers {
					switch results[w][k] {
					case ClaimAcquired:
						acquired++
					case ClaimBusy:
						busy++
					}
				}
				if acquired != 1 || busy != workers-1 {
					t.Fatalf("key %q: %d acquired, %d busy; want 1 and %d", keys[k], acquired, busy, workers-1)
				}
			}
		})

		t.Run("done key reports done", func(t *testing.T) {
			_, s := setup(t)
			tok := NewToken()
			mustClaim(t, s, []string{"a", "b"}, tok, ClaimAcquired, ClaimAcquired)
			if err := s.ConfirmBatch(ctx, []string{"a"}, tok, []time.Duration{time.Hour}); err != nil {
				t.Fatal(err)
			}
			mustClaim(t, s, []string{"a", "b"}, NewToken(), ClaimDone, ClaimBusy)
			mustClaim(t, s, []string{"a"}, tok, ClaimDone)
		})

		t.Run("a key done at a position: the same record again is told from a duplicate", func(t *testing.T) {
			e, s := setup(t)
			tok := NewToken()
			keys := []string{"a", "b", "legacy"}
			mustClaim(t, s, keys, tok, ClaimAcquired, ClaimAcquired, ClaimAcquired)
			// "legacy" as an older processor marked it: plain "done".
			if err := s.Settle(ctx, tok, keys[:2], []string{"raw/3/17", "retry/0/5"}, []time.Duration{time.Hour}, nil); err != nil {
				t.Fatal(err)
			}
			if err := s.ConfirmBatch(ctx, keys[2:], tok, []time.Duration{time.Hour}); err != nil {
				t.Fatal(err)
			}
			if v := e.rdb.Get(ctx, e.prefix+"dedup:a").Val(); v != "done raw/3/17" {
				t.Fatalf("confirmed value %q, want %q", v, "done raw/3/17")
			}
			claimAt := func(tok string, keys, at []string, want ...ClaimResult) {
				t.Helper()
				res, err := s.ClaimBatchAt(ctx, keys, at, tok)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(res, want) {
					t.Fatalf("ClaimBatchAt(%q at %q) = %v, want %v", keys, at, res, want)
				}
			}
			// The record that processed a, at its position: done here. A
			// duplicate elsewhere (raw/3/18, or b's record in another
			// topic at an equal offset), or no position: done.
			claimAt(NewToken(), []string{"a", "b", "legacy", "lock"}, []string{"raw/3/17", "raw/0/5", "raw/3/17", ""}, ClaimDoneHere, ClaimDone, ClaimDone, ClaimAcquired)
			claimAt(NewToken(), []string{"a"}, []string{"raw/3/18"}, ClaimDone)
			claimAt(NewToken(), []string{"a"}, []string{"raw/3/1"}, ClaimDone)
			mustClaim(t, s, []string{"a", "b"}, NewToken(), ClaimDone, ClaimDone)
			// Re-entrant claims (the script's path) see "done <position>"
			// as done, not as a live claim of somebody else's.
			mustClaim(t, s, []string{"a"}, tok, ClaimDone)
			// Taken back, then settled again: the key is ours, then done
			// at the position given.
			again := NewToken()
			res, err := s.RetakeDone(ctx, []string{"a", "b"}, again)
			if err != nil || !slices.Equal(res, []ClaimResult{ClaimAcquired, ClaimAcquired}) {
				t.Fatalf("RetakeDone of keys done at a position = %v, %v; want both acquired", res, err)
			}
			if v := e.rdb.Get(ctx, e.prefix+"dedup:a").Val(); v != again {
				t.Fatalf("retaken value %q, want the token %q", v, again)
			}
			if err := s.Settle(ctx, again, []string{"a", "b"}, []string{"raw/3/17", "retry/0/5"}, []time.Duration{time.Hour}, nil); err != nil {
				t.Fatalf("settling retaken keys: %v (want no lost claim)", err)
			}
			claimAt(NewToken(), []string{"b"}, []string{"retry/0/5"}, ClaimDoneHere)
			// Retaking leaves a key another attempt holds to it (busy),
			// and takes a free one.
			other := NewToken()
			mustClaim(t, s, []string{"held"}, other, ClaimAcquired)
			res, err = s.RetakeDone(ctx, []string{"held", "a", "free"}, NewToken())
			if err != nil || !slices.Equal(res, []ClaimResult{ClaimBusy, ClaimAcquired, ClaimAcquired}) {
				t.Fatalf("RetakeDone(held, done, free) = %v, %v; want busy, acquired, acquired", res, err)
			}
			if v := e.rdb.Get(ctx, e.prefix+"dedup:held").Val(); v != other {
				t.Fatalf("a held key now holds %q, want the other attempt's token %q", v, other)
			}
		})

		t.Run("claims are re-entrant for the same token and renew the lease", func(t *testing.T) {
			e, s := setup(t)
			tok := NewToken()
			mustClaim(t, s, []string{"a"}, tok, ClaimAcquired)
			e.expire(30 * time.Second)
			mustClaim(t, s, []string{"a"}, tok, ClaimAcquired)
			pttl := e.rdb.PTTL(ctx, e.prefix+"dedup:a").Val()
			if pttl <= 59*time.Second || pttl > time.Minute {
				t.Fatalf("lease after re-claim: PTTL %v, want ~60s", pttl)
			}
		})

		t.Run("a key repeated in one batch is claimed once", func(t *testing.T) {
			_, s := setup(t)
			mustClaim(t, s, []string{"a", "b", "a", "a"}, NewToken(), ClaimAcquired, ClaimAcquired, ClaimBusy, ClaimBusy)
		})

		t.Run("expired lease is reclaimable", func(t *testing.T) {
			e, s := setupShortLease(t)
			mustClaim(t, s, []string{"a"}, NewToken(), ClaimAcquired)
			mustClaim(t, s, []string{"a"}, NewToken(), ClaimBusy)
			e.expire(e.lease + time.Millisecond)
			tok := NewToken()
			eventually(t, 5*time.Second, "the lease to expire", func() bool {
				res, err := s.ClaimBatch(ctx, []string{"a"}, tok)
				if err != nil {
					t.Fatal(err)
				}
				return res[0] == ClaimAcquired
			})
		})

		t.Run("stored values and lease TTL", func(t *testing.T) {
			e, s := setup(t, ClaimLease(42*time.Second))
			tok := NewToken()
			mustClaim(t, s, []string{"a"}, tok, ClaimAcquired)
			key := e.prefix + "dedup:a"
			if v := e.rdb.Get(ctx, key).Val(); v != tok {
				t.Fatalf("claimed value %q, want the token %q", v, tok)
			}
			if pttl := e.rdb.PTTL(ctx, key).Val(); pttl <= 41*time.Second || pttl > 42*time.Second {
				t.Fatalf("claim PTTL %v, want ~42s", pttl)
			}
			if err := s.ConfirmBatch(ctx, []string{"a"}, tok, []time.Duration{time.Hour}); err != nil {
				t.Fatal(err)
			}
			if v := e.rdb.Get(ctx, key).Val(); v != doneValue {
				t.Fatalf("confirmed value %q, want %q", v, doneValue)
			}
		})
	})

	t.Run("entity locks", func(t *testing.T) {
		t.Run("take the lock lease, dedup claims the claim lease", func(t *testing.T) {
			e, s := setup(t, ClaimLease(42*time.Second), LockLease(7*time.Second))
			tok := NewToken()
			res, err := s.ClaimBatchAt(ctx, []string{"a", "lock:e"}, []string{"t/0/1", AtLock}, tok)
			if err != nil {
				t.Fatal(err)
			}
			if res[0] != ClaimAcquired || res[1] != ClaimAcquired {
				t.Fatalf("claim = %v, want both acquired", res)
			}
			if pttl := e.rdb.PTTL(ctx, e.prefix+"dedup:a").Val(); pttl <= 41*time.Second || pttl > 42*time.Second {
				t.Fatalf("dedup claim PTTL %v, want ~42s", pttl)
			}
			if pttl := e.rdb.PTTL(ctx, e.prefix+"dedup:lock:e").Val(); pttl <= 6*time.Second || pttl > 7*time.Second {
				t.Fatalf("lock PTTL %v, want ~7s", pttl)
			}
			// A retried batch claims its own lock again: still the lock lease.
			e.rdb.PExpire(ctx, e.prefix+"dedup:lock:e", time.Second)
			if res, err = s.ClaimBatchAt(ctx, []string{"lock:e"}, []string{AtLock}, tok); err != nil || res[0] != ClaimAcquired {
				t.Fatalf("reclaim = %v, %v", res, err)
			}
			if pttl := e.rdb.PTTL(ctx, e.prefix+"dedup:lock:e").Val(); pttl <= 6*time.Second || pttl > 7*time.Second {
				t.Fatalf("reclaimed lock PTTL %v, want ~7s", pttl)
			}
		})

		t.Run("renewed while ours, never taken", func(t *testing.T) {
			e, s := setup(t, LockLease(7*time.Second))
			tok, other := NewToken(), NewToken()
			if _, err := s.ClaimBatchAt(ctx, []string{"lock:mine", "lock:theirs", "lock:gone"}, []string{AtLock, AtLock, AtLock}, tok); err != nil {
				t.Fatal(err)
			}
			e.rdb.PExpire(ctx, e.prefix+"dedup:lock:mine", time.Second)
			// Expired and taken by another attempt; expired and free.
			e.rdb.Set(ctx, e.prefix+"dedup:lock:theirs", other, time.Minute)
			e.rdb.Del(ctx, e.prefix+"dedup:lock:gone")
			lost, err := s.RenewLocks(ctx, []string{"lock:mine", "lock:theirs", "lock:gone"}, tok)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(lost, []string{"lock:theirs", "lock:gone"}) {
				t.Fatalf("lost = %q, want lock:theirs and lock:gone", lost)
			}
			if pttl := e.rdb.PTTL(ctx, e.prefix+"dedup:lock:mine").Val(); pttl <= 6*time.Second {
				t.Fatalf("renewed lock PTTL %v, want ~7s", pttl)
			}
			if v := e.rdb.Get(ctx, e.prefix+"dedup:lock:theirs").Val(); v != other {
				t.Fatalf("the other attempt's lock holds %q, want its token", v)
			}
			if n := e.rdb.Exists(ctx, e.prefix+"dedup:lock:gone").Val(); n != 0 {
				t.Fatal("a renewal took a free lock")
			}
		})

		t.Run("a lock is never done here", func(t *testing.T) {
			e, s := setup(t)
			// A dedup key of a source named "lock" done by the record at
			// "lock": not a position a lock claim can name.
			e.rdb.Set(ctx, e.prefix+"dedup:lock:x", doneAt(AtLock), time.Minute)
			res, err := s.ClaimBatchAt(ctx, []string{"lock:x"}, []string{AtLock}, NewToken())
			if err != nil {
				t.Fatal(err)
			}
			if res[0] != ClaimDone {
				t.Fatalf("claim = %v, want done", res[0])
			}
		})
	})

	t.Run("confirm", func(t *testing.T) {
		t.Run("sets TTL to the window, per key or one for all", func(t *testing.T) {
			e, s := setup(t)
			tok := NewToken()
			keys := []string{"a", "b", "c", "d"}
			mustClaim(t, s, keys, tok, ClaimAcquired, ClaimAcquired, ClaimAcquired, ClaimAcquired)
			if err := s.ConfirmBatch(ctx, keys[:2], tok, []time.Duration{time.Hour, 2 * time.Hour}); err != nil {
				t.Fatal(err)
			}
			if err := s.ConfirmBatch(ctx, keys[2:], tok, []time.Duration{168 * time.Hour}); err != nil {
				t.Fatal(err)
			}
			for i, want := range []time.Duration{time.Hour, 2 * time.Hour, 168 * time.Hour, 168 * time.Hour} {
				pttl := e.rdb.PTTL(ctx, e.prefix+"dedup:"+keys[i]).Val()
				if pttl > want || pttl < want-5*time.Second {
					t.Errorf("key %q: PTTL %v, want %v", keys[i], pttl, want)
				}
			}
		})

		t.Run("repeated confirm is harmless and starts the window over", func(t *testing.T) {
			e, s := setup(t)
			tok := NewToken()
			mustClaim(t, s, []string{"a"}, tok, ClaimAcquired)
			for _, w := range []time.Duration{time.Hour, 5 * time.Hour} {
				if err := s.ConfirmBatch(ctx, []string{"a"}, tok, []time.Duration{w}); err != nil {
					t.Fatal(err)
				}
			}
			if pttl := e.rdb.PTTL(ctx, e.prefix+"dedup:a").Val(); pttl <= 4*time.Hour || pttl > 5*time.Hour {
				t.Fatalf("PTTL %v after a second confirm, want the second window (5h)", pttl)
			}
			mustClaim(t, s, []string{"a"}, NewToken(), ClaimDone)
		})

		t.Run("lost claims are marked done and reported", func(t *testing.T) {
			e, s := setupShortLease(t)
			tokA, tokB := NewToken(), NewToken()
			mustClaim(t, s, []string{"expired", "taken", "kept"}, tokA, ClaimAcquired, ClaimAcquired, ClaimAcquired)
			e.expire(e.lease + time.Millisecond)
			eventually(t, 5*time.Second, "the lease to expire", func() bool {
				res, err := s.ClaimBatch(ctx, []string{"taken"}, tokB)
				if err != nil {
					t.Fatal(err)
				}
				return res[0] == ClaimAcquired
			})
			// "kept" is re-claimed by A (renewing it), "expired" has run out.
			mustClaim(t, s, []string{"kept"}, tokA, ClaimAcquired)
			eventually(t, 5*time.Second, `"expired" to expire`, func() bool {
				return e.rdb.Exists(ctx, e.prefix+"dedup:expired").Val() == 0
			})
			err := s.ConfirmBatch(ctx, []string{"expired", "taken", "kept"}, tokA, []time.Duration{time.Hour})
			var lost *LostClaimError
			if !errors.As(err, &lost) || !IsLostClaim(err) {
				t.Fatalf("confirm: %v, want a *LostClaimError", err)
			}
			want := []LostClaim{{Key: "expired"}, {Key: "taken", TakenOver: true}}
			if !slices.Equal(lost.Claims, want) {
				t.Fatalf("lost %+v, want %+v", lost.Claims, want)
			}
			if IsUnavailable(err) {
				t.Fatal("a lost claim is not unavailability")
			}
			mustClaim(t, s, []string{"expired", "taken", "kept"}, NewToken(), ClaimDone, ClaimDone, ClaimDone)
			// B, which took "taken" over, finds it done: no error, and its
			// release leaves it done.
			if err := s.ConfirmBatch(ctx, []string{"taken"}, tokB, []time.Duration{time.Hour}); err != nil {
				t.Fatalf("confirm by the taker: %v", err)
			}
			if err := s.ReleaseBatch(ctx, []string{"taken"}, tokB); err != nil {
				t.Fatal(err)
			}
			mustClaim(t, s, []string{"taken"}, NewToken(), ClaimDone)
		})
	})

	t.Run("prepare", func(t *testing.T) {
		t.Run("done to others before the commit, prepared to its own record, confirmed after", func(t *testing.T) {
			e, s := setup(t)
			tok := NewToken()
			mustClaim(t, s, []string{"a", "b"}, tok, ClaimAcquired, ClaimAcquired)
			lost, err := s.Prepare(ctx, tok, []string{"a", "b"}, []string{"raw/3/17", "raw/1/2"}, []time.Duration{time.Hour})
			if err != nil || lost != nil {
				t.Fatalf("Prepare = %v, %v; want nothing lost", lost, err)
			}
			if v := e.rdb.Get(ctx, e.prefix+"dedup:a").Val(); v != "done raw/3/17 "+tok {
				t.Fatalf("prepared value %q, want %q", v, "done raw/3/17 "+tok)
			}
			if ttl := e.rdb.PTTL(ctx, e.prefix+"dedup:a").Val(); ttl < 59*time.Minute {
				t.Fatalf("prepared TTL %v, want the dedup window (1h)", ttl)
			}
			// Sent again (its answer lost): the same keys, nothing lost;
			// at another position, or by another token, not theirs.
			lost, err = s.Prepare(ctx, tok, []string{"a", "b"}, []string{"raw/3/17", "raw/1/2"}, []time.Duration{time.Hour})
			if err != nil || lost != nil {
				t.Fatalf("Prepare again = %v, %v; want nothing lost", lost, err)
			}
			if lost, err = s.Prepare(ctx, tok, []string{"a"}, []string{"raw/3/18"}, []time.Duration{time.Hour}); err != nil || !slices.Equal(lost, []string{"a"}) {
				t.Fatalf("Prepare at another position = %v, %v; want a lost", lost, err)
			}
			if lost, err = s.Prepare(ctx, NewToken(), []string{"a"}, []string{"raw/3/17"}, []time.Duration{time.Hour}); err != nil || !slices.Equal(lost, []string{"a"}) {
				t.Fatalf("Prepare by another token = %v, %v; want a lost", lost, err)
			}
			if v := e.rdb.Get(ctx, e.prefix+"dedup:a").Val(); v != "done raw/3/17 "+tok {
				t.Fatalf("prepared value after the retries %q, want %q", v, "done raw/3/17 "+tok)
			}
			res, err := s.ClaimBatchAt(ctx, []string{"a", "b"}, []string{"raw/3/17", "raw/1/9"}, NewToken())
			if err != nil || !slices.Equal(res, []ClaimResult{ClaimPreparedHere, ClaimDone}) {
				t.Fatalf("ClaimBatchAt after Prepare = %v, %v; want prepared here (its record), done (a duplicate)", res, err)
			}
			mustClaim(t, s, []string{"a"}, tok, ClaimDone) // the script's re-entrant path
			if err := s.Settle(ctx, tok, []string{"a"}, []string{"raw/3/17"}, []time.Duration{time.Hour}, nil); err != nil {
				t.Fatalf("confirming prepared keys: %v (want no lost claim)", err)
			}
			res, err = s.ClaimBatchAt(ctx, []string{"a"}, []string{"raw/3/17"}, NewToken())
			if err != nil || !slices.Equal(res, []ClaimResult{ClaimDoneHere}) {
				t.Fatalf("ClaimBatchAt after the confirm = %v, %v; want done here", res, err)
			}
			again := NewToken()
			res, err = s.RetakeDone(ctx, []string{"b"}, again)
			if err != nil || !slices.Equal(res, []ClaimResult{ClaimAcquired}) {
				t.Fatalf("RetakeDone of a prepared key = %v, %v; want acquired", res, err)
			}
		})
		t.Run("prepared by: every key still its mark, until a redo retakes one", func(t *testing.T) {
			_, s := setup(t)
			tok := NewToken()
			keys, at := []string{"a", "b"}, []string{"raw/0/1", "raw/1/1"}
			mustClaim(t, s, keys, tok, ClaimAcquired, ClaimAcquired)
			if ok, err := s.PreparedBy(ctx, tok, keys, at); err != nil || ok {
				t.Fatalf("claimed, not prepared: %v, %v; want false", ok, err)
			}
			if _, err := s.Prepare(ctx, tok, keys, at, []time.Duration{time.Hour}); err != nil {
				t.Fatal(err)
			}
			if ok, err := s.PreparedBy(ctx, tok, keys, at); err != nil || !ok {
				t.Fatalf("prepared: %v, %v; want true", ok, err)
			}
			for name, c := range map[string]struct {
				tok string
				at  []string
			}{"another token": {NewToken(), at}, "another position": {tok, []string{"raw/0/1", "raw/1/2"}}} {
				if ok, err := s.PreparedBy(ctx, c.tok, keys, c.at); err != nil || ok {
					t.Errorf("%s: %v, %v; want false", name, ok, err)
				}
			}
			if ok, err := s.PreparedBy(ctx, tok, nil, nil); err != nil || ok {
				t.Errorf("no keys: %v, %v; want false (nothing to tell by)", ok, err)
			}
			// The record came back (the commit did not land) and another
			// attempt retook its key.
			if res, err := s.RetakeDone(ctx, []string{"b"}, NewToken()); err != nil || res[0] != ClaimAcquired {
				t.Fatalf("RetakeDone = %v, %v", res, err)
			}
			if ok, err := s.PreparedBy(ctx, tok, keys, at); err != nil || ok {
				t.Fatalf("after a retake: %v, %v; want false", ok, err)
			}
		})
		t.Run("a claim no longer ours is reported and left alone", func(t *testing.T) {
			e, s := setup(t)
			mine, other := NewToken(), NewToken()
			mustClaim(t, s, []string{"a"}, mine, ClaimAcquired)
			mustClaim(t, s, []string{"b"}, other, ClaimAcquired)
			lost, err := s.Prepare(ctx, mine, []string{"a", "b", "gone"}, []string{"raw/0/1", "raw/0/2", "raw/0/3"}, []time.Duration{time.Hour})
			if err != nil || !slices.Equal(lost, []string{"b", "gone"}) {
				t.Fatalf("Prepare = %v, %v; want b and gone lost", lost, err)
			}
			if v := e.rdb.Get(ctx, e.prefix+"dedup:b").Val(); v != other {
				t.Fatalf("another attempt's claim now %q, want %q", v, other)
			}
			if n := e.rdb.Exists(ctx, e.prefix+"dedup:gone").Val(); n != 0 {
				t.Fatal("Prepare created a key it did not hold")
			}
		})
		t.Run("released by its token after an abort, by no other", func(t *testing.T) {
			_, s := setup(t)
			tok := NewToken()
			mustClaim(t, s, []string{"a"}, tok, ClaimAcquired)
			if _, err := s.Prepare(ctx, tok, []string{"a"}, []string{"raw/0/1"}, []time.Duration{time.Hour}); err != nil {
				t.Fatal(err)
			}
			if err := s.ReleaseBatch(ctx, []string{"a"}, NewToken()); err != nil {
				t.Fatal(err)
			}
			mustClaim(t, s, []string{"a"}, NewToken(), ClaimDone)
			if err := s.ReleaseBatch(ctx, []string{"a"}, tok); err != nil {
				t.Fatal(err)
			}
			mustClaim(t, s, []string{"a"}, NewToken(), ClaimAcquired)
		})
	})

	t.Run("release", func(t *testing.T) {
		t.Run("only by the owner", func(t *testing.T) {
			e, s := setup(t)
			owner, other := NewToken(), NewToken()
			mustClaim(t, s, []string{"a", "b"}, owner, ClaimAcquired, ClaimAcquired)
			if err := s.ReleaseBatch(ctx, []string{"a", "b"}, other); err != nil {
				t.Fatal(err)
			}
			if v := e.rdb.Get(ctx, e.prefix+"dedup:a").Val(); v != owner {
				t.Fatalf("after release by another token: %q, want the owner's %q", v, owner)
			}
			mustClaim(t, s, []string{"a"}, NewToken(), ClaimBusy)
			if err := s.ReleaseBatch(ctx, []string{"a", "never-claimed"}, owner); err != nil {
				t.Fatal(err)
			}
			mustClaim(t, s, []string{"a", "b"}, NewToken(), ClaimAcquired, ClaimBusy)
		})

		t.Run("leaves done keys done", func(t *testing.T) {
			_, s := setup(t)
			tok := NewToken()
			mustClaim(t, s, []string{"a"}, tok, ClaimAcquired)
			if err := s.ConfirmBatch(ctx, []string{"a"}, tok, []time.Duration{time.Hour}); err != nil {
				t.Fatal(err)
			}
			if err := s.ReleaseBatch(ctx, []string{"a"}, tok); err != nil {
				t.Fatal(err)
			}
			mustClaim(t, s, []string{"a"}, NewToken(), ClaimDone)
		})
	})

	t.Run("apply", func(t *testing.T) {
		t.Run("out of order: newest wins, stale counted", func(t *testing.T) {
			_, s := setup(t)
			order := []int{3, 1, 5, 2, 4}
			var stale int
			for _, sec := range order {
				res := mustApply(t, s, Update{EntityKey: "order:1", EventTime: at(sec), EventID: "e" + strconv.Itoa(sec), State: []byte("s" + strconv.Itoa(sec))})
				if res[0] == Stale {
					stale++
				}
			}
			if stale != 3 { // 1 and 2 (after 3), 4 (after 5)
				t.Fatalf("%d stale, want 3", stale)
			}
			mustEntity(t, s, "order:1", at(5), "e5", "s5")
		})

		t.Run("entity retention: every touch sets it, none keeps an entity for good", func(t *testing.T) {
			const retention = 30 * 24 * time.Hour
			e, s := setup(t, EntityRetention(retention))
			key := e.prefix + "entity:order:r"
			pttl := func() time.Duration { return e.rdb.PTTL(ctx, key).Val() }
			near := func(d time.Duration) bool { return d <= retention && d > retention-time.Minute }
			mustApply(t, s, Update{EntityKey: "order:r", EventTime: at(5), EventID: "e5", State: []byte("s5")})
			if d := pttl(); !near(d) {
				t.Fatalf("applied: PTTL %v, want %v", d, retention)
			}
			// A stale event is news of the entity too: its retention starts over.
			if err := e.rdb.PExpire(ctx, key, time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
			if res := mustApply(t, s, Update{EntityKey: "order:r", EventTime: at(1), EventID: "e1", State: []byte("s1")}); res[0] != Stale {
				t.Fatalf("older event: %v, want stale", res[0])
			}
			if d := pttl(); !near(d) {
				t.Fatalf("stale: PTTL %v, want %v", d, retention)
			}
			// Without a retention (the default), an entity is kept for good,
			// one that had one included: the setting was turned off.
			keep := New(e.rdb, KeyPrefix(e.prefix))
			keep.perKey = s.perKey
			mustApply(t, keep, Update{EntityKey: "order:r", EventTime: at(6), EventID: "e6", State: []byte("s6")})
			if d := pttl(); d != -1 {
				t.Fatalf("without a retention: PTTL %v, want none (-1)", d)
			}
			mustEntity(t, keep, "order:r", at(6), "e6", "s6")
			if res := mustApply(t, keep, Update{EntityKey: "order:r", EventTime: at(2), EventID: "e2", State: []byte("s2")}); res[0] != Stale {
				t.Fatalf("older event without a retention: %v, want stale", res[0])
			}
			if d := pttl(); d != -1 {
				t.Fatalf("stale without a retention: PTTL %v, want none (-1)", d)
			}
		})

		t.Run("out of order inside one batch", func(t *testing.T) {
			_, s := setup(t)
			got := mustApply(t, s,
				Update{EntityKey: "x", EventTime: at(2), EventID: "e2", State: []byte("2")},
				Update{EntityKey: "y", EventTime: at(9), EventID: "f9", State: []byte("9")},
				Update{EntityKey: "x", EventTime: at(3), EventID: "e3", State: []byte("3")},
				Update{EntityKey: "x", EventTime: at(1), EventID: "e1", State: []byte("1")},
				Update{EntityKey: "y", EventTime: at(8), EventID: "f8", State: []byte("8")},
			)
			if want := []ApplyResult{Applied, Applied, Applied, Stale, Stale}; !slices.Equal(got, want) {
				t.Fatalf("results %v, want %v", got, want)
			}
			mustEntity(t, s, "x", at(3), "e3", "3")
			mustEntity(t, s, "y", at(9), "f9", "9")
		})

		t.Run("same event reapplied is applied (idempotent)", func(t *testing.T) {
			_, s := setup(t)
			u := Update{EntityKey: "order:7", EventTime: at(10), EventID: "evt_1", State: []byte(`{"status":"paid"}`)}
			for range 3 {
				if got := mustApply(t, s, u); got[0] != Applied {
					t.Fatalf("reapply: %v, want applied", got[0])
				}
			}
			// In one batch too, as a retried batch would send it.
			if got := mustApply(t, s, u, u); !slices.Equal(got, []ApplyResult{Applied, Applied}) {
				t.Fatalf("reapply in one batch: %v", got)
			}
			mustEntity(t, s, "order:7", at(10), "evt_1", `{"status":"paid"}`)
		})

		t.Run("equal time, other event, no receive times: the later processed wins", func(t *testing.T) {
			_, s := setup(t)
			got := mustApply(t, s,
				Update{EntityKey: "pi", EventTime: at(0), EventID: "created", State: []byte("c")},
				Update{EntityKey: "pi", EventTime: at(0), EventID: "succeeded", State: []byte("s")},
			)
			if !slices.Equal(got, []ApplyResult{Applied, Applied}) {
				t.Fatalf("results %v", got)
			}
			mustEntity(t, s, "pi", at(0), "succeeded", "s")
		})

		t.Run("equal time: the one received later wins, in any order", func(t *testing.T) {
			_, s := setup(t)
			rcv := func(ms int) time.Time { return base.Add(time.Hour + time.Duration(ms)*time.Millisecond) }
			// A retried or requeued event comes back after a later one of
			// the same (second-resolution) time: it must not win.
			got := mustApply(t, s,
				Update{EntityKey: "pi", EventTime: at(0), ReceivedAt: rcv(2), EventID: "succeeded", State: []byte("s")},
				Update{EntityKey: "pi", EventTime: at(0), ReceivedAt: rcv(1), EventID: "created", State: []byte("c")},
			)
			if !slices.Equal(got, []ApplyResult{Applied, Stale}) {
				t.Fatalf("later received, then earlier: %v, want [applied stale]", got)
			}
			mustEntity(t, s, "pi", at(0), "succeeded", "s")
			// The same event again (a retried batch) applies.
			if got := mustApply(t, s, Update{EntityKey: "pi", EventTime: at(0), ReceivedAt: rcv(2), EventID: "succeeded", State: []byte("s")}); got[0] != Applied {
				t.Fatalf("same event again: %v, want applied", got[0])
			}
			if got := mustApply(t, s, Update{EntityKey: "pi", EventTime: at(0), ReceivedAt: rcv(3), EventID: "captured", State: []byte("k")}); got[0] != Applied {
				t.Fatalf("received later: %v, want applied", got[0])
			}
			// An update without a receive time breaks no tie (the later
			// applied wins), and leaves none stored.
			if got := mustApply(t, s, Update{EntityKey: "pi", EventTime: at(0), EventID: "nr", State: []byte("n")}); got[0] != Applied {
				t.Fatalf("no receive time: %v, want applied", got[0])
			}
			if got := mustApply(t, s, Update{EntityKey: "pi", EventTime: at(0), ReceivedAt: rcv(1), EventID: "created", State: []byte("c")}); got[0] != Applied {
				t.Fatalf("over a state without a receive time: %v, want applied", got[0])
			}
			// Business time first: a later receive time does not make an
			// older event newer.
			if got := mustApply(t, s, Update{EntityKey: "pi", EventTime: at(-1), ReceivedAt: rcv(9), EventID: "old", State: []byte("o")}); got[0] != Stale {
				t.Fatalf("older event received later: %v, want stale", got[0])
			}
			stamps, err := s.EntityTimes(ctx, []string{"pi"})
			if err != nil || len(stamps) != 1 || !stamps[0].EventTime.Equal(at(0)) || !stamps[0].ReceivedAt.Equal(rcv(1)) {
				t.Fatalf("entity times %+v, %v; want %v received %v", stamps, err, at(0), rcv(1))
			}
			if !(Stamp{EventTime: at(0), ReceivedAt: rcv(1)}).Before(Stamp{EventTime: at(0), ReceivedAt: rcv(2)}) ||
				(Stamp{EventTime: at(0)}).Before(Stamp{EventTime: at(0), ReceivedAt: rcv(2)}) ||
				!(Stamp{EventTime: at(0), ReceivedAt: rcv(5)}).Before(Stamp{EventTime: at(1)}) {
				t.Fatal("Stamp.Before does not order as ApplyBatch does")
			}
		})

		t.Run("microsecond precision", func(t *testing.T) {
			_, s := setup(t)
			mustApply(t, s, Update{EntityKey: "e", EventTime: base.Add(1500 * time.Nanosecond), EventID: "a", State: []byte("a")})
			// 1.9µs truncates to the same microsecond: not older, applies.
			if got := mustApply(t, s, Update{EntityKey: "e", EventTime: base.Add(1900 * time.Nanosecond), EventID: "b"}); got[0] != Applied {
				t.Fatalf("same microsecond: %v", got[0])
			}
			if got := mustApply(t, s, Update{EntityKey: "e", EventTime: base.Add(999 * time.Nanosecond), EventID: "c"}); got[0] != Stale {
				t.Fatalf("earlier microsecond: %v", got[0])
			}
			mustEntity(t, s, "e", base.Add(time.Microsecond), "b", "")
		})

		t.Run("binary state and stored layout", func(t *testing.T) {
			e, s := setup(t)
			state := []byte{0, 1, 0xff, '\n', 0}
			mustApply(t, s, Update{EntityKey: "bin", EventTime: at(1), EventID: "e1", State: state})
			mustEntity(t, s, "bin", at(1), "e1", string(state))
			h := e.rdb.HGetAll(ctx, e.prefix+"entity:bin").Val()
			if h["ts"] != strconv.FormatInt(at(1).UnixMicro(), 10) || h["event_id"] != "e1" || h["state"] != string(state) {
				t.Fatalf("stored hash %q", h)
			}
			if _, ok, err := s.Entity(ctx, "missing"); ok || err != nil {
				t.Fatalf("missing entity: ok=%v err=%v", ok, err)
			}
		})
		t.Run("entity times: what ApplyBatch compares with", func(t *testing.T) {
			e, s := setup(t)
			mustApply(t, s, Update{EntityKey: "a", EventTime: base.Add(1500 * time.Nanosecond), EventID: "e1"},
				Update{EntityKey: "b", EventTime: at(7), EventID: "e2"})
			got, err := s.EntityTimes(ctx, []string{"b", "none", "a"})
			if err != nil {
				t.Fatal(err)
			}
			if want := []time.Time{at(7), {}, base.Add(time.Microsecond)}; len(got) != 3 || !got[0].EventTime.Equal(want[0]) || !got[1].EventTime.IsZero() || !got[2].EventTime.Equal(want[2]) {
				t.Fatalf("times %v, want %v", got, want)
			}
			if got, err := s.EntityTimes(ctx, nil); err != nil || len(got) != 0 {
				t.Fatalf("no keys: %v %v", got, err)
			}
			e.rdb.HSet(ctx, e.prefix+"entity:bad", "ts", "soon")
			if _, err := s.EntityTimes(ctx, []string{"bad"}); err == nil {
				t.Fatal("a malformed stored time read as a time")
			}
		})
	})

	// Keys under Inlet's names that something else wrote are refused by
	// every path alike, naming the key: apply read a ts of "1.7e15" or
	// "0x10" as a number (EntityTimes refused it), and a date or a key of
	// another type failed a batch of hundreds without saying which key.
	t.Run("a value Inlet did not write is refused, naming its key", func(t *testing.T) {
		e, s := setup(t)
		for _, ts := range []string{"2026-01-01T00:00:00Z", "1.7e15", "0x10", " 12"} {
			e.rdb.HSet(ctx, e.prefix+"entity:odd", "ts", ts, "event_id", "x", "state", "s")
			ups := []Update{{EntityKey: "fine", EventTime: at(1), EventID: "y"}, {EntityKey: "odd", EventTime: at(1), EventID: "y"}}
			if _, err := s.ApplyBatch(ctx, ups); err == nil || !strings.Contains(err.Error(), "entity:odd") || !strings.Contains(err.Error(), strconv.Quote(ts)) || IsUnavailable(err) {
				t.Errorf("apply over ts %q: %v; want an error naming the entity and its ts", ts, err)
			}
			if _, err := s.EntityTimes(ctx, []string{"odd"}); err == nil || !strings.Contains(err.Error(), "odd") {
				t.Errorf("entity times over ts %q: %v; want an error naming the entity", ts, err)
			}
			if got, _ := e.rdb.HGet(ctx, e.prefix+"entity:odd", "ts").Result(); got != ts {
				t.Errorf("ts %q overwritten with %q", ts, got)
			}
		}
		e.rdb.Set(ctx, e.prefix+"entity:str", "x", 0)
		if _, err := s.ApplyBatch(ctx, []Update{{EntityKey: "str", EventTime: at(1), EventID: "y"}}); err == nil || !strings.Contains(err.Error(), `entity:str`) {
			t.Errorf("apply over a string: %v; want an error naming the key", err)
		}
		if _, err := s.EntityTimes(ctx, []string{"str"}); err == nil || !strings.Contains(err.Error(), `entity:str"`) {
			t.Errorf("entity times over a string: %v; want an error naming the key", err)
		}
		e.rdb.HSet(ctx, e.prefix+"dedup:h", "a", "b")
		if _, err := s.ClaimBatch(ctx, []string{"ok", "h"}, NewToken()); err == nil || !strings.Contains(err.Error(), `dedup:h"`) || IsUnavailable(err) {
			t.Errorf("claim over a hash: %v; want an error naming the key", err)
		}
	})

	t.Run("batches longer than one script call keep their order", func(t *testing.T) {
		_, s := setup(t)
		n := 2*maxScriptKeys + 7
		keys := make([]string, n)
		for i := range keys {
			keys[i] = "k" + strconv.Itoa(i)
		}
		tok := NewToken()
		// Claim the odd keys and confirm every third of them first.
		var odd, done []string
		for i := 1; i < n; i += 2 {
			odd = append(odd, keys[i])
			if i%3 == 0 {
				done = append(done, keys[i])
			}
		}
		if _, err := s.ClaimBatch(ctx, odd, tok); err != nil {
			t.Fatal(err)
		}
		if err := s.ConfirmBatch(ctx, done, tok, []time.Duration{time.Hour}); err != nil {
			t.Fatal(err)
		}
		res, err := s.ClaimBatch(ctx, keys, NewToken())
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			want := ClaimAcquired
			switch {
			case i%2 == 1 && i%3 == 0:
				want = ClaimDone
			case i%2 == 1:
				want = ClaimBusy
			}
			if r != want {
				t.Fatalf("key %d: %v, want %v", i, r, want)
			}
		}
		// One entity's updates span the chunk boundaries: every other one
		// goes back in time and is stale.
		ups := make([]Update, n)
		for i := range ups {
			sec := i
			if i%2 == 1 {
				sec = i - 2
			}
			ups[i] = Update{EntityKey: "one", EventTime: at(sec), EventID: strconv.Itoa(i)}
		}
		got := mustApply(t, s, ups...)
		for i, r := range got {
			if want := map[bool]ApplyResult{true: Stale, false: Applied}[i%2 == 1]; r != want {
				t.Fatalf("update %d: %v, want %v", i, r, want)
			}
		}
		mustEntity(t, s, "one", at(n-1), strconv.Itoa(n-1), "")
	})

	t.Run("settle confirms and releases in one call", func(t *testing.T) {
		_, s := setup(t)
		tok := NewToken()
		mustClaim(t, s, []string{"done", "lock", "other"}, tok, ClaimAcquired, ClaimAcquired, ClaimAcquired)
		if err := s.Settle(ctx, tok, []string{"done"}, nil, []time.Duration{time.Hour}, []string{"lock", "never"}); err != nil {
			t.Fatal(err)
		}
		mustClaim(t, s, []string{"done", "lock", "other", "never"}, NewToken(), ClaimDone, ClaimAcquired, ClaimBusy, ClaimAcquired)
		if err := s.Settle(ctx, tok, nil, nil, []time.Duration{time.Hour}, nil); err != nil {
			t.Fatalf("empty settle: %v", err)
		}
	})

	t.Run("entity events, and deleting an entity only while it is the event named", func(t *testing.T) {
		// For replay rebuild: a state deleted after a newer event was
		// applied to it was lost for good.
		_, s := setup(t)
		mustApply(t, s, Update{EntityKey: "a", EventTime: at(1), EventID: "e1"}, Update{EntityKey: "b", EventTime: at(2), EventID: "e2"})
		got, err := s.EntityEvents(ctx, []string{"a", "none", "b"})
		if err != nil {
			t.Fatal(err)
		}
		want := []EntityEvent{{EntityKey: "a", EventID: "e1", EventTime: at(1)}, {EntityKey: "none"}, {EntityKey: "b", EventID: "e2", EventTime: at(2)}}
		for i := range want {
			if got[i].EntityKey != want[i].EntityKey || got[i].EventID != want[i].EventID || !got[i].EventTime.Equal(want[i].EventTime) {
				t.Fatalf("entity events %+v, want %+v", got, want)
			}
		}
		mustApply(t, s, Update{EntityKey: "b", EventTime: at(3), EventID: "e3"}) // b moved on
		deleted, err := s.DeleteEntitiesIf(ctx, []EntityEvent{{EntityKey: "a", EventID: "e1"}, {EntityKey: "b", EventID: "e2"}, {EntityKey: "none", EventID: "e1"}})
		if err != nil || !slices.Equal(deleted, []bool{true, false, false}) {
			t.Fatalf("deleted %v, %v; want a only", deleted, err)
		}
		if _, ok, _ := s.Entity(ctx, "a"); ok {
			t.Fatal("a still has state")
		}
		mustEntity(t, s, "b", at(3), "e3", "")
		if deleted, err := s.DeleteEntitiesIf(ctx, nil); err != nil || len(deleted) != 0 {
			t.Fatalf("empty: %v, %v", deleted, err)
		}
	})

	t.Run("scripts are reloaded after SCRIPT FLUSH", func(t *testing.T) {
		e, s := setup(t)
		tok := NewToken()
		mustClaim(t, s, []string{"a"}, tok, ClaimAcquired)
		mustApply(t, s, Update{EntityKey: "x", EventTime: at(1), EventID: "1"})
		if err := e.rdb.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		mustClaim(t, s, []string{"a", "b"}, tok, ClaimAcquired, ClaimAcquired)
		if err := e.rdb.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if got := mustApply(t, s, Update{EntityKey: "x", EventTime: at(0), EventID: "0"}, Update{EntityKey: "x", EventTime: at(2), EventID: "2"}); !slices.Equal(got, []ApplyResult{Stale, Applied}) {
			t.Fatalf("apply after flush: %v", got)
		}
		for _, flush := range []bool{true, false} {
			if flush {
				if err := e.rdb.ScriptFlush(ctx).Err(); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.ReleaseBatch(ctx, []string{"b"}, tok); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.rdb.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if err := s.ConfirmBatch(ctx, []string{"a"}, tok, []time.Duration{time.Hour}); err != nil {
			t.Fatal(err)
		}
		mustClaim(t, s, []string{"a", "b"}, NewToken(), ClaimDone, ClaimAcquired)
	})

	t.Run("empty batches do nothing", func(t *testing.T) {
		_, s := setup(t)
		tok := NewToken()
		if res, err := s.ClaimBatch(ctx, nil, tok); err != nil || len(res) != 0 {
			t.Fatalf("claim: %v %v", res, err)
		}
		if err := s.ConfirmBatch(ctx, nil, tok, []time.Duration{time.Hour}); err != nil {
			t.Fatal(err)
		}
		if err := s.ReleaseBatch(ctx, nil, tok); err != nil {
			t.Fatal(err)
		}
		if res, err := s.ApplyBatch(ctx, nil); err != nil || len(res) != 0 {
			t.Fatalf("apply: %v %v", res, err)
		}
	})

	t.Run("invalid arguments are rejected before sending", func(t *testing.T) {
		_, s := setup(t)
		tok := NewToken()
		for name, err := range map[string]error{
			"empty token":     func() error { _, err := s.ClaimBatch(ctx, []string{"a"}, ""); return err }(),
			"reserved token":  func() error { _, err := s.ClaimBatch(ctx, []string{"a"}, doneValue); return err }(),
			"done-like token": func() error { _, err := s.ClaimBatch(ctx, []string{"a"}, "done x/0/1"); return err }(),
			"positions mismatch": func() error {
				_, err := s.ClaimBatchAt(ctx, []string{"a", "b"}, []string{"x/0/1"}, tok)
				return err
			}(),
			"settle positions": s.Settle(ctx, tok, []string{"a", "b"}, []string{"x/0/1"}, []time.Duration{time.Hour}, nil),
			"release token":    s.ReleaseBatch(ctx, []string{"a"}, ""),
			"windows mismatch": s.ConfirmBatch(ctx, []string{"a", "b", "c"}, tok, []time.Duration{time.Hour, time.Hour}),
			"no window":        s.ConfirmBatch(ctx, []string{"a"}, tok, nil),
			"tiny window":      s.ConfirmBatch(ctx, []string{"a"}, tok, []time.Duration{time.Microsecond}),
			"zero time": func() error {
				_, err := s.ApplyBatch(ctx, []Update{{EntityKey: "x", EventID: "1"}})
				return err
			}(),
			"far future": func() error {
				_, err := s.ApplyBatch(ctx, []Update{{EntityKey: "x", EventTime: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)}})
				return err
			}(),
			"no entity key": func() error {
				_, err := s.ApplyBatch(ctx, []Update{{EventTime: at(1)}})
				return err
			}(),
		} {
			if !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
			}
		}
		mustClaim(t, s, []string{"a"}, tok, ClaimAcquired)
	})

	t.Run("cancelled context propagates, is not unavailability", func(t *testing.T) {
		_, s := setup(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := s.ClaimBatch(cctx, []string{"a"}, NewToken())
		if !errors.Is(err, context.Canceled) || IsUnavailable(err) {
			t.Fatalf("claim with a cancelled ctx: %v", err)
		}
		_, err = s.ApplyBatch(cctx, []Update{{EntityKey: "x", EventTime: at(1)}})
		if !errors.Is(err, context.Canceled) || IsUnavailable(err) {
			t.Fatalf("apply with a cancelled ctx: %v", err)
		}
		dctx, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
		defer cancel()
		err = s.ConfirmBatch(dctx, []string{"a"}, NewToken(), []time.Duration{time.Hour})
		if !errors.Is(err, context.DeadlineExceeded) || IsUnavailable(err) {
			t.Fatalf("confirm past the ctx deadline: %v", err)
		}
	})

	t.Run("a key of the wrong type is an error, not unavailability", func(t *testing.T) {
		e, s := setup(t)
		if err := e.rdb.HSet(ctx, e.prefix+"dedup:h", "f", "v").Err(); err != nil {
			t.Fatal(err)
		}
		if err := e.rdb.Set(ctx, e.prefix+"entity:s", "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		_, err := s.ClaimBatch(ctx, []string{"ok", "h"}, NewToken())
		if err == nil || IsUnavailable(err) {
			t.Fatalf("claim of a hash key: %v", err)
		}
		_, err = s.ApplyBatch(ctx, []Update{{EntityKey: "s", EventTime: at(1)}})
		if err == nil || IsUnavailable(err) {
			t.Fatalf("apply to a string key: %v", err)
		}
	})

	t.Run("redis down is unavailable", func(t *testing.T) {
		e, s := setup(t)
		mustClaim(t, s, []string{"a"}, NewToken(), ClaimAcquired)
		if e.kill != nil {
			e.kill()
		} else {
			s = New(deadClient(t), KeyPrefix(e.prefix))
		}
		tok := NewToken()
		calls := map[string]func() error{
			"claim":   func() error { _, err := s.ClaimBatch(ctx, []string{"a"}, tok); return err },
			"confirm": func() error { return s.ConfirmBatch(ctx, []string{"a"}, tok, []time.Duration{time.Hour}) },
			"release": func() error { return s.ReleaseBatch(ctx, []string{"a"}, tok) },
			"apply": func() error {
				_, err := s.ApplyBatch(ctx, []Update{{EntityKey: "x", EventTime: at(1)}})
				return err
			},
			"entity": func() error { _, _, err := s.Entity(ctx, "x"); return err },
		}
		for name, call := range calls {
			err := call()
			t.Logf("%s: %v", name, err)
			var ne net.Error
			if !IsUnavailable(err) || !errors.As(err, &ne) {
				t.Errorf("%s with redis down: %v, want ErrUnavailable wrapping a net.Error", name, err)
			}
		}
	})

	t.Run("long keys: bounded in Redis, newest-wins and dedup kept", func(t *testing.T) {
		e, s := setup(t)
		// Entity and natural keys come from payloads: a sender's 1 MiB
		// key must not become 1 MiB of Redis key kept for good.
		long := strings.Repeat("k", 1<<20)
		other := long[:len(long)-1] + "j" // same head, another key
		exact := strings.Repeat("e", MaxKeyBytes)
		if got := mustApply(t, s, Update{EntityKey: long, EventTime: at(10), EventID: "a"},
			Update{EntityKey: other, EventTime: at(20), EventID: "b"},
			Update{EntityKey: exact, EventTime: at(30), EventID: "c"}); !slices.Equal(got, []ApplyResult{Applied, Applied, Applied}) {
			t.Fatalf("first applies: %v", got)
		}
		if got := mustApply(t, s, Update{EntityKey: long, EventTime: at(5), EventID: "old"},
			Update{EntityKey: other, EventTime: at(15), EventID: "old"}); !slices.Equal(got, []ApplyResult{Stale, Stale}) {
			t.Fatalf("older events of the long keys: %v, want both stale", got)
		}
		mustEntity(t, s, long, at(10), "a", "")
		mustEntity(t, s, other, at(20), "b", "")
		mustEntity(t, s, exact, at(30), "c", "")
		mustClaim(t, s, []string{"dedup:src:" + long, "dedup:src:" + other}, "t1", ClaimAcquired, ClaimAcquired)
		mustClaim(t, s, []string{"dedup:src:" + long}, "t2", ClaimBusy)
		for _, k := range []string{s.entityKey(long), s.entityKey(other), s.entityKey(exact), s.dedupKey("dedup:src:" + long)} {
			n, err := e.rdb.Exists(ctx, k).Result()
			if err != nil || n != 1 {
				t.Fatalf("key %.40q…: exists %d, %v", k, n, err)
			}
			if name := strings.TrimPrefix(strings.TrimPrefix(k, e.prefix+"entity:"), e.prefix+"dedup:"); len(name) > MaxKeyBytes {
				t.Errorf("Redis key of %d bytes after its prefix, want at most %d", len(name), MaxKeyBytes)
			}
		}
		if n, err := s.DeleteEntities(ctx, []string{long}); err != nil || n != 1 {
			t.Fatalf("delete the long entity: %d, %v", n, err)
		}
	})
}

// deadClient returns a client for an address nothing listens on.
func deadClient(t testing.TB) *redis.Client {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	rdb := redis.NewClient(fastFailOptions(addr))
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func mustClaim(t *testing.T, s *Store, keys []string, token string, want ...ClaimResult) {
	t.Helper()
	got, err := s.ClaimBatch(context.Background(), keys, token)
	if err != nil {
		t.Fatalf("claim %q: %v", keys, err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("claim %q: %v, want %v", keys, got, want)
	}
}

func mustApply(t *testing.T, s *Store, ups ...Update) []ApplyResult {
	t.Helper()
	got, err := s.ApplyBatch(context.Background(), ups)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if len(got) != len(ups) {
		t.Fatalf("apply: %d results for %d updates", len(got), len(ups))
	}
	return got
}

func mustEntity(t *testing.T, s *Store, key string, ts time.Time, eventID, state string) {
	t.Helper()
	st, ok, err := s.Entity(context.Background(), key)
	if err != nil || !ok {
		t.Fatalf("entity %q: ok=%v err=%v", key, ok, err)
	}
	if !st.EventTime.Equal(ts) || st.EventID != eventID || !bytes.Equal(st.State, []byte(state)) {
		t.Fatalf("entity %q: {%v %q %q}, want {%v %q %q}", key, st.EventTime, st.EventID, st.State, ts, eventID, state)
	}
}

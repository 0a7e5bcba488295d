package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// doneValue is what a dedup key holds once its event was processed: "done",
// or "done " and the position of the record that processed it (see
// [Store.Settle]). The Lua scripts spell it out too; a token may never start
// with it.
const doneValue = "done"

// isDone reports whether v, a dedup key's value, marks its event processed.
func isDone(v string) bool { return strings.HasPrefix(v, doneValue) }

// doneAt is the value that marks a key done by the record at position at
// ("" for none).
func doneAt(at string) string {
	if at == "" {
		return doneValue
	}
	return doneValue + " " + at
}

// ClaimResult is the outcome of claiming one dedup key.
type ClaimResult int

const (
	// ClaimAcquired: the key is now held by this token for the claim lease.
	// Process the event, then ConfirmBatch (success) or ReleaseBatch (failure).
	// Claiming a key this token already holds also answers ClaimAcquired and
	// renews the lease, so a retried batch gets its own claims back.
	ClaimAcquired ClaimResult = iota + 1
	// ClaimDone: the event was already processed within the dedup window.
	// Skip it as a duplicate.
	ClaimDone
	// ClaimBusy: another attempt holds a live lease on the key (another
	// worker, or an earlier occurrence of the same key in the same batch).
	// Its outcome is unknown yet; retry the event later, when it will be
	// either done or free again.
	ClaimBusy
	// ClaimDoneHere: the key is done, and by the record at the very
	// position this claim names (see [Store.ClaimBatchAt]): the same record
	// came back after it was processed. Kafka only hands a record out again
	// when the commit that covered it did not land (a broker failing over
	// while writing a transaction's markers can lose one after it was
	// acknowledged; its outputs are aborted) or when the group's offsets
	// were reset over it. Its outputs may be missing: process it again
	// ([Store.RetakeDone]) rather than skip it as a duplicate.
	ClaimDoneHere
	// ClaimPreparedHere: the key was marked done by [Store.Prepare] for
	// the record at the very position this claim names, and never
	// confirmed: the attempt that marked it died, or failed, before or
	// during its commit, and the same record came back because that
	// commit did not land (had it landed, its offset would be past the
	// record). Process it again ([Store.RetakeDone]): the expected
	// redelivery after a crash, not a lost commit.
	ClaimPreparedHere
)

func (r ClaimResult) String() string {
	switch r {
	case ClaimAcquired:
		return "acquired"
	case ClaimDone:
		return "done"
	case ClaimBusy:
		return "busy"
	case ClaimDoneHere:
		return "done here"
	case ClaimPreparedHere:
		return "prepared here"
	}
	return fmt.Sprintf("ClaimResult(%d)", int(r))
}

// Claim is a dedup key held by one processing attempt, and the token it was
// claimed with: what the processor keeps between ClaimBatch and
// ConfirmBatch or ReleaseBatch.
type Claim struct {
	Key   string
	Token string
}

// NewToken returns a random token (128 bits) for one processing attempt.
// Use a fresh token per attempt, never one shared by two workers: the token
// is what tells a live claim of ours from somebody else's.
func NewToken() string { return rand.Text() }

func checkToken(token string) error {
	if token == "" || isDone(token) {
		return fmt.Errorf("%w: token %q: must be non-empty and not start with %q", ErrInvalidArgument, token, doneValue)
	}
	return nil
}

// ClaimBatch claims each key for token, in one round trip. For each key it
// sends SET <prefix>dedup:<key> <token> NX PX <lease> GET (Redis >= 7.0):
// one atomic command that takes a free key and otherwise returns what the
// key holds, so it reports whether the key is done or busy (see
// [ClaimResult]); the results are in the order of keys. Plain commands in a
// pipeline cost Redis about a fifth less CPU than a Lua loop making the
// same calls (measured: 2.6 against 3.3 µs per key).
//
// A key this token already holds (a retried batch) is acquired again and
// its lease renewed, atomically, in a second round trip for those keys
// only.
//
// A key that appears more than once in keys is claimed once: the first
// occurrence gets the real result, later ones ClaimBusy, so a duplicate
// fetched in the same batch as its original is not processed twice.
//
// On error no results are returned but some keys may be claimed: retry the
// batch with the same token (claims are re-entrant) or ReleaseBatch it.
// A cancelled ctx returns an error wrapping ctx.Err(); what was sent before
// may still have taken effect.
func (s *Store) ClaimBatch(ctx context.Context, keys []string, token string) ([]ClaimResult, error) {
	return s.ClaimBatchAt(ctx, keys, nil, token)
}

// AtLock, as a key's position in [Store.ClaimBatchAt], makes the key an
// entity lock: it takes the lock lease ([LockLease]), not the claim lease,
// and is never done. No record position is spelled so (the processor's
// hold a slash).
const AtLock = "lock"

// ClaimBatchAt is [Store.ClaimBatch] for keys claimed on behalf of records
// at known positions: at[i] names where key i's record is (the processor
// uses "<topic>/<partition>/<offset>"; "" for none; [AtLock] for an entity
// lock), and at is nil or as long as keys. A key done by a record at that
// same position (marked by [Store.Settle] with the same at) answers
// ClaimDoneHere instead of ClaimDone. Positions must not contain spaces.
func (s *Store) ClaimBatchAt(ctx context.Context, keys, at []string, token string) ([]ClaimResult, error) {
	if err := checkToken(token); err != nil {
		return nil, err
	}
	if at != nil && len(at) != len(keys) {
		return nil, fmt.Errorf("%w: %d positions for %d keys", ErrInvalidArgument, len(at), len(keys))
	}
	sent := make([]int, 0, len(keys)) // indexes into keys of first occurrences
	seen := make(map[string]struct{}, len(keys))
	for i, k := range keys {
		if _, dup := seen[k]; !dup {
			seen[k] = struct{}{}
			sent = append(sent, i)
		}
	}
	res := make([]ClaimResult, len(keys))
	for i := range res {
		res[i] = ClaimBusy
	}
	if len(sent) == 0 {
		return res, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StatusCmd, len(sent))
	tok, lease, lockLease := any(token), any(s.cfg.lease.Milliseconds()), any(s.cfg.lockLease.Milliseconds())
	isLock := func(i int) bool { return at != nil && at[i] == AtLock }
	for j, i := range sent {
		l := lease
		if isLock(i) {
			l = lockLease
		}
		cmds[j] = queue(ctx, pipe, "set", s.dedupKey(keys[i]), tok, "nx", "px", l, "get")
	}
	// Exec's error is the first command's, redis.Nil included (a key that
	// was free): each command's own error is read below.
	_, _ = pipe.Exec(ctx)
	var own, ownLocks []int // indexes into keys of claims this token held already
	for j, c := range cmds {
		old, err := c.Result()
		switch {
		case errors.Is(err, redis.Nil):
			res[sent[j]] = ClaimAcquired
		case err != nil:
			return nil, keyErr(ctx, "claim", s.dedupKey(keys[sent[j]]), err)
		case isDone(old):
			res[sent[j]] = ClaimDone
			if at != nil && at[sent[j]] != "" && !isLock(sent[j]) {
				switch here := doneAt(at[sent[j]]); {
				case old == here:
					res[sent[j]] = ClaimDoneHere
				case strings.HasPrefix(old, here+" "):
					res[sent[j]] = ClaimPreparedHere
				}
			}
		case old == token && isLock(sent[j]):
			ownLocks = append(ownLocks, sent[j])
		case old == token:
			own = append(own, sent[j])
		}
	}
	if len(own) > 0 || len(ownLocks) > 0 {
		// The Lua claim renews the lease only while the key is still ours:
		// it may have expired, or been confirmed, since the SET read it.
		reclaim := func(idx []int, lease time.Duration) op {
			return op{name: "claim", script: claimScript, common: []any{token, lease.Milliseconds()}, n: len(idx),
				item: func(j int, args []any) (string, []any) { return s.dedupKey(keys[idx[j]]), args }}
		}
		out, err := s.evalBatch(ctx, nil, reclaim(own, s.cfg.lease), reclaim(ownLocks, s.cfg.lockLease))
		if err != nil {
			return nil, err
		}
		for o, idx := range [][]int{own, ownLocks} {
			for j, c := range out[o] {
				switch c {
				case 0:
					res[idx[j]] = ClaimAcquired
				case 1:
					res[idx[j]] = ClaimDone
				case 2:
					res[idx[j]] = ClaimBusy
				default:
					return nil, fmt.Errorf("store: claim: unexpected script result %d", c)
				}
			}
		}
	}
	return res, nil
}

// RenewLocks extends each entity lock in keys (claimed at [AtLock]) that
// token still holds by the lock lease, in one round trip, and returns
// those it no longer holds: expired (its renewals came too late) and
// perhaps taken by another attempt since. It never takes a lock, so a
// renewal racing the batch's release leaves the released keys free.
func (s *Store) RenewLocks(ctx context.Context, keys []string, token string) (lost []string, err error) {
	if err := checkToken(token); err != nil {
		return nil, err
	}
	out, err := s.evalBatch(ctx, nil, op{name: "renew", script: renewScript, common: []any{token, s.cfg.lockLease.Milliseconds()}, n: len(keys),
		item: func(i int, args []any) (string, []any) { return s.dedupKey(keys[i]), args }})
	if err != nil {
		return nil, err
	}
	return notKept(keys, out[0]), nil
}

// RetakeDone claims each key for token as ClaimBatch does, but takes a key
// that is done too: for events whose processing Kafka lost after the
// processor confirmed it (a committed transaction whose markers never
// reached the partitions, so its offsets and outputs were aborted, and the
// raw records come back; see ClaimDoneHere). Skipped as duplicates, those
// events would have no output. A key another attempt holds stays
// ClaimBusy. One round trip.
func (s *Store) RetakeDone(ctx context.Context, keys []string, token string) ([]ClaimResult, error) {
	if err := checkToken(token); err != nil {
		return nil, err
	}
	out, err := s.evalBatch(ctx, nil, op{name: "retake", script: retakeScript, common: []any{token, s.cfg.lease.Milliseconds()}, n: len(keys),
		item: func(i int, args []any) (string, []any) { return s.dedupKey(keys[i]), args }})
	if err != nil {
		return nil, err
	}
	res := make([]ClaimResult, len(keys))
	for i, c := range out[0] {
		switch c {
		case 0:
			res[i] = ClaimAcquired
		case 2:
			res[i] = ClaimBusy
		default:
			return nil, fmt.Errorf("store: retake: unexpected script result %d", c)
		}
	}
	return res, nil
}

// Prepare marks each key done for its record before the batch's Kafka
// commit, if token still holds its claim; one round trip. at names each
// key's record position (as in [Store.ClaimBatchAt]) and window its dedup
// window (one per key, or one for all; each at least 1ms). The key then
// holds "done <at> <token>": every other record with the key is a
// duplicate from now on, so an attempt that dies after its commit lands
// and before [Store.Settle] confirms it leaves its events done, not
// claims that expire after the lease and let the next delivery through.
// If the commit does not land, its records come back at the same
// positions and find the keys [ClaimPreparedHere]; [Store.ReleaseBatch]
// with the token frees them after an abort known as such.
//
// It returns the keys token no longer held (expired or taken over),
// untouched: the batch must not commit then. Called again with the same
// token and positions (a retry after an unknown outcome), it marks the
// same keys again.
func (s *Store) Prepare(ctx context.Context, token string, keys, at []string, window []time.Duration) (lost []string, err error) {
	if err := checkToken(token); err != nil {
		return nil, err
	}
	if len(at) != len(keys) {
		return nil, fmt.Errorf("%w: %d positions for %d keys", ErrInvalidArgument, len(at), len(keys))
	}
	if err := checkDone(len(keys), at, window); err != nil {
		return nil, err
	}
	for _, a := range at {
		if a == "" || strings.ContainsRune(a, ' ') {
			return nil, fmt.Errorf("%w: position %q: must be non-empty, without spaces", ErrInvalidArgument, a)
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	out, err := s.evalReplicated(ctx, op{name: "prepare", script: prepareScript, common: []any{token}, n: len(keys),
		item: func(i int, args []any) (string, []any) {
			return s.dedupKey(keys[i]), append(args, at[i], windowOf(window, i).Milliseconds())
		}})
	if err != nil {
		return nil, err
	}
	return notKept(keys, out[0]), nil
}

// PreparedBy reports whether every key still holds what [Store.Prepare]
// left for token and the record at the same place of at: "done <at>
// <token>". Any other value (a claim or mark of another attempt, a
// confirm, nothing) is false. No key is false: there is nothing to tell
// by. One round trip.
//
// A redelivery of the record retakes its key before anything commits
// past it, so a batch whose group offsets another member has moved past,
// and whose keys all still hold its marks, was committed by its own
// transaction.
func (s *Store) PreparedBy(ctx context.Context, token string, keys, at []string) (bool, error) {
	if err := checkToken(token); err != nil {
		return false, err
	}
	if len(at) != len(keys) {
		return false, fmt.Errorf("%w: %d positions for %d keys", ErrInvalidArgument, len(at), len(keys))
	}
	if len(keys) == 0 {
		return false, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.Get(ctx, s.dedupKey(k))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return false, wrapErr(ctx, "prepared", err)
	}
	for i, c := range cmds {
		v, err := c.Result()
		if err != nil || v != doneAt(at[i])+" "+token {
			return false, nil
		}
	}
	return true, nil
}

// ConfirmBatch marks each key done, with a TTL of its dedup window, after the
// events' output was written; one round trip. window holds one duration per
// key, or a single one for all keys; each must be at least 1ms.
//
// When the claim is still token's, the key becomes "done" atomically. When it
// is not — the lease expired first, and possibly another attempt claimed the
// key since — the key is marked done all the same: the output was already
// committed (Kafka transaction), so the event is processed, and "done" is the
// truth that keeps further deliveries from being processed again. (An attempt
// that took the key over is already processing a duplicate; its own confirm
// then finds the key done, and its release leaves it alone.) Those keys are
// reported in a *[LostClaimError], after all keys were marked: log it, do not
// retry. A key already done is marked again and its window starts over, so a
// retried confirm is harmless: it only keeps duplicates out a little longer.
// (Leaving it untouched would cost Redis a GET and a SET per key instead of
// one SET ... GET.) Each key is one plain SET <key> done PX <window> GET.
//
// Any other error means some keys may not be marked; retrying is safe.
func (s *Store) ConfirmBatch(ctx context.Context, keys []string, token string, window []time.Duration) error {
	return s.Settle(ctx, token, keys, nil, window, nil)
}

// Settle ends a batch's claims in one round trip: it confirms the done keys
// as [Store.ConfirmBatch] does (window as there) and releases the release
// keys as [Store.ReleaseBatch] does — typically entity locks, and the claims
// of events that were not processed. A key must not be in both. at, nil or
// one per done key, names the position of the record that processed each
// (see [Store.ClaimBatchAt]): the key holds "done <at>", so that record, if
// Kafka hands it out again, is told from a duplicate. Errors are
// ConfirmBatch's; a *[LostClaimError] means every key was still settled.
func (s *Store) Settle(ctx context.Context, token string, done, at []string, window []time.Duration, release []string) error {
	if err := checkToken(token); err != nil {
		return err
	}
	if err := checkDone(len(done), at, window); err != nil {
		return err
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StatusCmd, len(done))
	for i, k := range done {
		w := windowOf(window, i)
		v := doneValue
		if at != nil {
			v = doneAt(at[i])
		}
		cmds[i] = queue(ctx, pipe, "set", s.dedupKey(k), v, "px", w.Milliseconds(), "get")
	}
	if _, err := s.evalBatch(ctx, pipe, s.releaseOp(release, token)); err != nil {
		return err
	}
	var lost []LostClaim
	for i, c := range cmds {
		old, err := c.Result()
		switch {
		case errors.Is(err, redis.Nil):
			lost = append(lost, LostClaim{Key: done[i]})
		case err != nil:
			return wrapErr(ctx, "confirm", err)
		case old == token, isDone(old):
		default:
			lost = append(lost, LostClaim{Key: done[i], TakenOver: true})
		}
	}
	if lost != nil {
		return &LostClaimError{Claims: lost}
	}
	return nil
}

// ReleaseBatch gives up token's claim on each key after a failed attempt, so
// the retry can claim it at once; one round trip. A key that is no longer
// token's (lease expired, taken over, or done) is left untouched: releasing
// is always safe, also for keys that were never acquired.
func (s *Store) ReleaseBatch(ctx context.Context, keys []string, token string) error {
	if err := checkToken(token); err != nil {
		return err
	}
	_, err := s.evalBatch(ctx, nil, s.releaseOp(keys, token))
	return err
}

// queue adds a command whose reply is a string or nil to pipe. Building it
// directly, arguments sized once, costs half the allocations of
// go-redis's SetArgs, which showed in the processor's profile.
func queue(ctx context.Context, pipe redis.Pipeliner, args ...any) *redis.StatusCmd {
	cmd := redis.NewStatusCmd(ctx, args...)
	_ = pipe.Process(ctx, cmd) // a pipeline only queues it
	return cmd
}

func (s *Store) releaseOp(keys []string, token string) op {
	return op{name: "release", script: releaseScript, common: []any{token}, n: len(keys),
		item: func(i int, args []any) (string, []any) { return s.dedupKey(keys[i]), args }}
}

// notKept are the keys a per-key script answered other than 1 (kept
// ours) for: renew's and prepare's lost claims.
func notKept(keys []string, codes []int64) (lost []string) {
	for i, c := range codes {
		if c != 1 {
			lost = append(lost, keys[i])
		}
	}
	return lost
}

// checkDone checks the positions (nil: none) and dedup windows given for n
// keys to be marked done: a window per key or one for all, each at least
// 1ms (Redis keeps milliseconds).
func checkDone(n int, at []string, window []time.Duration) error {
	if at != nil && len(at) != n {
		return fmt.Errorf("%w: %d positions for %d keys", ErrInvalidArgument, len(at), n)
	}
	if len(window) != n && len(window) != 1 {
		return fmt.Errorf("%w: %d windows for %d keys (want one per key, or one for all)", ErrInvalidArgument, len(window), n)
	}
	for _, w := range window {
		if w < time.Millisecond {
			return fmt.Errorf("%w: dedup window %v is below 1ms", ErrInvalidArgument, w)
		}
	}
	return nil
}

// windowOf is key i's dedup window: its own, or the one for all.
func windowOf(window []time.Duration, i int) time.Duration {
	if len(window) > 1 {
		return window[i]
	}
	return window[0]
}

package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"
)

var (
	// ErrUnavailable wraps the errors that mean Redis cannot serve right now:
	// network errors (refused, reset, timeouts), a connection pool that timed
	// out waiting, and server replies that mean "not now" (LOADING, READONLY
	// during a failover, MASTERDOWN, CLUSTERDOWN, TRYAGAIN, max clients, OOM,
	// NOREPLICAS, BUSY running another client's script, MISCONF refusing
	// writes after a failed snapshot). The processor should pause and retry the same batch with
	// backoff, not route events to retry tiers or the DLQ. Test with
	// [IsUnavailable]; the original error stays reachable with errors.As.
	ErrUnavailable = errors.New("redis unavailable")

	// ErrInvalidArgument is returned, before anything is sent, for a call the
	// store cannot perform: an empty or reserved token, a dedup window below
	// 1ms or not one per key, an update without entity key or with an event
	// time out of range. It is a bug in the caller (or in the event, for the
	// time): retrying does not help.
	ErrInvalidArgument = errors.New("invalid argument")
)

// IsUnavailable reports whether err means Redis is unavailable (see
// [ErrUnavailable]). Errors caused by the caller's own context (cancelled or
// past its deadline) are not: they wrap ctx.Err() and propagate as such.
func IsUnavailable(err error) bool { return errors.Is(err, ErrUnavailable) }

// LostClaim is a dedup key whose claim was no longer the confirming
// attempt's when it confirmed.
type LostClaim struct {
	Key string
	// TakenOver is true when another attempt held the key (its lease was
	// live); false when the lease had simply expired.
	TakenOver bool
}

// LostClaimError is returned by ConfirmBatch when some claims had been lost
// before the confirm: the lease ran out between claim and confirm (the batch
// took longer than ClaimLease). Every key, lost ones included, was marked
// done; the error is there to be logged and counted, and means ClaimLease is
// too short for the processing time, or a worker stalled.
type LostClaimError struct {
	Claims []LostClaim
}

func (e *LostClaimError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "store: confirm: %d claim(s) lost before confirm, marked done anyway:", len(e.Claims))
	for i, c := range e.Claims {
		if i == 5 {
			fmt.Fprintf(&b, " … (%d more)", len(e.Claims)-i)
			break
		}
		how := "expired"
		if c.TakenOver {
			how = "taken over"
		}
		fmt.Fprintf(&b, " %q (%s)", c.Key, how)
	}
	return b.String()
}

// LogValue logs the counts and the keys as attributes.
func (e *LostClaimError) LogValue() slog.Value {
	keys := make([]string, len(e.Claims))
	taken := 0
	for i, c := range e.Claims {
		keys[i] = c.Key
		if c.TakenOver {
			taken++
		}
	}
	return slog.GroupValue(
		slog.Int("lost", len(e.Claims)),
		slog.Int("taken_over", taken),
		slog.Any("keys", keys),
	)
}

// IsLostClaim reports whether err is (or wraps) a *LostClaimError.
func IsLostClaim(err error) bool {
	var e *LostClaimError
	return errors.As(err, &e)
}

// wrapErr turns a go-redis error from operation op into the store's error:
// the caller's context errors propagate (wrapping ctx.Err(), also when
// go-redis reports the expired deadline as a socket timeout), Redis being
// unreachable or not serving wraps ErrUnavailable, anything else is wrapped
// as is.
func wrapErr(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(err, cerr) {
			return fmt.Errorf("store: %s: %w", op, err)
		}
		return fmt.Errorf("store: %s: %w: %w", op, cerr, err)
	}
	if unavailable(err) {
		return fmt.Errorf("store: %s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// keyErr is wrapErr for the reply to a command on one key: an error reply
// about the key itself (WRONGTYPE: a key under Inlet's names that
// something else wrote) names it, which a batch of hundreds of keys would
// otherwise leave the operator to guess.
func keyErr(ctx context.Context, op, key string, err error) error {
	var re redis.Error
	if ctx.Err() == nil && errors.As(err, &re) && !unavailable(err) {
		return fmt.Errorf("store: %s: key %q: %w", op, key, err)
	}
	return wrapErr(ctx, op, err)
}

// unavailable classifies err, whose caller's context is still live.
func unavailable(err error) bool {
	var ne net.Error
	switch {
	case errors.As(err, &ne),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, redis.ErrPoolTimeout),
		errors.Is(err, redis.ErrPoolExhausted),
		// ctx is live, so this is go-redis's own dial timeout.
		errors.Is(err, context.DeadlineExceeded):
		return true
	}
	// BUSY: another client's script runs past busy-reply-threshold;
	// MISCONF: writes refused after a failed snapshot (a full disk), fixed
	// by an operator like OOM.
	switch errorCode(err) {
	case "BUSY", "MISCONF":
		return true
	}
	return redis.IsLoadingError(err) ||
		redis.IsReadOnlyError(err) ||
		redis.IsMasterDownError(err) ||
		redis.IsClusterDownError(err) ||
		redis.IsTryAgainError(err) ||
		redis.IsMaxClientsError(err) ||
		redis.IsOOMError(err) ||
		redis.IsNoReplicasError(err)
}

// errorCode is the code a Redis error reply starts with ("BUSY"), whole:
// go-redis's HasErrorPrefix would take BUSYKEY for BUSY.
func errorCode(err error) string {
	var re redis.Error
	if !errors.As(err, &re) {
		return ""
	}
	code, _, _ := strings.Cut(re.Error(), " ")
	return code
}

// isNoScript reports whether a script call failed because the server does
// not have the script cached. go-redis exposes this only as a sentinel it
// does not set inside pipelines, plus the error-code predicate its own
// Script.Run uses; both are the protocol's error code, not message text.
func isNoScript(err error) bool {
	return errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT")
}

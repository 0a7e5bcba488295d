// Package retry decides what happens to an event whose processing failed:
// another try on a retry tier after its delay, or the dead-letter topic. It
// owns the one predicate that decides (IsRetryable), the per-source policy,
// and the record headers that carry attempts, due times and error history.
package retry

import (
	"errors"
	"fmt"
	"time"
)

// permanent marks an error no retry can fix (a 400 from a sink, a
// rejected credential): the event goes to the DLQ at once.
type permanent struct{ err error }

func (p *permanent) Error() string { return p.err.Error() }
func (p *permanent) Unwrap() error { return p.err }

// Permanent wraps err so that IsRetryable reports false.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanent{err}
}

// RetryableError marks a transient failure, optionally with the earliest
// time a retry makes sense (a sink's Retry-After).
type RetryableError struct {
	Err error
	// After is the delay the downstream asked for; zero means none.
	After time.Duration
}

func (r *RetryableError) Error() string {
	if r.After > 0 {
		return fmt.Sprintf("%v (retry after %v)", r.Err, r.After)
	}
	return r.Err.Error()
}
func (r *RetryableError) Unwrap() error { return r.Err }

// Retryable wraps err as a transient failure; after (may be zero) is how long
// the downstream asked us to wait.
func Retryable(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return &RetryableError{Err: err, After: after}
}

// IsRetryable is the retry-or-DLQ decision: false for errors marked
// Permanent, true for everything else (an unknown failure is assumed
// transient, and the retry budget bounds it). Validation errors never get
// here: they go to the invalid topic before any retry is considered.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var p *permanent
	return !errors.As(err, &p)
}

// RetryAfter is the delay a retryable error asked for, or zero.
func RetryAfter(err error) time.Duration {
	var r *RetryableError
	if errors.As(err, &r) {
		return r.After
	}
	return 0
}

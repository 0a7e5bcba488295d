package retry

import "time"

// Policy is a source's retry budget: delays per tier and the total number of
// attempts (the first try included).
type Policy struct {
	Tiers       []time.Duration
	MaxAttempts int
}

// Decision is where a failed attempt goes next.
type Decision struct {
	// DeadLetter is true when the budget is spent or the error permanent.
	DeadLetter bool
	// Reason says why, for the DLQ record and the alert.
	Reason string
	// Tier is the retry tier index (when not DeadLetter); Delay its delay,
	// or the downstream's Retry-After when that is longer.
	Tier  int
	Delay time.Duration
	// NextAttempt is the attempt number the retry will carry.
	NextAttempt int
}

// Decide routes the failure of attempt (1 for the first try) with err.
// Attempt n failing goes to tier n-1, so each tier is used once, in order;
// attempts past the last tier stay on it.
func (p Policy) Decide(attempt int, err error) Decision {
	switch {
	case !IsRetryable(err):
		return Decision{DeadLetter: true, Reason: "permanent error"}
	case attempt >= p.MaxAttempts || len(p.Tiers) == 0:
		return Decision{DeadLetter: true, Reason: "retry budget exhausted"}
	}
	tier := min(attempt-1, len(p.Tiers)-1)
	delay := max(p.Tiers[tier], RetryAfter(err))
	return Decision{Tier: tier, Delay: delay, NextAttempt: attempt + 1}
}

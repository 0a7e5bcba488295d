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
	// or the downstream's Retry-After when that is longer (see Decide).
	Tier  int
	Delay time.Duration
	// NextAttempt is the attempt number the retry will carry.
	NextAttempt int
}

// Decide routes the failure of attempt (1 for the first try) with err.
// Attempt n failing goes to tier n-1, so each tier is used once, in order;
// attempts past the last tier stay on it.
//
// A Retry-After longer than that tier's delay is honoured on a later tier
// whose delay covers it: a tier's partitions are retried in log order, each
// record once due, so a record due later than its tier's delay would hold
// back every record behind it, whatever its source, for as long as the
// downstream asked (up to a day). On a tier at least that long it is due
// no later than the records after it. The Retry-After is cut to the
// longest tier left when none covers it.
func (p Policy) Decide(attempt int, err error) Decision {
	switch {
	case !IsRetryable(err):
		return Decision{DeadLetter: true, Reason: "permanent error"}
	case attempt >= p.MaxAttempts || len(p.Tiers) == 0:
		return Decision{DeadLetter: true, Reason: "retry budget exhausted"}
	}
	tier := min(attempt-1, len(p.Tiers)-1)
	delay := p.Tiers[tier]
	if ra := RetryAfter(err); ra > delay {
		tier = coveringTier(p.Tiers, tier, ra)
		delay = min(ra, p.Tiers[tier])
	}
	return Decision{Tier: tier, Delay: delay, NextAttempt: attempt + 1}
}

// coveringTier is the tier from tiers[from:] with the shortest delay of at
// least d, or the longest one when none is that long.
func coveringTier(tiers []time.Duration, from int, d time.Duration) int {
	best, longest := -1, from
	for i := from; i < len(tiers); i++ {
		if tiers[i] >= d && (best < 0 || tiers[i] < tiers[best]) {
			best = i
		}
		if tiers[i] > tiers[longest] {
			longest = i
		}
	}
	if best < 0 {
		return longest
	}
	return best
}

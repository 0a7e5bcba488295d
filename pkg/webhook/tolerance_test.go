package webhook

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

// TestToleranceFarFuture: a timestamp near the int64 maximum is refused as
// signed in the future; time.Unix wrapped it into the past, and the error
// said it was signed 2562047h before receipt.
func TestToleranceFarFuture(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, ts := range []int64{math.MaxInt64, math.MaxInt64 - 62135596800, maxUnix + 1} {
		err := checkTolerance("stripe", "Stripe-Signature", ts, now, 5*time.Minute)
		if !errors.Is(err, ErrTimestampOutOfTolerance) || strings.Contains(err.Error(), "before receipt") {
			t.Errorf("t=%d: %v; want out of tolerance, not before receipt", ts, err)
		}
	}
	if err := checkTolerance("stripe", "Stripe-Signature", maxUnix, now, 5*time.Minute); err == nil || !strings.Contains(err.Error(), "after receipt") {
		t.Errorf("t=year 9999: %v; want signed after receipt", err)
	}
	if err := checkTolerance("stripe", "Stripe-Signature", now.Unix()-60, now, 5*time.Minute); err != nil {
		t.Errorf("a minute ago: %v", err)
	}
}

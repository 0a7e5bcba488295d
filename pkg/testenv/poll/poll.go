// Package poll waits in tests for a condition, with a deadline: never a
// sleep in place of the condition. It imports nothing of Inlet's, so
// every package's tests can use it (pkg/testenv re-exports it; pkg/store's
// own tests, which testenv depends on, use it directly).
package poll

import (
	"testing"
	"time"
)

// Eventually polls cond every 20 ms until it is true, failing the test
// once timeout has passed.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Until(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// Until polls cond every 20 ms until it is true or timeout has passed, and
// reports whether it came true: for a caller that fails with its own
// message (one built from what it saw last).
func Until(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

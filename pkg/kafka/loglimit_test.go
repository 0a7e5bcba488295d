package kafka

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// recorded is a slog.Handler keeping what it is handed.
type recorded struct{ records *[]slog.Record }

func (r recorded) Enabled(context.Context, slog.Level) bool { return true }
func (r recorded) Handle(_ context.Context, rec slog.Record) error {
	*r.records = append(*r.records, rec)
	return nil
}
func (r recorded) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r recorded) WithGroup(string) slog.Handler      { return r }

// suppressedOf is a record's "suppressed" attribute, or -1.
func suppressedOf(r slog.Record) int64 {
	n := int64(-1)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "suppressed" {
			n = a.Value.Int64()
		}
		return true
	})
	return n
}

// TestRepeatLimiter: a warning repeated unchanged passes once per period,
// the next one after it carrying how many were dropped; distinct warnings
// (another message, another attribute value, another WithAttrs) and every
// error pass. The clock is the test's.
func TestRepeatLimiter(t *testing.T) {
	var got []slog.Record
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	log := slog.New(newRepeatLimiter(recorded{&got}, 10*time.Second, func() time.Time { return now }))
	refused := func(addr string) {
		log.Warn("unable to open connection to broker", "addr", addr, "err", "connection refused")
	}
	count := func() int { n := len(got); got = got[:0]; return n }

	t.Run("repeats within the period are dropped", func(t *testing.T) {
		for range 13 {
			refused("b1:9092")
			now = now.Add(75 * time.Millisecond)
		}
		if n := count(); n != 1 {
			t.Fatalf("%d records passed, want 1", n)
		}
	})
	t.Run("distinct warnings pass", func(t *testing.T) {
		refused("b2:9092")
		log.Warn("another message", "addr", "b1:9092", "err", "connection refused")
		log.With("client", "other").Warn("unable to open connection to broker", "addr", "b1:9092", "err", "connection refused")
		log.WithGroup("g").Warn("unable to open connection to broker", "addr", "b1:9092", "err", "connection refused")
		if n := count(); n != 4 {
			t.Fatalf("%d of 4 distinct warnings passed", n)
		}
	})
	t.Run("a retry's count and backoff do not make it another warning", func(t *testing.T) {
		for i := range 6 {
			log.Warn("group manage loop errored", "group", "g", "err", "connection refused", "consecutive_errors", i+1, "backoff", time.Duration(250<<i)*time.Millisecond)
			now = now.Add(time.Second)
		}
		log.Warn("group manage loop errored", "group", "other", "err", "connection refused", "consecutive_errors", 1, "backoff", time.Second)
		if n := count(); n != 2 {
			t.Fatalf("%d records passed, want 1 per group", n)
		}
		now = now.Add(10 * time.Second)
	})
	t.Run("errors always pass", func(t *testing.T) {
		for range 5 {
			log.Error("fatal", "err", "x")
		}
		if n := count(); n != 5 {
			t.Fatalf("%d of 5 errors passed", n)
		}
	})
	t.Run("after the period it passes with the count dropped", func(t *testing.T) {
		now = now.Add(10 * time.Second)
		refused("b1:9092")
		if len(got) != 1 || suppressedOf(got[0]) != 12 {
			t.Fatalf("%d records, suppressed %v; want 1 saying 12 were dropped", len(got), got)
		}
		if !strings.Contains(got[0].Message, "unable to open connection") {
			t.Fatalf("message %q", got[0].Message)
		}
		count()
		refused("b1:9092") // within the new period
		if n := count(); n != 0 {
			t.Fatalf("%d passed right after, want 0", n)
		}
		now = now.Add(time.Minute)
		refused("b1:9092")
		if len(got) != 1 || suppressedOf(got[0]) != 1 {
			t.Fatalf("%v: want 1 record saying 1 was dropped", got)
		}
		count()
		now = now.Add(time.Minute)
		refused("b1:9092") // nothing dropped since: no count
		if len(got) != 1 || suppressedOf(got[0]) != -1 {
			t.Fatalf("%v: want 1 record without a count", got)
		}
		count()
	})
	t.Run("a full memory lets new warnings pass", func(t *testing.T) {
		for i := range maxRepeatKeys + 10 {
			log.Warn("w", "i", i)
			log.Warn("w", "i", i)
		}
		if n := count(); n < maxRepeatKeys+10 {
			t.Fatalf("%d passed, want each distinct warning at least once", n)
		}
	})
}

package ingest

import (
	"log/slog"
	"testing"
	"time"
)

// One warning passes per period; those in between go at debug, and the
// next warning counts them.
func TestWarnEvery(t *testing.T) {
	w := warnEvery{period: 5 * time.Second}
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	type want struct {
		lvl   slog.Level
		quiet int64
	}
	for i, c := range []struct {
		at time.Duration
		want
	}{
		{0, want{slog.LevelWarn, 0}},
		{time.Second, want{slog.LevelDebug, 0}},
		{2 * time.Second, want{slog.LevelDebug, 0}},
		{5 * time.Second, want{slog.LevelWarn, 2}},
		{20 * time.Second, want{slog.LevelWarn, 0}},
		{21 * time.Second, want{slog.LevelDebug, 0}},
	} {
		lvl, quiet := w.level(t0.Add(c.at))
		if lvl != c.lvl || quiet != c.quiet {
			t.Errorf("call %d at +%v: %v, %d; want %v, %d", i, c.at, lvl, quiet, c.lvl, c.quiet)
		}
	}
}

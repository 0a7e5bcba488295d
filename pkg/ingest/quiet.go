package ingest

import (
	"log/slog"
	"sync"
	"time"
)

// unackedEvery is how often a webhook Kafka did not acknowledge is logged
// at warn: while Kafka is away every request fails so (a drill logged 280
// a second), and the 503s are counted in inlet.ingest.events all the same.
const unackedEvery = 5 * time.Second

// signatureEvery is how often a request that failed its signature (or its
// batch token) is logged at warn, per source: anyone who can reach ingest
// can send unsigned requests as fast as they like, and a line for each
// filled disks and log bills and buried the real warnings. Every one is
// still counted in inlet.ingest.requests (reason signature).
const signatureEvery = 30 * time.Second

// warnEvery passes one warning per period at warn level; the others in
// between go at debug, and the next warning says how many there were.
type warnEvery struct {
	period time.Duration
	mu     sync.Mutex
	last   time.Time // when a warning last passed
	quiet  int64     // at debug since
}

// level is the level of a warning at now, and, for one at warn, how many
// went at debug before it since the last one at warn.
func (w *warnEvery) level(now time.Time) (slog.Level, int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.last.IsZero() && now.Sub(w.last) < w.period {
		w.quiet++
		return slog.LevelDebug, 0
	}
	n := w.quiet
	w.last, w.quiet = now, 0
	return slog.LevelWarn, n
}

// signatureLevel is the level of a signature failure for source at now
// (see signatureEvery), and for one at warn how many went at debug since.
func (s *Server) signatureLevel(source string, now time.Time) (slog.Level, int64) {
	w, ok := s.badSignature[source]
	if !ok { // not a configured source: not reached, 404 first
		return slog.LevelWarn, 0
	}
	return w.level(now)
}

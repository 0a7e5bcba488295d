package kafka

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// RepeatEvery is how often the Kafka client's log passes one warning
// repeated unchanged: while a broker is down the client logs "unable to
// open connection to broker" about 13 times a second.
const RepeatEvery = 30 * time.Second

// maxRepeatKeys bounds the warnings the limiter remembers; past it, a
// warning it has no room for passes unlimited.
const maxRepeatKeys = 256

// repeatLimiter is a slog.Handler that passes a record below error level
// at most once per every when it repeats one already passed (same level,
// message and attributes, those added by WithAttrs and WithGroup
// included); the one passed after a quiet spell carries how many were
// dropped since the last (attribute "suppressed"). Errors and distinct
// records always pass. Handlers derived by WithAttrs and WithGroup share
// the memory.
type repeatLimiter struct {
	next   slog.Handler
	prefix string // the attributes and groups added by WithAttrs and WithGroup, as keyed
	state  *repeatState
}

type repeatState struct {
	every time.Duration
	now   func() time.Time
	mu    sync.Mutex
	seen  map[string]*repeat
}

type repeat struct {
	passed     time.Time // when the record last passed
	suppressed int       // dropped since
}

// newRepeatLimiter limits next's repeated records to one per every, as
// the clock now tells time.
func newRepeatLimiter(next slog.Handler, every time.Duration, now func() time.Time) *repeatLimiter {
	return &repeatLimiter{next: next, state: &repeatState{every: every, now: now, seen: map[string]*repeat{}}}
}

func (l *repeatLimiter) Enabled(ctx context.Context, level slog.Level) bool {
	return l.next.Enabled(ctx, level)
}

func (l *repeatLimiter) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		return l.next.Handle(ctx, r)
	}
	pass, suppressed := l.state.admit(l.key(r))
	if !pass {
		return nil
	}
	if suppressed > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("suppressed", suppressed))
	}
	return l.next.Handle(ctx, r)
}

// admit says whether the record keyed k passes now, and how many of it
// were dropped since it last did.
func (s *repeatState) admit(k string) (pass bool, suppressed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if e, ok := s.seen[k]; ok {
		if now.Sub(e.passed) < s.every {
			e.suppressed++
			return false, 0
		}
		suppressed = e.suppressed
		e.passed, e.suppressed = now, 0
		return true, suppressed
	}
	if len(s.seen) >= maxRepeatKeys {
		// Forget what has been quiet a whole period: it would pass
		// anyway (its count of dropped ones is lost).
		for key, e := range s.seen {
			if now.Sub(e.passed) >= s.every {
				delete(s.seen, key)
			}
		}
		if len(s.seen) >= maxRepeatKeys {
			return true, 0
		}
	}
	s.seen[k] = &repeat{passed: now}
	return true, 0
}

// key identifies a record as a repeat: level, message and attributes,
// but for the ones that count or time the repeats themselves.
func (l *repeatLimiter) key(r slog.Record) string {
	var b strings.Builder
	b.WriteString(r.Level.String())
	b.WriteByte(0)
	b.WriteString(r.Message)
	b.WriteByte(0)
	b.WriteString(l.prefix)
	r.Attrs(func(a slog.Attr) bool {
		if !repeatCounters[a.Key] {
			writeAttr(&b, a)
		}
		return true
	})
	return b.String()
}

// repeatCounters are attributes the client gives a new value each time it
// logs the same failure again ("group manage loop errored" while a broker is
// down: consecutive_errors=1, 2, …, and a growing backoff), so they do not
// make a record another one.
var repeatCounters = map[string]bool{"consecutive_errors": true, "backoff": true}

func writeAttr(b *strings.Builder, a slog.Attr) {
	b.WriteString(a.Key)
	b.WriteByte('=')
	b.WriteString(a.Value.Resolve().String())
	b.WriteByte(0)
}

func (l *repeatLimiter) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(l.prefix)
	for _, a := range as {
		writeAttr(&b, a)
	}
	return &repeatLimiter{next: l.next.WithAttrs(as), prefix: b.String(), state: l.state}
}

func (l *repeatLimiter) WithGroup(name string) slog.Handler {
	return &repeatLimiter{next: l.next.WithGroup(name), prefix: l.prefix + name + ".\x00", state: l.state}
}

package telemetry

import (
	"maps"
	"sync"
	"sync/atomic"
)

// Other is the label value event types fold into past the limit.
const Other = "other"

// Limiter bounds the distinct event types per source that become label
// values: the first Max seen keep their name, later ones report as "other",
// so a sender inventing event types cannot blow up the series count.
// Types reserved ([Limiter.Reserve]) keep their name besides those.
//
// Every event asks, from every worker, and nearly always about a type it
// kept long ago, or (from a sender inventing types) about a source that is
// full: either answer is atomic loads of copy-on-write sets, no lock. Only
// a new type of a source with room takes the mutex.
type Limiter struct {
	Max       int
	mu        sync.Mutex
	perSource map[string]int // event types kept, per source; guarded by mu
	kept      atomic.Pointer[map[sourceType]struct{}]
	full      atomic.Pointer[map[string]struct{}] // sources that kept Max types
}

type sourceType struct{ source, eventType string }

// NewLimiter keeps at most max event types per source (default 100).
func NewLimiter(max int) *Limiter {
	if max <= 0 {
		max = 100
	}
	return &Limiter{Max: max, perSource: map[string]int{}}
}

// Reserve keeps eventTypes of source under their own names for good,
// outside its Max places: the types a configuration names (the sources
// file's events), which a sender inventing types on a source anyone may
// post to (kind none) must not push into Other, where the dashboards and
// alerts that select them by name would lose them. Call it before the
// first EventType.
func (l *Limiter) Reserve(source string, eventTypes ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	next := map[sourceType]struct{}{}
	if old := l.kept.Load(); old != nil {
		next = maps.Clone(*old)
	}
	for _, t := range eventTypes {
		next[sourceType{source, t}] = struct{}{}
	}
	l.kept.Store(&next)
}

// EventType returns the label value for eventType of source: eventType
// itself (a reserved type, or one of the first Max others seen), or Other
// once source has Max other types.
func (l *Limiter) EventType(source, eventType string) string {
	if l == nil {
		return eventType
	}
	k := sourceType{source, eventType}
	if l.isKept(k) {
		return eventType
	}
	if l.isFull(source) {
		return Other
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.isKept(k) { // kept by another caller since the check above
		return eventType
	}
	if l.perSource[source] >= l.Max {
		return Other
	}
	l.perSource[source]++
	next := map[sourceType]struct{}{}
	if old := l.kept.Load(); old != nil {
		next = maps.Clone(*old)
	}
	next[k] = struct{}{}
	l.kept.Store(&next)
	if l.perSource[source] == l.Max {
		full := map[string]struct{}{}
		if old := l.full.Load(); old != nil {
			full = maps.Clone(*old)
		}
		full[source] = struct{}{}
		l.full.Store(&full)
	}
	return eventType
}

func (l *Limiter) isFull(source string) bool {
	if m := l.full.Load(); m != nil {
		_, ok := (*m)[source]
		return ok
	}
	return false
}

func (l *Limiter) isKept(k sourceType) bool {
	if m := l.kept.Load(); m != nil {
		_, ok := (*m)[k]
		return ok
	}
	return false
}

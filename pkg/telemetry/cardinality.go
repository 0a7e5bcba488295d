package telemetry

import "sync"

// Other is the label value event types fold into past the limit.
const Other = "other"

// Limiter bounds the distinct event types per source that become label
// values: the first Max seen keep their name, later ones report as "other",
// so a sender inventing event types cannot blow up the series count.
type Limiter struct {
	Max  int
	mu   sync.Mutex
	seen map[string]map[string]bool
}

// NewLimiter keeps at most max event types per source (default 100).
func NewLimiter(max int) *Limiter {
	if max <= 0 {
		max = 100
	}
	return &Limiter{Max: max, seen: map[string]map[string]bool{}}
}

// EventType returns the label value for eventType of source.
func (l *Limiter) EventType(source, eventType string) string {
	if l == nil {
		return eventType
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.seen[source]
	if s == nil {
		s = map[string]bool{}
		l.seen[source] = s
	}
	if s[eventType] {
		return eventType
	}
	if len(s) >= l.Max {
		return Other
	}
	s[eventType] = true
	return eventType
}

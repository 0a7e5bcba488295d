package telemetry

import (
	"maps"
	"sync"
	"sync/atomic"
)

// OptionCache maps metric label values to the measurement options built
// from them, so a hot path builds each attribute set once. Get is one
// atomic load and allocates nothing (a sync.Map boxed every key, and a
// fresh one-element option slice per call was another allocation); a Put
// copies the map, which happens once per label combination. Keep its keys
// bounded, e.g. by keying on the event type labels a Limiter answers.
type OptionCache[K comparable, V any] struct {
	mu sync.Mutex // serialises puts
	m  atomic.Pointer[map[K]V]
}

// Get returns the options cached for k.
func (c *OptionCache[K, V]) Get(k K) (V, bool) {
	if m := c.m.Load(); m != nil {
		v, ok := (*m)[k]
		return v, ok
	}
	var zero V
	return zero, false
}

// Put caches v for k, unless k already has options.
func (c *OptionCache[K, V]) Put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var next map[K]V
	if old := c.m.Load(); old != nil {
		if _, ok := (*old)[k]; ok {
			return
		}
		next = maps.Clone(*old)
	} else {
		next = make(map[K]V, 1)
	}
	next[k] = v
	c.m.Store(&next)
}

// Range calls f for each cached key and value, in no set order.
func (c *OptionCache[K, V]) Range(f func(K, V)) {
	if m := c.m.Load(); m != nil {
		for k, v := range *m {
			f(k, v)
		}
	}
}

// Len is the number of label combinations cached.
func (c *OptionCache[K, V]) Len() int {
	if m := c.m.Load(); m != nil {
		return len(*m)
	}
	return 0
}

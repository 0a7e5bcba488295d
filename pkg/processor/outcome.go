package processor

import (
	"sort"
	"sync"
)

// Outcome is where an event ended. Every event ends in exactly one.
type Outcome string

// The outcomes DESIGN.md names.
const (
	Processed  Outcome = "processed"
	Duplicate  Outcome = "duplicate"
	Stale      Outcome = "stale"
	Invalid    Outcome = "invalid"
	DeadLetter Outcome = "dlq"
	// Retried is not final: the event went to a retry tier and will end
	// in one of the outcomes above.
	Retried Outcome = "retried"
)

// CountKey is one counter: an outcome for a source and event type.
type CountKey struct {
	Source, EventType string
	Outcome           Outcome
}

// Counts tallies committed outcomes. Only outcomes of committed
// transactions are counted, so a batch that aborts and is reprocessed is
// counted once.
type Counts struct {
	mu sync.Mutex
	m  map[CountKey]int64
}

func (c *Counts) add(k CountKey, n int64) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[CountKey]int64{}
	}
	c.m[k] += n
	c.mu.Unlock()
}

// Snapshot returns a copy of every counter.
func (c *Counts) Snapshot() map[CountKey]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[CountKey]int64, len(c.m))
	for k, v := range c.m {
		out[k] = v
	}
	return out
}

// Total sums an outcome over every source and type.
func (c *Counts) Total(o Outcome) int64 {
	var n int64
	for k, v := range c.Snapshot() {
		if k.Outcome == o {
			n += v
		}
	}
	return n
}

// Keys returns the counter keys, sorted, for stable printing.
func (c *Counts) Keys() []CountKey {
	s := c.Snapshot()
	keys := make([]CountKey, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.Source != b.Source {
			return a.Source < b.Source
		}
		if a.EventType != b.EventType {
			return a.EventType < b.EventType
		}
		return a.Outcome < b.Outcome
	})
	return keys
}

package processor

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
)

// committedOffsets remembers, per partition, the next offset that a commit
// of this process stored and Kafka acknowledged. A record fetched below it
// was covered by that commit, so the group's committed offset went back:
// Kafka lost the commit. (Offsets cannot be reset while this process is a
// member of the group.) A broker that fails over while writing a
// transaction's markers can do that: KAFKA-5202 skips the markers of
// partitions it finds without a leader, and the transaction's offsets and
// outputs are aborted later, after the processor was told it committed and
// marked its events done in Redis. Those events come back; skipped as
// duplicates, they would have no output anywhere. Seen in a failure drill
// (a single broker SIGKILLed under load).
type committedOffsets struct {
	mu   sync.Mutex
	next map[string]map[int32]int64
}

// note records the offsets of an acknowledged commit (topic → partition →
// next offset), keeping the highest per partition.
func (c *committedOffsets) note(sent map[string]map[int32]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.next == nil {
		c.next = map[string]map[int32]int64{}
	}
	for t, ps := range sent {
		if c.next[t] == nil {
			c.next[t] = map[int32]int64{}
		}
		for p, o := range ps {
			if o > c.next[t][p] {
				c.next[t][p] = o
			}
		}
	}
}

// lost marks the items whose record an acknowledged commit covered (see
// committedOffsets), returns them, and describes them for the log: per
// partition, the offsets and the commit they were below ("" when none).
func (c *committedOffsets) lost(items []*item) (found []*item, where string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, it := range items {
		r := it.rec
		if next, ok := c.next[r.Topic][r.Partition]; ok && r.Offset < next {
			it.lostCommit = true
			found = append(found, it)
		}
	}
	return found, spans(found, func(topic string, partition int32) string {
		return fmt.Sprintf(" (committed up to %d)", c.next[topic][partition])
	})
}

// spans describes where items' records are for a log: per partition, the
// first and last offset, and what suffix, if not nil, adds.
func spans(items []*item, suffix func(topic string, partition int32) string) string {
	type span struct {
		topic       string
		partition   int32
		first, last int64
	}
	byPart := map[string]*span{}
	for _, it := range items {
		r := it.rec
		k := fmt.Sprintf("%s/%d", r.Topic, r.Partition)
		if s := byPart[k]; s == nil {
			byPart[k] = &span{r.Topic, r.Partition, r.Offset, r.Offset}
		} else {
			s.first, s.last = min(s.first, r.Offset), max(s.last, r.Offset)
		}
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(byPart)) {
		s := byPart[k]
		part := fmt.Sprintf("%s offsets %d–%d", k, s.first, s.last)
		if suffix != nil {
			part += suffix(s.topic, s.partition)
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, ", ")
}

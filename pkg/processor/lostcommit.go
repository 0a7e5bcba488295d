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
// committedOffsets), counts them, and describes them for the log: per
// partition, the offsets and the commit they were below ("" when none).
func (c *committedOffsets) lost(items []*item) (n int, where string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	type span struct {
		first, last, committed int64
	}
	spans := map[string]*span{}
	for _, it := range items {
		r := it.rec
		next, ok := c.next[r.Topic][r.Partition]
		if !ok || r.Offset >= next {
			continue
		}
		it.lostCommit = true
		n++
		k := fmt.Sprintf("%s/%d", r.Topic, r.Partition)
		if s := spans[k]; s == nil {
			spans[k] = &span{r.Offset, r.Offset, next}
		} else {
			s.first, s.last = min(s.first, r.Offset), max(s.last, r.Offset)
		}
	}
	if n == 0 {
		return 0, ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(spans)) {
		s := spans[k]
		parts = append(parts, fmt.Sprintf("%s offsets %d–%d (committed up to %d)", k, s.first, s.last, s.committed))
	}
	return n, strings.Join(parts, ", ")
}

// spans describes where items' records are for a log: per partition, the
// first and last offset.
func spans(items []*item) string {
	type span struct{ first, last int64 }
	byPart := map[string]*span{}
	for _, it := range items {
		r := it.rec
		k := fmt.Sprintf("%s/%d", r.Topic, r.Partition)
		if s := byPart[k]; s == nil {
			byPart[k] = &span{r.Offset, r.Offset}
		} else {
			s.first, s.last = min(s.first, r.Offset), max(s.last, r.Offset)
		}
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(byPart)) {
		s := byPart[k]
		parts = append(parts, fmt.Sprintf("%s offsets %d–%d", k, s.first, s.last))
	}
	return strings.Join(parts, ", ")
}

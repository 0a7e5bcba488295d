package processor

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// A commit Kafka acknowledged can still be lost: a broker that fails over
// while writing a transaction's markers skips the partitions it finds
// without a leader (KAFKA-5202), and the transaction's offsets and outputs
// are aborted later, after the processor was told it committed and marked
// its events done in Redis. The raw records come back at the same offsets
// (seen in a failure drill: a single broker SIGKILLed under load). Skipped
// as duplicates, those events would have no output anywhere.
//
// So a confirmed dedup key names the record that processed it (Settle's
// positions, retry.Coordinates), and claim tells that very record come
// back (store.ClaimDoneHere) from a duplicate at another offset: it takes
// the key back (RetakeDone), logs where, counts it (inlet.redelivered) and
// processes the event again, whichever instance fetched it, before or
// after a restart. A rewind or an expiry of the group's offsets looks the
// same, and reprocesses what it covers. A member paused with the records
// in hand while another took its partitions and committed them sees the
// same keys, but the group's committed offsets past its records: it drops
// them (errSuperseded) rather than redo them.

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

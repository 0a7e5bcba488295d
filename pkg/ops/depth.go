package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/retry"
)

// Tracker keeps the unresolved counts of the failure queues current by
// reading, at each Refresh, only what was written to them and to the audit
// topic since the last one (the first reads them whole). Reading them
// whole every 15 s in every processor, with a queue of millions of entries
// after an outage, was gigabytes read for one gauge.
//
// It holds eight bytes per unresolved entry (its offset), and the ids of
// decisions read before their entry (a few, written between the two reads
// of one Refresh). Not safe for concurrent use.
type Tracker struct {
	q      *Queues
	queues map[string]*queueState
	order  []string
	audit  map[int32]int64 // per audit partition, the next offset to read
	// early are decisions whose entry was not read yet (written after the
	// queue's read of the same Refresh), by entry id. Decisions are read
	// only after every queue was read to its end, so these are few.
	early map[string]bool
}

type queueState struct {
	id    kadm.TopicID    // the topic's id when last read: another means it was recreated
	next  map[int32]int64 // per partition, the next offset to read
	parts map[int32]*openOffsets
}

func newQueueState() *queueState {
	return &queueState{next: map[int32]int64{}, parts: map[int32]*openOffsets{}}
}

// openOffsets are one partition's unresolved entries: offsets in reading
// (ascending) order, and those decided since, removed lazily.
type openOffsets struct {
	offs    []int64
	decided map[int64]bool
}

func (o *openOffsets) count() int { return len(o.offs) - len(o.decided) }

func (o *openOffsets) decide(off int64) {
	if _, ok := slices.BinarySearch(o.offs, off); !ok || o.decided[off] {
		return
	}
	if o.decided == nil {
		o.decided = map[int64]bool{}
	}
	o.decided[off] = true
	if len(o.decided) > 1024 && len(o.decided) > len(o.offs)/2 {
		o.offs = slices.DeleteFunc(o.offs, func(x int64) bool { return o.decided[x] })
		o.decided = nil
	}
}

// trim forgets entries below start: retention deleted them.
func (o *openOffsets) trim(start int64) {
	i, _ := slices.BinarySearch(o.offs, start)
	if i == 0 {
		return
	}
	for _, x := range o.offs[:i] {
		delete(o.decided, x)
	}
	o.offs = slices.Clone(o.offs[i:]) // lets the trimmed head be collected
}

// NewTracker tracks topics (the DLQ and the invalid topic) of q.
func NewTracker(q *Queues, topics ...string) *Tracker {
	t := &Tracker{q: q, queues: map[string]*queueState{}, audit: map[int32]int64{}, early: map[string]bool{}, order: topics}
	for _, topic := range topics {
		t.queues[topic] = newQueueState()
	}
	return t
}

// Refresh reads what was written since the last call and returns the
// unresolved count of each tracked topic, in NewTracker's order. On error
// (ctx ended before a first read of a long queue finished, say) the counts
// are not known; what was read is kept, and the next call goes on from
// there.
func (t *Tracker) Refresh(ctx context.Context) ([]int, error) {
	for _, topic := range t.order {
		if err := t.readQueue(ctx, topic); err != nil {
			return nil, err
		}
	}
	if err := t.readAudit(ctx); err != nil {
		return nil, err
	}
	out := make([]int, len(t.order))
	for i, topic := range t.order {
		for _, o := range t.queues[topic].parts {
			out[i] += o.count()
		}
	}
	return out, nil
}

func (t *Tracker) readQueue(ctx context.Context, topic string) error {
	qs := t.queues[topic]
	td, err := t.q.adm.ListTopics(ctx, topic)
	if err == nil {
		err = td.Error()
	}
	if err != nil {
		return fmt.Errorf("describe %s: %w", topic, err)
	}
	if id := td[topic].ID; id != qs.id {
		// Deleted and created again (or first read): start over on it,
		// with decisions remembered for the old one dropped.
		if qs.id != (kadm.TopicID{}) {
			qs = newQueueState()
			t.queues[topic] = qs
			t.forgetEarly(topic, func(int32, int64) bool { return true })
		}
		qs.id = id
	}
	starts, err := t.q.adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("list start offsets of %s: %w", topic, err)
	}
	// Last stable offsets: an open transaction's records are not readable.
	ends, err := t.q.adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("list offsets of %s: %w", topic, err)
	}
	sp := kafka.Span{}
	present := map[int32]int64{}
	starts.Each(func(s kadm.ListedOffset) {
		p := s.Partition
		present[p] = s.Offset
		o := qs.parts[p]
		if o == nil {
			o = &openOffsets{}
			qs.parts[p] = o
		}
		next, seen := qs.next[p]
		end := s.Offset
		if e, ok := ends.Lookup(topic, p); ok {
			end = e.Offset
		}
		if seen && end < next {
			// Behind what was read, without a new topic id (a broker
			// without ids): start the partition over.
			o = &openOffsets{}
			qs.parts[p] = o
			next = 0
		}
		next = max(next, s.Offset)
		o.trim(s.Offset)
		qs.next[p] = next
		if end > next {
			sp[p] = [2]int64{next, end}
		}
	})
	for p := range qs.parts {
		if _, ok := present[p]; !ok { // the topic has fewer partitions now
			delete(qs.parts, p)
			delete(qs.next, p)
		}
	}
	// Decisions remembered for entries retention deleted unread, or on
	// partitions that are gone, would never be matched.
	t.forgetEarly(topic, func(p int32, off int64) bool {
		start, ok := present[p]
		return !ok || off < start
	})
	err = kafka.ReadSpan(ctx, t.q.cl.Opts(), topic, sp, func(r *kgo.Record) error {
		qs.next[r.Partition] = r.Offset + 1
		if id := retry.Coordinates(r); t.early[id] {
			delete(t.early, id) // decided before it was read here
			return nil
		}
		o := qs.parts[r.Partition]
		o.offs = append(o.offs, r.Offset)
		return nil
	})
	if err != nil {
		return err
	}
	for p, r := range sp {
		qs.next[p] = r[1] // past transaction markers and aborted records
	}
	return nil
}

// forgetEarly drops the remembered decisions on topic's entries for which
// drop says so.
func (t *Tracker) forgetEarly(topic string, drop func(p int32, off int64) bool) {
	for id := range t.early {
		if tp, p, off, ok := retry.ParseCoordinates(id); ok && tp == topic && drop(p, off) {
			delete(t.early, id)
		}
	}
}

func (t *Tracker) readAudit(ctx context.Context) error {
	topic := t.q.topics.Audit
	whole, err := kafka.RangeOf(ctx, t.q.adm, topic, time.Time{}, time.Time{})
	if err != nil {
		return err
	}
	sp := kafka.Span{}
	for p, r := range whole {
		from := max(t.audit[p], r[0])
		if r[1] < t.audit[p] {
			from = r[0] // recreated: read it again
		}
		if r[1] > from {
			sp[p] = [2]int64{from, r[1]}
		}
	}
	err = kafka.ReadSpan(ctx, t.q.cl.Opts(), topic, sp, func(r *kgo.Record) error {
		t.audit[r.Partition] = r.Offset + 1
		var d Decision
		if json.Unmarshal(r.Value, &d) == nil && d.ID != "" {
			t.decide(&d)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for p, r := range sp {
		t.audit[p] = r[1]
	}
	return nil
}

// decide takes a decided entry out of its queue's count, or remembers it
// until the entry is read.
func (t *Tracker) decide(d *Decision) {
	id := d.ID
	topic, p, off, ok := retry.ParseCoordinates(id)
	if !ok {
		return
	}
	qs := t.queues[topic]
	if qs == nil {
		return // another queue's, or another prefix's
	}
	if qs.id != (kadm.TopicID{}) && !d.about(qs.id.String()) {
		return // about an earlier topic of that name
	}
	if next, seen := qs.next[p]; !seen || off >= next {
		t.early[id] = true
		return
	}
	if o := qs.parts[p]; o != nil {
		o.decide(off)
	}
}

package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A read ends when every partition reached its end offset: transaction
// markers are fetched too (and not handed out), so a partition ending in a
// marker still shows its last offset, and ends are last stable offsets, so
// an open transaction's records are not waited for. When nothing comes for
// quietEnd (before the first record firstWait, so a cold client over a
// slow link is not mistaken for a stall), a partition whose stable offset
// is still pinned at its end by an open transaction is done (what it did
// not return below the end was aborted; see pinnedAtEnd); any other gives
// ErrIncomplete. Finished partitions are paused, so records arriving on
// them past their end do not keep the others' quiet period from running.
var (
	quietEnd  = 5 * time.Second // a var for tests
	firstWait = 10 * time.Second
)

// ErrIncomplete is returned by ReadSpan when records stopped coming before
// every partition reached its end offset. What was read is not the whole
// range: a caller that counts or decides from it must not go on as if it
// were.
var ErrIncomplete = errors.New("kafka: read stopped before the end offsets")

// Span is a half-open offset range per partition.
type Span map[int32][2]int64

// offsetsAt lists, per partition of topic, the first offset at or after
// ms, or the last stable offset when ms is zero.
func offsetsAt(ctx context.Context, adm *kadm.Client, topic string, t time.Time) (map[int32]int64, error) {
	var (
		l   kadm.ListedOffsets
		err error
	)
	switch {
	case t.IsZero():
		// The last stable offset: with read_committed, records past it (an
		// open transaction's) are not fetched, so a read to the high
		// watermark could not finish.
		l, err = adm.ListCommittedOffsets(ctx, topic)
	case t.UnixMilli() < 0:
		// Every record is after it. As a timestamp, -1 and -2 are Kafka's
		// codes for the latest and the earliest offset: a --from a
		// minute into 1970 less replay's slack read nothing.
		l, err = adm.ListStartOffsets(ctx, topic)
	default:
		l, err = adm.ListOffsetsAfterMilli(ctx, t.UnixMilli(), topic)
	}
	if err == nil {
		err = l.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list offsets of %s: %w", topic, err)
	}
	out := map[int32]int64{}
	l.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// RangeOf is the offsets of topic between from and to (to zero: the end;
// from zero: the start).
func RangeOf(ctx context.Context, adm *kadm.Client, topic string, from, to time.Time) (Span, error) {
	var start map[int32]int64
	if from.IsZero() {
		l, err := adm.ListStartOffsets(ctx, topic)
		if err == nil {
			err = l.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("list start offsets of %s: %w", topic, err)
		}
		start = map[int32]int64{}
		l.Each(func(o kadm.ListedOffset) { start[o.Partition] = o.Offset })
	} else {
		var err error
		if start, err = offsetsAt(ctx, adm, topic, from); err != nil {
			return nil, err
		}
	}
	end, err := offsetsAt(ctx, adm, topic, to)
	if err != nil {
		return nil, err
	}
	if !to.IsZero() {
		// The lookup by time is read_uncommitted: past the last record it
		// answers the high watermark, and inside an open transaction an
		// offset of it. A read_committed read cannot get there, and waited
		// its quiet period for ErrIncomplete after reading every committed
		// record. Ends are last stable offsets at the latest.
		stable, err := offsetsAt(ctx, adm, topic, time.Time{})
		if err != nil {
			return nil, err
		}
		for p, e := range end {
			if s, ok := stable[p]; ok && s < e {
				end[p] = s
			}
		}
	}
	sp := Span{}
	for p, s := range start {
		if e, ok := end[p]; ok && s >= 0 && e > s {
			sp[p] = [2]int64{s, e}
		}
	}
	return sp, nil
}

// ReadSpan calls fn for every committed record of topic inside sp, in
// offset order per partition. It returns when every partition reached its
// end, when fn fails, when ctx ends, or with ErrIncomplete when nothing
// came for quietEnd before that.
func ReadSpan(ctx context.Context, opts []kgo.Opt, topic string, sp Span, fn func(*kgo.Record) error) error {
	if len(sp) == 0 {
		return nil
	}
	parts := map[int32]kgo.Offset{}
	want := map[int32]int64{}
	for p, r := range sp {
		parts[p] = kgo.NewOffset().At(r[0])
		want[p] = r[1]
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	next := map[int32]int64{} // per partition, the offset after the last seen
	wait := firstWait
	for len(want) > 0 {
		pctx, cancel := context.WithTimeout(ctx, wait)
		fs := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("reading %s: %w", topic, err)
		}
		for _, fe := range fs.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) {
				return fmt.Errorf("reading %s[%d]: %w", fe.Topic, fe.Partition, fe.Err)
			}
		}
		recs := fs.Records()
		if len(recs) == 0 {
			pinned, err := pinnedAtEnd(ctx, cl, topic, want)
			if err != nil {
				return err
			}
			for _, p := range pinned {
				delete(want, p)
			}
			if len(want) == 0 {
				return nil
			}
			if len(pinned) > 0 {
				continue // the others get a quiet period of their own
			}
			var at []string
			for p, end := range want {
				at = append(at, fmt.Sprintf("%d at %d of %d", p, max(next[p], sp[p][0]), end))
			}
			return fmt.Errorf("%w: %s: nothing came for %v (partition at offset of end: %s)", ErrIncomplete, topic, wait, strings.Join(at, ", "))
		}
		wait = quietEnd
		for _, r := range recs {
			end, ok := want[r.Partition]
			if !ok {
				continue
			}
			next[r.Partition] = r.Offset + 1
			if r.Offset < end && !r.Attrs.IsControl() {
				if err := fn(r); err != nil {
					return err
				}
			}
			// At or past the end: a record compacted away, or filtered as
			// part of an aborted transaction, may have held the last offset.
			if r.Offset+1 >= end {
				delete(want, r.Partition)
				// Its later records must not keep the polls busy: the
				// quiet period is for the partitions still being read.
				cl.PauseFetchPartitions(map[string][]int32{topic: {r.Partition}})
			}
		}
	}
	return nil
}

// pinnedAtEnd returns the partitions of want (partition → end offset) whose
// last stable offset is still their end: a transaction opened there and
// holds it, so every committed record below the end was fetchable, and
// what was not fetched below it belongs to aborted transactions whose
// markers sit past the open one's first record (they come once it ends).
// Such a partition is read to its end.
func pinnedAtEnd(ctx context.Context, cl *kgo.Client, topic string, want map[int32]int64) ([]int32, error) {
	adm := kadm.NewClient(cl)
	stable, err := adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = stable.Error()
	}
	var hw kadm.ListedOffsets
	if err == nil {
		hw, err = adm.ListEndOffsets(ctx, topic)
	}
	if err == nil {
		err = hw.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list offsets of %s: %w", topic, err)
	}
	var out []int32
	for p, end := range want {
		lso, ok1 := stable.Lookup(topic, p)
		high, ok2 := hw.Lookup(topic, p)
		if ok1 && ok2 && lso.Offset == end && high.Offset > end {
			out = append(out, p)
		}
	}
	return out, nil
}

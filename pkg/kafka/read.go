package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// quietEnd is how long a poll may bring nothing before the reader decides
// it has read everything committed: transaction markers take offsets but
// are never returned, so a partition ending in a marker never shows its
// last offset. Before the first record the wait is firstWait, so a cold
// client (metadata, connections) is not mistaken for an empty range.
const (
	quietEnd  = 2 * time.Second
	firstWait = 10 * time.Second
)

// Span is a half-open offset range per partition.
type Span map[int32][2]int64

// offsetsAt lists, per partition of topic, the first offset at or after
// ms, or the end offset when ms is zero.
func offsetsAt(ctx context.Context, adm *kadm.Client, topic string, t time.Time) (map[int32]int64, error) {
	var (
		l   kadm.ListedOffsets
		err error
	)
	if t.IsZero() {
		l, err = adm.ListEndOffsets(ctx, topic)
	} else {
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
// end (or nothing came for quietEnd), when fn fails, or when ctx ends.
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
	)...)
	if err != nil {
		return err
	}
	defer cl.Close()
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
			return nil
		}
		wait = quietEnd
		for _, r := range recs {
			end, ok := want[r.Partition]
			if !ok || r.Offset >= end {
				continue
			}
			if err := fn(r); err != nil {
				return err
			}
			if r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		}
	}
	return nil
}

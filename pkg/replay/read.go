package replay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/kafka"
)

// pending counts the committed records of topics after group's committed
// offsets (from the start where it committed none; every record when
// group is empty): what the group has still to process.
func pending(ctx context.Context, adm *kadm.Client, opts []kgo.Opt, group string, topics ...string) (int64, error) {
	var committed kadm.OffsetResponses
	if group != "" {
		var err error
		// A group that never committed does not exist yet.
		if committed, err = adm.FetchOffsets(ctx, group); err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
			return 0, fmt.Errorf("committed offsets of %s: %w", group, err)
		}
	}
	var n int64
	for _, t := range topics {
		sp, err := kafka.RangeOf(ctx, adm, t, time.Time{}, time.Time{})
		if err != nil {
			return 0, err
		}
		for p, r := range sp {
			if o, ok := committed.Lookup(t, p); ok && o.Err == nil && o.At > r[0] {
				r[0] = o.At
			}
			if r[0] >= r[1] {
				delete(sp, p)
			} else {
				sp[p] = r
			}
		}
		if err := kafka.ReadSpan(ctx, opts, t, sp, func(*kgo.Record) error { n++; return nil }); err != nil {
			return 0, err
		}
	}
	return n, nil
}

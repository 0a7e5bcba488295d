package kafka

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// AwaitStable waits until what was written to topics so far is readable
// by read_committed consumers: until each partition's last stable offset
// reached the end offset it had when called. Kafka answers a transaction's
// commit before its markers reach the partitions, so a read or count
// right after one (bounded by last stable offsets, as RangeOf's) may see
// none of it. An error (ctx's when it ends first) says which partition is
// still behind.
func AwaitStable(ctx context.Context, adm *kadm.Client, topics ...string) error {
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("list end offsets of %v: %w", topics, err)
	}
	for {
		behind := ""
		stable, err := adm.ListCommittedOffsets(ctx, topics...)
		if err == nil {
			err = stable.Error()
		}
		if err == nil {
			ends.Each(func(e kadm.ListedOffset) {
				if s, ok := stable.Lookup(e.Topic, e.Partition); behind == "" && (!ok || s.Offset < e.Offset) {
					behind = fmt.Sprintf("%s/%d (stable offset %d of %d)", e.Topic, e.Partition, s.Offset, e.Offset)
				}
			})
			if behind == "" {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if behind == "" {
				return fmt.Errorf("list stable offsets of %v: %w", topics, err)
			}
			return fmt.Errorf("committed writes to %s not readable yet (a transaction still open there?): %w", behind, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

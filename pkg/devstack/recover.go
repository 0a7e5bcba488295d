package devstack

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkaLog hands the embedded broker's log to slog. While the broker loads
// its data directory (loading set), a warning is that directory's damage
// (a segment cut short by a crash or power loss, whose last records are
// dropped), an error here; after, kfake's warnings are consumer-group
// chatter, kept at debug.
type kafkaLog struct {
	log     *slog.Logger
	loading atomic.Bool
}

func (k *kafkaLog) Logf(level kfake.LogLevel, format string, args ...any) {
	switch {
	case level == kfake.LogLevelError, level == kfake.LogLevelWarn && k.loading.Load():
		k.log.Error("embedded kafka: "+fmt.Sprintf(format, args...)+" (its data directory was not closed cleanly: records written last may be gone)", "component", "kafka")
	case level == kfake.LogLevelWarn && k.log.Enabled(context.Background(), slog.LevelDebug):
		// Info and debug (every request) are dropped unformatted.
		k.log.Debug("embedded kafka: "+fmt.Sprintf(format, args...), "component", "kafka")
	}
}

// checkRecovered runs once the broker has loaded its data directory, before
// anything else connects:
//   - with the registry's file missing (regMissing) while Kafka holds
//     records, it refuses: schema IDs would be given out again from 1, and
//     the records kept would name other schemas;
//   - a group whose committed offset is past a partition's end (records
//     lost to a crash after the group read them) is moved back to that end,
//     with an error naming the partitions: left there, the records written
//     next at the offsets it already passed were never processed.
func checkRecovered(ctx context.Context, brokers []string, regMissing bool, regFile string, log *slog.Logger) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx)
	if err != nil {
		return fmt.Errorf("embedded kafka: list end offsets: %w", err)
	}
	if regMissing {
		held := false
		ends.Each(func(o kadm.ListedOffset) { held = held || o.Err == nil && o.Offset > 0 })
		if held {
			return fmt.Errorf("schema registry state %s is missing while the embedded Kafka holds records: their schema IDs would be given to other schemas (put the file back, or move the whole data directory away to start empty)", regFile)
		}
	}
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		return fmt.Errorf("embedded kafka: list groups: %w", err)
	}
	for _, g := range groups.Groups() {
		committed, err := adm.FetchOffsets(ctx, g)
		if err != nil {
			return fmt.Errorf("embedded kafka: offsets of group %s: %w", g, err)
		}
		back := kadm.Offsets{}
		var where []string
		committed.Each(func(o kadm.OffsetResponse) {
			end, ok := ends.Lookup(o.Topic, o.Partition)
			if o.Err != nil || !ok || end.Err != nil || o.At <= end.Offset {
				return
			}
			where = append(where, fmt.Sprintf("%s/%d (group at %d, log ends at %d)", o.Topic, o.Partition, o.At, end.Offset))
			back.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: end.Offset, LeaderEpoch: -1})
		})
		if len(back) == 0 {
			continue
		}
		resp, err := adm.CommitOffsets(ctx, g, back)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			return fmt.Errorf("embedded kafka: move group %s back to the end of %s: %w", g, strings.Join(where, ", "), err)
		}
		log.Error("embedded kafka: records the group had read are gone from the log (the data directory was not closed cleanly); the group is moved back to each log's end, so that what is written next is processed",
			"group", g, "partitions", where)
	}
	return nil
}

// recoverTimeout bounds checkRecovered.
const recoverTimeout = 30 * time.Second

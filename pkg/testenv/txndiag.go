package testenv

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// txnDiagnosis says why a read_committed read of topic came up short:
// per partition, the last stable offset against the high watermark, the
// transactions still open (which hold the stable offset back), and the
// records of aborted transactions (written, then thrown away), with the
// committed records per partition as the markers say. The causes look the
// same to the reader and mean different things: an open transaction is
// late, an aborted record whose event was counted is lost, and more
// committed records than the reader got means read_committed filtering
// dropped some.
func (e *Env) txnDiagnosis(topic string) string {
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Brokers...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
		kgo.KeepControlRecords(),
	)
	if err != nil {
		return "diagnosis: " + err.Error()
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	stable, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return "diagnosis: stable offsets: " + err.Error()
	}
	high, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return "diagnosis: end offsets: " + err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "diagnosis of %s:", topic)
	high.Each(func(o kadm.ListedOffset) {
		s, _ := stable.Lookup(topic, o.Partition)
		if s.Offset != o.Offset {
			fmt.Fprintf(&b, " partition %d stable at %d, high watermark %d;", o.Partition, s.Offset, o.Offset)
		}
	})
	if prods, err := adm.DescribeProducers(ctx, kadm.TopicsSet{topic: nil}); err != nil {
		fmt.Fprintf(&b, " producers: %v;", err)
	} else {
		prods.EachProducer(func(p kadm.DescribedProducer) {
			if p.CurrentTxnStartOffset >= 0 {
				fmt.Fprintf(&b, " open transaction on partition %d from offset %d (producer %d epoch %d, last write %v ago);",
					p.Partition, p.CurrentTxnStartOffset, p.ProducerID, p.ProducerEpoch,
					time.Since(time.UnixMilli(p.LastTimestamp)).Round(time.Millisecond))
			}
		})
	}
	b.WriteString(readAborted(ctx, cl, topic, high))
	return b.String()
}

// readAborted reads topic uncommitted to its high watermark and lists the
// data records a transaction abort threw away: offset and key.
func readAborted(ctx context.Context, cl *kgo.Client, topic string, high kadm.ListedOffsets) string {
	behind := map[int32]int64{}
	high.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			behind[o.Partition] = o.Offset
		}
	})
	type pending struct{ recs []*kgo.Record }
	open := map[int32]map[int64]*pending{} // partition → producer → records since its last marker
	var aborted []string
	var commits, aborts int
	committed := map[int32]int{} // partition → data records a commit marker (or no transaction) kept
	for len(behind) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Sprintf(" (read stopped: %v, partitions left %v)", ctx.Err(), behind)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := behind[r.Partition]; ok && r.Offset+1 >= end {
				delete(behind, r.Partition)
			}
			if open[r.Partition] == nil {
				open[r.Partition] = map[int64]*pending{}
			}
			p := open[r.Partition][r.ProducerID]
			if p == nil {
				p = &pending{}
				open[r.Partition][r.ProducerID] = p
			}
			if !r.Attrs.IsControl() {
				if r.Attrs.IsTransactional() {
					p.recs = append(p.recs, r)
				} else {
					committed[r.Partition]++
				}
				return
			}
			// A control record's key is version (int16) then type
			// (int16): 0 abort, 1 commit.
			if len(r.Key) >= 4 && binary.BigEndian.Uint16(r.Key[2:]) == 0 {
				aborts++
				for _, d := range p.recs {
					aborted = append(aborted, fmt.Sprintf("%d/%d key %q", d.Partition, d.Offset, d.Key))
				}
			} else {
				commits++
				committed[r.Partition] += len(p.recs)
			}
			p.recs = nil
		})
	}
	slices.Sort(aborted)
	return fmt.Sprintf(" %d commit and %d abort markers; committed records by partition %v; records of aborted transactions: %v", commits, aborts, committed, aborted)
}

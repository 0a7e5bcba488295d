package kafka

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// planSettle writes a marker only where the coordinator completed the
// transaction that left records open, with the fate it gave; waits
// (pending) while it still ends the transaction a commit just answered;
// leaves alone what another producer, or another epoch than the one
// confirmed, left open; and reports what it may not describe.
func TestPlanSettle(t *testing.T) {
	open := func(topic string, p int32, pid int64, epoch int16) kadm.DescribedProducer {
		return kadm.DescribedProducer{Topic: topic, Partition: p, ProducerID: pid, ProducerEpoch: epoch, CurrentTxnStartOffset: 10}
	}
	partitions := func(dps ...kadm.DescribedProducersPartition) kadm.DescribedProducersTopics {
		out := kadm.DescribedProducersTopics{}
		for _, dp := range dps {
			dt := out[dp.Topic]
			dt.Topic = dp.Topic
			if dt.Partitions == nil {
				dt.Partitions = kadm.DescribedProducersPartitions{}
			}
			dt.Partitions[dp.Partition] = dp
			out[dp.Topic] = dt
		}
		return out
	}
	on := func(topic string, p int32, ps ...kadm.DescribedProducer) kadm.DescribedProducersPartition {
		active := kadm.DescribedProducers{}
		for _, d := range ps {
			active[d.ProducerID] = d
		}
		return kadm.DescribedProducersPartition{Topic: topic, Partition: p, ActiveProducers: active}
	}
	confirmed := func(pid int64, epoch int16) func(kadm.DescribedProducer) bool {
		return func(p kadm.DescribedProducer) bool { return p.ProducerID == pid && p.ProducerEpoch == epoch }
	}
	for _, c := range []struct {
		name        string
		coord       kadm.DescribedTransaction
		producers   kadm.DescribedProducersTopics
		match       func(kadm.DescribedProducer) bool
		waitRunning bool
		heal        []bool // fates written, in order
		unsettled   int
		pending     bool
		forbidden   int
		unanswered  int
	}{
		{name: "committed, markers skipped (v2)", coord: kadm.DescribedTransaction{ProducerID: 7, ProducerEpoch: 5, State: "CompleteCommit"},
			producers: partitions(on("a", 0, open("a", 0, 7, 4)), on("audit", 1, open("audit", 1, 7, 4))), match: confirmed(7, 4), waitRunning: true, heal: []bool{true, true}},
		{name: "committed, markers skipped (v1)", coord: kadm.DescribedTransaction{ProducerID: 7, ProducerEpoch: 4, State: "CompleteCommit"},
			producers: partitions(on("a", 0, open("a", 0, 7, 4))), match: confirmed(7, 4), waitRunning: true, heal: []bool{true}},
		{name: "the client aborted what it was asked to commit", coord: kadm.DescribedTransaction{ProducerID: 7, ProducerEpoch: 5, State: "CompleteAbort"},
			producers: partitions(on("a", 0, open("a", 0, 7, 4))), match: confirmed(7, 4), waitRunning: true, heal: []bool{false}},
		{name: "markers in flight: wait", coord: kadm.DescribedTransaction{ProducerID: 7, ProducerEpoch: 5, State: "PrepareCommit"},
			producers: partitions(on("a", 0, open("a", 0, 7, 4))), match: confirmed(7, 4), waitRunning: true, pending: true},
		{name: "another client's transaction running: not waited for before taking the id", coord: kadm.DescribedTransaction{ProducerID: 7, ProducerEpoch: 6, State: "Ongoing"},
			producers: partitions(on("a", 0, open("a", 0, 7, 6))), waitRunning: false},
		{name: "fenced since: fate unknown", coord: kadm.DescribedTransaction{ProducerID: 7, ProducerEpoch: 9, State: "Empty"},
			producers: partitions(on("a", 0, open("a", 0, 7, 4))), match: confirmed(7, 4), waitRunning: true, unsettled: 1},
		{name: "other producers and epochs left alone", coord: kadm.DescribedTransaction{ProducerID: 7, ProducerEpoch: 5, State: "CompleteCommit"},
			producers: partitions(on("a", 0, open("a", 0, 8, 4)), on("a", 1, open("a", 1, 7, 2)),
				on("a", 2, kadm.DescribedProducer{Topic: "a", Partition: 2, ProducerID: 7, ProducerEpoch: 4, CurrentTxnStartOffset: -1})),
			match: confirmed(7, 4), waitRunning: true},
		{name: "settling the last completed transaction, any partition", coord: kadm.DescribedTransaction{ProducerID: 7, ProducerEpoch: 5, State: "CompleteCommit"},
			producers: partitions(on("a", 0, open("a", 0, 7, 4)), on("a", 1), on("a", 2, open("a", 2, 7, 4))), heal: []bool{true, true}},
		{name: "no READ on a partition; another did not answer", coord: kadm.DescribedTransaction{ProducerID: 7, ProducerEpoch: 5, State: "CompleteCommit"},
			producers: partitions(kadm.DescribedProducersPartition{Topic: "a", Partition: 0, Err: kerr.TopicAuthorizationFailed},
				kadm.DescribedProducersPartition{Topic: "a", Partition: 1, Err: kerr.NotLeaderForPartition}),
			match: confirmed(7, 4), waitRunning: true, forbidden: 1, unanswered: 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			pl := planSettle(c.coord, c.producers, c.match, c.waitRunning)
			var fates []bool
			for _, h := range pl.heal {
				fates = append(fates, h.Commit)
			}
			if len(fates) != len(c.heal) || pl.pending != c.pending || len(pl.unsettled) != c.unsettled ||
				len(pl.forbidden) != c.forbidden || len(pl.unanswered) != c.unanswered {
				t.Fatalf("plan %+v; want heal %v, unsettled %d, pending %v, forbidden %d, unanswered %d", pl, c.heal, c.unsettled, c.pending, c.forbidden, c.unanswered)
			}
			for i := range fates {
				if fates[i] != c.heal[i] {
					t.Fatalf("fates %v, want %v", fates, c.heal)
				}
			}
		})
	}
}

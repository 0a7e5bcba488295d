package processor

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/kafka"
)

// The coordinator's view decides whether open records are its own to
// finish (running) and, once it completed their transaction, which way
// (decided); transactions v2 completes a transaction at the next epoch.
func TestCoordinatorViewOfOpenRecords(t *testing.T) {
	open := kadm.DescribedProducer{ProducerID: 7, ProducerEpoch: 4, CurrentTxnStartOffset: 10}
	for _, c := range []struct {
		state                   string
		pid                     int64
		epoch                   int16
		runs, known, wantCommit bool
	}{
		{"Ongoing", 7, 4, true, false, false},         // the transaction still open
		{"Ongoing", 7, 5, false, false, false},        // a later one: 4's markers were skipped
		{"PrepareCommit", 7, 5, true, false, false},   // v2: 4 being committed
		{"PrepareAbort", 7, 4, true, false, false},    // v1: 4 being aborted
		{"CompleteCommit", 7, 5, false, true, true},   // v2: 4 committed
		{"CompleteCommit", 7, 4, false, true, true},   // v1: 4 committed
		{"CompleteAbort", 7, 5, false, true, false},   // v2: 4 aborted
		{"CompleteCommit", 7, 6, false, false, false}, // a later transaction's end
		{"Empty", 7, 6, false, false, false},          // fenced since: fate unknown
		{"CompleteCommit", 8, 5, false, false, false}, // another producer id
	} {
		coord := kadm.DescribedTransaction{State: c.state, ProducerID: c.pid, ProducerEpoch: c.epoch}
		if got := kafka.CoordinatorRuns(coord, open); got != c.runs {
			t.Errorf("%s pid %d epoch %d: coordinatorRuns = %v, want %v", c.state, c.pid, c.epoch, got, c.runs)
		}
		commit, known := kafka.CoordinatorDecided(coord, open)
		if known != c.known || commit != c.wantCommit {
			t.Errorf("%s pid %d epoch %d: decided = %v, %v, want %v, %v", c.state, c.pid, c.epoch, commit, known, c.wantCommit, c.known)
		}
	}
}

// The worker remembers the transactions it ended, with their fate and
// partitions, up to maxEnded, and checks them only after a connection
// dropped.
func TestEndedTransactionsRemembered(t *testing.T) {
	w := &worker{disc: &disconnects{}}
	var none txnWrites
	w.noteEnded(&none, true)
	if len(w.ended) != 0 {
		t.Fatal("a transaction that wrote nothing was remembered")
	}
	for i := range maxEnded + 3 {
		var tw txnWrites
		tw.produced(&kgo.Record{Topic: "p", Partition: int32(i % 2), ProducerID: 9, ProducerEpoch: int16(i)})
		tw.produced(&kgo.Record{Topic: "p", Partition: int32(i % 2), ProducerID: 9, ProducerEpoch: int16(i)})
		w.noteEnded(&tw, i%3 != 0)
	}
	if len(w.ended) != maxEnded {
		t.Fatalf("%d transactions remembered, want %d", len(w.ended), maxEnded)
	}
	last := w.ended[len(w.ended)-1]
	if last.pid != 9 || last.epoch != maxEnded+2 || last.commit != ((maxEnded+2)%3 != 0) || len(last.wrote["p"]) != 1 {
		t.Errorf("last remembered %+v", last)
	}
	if w.ended[0].epoch != 3 {
		t.Errorf("oldest remembered epoch %d, want 3", w.ended[0].epoch)
	}
	if w.markersDue() {
		t.Error("markers due with no connection dropped")
	}
	w.disc.OnBrokerDisconnect(kgo.BrokerMetadata{}, nil)
	if !w.markersDue() {
		t.Error("markers not due after a connection dropped")
	}
	var offsetsOnly txnWrites
	offsetsOnly.saw(9, 100)
	w.noteEnded(&offsetsOnly, true)
	if e := w.ended[len(w.ended)-1]; e.epoch != 100 || len(e.wrote) != 0 {
		t.Errorf("an offsets-only transaction remembered as %+v", e)
	}
}

// planMarkers settles an open transaction it knows the fate of (from the
// worker's memory, or the coordinator's last completion), leaves the one
// in hand and the coordinator's running one to their end, noting the
// committed records Kafka left open before the one in hand's, and
// reports the rest; other producers' open transactions are none of its
// business.
func TestPlanMarkers(t *testing.T) {
	const pid, other = 7, 8
	open := func(topic string, part int32, from int64, producer int64, epoch int16) kadm.DescribedProducer {
		return kadm.DescribedProducer{Topic: topic, Partition: part, ProducerID: producer, ProducerEpoch: epoch, CurrentTxnStartOffset: from}
	}
	producers := kadm.DescribedProducersTopics{}
	add := func(ps ...kadm.DescribedProducer) {
		for _, p := range ps {
			tp := producers[p.Topic]
			tp.Topic = p.Topic
			if tp.Partitions == nil {
				tp.Partitions = kadm.DescribedProducersPartitions{}
			}
			dp := tp.Partitions[p.Partition]
			dp.Topic, dp.Partition = p.Topic, p.Partition
			if dp.ActiveProducers == nil {
				dp.ActiveProducers = kadm.DescribedProducers{}
			}
			dp.ActiveProducers[p.ProducerID] = p
			tp.Partitions[p.Partition] = dp
			producers[p.Topic] = tp
		}
	}
	add(
		open("processed", 0, 10, pid, 4),  // committed (memory): marker
		open("processed", 1, 20, pid, 5),  // aborted (memory): marker
		open("processed", 2, 30, pid, 9),  // in hand, after earlier records: orphan of 4
		open("state", 0, 40, pid, 9),      // in hand, its own first: nothing
		open("state", 1, 50, pid, 2),      // unknown epoch: reported
		open("dlq", 0, 60, other, 3),      // another producer: none of ours
		open(offsetsTopic, 3, 70, pid, 4), // committed offsets: marker
		kadm.DescribedProducer{Topic: "invalid", Partition: 0, ProducerID: pid, ProducerEpoch: 4, CurrentTxnStartOffset: -1}, // nothing open
	)
	unanswered := kadm.DescribedProducersTopics{
		"retry":    {Topic: "retry", Partitions: kadm.DescribedProducersPartitions{0: {Topic: "retry", Err: kerr.NotLeaderForPartition}}},
		"refusing": {Topic: "refusing", Partitions: kadm.DescribedProducersPartitions{0: {Topic: "refusing", Err: kerr.TopicAuthorizationFailed}}},
	}
	for t, tp := range unanswered {
		producers[t] = tp
	}
	cur := &txnWrites{}
	cur.produced(&kgo.Record{Topic: "processed", Partition: 2, ProducerID: pid, ProducerEpoch: 9, Offset: 35})
	cur.produced(&kgo.Record{Topic: "state", Partition: 0, ProducerID: pid, ProducerEpoch: 9, Offset: 40})
	coord := kadm.DescribedTransaction{State: "Ongoing", ProducerID: pid, ProducerEpoch: 9}
	ended := []endedTxn{
		{pid: pid, epoch: 3, commit: true, offsets: true, wrote: map[string][]int32{"processed": {2}}},
		{pid: pid, epoch: 4, commit: true, offsets: true, wrote: map[string][]int32{"processed": {0, 2}}},
		{pid: pid, epoch: 5, commit: false, wrote: map[string][]int32{"processed": {1}}},
	}

	pl := planMarkers(coord, producers, ended, cur)
	var heal []string
	for _, o := range pl.heal {
		heal = append(heal, fmt.Sprintf("%s/%d %v", o.p.Topic, o.p.Partition, o.commit))
	}
	slices.Sort(heal)
	if want := []string{"__consumer_offsets/3 true", "processed/0 true", "processed/1 false"}; !slices.Equal(heal, want) {
		t.Errorf("markers %v, want %v", heal, want)
	}
	if len(pl.unknown) != 1 || pl.unknown[0].Topic != "state" || pl.unknown[0].Partition != 1 {
		t.Errorf("unknown %+v, want state/1", pl.unknown)
	}
	if len(pl.orphans) != 1 {
		t.Fatalf("orphans %+v, want processed/2", pl.orphans)
	}
	if o := pl.orphans[0]; o.topic != "processed" || o.partition != 2 || o.from != 30 || o.to != 35 || o.pid != pid || !maps.Equal(o.epochs, map[int16]bool{3: true, 4: true}) {
		t.Errorf("orphan %+v, want processed/2 offsets 30-34 of epochs 3 and 4", o)
	}
	if len(pl.unanswered) != 1 {
		t.Errorf("unanswered %v, want retry/0 (asked again)", pl.unanswered)
	}
	if !slices.Equal(pl.forbidden, []string{"refusing/0"}) {
		t.Errorf("forbidden %v, want refusing/0 (not asked again)", pl.forbidden)
	}
	if len(pl.seen) != 6 {
		t.Errorf("seen %v, want the worker's 6 open transactions", pl.seen)
	}
}

// Transactions v1 (Kafka 3, or a 4.x cluster whose transaction.version
// stayed below 2): every transaction of a session has one epoch. Open
// records on a partition take the fate of the ended transactions that
// wrote there, not the epoch's last one; differing fates there are
// unknown; and an open stretch at the epoch of the transaction in hand is
// its own only where it wrote.
func TestPlanMarkersSharedEpoch(t *testing.T) {
	const pid = 7
	ended := []endedTxn{
		{pid: pid, epoch: 4, commit: true, offsets: true, wrote: map[string][]int32{"processed": {1, 3}}}, // markers skipped
		{pid: pid, epoch: 4, commit: false, wrote: map[string][]int32{"processed": {2, 3}}},               // aborted after it
	}
	open := func(part int32) kadm.DescribedProducer {
		return kadm.DescribedProducer{Topic: "processed", Partition: part, ProducerID: pid, ProducerEpoch: 4, CurrentTxnStartOffset: 10}
	}
	producers := kadm.DescribedProducersTopics{"processed": {Topic: "processed", Partitions: kadm.DescribedProducersPartitions{
		1: {Topic: "processed", Partition: 1, ActiveProducers: kadm.DescribedProducers{pid: open(1)}},
		3: {Topic: "processed", Partition: 3, ActiveProducers: kadm.DescribedProducers{pid: open(3)}},
	}}}
	inHand := &txnWrites{}
	inHand.produced(&kgo.Record{Topic: "processed", Partition: 0, ProducerID: pid, ProducerEpoch: 4, Offset: 30})
	for _, c := range []struct {
		name  string
		coord kadm.DescribedTransaction
		cur   *txnWrites
	}{
		{"between transactions", kadm.DescribedTransaction{State: "CompleteAbort", ProducerID: pid, ProducerEpoch: 4}, nil},
		{"one in hand elsewhere", kadm.DescribedTransaction{State: "Ongoing", ProducerID: pid, ProducerEpoch: 4, Topics: kadm.TopicsSet{"processed": {0: {}}}}, inHand},
	} {
		t.Run(c.name, func(t *testing.T) {
			pl := planMarkers(c.coord, producers, ended, c.cur)
			if len(pl.heal) != 1 || !pl.heal[0].commit || pl.heal[0].p.Partition != 1 {
				t.Errorf("markers %+v, want a commit on processed/1 only", pl.heal)
			}
			if len(pl.unknown) != 1 || pl.unknown[0].Partition != 3 {
				t.Errorf("unknown %+v, want processed/3 (a commit and an abort wrote there)", pl.unknown)
			}
		})
	}
}

// BenchmarkTxnWritesProduced is what remembering a transaction's writes
// costs each output record (two records an event, processed and state).
func BenchmarkTxnWritesProduced(b *testing.B) {
	recs := make([]*kgo.Record, 1000)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: []string{"inlet.processed", "inlet.state"}[i%2], Partition: int32(i % 6), ProducerID: 7, ProducerEpoch: 3, Offset: int64(i)}
	}
	b.ReportAllocs()
	for b.Loop() {
		var t txnWrites
		for _, r := range recs {
			t.produced(r)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
}

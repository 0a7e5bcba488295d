package processor

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
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
		if got := coordinatorRuns(coord, open); got != c.runs {
			t.Errorf("%s pid %d epoch %d: coordinatorRuns = %v, want %v", c.state, c.pid, c.epoch, got, c.runs)
		}
		commit, known := decided(coord, open)
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

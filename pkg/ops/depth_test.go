package ops

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/testenv"
)

// testTrackerAgreesWithAFullRead: after entries arrive, are decided
// (requeued, discarded) and are deleted by retention, the tracker's
// incremental counts equal those of reading both queues and the audit
// topic whole, at every step.
func testTrackerAgreesWithAFullRead(t *testing.T, newEnv func(testing.TB) *testenv.Env) {
	env := newEnv(t)
	ctx := context.Background()
	tp := env.CreateTopics(t, nil)
	codec := env.Codec(t, tp)
	q, err := New([]kgo.Opt{kgo.SeedBrokers(env.Brokers...)}, tp, codec)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	tr := NewTracker(q, tp.DLQ, tp.Invalid)
	n := 0
	deadLetter := func(k int) {
		for range k {
			n++
			env.DeadLetter(t, tp, codec, "shop", "orders/updated", fmt.Sprintf("wh-%d", n), "sink answered 503")
		}
	}
	// Envelopes: one of them is requeued, and a value that is none is
	// not (see TestRequeueSkipsValuesThatAreNotEnvelopes).
	invalid := func(k int) {
		cl := env.Client(t, kgo.ProducerLinger(0))
		for range k {
			n++
			eid := fmt.Sprintf("inv-%d", n)
			val, err := codec.Encode(&envelope.Envelope{ID: "id-" + eid, Source: "shop", EventType: "orders/updated", EventID: eid,
				IdempotencyKey: envelope.IdempotencyKey("shop", eid), SchemaVersion: "v1", ReceivedAt: time.Now().UTC().Truncate(time.Microsecond),
				Channel: envelope.ChannelWebhook, Headers: map[string]string{}, Payload: []byte("{}"), ContentType: "application/json"})
			if err != nil {
				t.Fatal(err)
			}
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: tp.Invalid, Key: []byte(envelope.IdempotencyKey("shop", eid)), Value: val}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(step string, dlq, inv int) {
		t.Helper()
		got, err := tr.Refresh(ctx)
		if err != nil {
			t.Fatalf("%s: refresh: %v", step, err)
		}
		full, err := listed(ctx, q, tp)
		if err != nil {
			t.Fatalf("%s: list: %v", step, err)
		}
		if got[0] != full[0] || got[1] != full[1] || got[0] != dlq || got[1] != inv {
			t.Fatalf("%s: tracker %v, full read %v, want [%d %d]", step, got, full, dlq, inv)
		}
	}

	check("empty", 0, 0)
	deadLetter(6)
	invalid(3)
	check("arrivals", 6, 3)
	es, err := q.List(ctx, tp.DLQ, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Discard(ctx, tp.DLQ, Filter{IDs: []string{es[0].ID, es[3].ID}}, "test", "cancelled", false); err != nil {
		t.Fatal(err)
	}
	inv, err := q.List(ctx, tp.Invalid, Filter{})
	if err != nil || len(inv) != 3 {
		t.Fatalf("invalid entries: %d, %v", len(inv), err)
	}
	if _, err := q.Requeue(ctx, tp.Invalid, Filter{IDs: []string{inv[1].ID}}, "test", "fixed", false); err != nil {
		t.Fatal(err)
	}
	check("decisions", 4, 2)
	deadLetter(2)
	check("more arrivals", 6, 2)
	check("nothing new", 6, 2)

	// Retention deletes the head of each DLQ partition: entries with and
	// without a decision go.
	starts := kadm.Offsets{}
	for _, e := range es {
		if o, ok := starts.Lookup(tp.DLQ, e.partition); !ok || e.offset+1 > o.At {
			starts.AddOffset(tp.DLQ, e.partition, e.offset+1, -1)
		}
	}
	res, err := kadm.NewClient(env.Client(t)).DeleteRecords(ctx, starts)
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	check("retention", 2, 2) // the 2 written after the listing

	// The DLQ is deleted and created again, with fewer partitions: the
	// tracker starts over on it, and decisions on the old topic's entries
	// are not taken for the new entries at the same coordinates.
	adm := kadm.NewClient(env.Client(t))
	if _, err := adm.DeleteTopic(ctx, tp.DLQ); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the DLQ to be gone", func() bool {
		td, err := adm.ListTopics(ctx, tp.DLQ)
		return err == nil && td[tp.DLQ].Err != nil
	})
	// A real broker may still be deleting it for a moment.
	testenv.Eventually(t, 30*time.Second, "the DLQ to be created again", func() bool {
		r, err := adm.CreateTopic(ctx, 2, -1, nil, tp.DLQ)
		return err == nil && r.Err == nil
	})
	cl := env.Client(t, kgo.ProducerLinger(0))
	for i := range 3 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: tp.DLQ, Key: fmt.Appendf(nil, "new-%d", i), Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// Until the client's metadata shows the new topic, a refresh fails
	// (and the processor's gauges keep their last value).
	var got []int
	testenv.Eventually(t, 20*time.Second, "a refresh after the DLQ was recreated", func() bool {
		got, err = tr.Refresh(ctx)
		return err == nil
	})
	full, err := listed(ctx, q, tp)
	if got[0] != 3 || got[1] != 2 || err != nil || full[0] != 3 || full[1] != 2 {
		t.Fatalf("after the DLQ was recreated: tracker %v, full read %v (%v); want [3 2]", got, full, err)
	}
	if len(tr.queues[tp.DLQ].parts) != 2 {
		t.Fatalf("%d partitions tracked, want the new topic's 2", len(tr.queues[tp.DLQ].parts))
	}
}

func TestOpenOffsets(t *testing.T) {
	var o openOffsets
	for i := range int64(3000) {
		o.offs = append(o.offs, i*2) // even offsets
	}
	o.decide(1)    // not an entry
	o.decide(4)    // decided
	o.decide(4)    // twice
	o.decide(9000) // beyond
	if o.count() != 2999 {
		t.Fatalf("count %d, want 2999", o.count())
	}
	for i := range int64(2000) {
		o.decide(i * 2) // past half: compacted once (at 1501 decided)
	}
	if o.count() != 1000 || len(o.offs) != 1499 {
		t.Fatalf("count %d with %d offsets held, want 1000 of 1499 after compaction", o.count(), len(o.offs))
	}
	o.trim(4004) // drops the compacted head, and 3002..4002 decided since
	if o.count() != 998 || len(o.decided) != 0 || o.offs[0] != 4004 {
		t.Fatalf("after trim: count %d, %d decided held, first %d; want 998, 0, 4004", o.count(), len(o.decided), o.offs[0])
	}
}

// TestDecisionBeforeItsEntryIsRead: a decision read before its entry (the
// entry written after the queue's read in the same Refresh) is held until
// the entry comes, and the entry is then not counted.
func TestDecisionBeforeItsEntryIsRead(t *testing.T) {
	tr := NewTracker(&Queues{}, "q.dlq")
	qs := tr.queues["q.dlq"]
	qs.next[0] = 5
	qs.parts[0] = &openOffsets{offs: []int64{1, 3}}
	tr.decide(&Decision{ID: "q.dlq/0/3"}) // read already: counted out now
	tr.decide(&Decision{ID: "q.dlq/0/7"}) // not yet read
	tr.decide(&Decision{ID: "other.dlq/0/1"})
	if c := qs.parts[0].count(); c != 1 || !tr.early["q.dlq/0/7"] || len(tr.early) != 1 {
		t.Fatalf("count %d, early %v", c, tr.early)
	}
}

// listed counts the unresolved entries of the DLQ and the invalid topic by
// listing them: a full read that shares nothing with the Tracker.
func listed(ctx context.Context, q *Queues, tp kafka.Topics) ([]int, error) {
	var out []int
	for _, topic := range []string{tp.DLQ, tp.Invalid} {
		es, err := q.List(ctx, topic, Filter{Unresolved: true})
		if err != nil {
			return nil, err
		}
		out = append(out, len(es))
	}
	return out, nil
}

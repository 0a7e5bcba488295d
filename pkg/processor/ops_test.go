package processor

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/ops"
	"github.com/inletdev/inlet/pkg/testenv"
)

// Operator actions on the failure queues, end to end with a processor.
func TestRequeueAndDiscard(t *testing.T) {
	sink := &downstream{always: 400}
	h, _ := failureHarness(t, testenv.Embedded(t), sink)
	h.start("a", nil)
	order := func(id int) []byte {
		return shopOrder(int64(id), time.Date(2025, 1, 1, 0, 0, id, 0, time.UTC), "paid", true)
	}
	h.send("shop", "orders/updated", "wh-q1", "2025-01", envelope.ChannelWebhook, order(1))
	h.send("shop", "orders/updated", "wh-q2", "2025-01", envelope.ChannelWebhook, order(2))
	h.send("shop", "orders/updated", "wh-q3", "2025-01", envelope.ChannelWebhook, []byte(`{"id":3}`)) // invalid
	h.waitAll(3)

	q, err := ops.New([]kgo.Opt{kgo.SeedBrokers(h.env.Brokers...)}, h.topics, h.codec)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	depth := func(topic string) int {
		n, err := q.Depth(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if d := depth(h.topics.DLQ); d != 2 {
		t.Fatalf("dlq depth %d, want 2", d)
	}
	if _, err := q.Discard(ctx, h.topics.DLQ, ops.Filter{}, "alice", "", false); !errors.Is(err, ops.ErrNoReason) {
		t.Fatalf("discard without a reason: %v", err)
	}
	dry, err := q.Requeue(ctx, h.topics.DLQ, ops.Filter{ErrorText: "400"}, "alice", "sink fixed", true)
	if err != nil || len(dry) != 2 || depth(h.topics.DLQ) != 2 {
		t.Fatalf("dry run: %d entries, %v; depth must not move", len(dry), err)
	}

	// The sink recovers; one record is requeued, the other discarded.
	sink.mu.Lock()
	sink.always = 0
	sink.mu.Unlock()
	var q1, q2 string
	es, _ := q.List(ctx, h.topics.DLQ, ops.Filter{})
	for _, e := range es {
		switch e.EventID {
		case "wh-q1":
			q1 = e.ID
		case "wh-q2":
			q2 = e.ID
		}
		if e.Runbook == "" || len(e.History) == 0 || e.CorrelationID == "" {
			t.Errorf("entry lacks runbook/history/correlation: %+v", e)
		}
	}
	if _, err := q.Requeue(ctx, h.topics.DLQ, ops.Filter{IDs: []string{q1}}, "alice", "sink fixed", false); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Discard(ctx, h.topics.DLQ, ops.Filter{IDs: []string{q2}}, "bob", "order was cancelled upstream", false); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "the requeued event to be processed", func() bool { return h.total(Processed) == 1 })
	if d := depth(h.topics.DLQ); d != 0 {
		t.Fatalf("dlq depth %d after requeue and discard, want 0", d)
	}
	if ids := eventIDs(h, 1); ids["wh-q1"] != 1 || len(ids) != 1 {
		t.Fatalf("outputs %v, want wh-q1 once", ids)
	}
	// Requeueing again is a no-op: it is resolved.
	if again, _ := q.Requeue(ctx, h.topics.DLQ, ops.Filter{IDs: []string{q1}}, "alice", "again", false); len(again) != 0 {
		t.Fatalf("a resolved record was requeued again")
	}
	audit := h.env.ReadAll(t, h.topics.Audit, 2, 300*time.Millisecond, 10*time.Second)
	if len(audit) != 2 {
		t.Fatalf("%d audit records, want 2", len(audit))
	}

	// Invalid: requeue means reprocess with today's handlers; still invalid
	// here, so it lands on invalid again (a new entry), and the old one is
	// resolved.
	if d := depth(h.topics.Invalid); d != 1 {
		t.Fatalf("invalid depth %d", d)
	}
	if _, err := q.Requeue(ctx, h.topics.Invalid, ops.Filter{Source: "shop"}, "carol", "handler v2 shipped", false); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "the requeued invalid event to be reprocessed", func() bool { return h.total(Invalid) == 2 })
}

package processor

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

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

	q, ctx := queues(t, h)
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
	if err != nil || dry.Count != 2 || len(dry.Entries) != 2 || depth(h.topics.DLQ) != 2 {
		t.Fatalf("dry run: %d entries, %v; depth must not move", dry.Count, err)
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
	if again, _ := q.Requeue(ctx, h.topics.DLQ, ops.Filter{IDs: []string{q1}}, "alice", "again", false); again.Count != 0 {
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

// TestRequeueLargeEvent: an event over 1 MiB (a source's max_body may
// allow up to kafka.MaxBodyBytes) can be requeued: the operator's producer
// takes records as large as the topics do.
func TestRequeueLargeEvent(t *testing.T) {
	h, _ := failureHarness(t, testenv.Embedded(t), &downstream{always: 400})
	h.start("a", nil)
	// Missing every required field of an order: invalid, with 1.5 MiB of
	// unknown field beside.
	h.send("shop", "orders/updated", "wh-big", "2025-01", envelope.ChannelWebhook, []byte(`{"id":7,"pad":"`+strings.Repeat("x", 3<<19)+`"}`))
	h.waitAll(1)
	if n := h.total(Invalid); n != 1 {
		t.Fatalf("invalid %d, want 1", n)
	}
	q, ctx := queues(t, h)
	res, err := q.Requeue(ctx, h.topics.Invalid, ops.Filter{}, "carol", "handler fixed", false)
	if err != nil || res.Count != 1 {
		t.Fatalf("requeue: %d entries, %v", res.Count, err)
	}
	testenv.Eventually(t, 20*time.Second, "the requeued event to be reprocessed", func() bool { return h.total(Invalid) == 2 })
}

// TestRequeueWhenKafkaRefusesChangesNothing: a requeue whose record Kafka
// refuses returns an error and commits nothing — before, it committed its
// audit entry alone, so the event read as requeued but was never sent.
func TestRequeueWhenKafkaRefusesChangesNothing(t *testing.T) {
	env := testenv.Embedded(t)
	h, _ := failureHarness(t, env, &downstream{always: 400})
	h.start("a", nil)
	h.send("shop", "orders/updated", "wh-refused", "2025-01", envelope.ChannelWebhook, []byte(`{"id":8}`)) // invalid
	h.waitAll(1)

	var refuse atomic.Bool
	c := env.Stack.Kafka
	c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !refuse.Load() {
			return nil, nil, false
		}
		req := kreq.(*kmsg.ProduceRequest)
		return testenv.RefusedProduce(req, kerr.InvalidRecord), nil, true
	})

	q, ctx := queues(t, h)
	refuse.Store(true)
	if res, err := q.Requeue(ctx, h.topics.Invalid, ops.Filter{}, "carol", "handler fixed", false); err == nil || res.Count != 0 {
		t.Fatalf("requeue succeeded (%d entries, %v) while Kafka refused its records", res.Count, err)
	}
	refuse.Store(false)
	// Still unresolved: the requeue takes it now.
	res, err := q.Requeue(ctx, h.topics.Invalid, ops.Filter{}, "carol", "handler fixed", false)
	if err != nil || res.Count != 1 {
		t.Fatalf("second requeue: %d entries, %v", res.Count, err)
	}
	testenv.Eventually(t, 20*time.Second, "the requeued event to be reprocessed", func() bool { return h.total(Invalid) == 2 })
}

// queues opens ops.Queues on h's cluster, closed at cleanup, with a context
// bounding the test's operator calls.
func queues(t *testing.T, h *harness) (*ops.Queues, context.Context) {
	t.Helper()
	q, err := ops.New([]kgo.Opt{kgo.SeedBrokers(h.env.Brokers...)}, h.topics, h.codec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return q, ctx
}

package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/ops"
	"github.com/inletdev/inlet/pkg/processor"
	"github.com/inletdev/inlet/pkg/processor/processortest"
	"github.com/inletdev/inlet/pkg/retry"
	"github.com/inletdev/inlet/pkg/router"
	"github.com/inletdev/inlet/pkg/testenv"
)

const testSources = `
sources:
  stripe:
    kind: stripe
    secrets_env: [T_STRIPE]
    events:
      "payment_intent.*":
        contract: stripe/payment_intent
        entity_key: "stripe:pi:{/data/object/id}"
        occurred_at: /created
`

// Plants every kind of gap with a real processor, then reconciles a sender
// log against it.
func TestCheck(t *testing.T) {
	t.Setenv("T_STRIPE", "s")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	stack := processortest.New(t, testenv.Embedded(t), testSources)
	// Go handlers that fail: permanently (→ DLQ) and transiently (→ the
	// 30s retry tier, where the event waits).
	_ = stack.Router.Handle(router.Route{Source: "stripe", EventType: "charge.dlq", Version: "*"}, router.HandlerFunc(func(context.Context, *router.Event) (*router.Output, error) {
		return nil, retry.Permanent(errors.New("downstream said 400"))
	}))
	_ = stack.Router.Handle(router.Route{Source: "stripe", EventType: "charge.retry", Version: "*"}, router.HandlerFunc(func(context.Context, *router.Event) (*router.Output, error) {
		return nil, retry.Retryable(errors.New("downstream said 503"), 0)
	}))
	// Fails once (→ DLQ), then handles the event as a payment intent: a
	// requeue of its entry gets it processed.
	var flaky atomic.Int32
	_ = stack.Router.Handle(router.Route{Source: "stripe", EventType: "charge.flaky", Version: "*"}, router.HandlerFunc(func(ctx context.Context, ev *router.Event) (*router.Output, error) {
		if flaky.Add(1) == 1 {
			return nil, retry.Permanent(errors.New("downstream said 400"))
		}
		h, _, err := stack.Router.Lookup("stripe", "payment_intent.succeeded", ev.Envelope.SchemaVersion)
		if err != nil {
			return nil, err
		}
		return h.Handle(ctx, ev)
	}))
	topics, kopts, group := stack.Topics, stack.KafkaOpts(), stack.Config().Group
	send := func(evtID, typ string, payload string) {
		t.Helper()
		if payload == "" {
			payload = string(processortest.StripePayment(evtID, typ, "pi_"+evtID, 1700000000))
		}
		stack.Send(t, "stripe", typ, evtID, []byte(payload))
	}
	send("evt_ok1", "payment_intent.succeeded", "")
	send("evt_ok2", "payment_intent.succeeded", "")
	send("evt_ok2", "payment_intent.succeeded", "") // redelivery: duplicate, final
	send("evt_inv", "payment_intent.succeeded", `{"id":"evt_inv","type":"payment_intent.succeeded"}`)
	send("evt_inv2", "payment_intent.succeeded", `{"id":"evt_inv2","type":"payment_intent.succeeded"}`)
	send("evt_dlq", "charge.dlq", "")
	send("evt_retry", "charge.retry", "")
	send("evt_flaky", "charge.flaky", "")
	send("other:evt_x", "payment_intent.succeeded", "") // not in the sender log: ignored

	stack.Run(t, "8 final outcomes and 1 retry", func(c *processor.Counts) bool {
		return processortest.Final(c) >= 8 && c.Total(processor.Retried) >= 1
	})
	send("evt_stuck", "payment_intent.succeeded", "") // the processor is down

	q, err := ops.New(kopts, topics, stack.Codec)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	at := time.Now().Add(-time.Minute)
	log := []SenderEvent{{"evt_ok1", at}, {"evt_ok2", at}, {"evt_inv", at}, {"evt_dlq", at}, {"evt_retry", at}, {"evt_stuck", at}, {"evt_never", at},
		{"evt_old", at.Add(-time.Hour)}, // before --since: not checked
		{"evt_ok1", at},                 // the sender's log repeats it: once
		{"evt_undated", time.Time{}}}    // no time: left out of a --since run, counted
	rep, err := Check(ctx, Config{Source: "stripe", Since: at.Add(-time.Second), Group: group}, Deps{KafkaOpts: kopts, Topics: topics, Queues: q}, log)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Status{"evt_never": NeverReceived, "evt_stuck": Stuck, "evt_retry": InRetry, "evt_dlq": InDLQ, "evt_inv": Invalid}
	got := map[string]Status{}
	for _, r := range rep.Events {
		got[r.ID] = r.Status
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("gaps %v, want %v", got, want)
	}
	if rep.Total != 7 || rep.Gaps != 5 || rep.Counts[Processed] != 2 || rep.Undated != 1 {
		t.Fatalf("report %+v", rep)
	}

	t.Run("a range over a log without times is refused, not all clear", func(t *testing.T) {
		undated := []SenderEvent{{ID: "evt_ok1"}, {ID: "evt_never"}, {ID: "evt_never"}}
		if _, err := Check(ctx, Config{Source: "stripe", Since: at.Add(-time.Second), Group: group}, Deps{KafkaOpts: kopts, Topics: topics, Queues: q}, undated); !errors.Is(err, ErrUndated) {
			t.Fatalf("got %v, want ErrUndated", err)
		}
		rep, err := Check(ctx, Config{Source: "stripe", Group: group}, Deps{KafkaOpts: kopts, Topics: topics, Queues: q}, undated)
		if err != nil || rep.Total != 2 || rep.Gaps != 1 || rep.Undated != 0 {
			t.Fatalf("without a range every event is checked: %+v, %v", rep, err)
		}
	})

	// An operator's discard is neither processed (the event never reached
	// the processed topic) nor a gap (it was decided, with an audited
	// reason): it is discarded, naming the entry and the decision, on
	// either queue. A requeued entry whose event was then processed is
	// processed, and so is a discarded one whose event the sender sent
	// again, fixed, and was processed.
	t.Run("discarded entries are discarded, requeued and processed ones processed", func(t *testing.T) {
		if _, err := q.Discard(ctx, topics.DLQ, ops.Filter{Source: "stripe", EventType: "charge.dlq"}, "test", "refunded by hand", false); err != nil {
			t.Fatal(err)
		}
		if _, err := q.Discard(ctx, topics.Invalid, ops.Filter{Source: "stripe"}, "test", "sender fixed its payload", false); err != nil {
			t.Fatal(err)
		}
		if d, err := q.Requeue(ctx, topics.DLQ, ops.Filter{Source: "stripe", EventType: "charge.flaky"}, "test", "downstream fixed", false); err != nil || d.Count != 1 {
			t.Fatalf("requeue: %d, %v", d.Count, err)
		}
		send("evt_inv2", "payment_intent.succeeded", "") // sent again, fixed
		// The requeued event, evt_inv2's second delivery and evt_stuck.
		stack.Run(t, "3 events processed", func(c *processor.Counts) bool { return c.Total(processor.Processed) >= 3 })
		events := []SenderEvent{{"evt_ok1", at}, {"evt_ok2", at}, {"evt_inv", at}, {"evt_dlq", at}, {"evt_flaky", at}, {"evt_inv2", at}}
		rep, err := Check(ctx, Config{Source: "stripe", All: true, Group: group}, Deps{KafkaOpts: kopts, Topics: topics, Queues: q}, events)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Gaps != 0 || rep.Counts[Processed] != 4 || rep.Counts[Discarded] != 2 || len(rep.Events) != 6 {
			t.Fatalf("report %+v", rep)
		}
		byID := map[string]Result{}
		for _, r := range rep.Events {
			byID[r.ID] = r
		}
		for id, want := range map[string]struct{ queue, why string }{"evt_dlq": {topics.DLQ, "refunded by hand"}, "evt_inv": {topics.Invalid, "sender fixed its payload"}} {
			r := byID[id]
			if r.Status != Discarded || !strings.HasPrefix(r.Where, want.queue+"/") || r.Decision == nil || r.Decision.Action != "discard" ||
				r.Decision.Why != want.why || !strings.Contains(r.Error, want.why) {
				t.Errorf("%s: %+v, want discarded on %s (%s)", id, r, want.queue, want.why)
			}
		}
		if r := byID["evt_flaky"]; r.Status != Processed || !strings.HasPrefix(r.Where, topics.Raw+"/") {
			t.Errorf("evt_flaky, requeued then processed: %+v", r)
		}
		if r := byID["evt_inv2"]; r.Status != Processed || !strings.HasPrefix(r.Where, topics.Raw+"/") {
			t.Errorf("evt_inv2, discarded, then sent again and processed: %+v", r)
		}
		// Without --all, only gaps are listed: the discards are counted.
		rep, err = Check(ctx, Config{Source: "stripe", Group: group}, Deps{KafkaOpts: kopts, Topics: topics, Queues: q}, events)
		if err != nil || rep.Gaps != 0 || len(rep.Events) != 0 || rep.Counts[Discarded] != 2 {
			t.Fatalf("report %+v, %v", rep, err)
		}
	})
}

// TestReconcileRefusesNothingToCheck: a sender log without events, or
// without one in --since/--until, was reported as "0 sender events, 0
// gaps": from cron, a failed, truncated or stale export read as all
// clear. It is refused, before Kafka is read (the broker here is not
// there).
func TestReconcileRefusesNothingToCheck(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	deps := Deps{KafkaOpts: []kgo.Opt{kgo.SeedBrokers("127.0.0.1:1")}}
	since := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	old := []SenderEvent{{"evt_1", time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)}, {"evt_2", time.Date(2026, 11, 26, 23, 59, 0, 0, time.UTC)}, {"evt_3", time.Time{}}}
	for _, c := range []struct {
		name   string
		cfg    Config
		events []SenderEvent
		is     error
		want   []string
	}{
		{"no events", Config{Source: "stripe"}, nil, ErrEmptyLog, []string{"the sender log holds no events", "failed or truncated export"}},
		{"no events, with a range", Config{Source: "stripe", Since: since}, []SenderEvent{}, ErrEmptyLog, []string{"holds no events"}},
		{"none since", Config{Source: "stripe", Since: since}, old, ErrNoneInRange,
			[]string{"no sender event in --since/--until", "none of the log's 2 dated events is in --since 2026-11-27T00:00:00Z", "from 2026-11-20T08:00:00Z to 2026-11-26T23:59:00Z", "1 more have no time", "stale export"}},
		{"none until", Config{Source: "stripe", Until: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}, old[:2], ErrNoneInRange, []string{"--until 2026-11-01T00:00:00Z"}},
		{"none with a time", Config{Source: "stripe", Since: since}, old[2:], ErrUndated, []string{"none of the log's 1 events has a time"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rep, err := Check(ctx, c.cfg, deps, c.events)
			if err == nil {
				t.Fatalf("nothing to check reported as %+v", rep)
			}
			if !errors.Is(err, c.is) || !errors.Is(Validate(c.cfg, c.events), c.is) {
				t.Fatalf("got %v, want %v", err, c.is)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v\nwant %q in it", err, w)
				}
			}
		})
	}
	t.Run("an event to check is checked", func(t *testing.T) {
		for _, cfg := range []Config{{Source: "stripe"}, {Source: "stripe", Until: since}, {Source: "stripe", Since: old[1].At}} {
			if err := Validate(cfg, old); err != nil {
				t.Errorf("%+v: %v", cfg, err)
			}
		}
	})
}

// TestReconcileRefusesAnEmptyWindow: a --since not before --until holds
// no time. It was reported as a log none of whose events is in it ("a
// stale export, or the wrong range?", even of an event at exactly
// --since), and --stripe asked the API for it, then said the key might
// be another account's.
func TestReconcileRefusesAnEmptyWindow(t *testing.T) {
	at := time.Date(2025, 1, 31, 0, 0, 0, 0, time.UTC)
	events := []SenderEvent{{ID: "evt_1", At: at}}
	for _, w := range []struct{ since, until time.Time }{{at, at}, {at.Add(time.Hour), at}} {
		err := Validate(Config{Since: w.since, Until: w.until}, events)
		if !errors.Is(err, ErrNoneInRange) || !strings.Contains(err.Error(), "--since must be before --until") {
			t.Errorf("since %v until %v: %v, want the empty window named", w.since, w.until, err)
		}
	}
	srv, pages := fakeStripe(t, 10)
	f := &Stripe{APIKey: "sk_test_x", BaseURL: srv.URL}
	if _, err := f.Fetch(context.Background(), at.Add(time.Hour), at); !errors.Is(err, ErrNoneInRange) || *pages != 0 {
		t.Errorf("Fetch of an empty window: %v after %d pages, want ErrNoneInRange and none asked", err, *pages)
	}
}

// TestCheckRefusesANegativeSlack: Slack is how far before Since the raw
// topic is read; below 0 it is refused (ErrNegativeSlack) before Kafka is
// read (the broker here is not there). Only 0 was taken for the default,
// and a negative slack read the raw topic from after Since: an event
// received in between was reported never_received.
func TestCheckRefusesANegativeSlack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	since := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	cfg := Config{Source: "stripe", Since: since, Slack: -time.Hour}
	rep, err := Check(ctx, cfg, Deps{KafkaOpts: []kgo.Opt{kgo.SeedBrokers("127.0.0.1:1")}}, []SenderEvent{{"evt_1", since.Add(time.Minute)}})
	if !errors.Is(err, ErrNegativeSlack) || !strings.Contains(err.Error(), "-1h0m0s") {
		t.Fatalf("slack -1h: %+v, %v; want ErrNegativeSlack naming it", rep, err)
	}
}

// TestCheckSeesAnUndecodableDeliveryOnTheInvalidQueue: a record another
// producer wrote to the raw topic under the event's key, without Inlet's
// headers and not an envelope, goes to the invalid topic (undecodable),
// its entry naming no source. Reconcile reported the event processed.
func TestCheckSeesAnUndecodableDeliveryOnTheInvalidQueue(t *testing.T) {
	t.Setenv("T_STRIPE", "s")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	env := testenv.Embedded(t)
	stack := processortest.New(t, env, testSources)
	topics, kopts, group := stack.Topics, stack.KafkaOpts(), stack.Config().Group
	at := time.Now().Add(-time.Minute)
	cl := env.Client(t, kgo.ProducerLinger(0))
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topics.Raw, Key: []byte("stripe:evt_foreign"), Value: []byte(`{"id":"evt_foreign"}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	stack.Send(t, "stripe", "payment_intent.succeeded", "evt_ok", processortest.StripePayment("evt_ok", "payment_intent.succeeded", "pi_ok", 1700000000))
	stack.Run(t, "2 final outcomes", func(c *processor.Counts) bool { return processortest.Final(c) >= 2 })
	q, err := ops.New(kopts, topics, stack.Codec)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	rep, err := Check(ctx, Config{Source: "stripe", All: true, Group: group}, Deps{KafkaOpts: kopts, Topics: topics, Queues: q},
		[]SenderEvent{{"evt_foreign", at}, {"evt_ok", at}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Result{}
	for _, r := range rep.Events {
		got[r.ID] = r
	}
	if r := got["evt_foreign"]; r.Status != Invalid || r.Where == "" || r.Error == "" {
		t.Errorf("evt_foreign, whose only delivery is an unresolved invalid entry: %+v, want invalid with its entry and error", r)
	}
	if r := got["evt_ok"]; r.Status != Processed {
		t.Errorf("evt_ok: %+v, want processed", r)
	}
}

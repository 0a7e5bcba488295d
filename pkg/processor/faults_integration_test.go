package processor

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kslog"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/store"
	"github.com/inletdev/inlet/pkg/testenv"
)

// TestIntegrationProcessorBrokerRestart restarts the real broker (graceful
// stop, then start on the same data) while events flow into a running
// processor: processing resumes by itself, every input record has exactly
// one outcome and every event exactly one processed output (read_committed).
//
// A processor that exits on the restart fails the test, and is replaced
// (same instance id, so the same transactional id fences whatever it left
// open), the way a supervisor would restart it, so the exactly-once checks
// still run on that path. That path is slow: the replacement's join waits
// for the coordinator to expire the dead member's session (45 s).
func TestIntegrationProcessorBrokerRestart(t *testing.T) {
	env := testenv.Real(t)
	svc := env.Services(t)
	h := newHarness(t, env)
	// Small batches: many transactions, so the restart lands inside one.
	// A short drain bounds how long a batch may hang on a dead broker.
	mod := func(c *Config) { c.BatchSize = 10; c.DrainTimeout = 4 * time.Second }
	sup := h.supervise(h.startWithOpts("a", mod), func() *running { return h.startWithOpts("a", mod) })
	f := h.feed(t, "evt_k", 10*time.Millisecond)

	sup.wait(30*time.Second, "processing to run before the restart", func() bool { return h.all() >= 50 })
	svc.StopKafka(t)
	svc.StartKafka(t)
	upAt, before := time.Now(), h.all()
	// 75 s: a replaced processor (the failure path) waits for the
	// coordinator to expire its predecessor's session (45 s by default).
	sup.wait(75*time.Second, "processing to resume after the restart", func() bool { return h.all() > before })
	resumed := time.Since(upAt)
	sup.wait(30*time.Second, "more events to flow after the restart", func() bool { return h.all() >= before+50 })
	sent := f.stop(t)

	sup.wait(40*time.Second, fmt.Sprintf("%d outcomes", sent), func() bool { return h.all() >= int64(sent) })
	t.Logf("%d events; %d outcomes before the restart; first outcome %v after the broker was ready; processor restarts: %d", sent, before, resumed.Round(time.Millisecond), sup.restarts)
	h.checkOnce(sent, "evt_k")
}

// supervisor replaces a processor that exits with an error, as Kubernetes
// would, and fails the test for it: the processor is meant to ride out
// broker and Redis restarts by itself.
type supervisor struct {
	h        *harness
	cur      *running
	restart  func() *running
	restarts int
}

func (h *harness) supervise(r *running, restart func() *running) *supervisor {
	return &supervisor{h: h, cur: r, restart: restart}
}

// wait polls cond until it holds, replacing the processor whenever it has
// exited.
func (s *supervisor) wait(timeout time.Duration, what string, cond func() bool) {
	s.h.t.Helper()
	testenv.Eventually(s.h.t, timeout, what, func() bool {
		select {
		case err := <-s.cur.done:
			s.cur.done <- nil // stopAll sees it finished
			s.h.t.Errorf("processor exited while waiting for %s (outcomes so far %d): %v", what, s.h.all(), err)
			s.restarts++
			s.cur = s.restart()
		default:
		}
		return cond()
	})
}

// TestIntegrationProcessorRedisRestart stops the real Redis under a
// running processor: nothing completes while it is down (and no offset is
// committed past it); once it is back everything completes, with no loss
// and no duplicate output.
//
// Redis runs without persistence, so the restart forgets every dedup
// marker and entity state. The test is fair to that: every event is
// distinct (its own event id and payment intent, so no dedup or
// newest-wins decision depends on state from before the restart), and
// nothing from before the restart is redelivered (its offsets were
// committed). A duplicate delivery of a pre-restart event arriving after
// the restart would be processed again: that is what losing Redis means,
// and not what this test is about.
func TestIntegrationProcessorRedisRestart(t *testing.T) {
	env := testenv.Real(t)
	svc := env.Services(t)
	h := newHarness(t, env)
	cfg := h.config()
	r := h.start("a", nil)
	const before, during = 10, 20
	for i := range before {
		h.sendPI(fmt.Sprintf("evt_r%d", i), int64(i))
	}
	h.waitRunning(r, 30*time.Second, "the events sent before Redis stops", func() bool { return h.all() >= before })

	svc.StopRedis(t)
	downAt := time.Now()
	for i := before; i < before+during; i++ {
		h.sendPI(fmt.Sprintf("evt_r%d", i), int64(i))
	}
	// Nothing may complete while Redis is down. Watch for longer than the
	// batch deadline, so the processor has also abandoned (aborted) the
	// batch at least once and polled it again.
	watch := cfg.BatchDeadline + 2*time.Second
	for time.Since(downAt) < watch {
		if n := h.all(); n != before {
			t.Fatalf("%d outcomes while Redis was down, want %d", n, before)
		}
		select {
		case err := <-r.done:
			r.done <- err
			t.Fatalf("processor exited while Redis was down: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if n := committedRaw(t, h); n != before {
		t.Fatalf("the group committed %d raw offsets while Redis was down, want %d", n, before)
	}

	svc.StartRedis(t)
	upAt := time.Now()
	h.waitRunning(r, 40*time.Second, fmt.Sprintf("%d outcomes after Redis is back", before+during), func() bool { return h.all() >= before+during })
	t.Logf("all %d events done %v after Redis was back", before+during, time.Since(upAt).Round(time.Millisecond))
	h.checkOnce(before+during, "evt_r")
	if n := committedRaw(t, h); n != before+during {
		t.Errorf("the group committed %d raw offsets, want %d", n, before+during)
	}
}

// startWithOpts is start, with franz-go's own log in the test log when
// INLET_TEST_LOG is set (what the client does across a broker restart).
func (h *harness) startWithOpts(id string, mod func(*Config), opts ...kgo.Opt) *running {
	h.t.Helper()
	cfg := h.config()
	cfg.InstanceID = h.env.Prefix + "-" + id
	if mod != nil {
		mod(&cfg)
	}
	log := h.logger()
	kopts := []kgo.Opt{kgo.SeedBrokers(h.env.Brokers...)}
	if log != nil {
		kopts = append(kopts, kgo.WithLogger(kslog.New(log.With("client", id))))
	}
	p, err := New(cfg, Deps{
		KafkaOpts: append(kopts, opts...),
		Topics:    h.topics, Sources: h.sources, Router: h.router,
		Registry: h.env.Registry(h.t), Codec: h.codec,
		Store: store.New(h.rdb, store.KeyPrefix(h.prefix), store.ClaimLease(cfg.ClaimLease)),
		Log:   log,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return h.run(p)
}

// sendPI sends a payment intent event with its own entity.
func (h *harness) sendPI(id string, i int64) {
	h.t.Helper()
	h.send("stripe", "payment_intent.succeeded", id, "2024-06-20", envelope.ChannelWebhook, paymentIntent(id, "pi_"+id, "succeeded", 1700000000+i))
}

// waitRunning waits for cond like testenv.Eventually, failing at once if
// the processor r exits meanwhile.
func (h *harness) waitRunning(r *running, timeout time.Duration, what string, cond func() bool) {
	h.t.Helper()
	testenv.Eventually(h.t, timeout, what, func() bool {
		select {
		case err := <-r.done:
			r.done <- err
			h.t.Fatalf("processor exited while waiting for %s: %v (outcomes so far: %d)", what, err, h.all())
		default:
		}
		return cond()
	})
}

// checkOnce checks that the n events prefix0..prefix(n-1) are each on the
// raw topic once, each have exactly one outcome (processed) and exactly
// one processed output.
func (h *harness) checkOnce(n int, prefix string) {
	h.t.Helper()
	raw := h.env.ReadAll(h.t, h.topics.Raw, n, 500*time.Millisecond, 30*time.Second)
	if len(raw) != n {
		h.t.Errorf("%d records on the raw topic, want %d (the idempotent producer wrote a duplicate?)", len(raw), n)
	}
	if all, p := h.all(), h.total(Processed); all != int64(len(raw)) || p != int64(n) {
		h.t.Errorf("outcomes %d (processed %d, duplicate %d, stale %d, invalid %d, dlq %d) for %d raw records and %d events",
			all, p, h.total(Duplicate), h.total(Stale), h.total(Invalid), h.total(DeadLetter), len(raw), n)
	}
	ids := eventIDs(h, n)
	for i := range n {
		if c := ids[fmt.Sprintf("%s%d", prefix, i)]; c != 1 {
			h.t.Errorf("%s%d has %d processed outputs, want 1", prefix, i, c)
		}
	}
	if len(ids) != n {
		h.t.Errorf("%d distinct processed outputs, want %d", len(ids), n)
	}
}

// committedRaw sums the group's committed offsets on the raw topic: the
// number of raw records it is done with (the raw topic has no
// transaction markers).
func committedRaw(t *testing.T, h *harness) int64 {
	t.Helper()
	adm := kadm.NewClient(h.env.Client(t))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	offs, err := adm.FetchOffsets(ctx, h.config().Group)
	if err != nil {
		t.Fatalf("fetch committed offsets: %v", err)
	}
	var n int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == h.topics.Raw && o.At > 0 {
			n += o.At
		}
	})
	return n
}

// feeder sends distinct payment intent events from its own goroutine,
// one every interval, each waiting for its ack (so it waits through a
// broker restart).
type feeder struct {
	quit chan struct{}
	done chan struct{}
	mu   sync.Mutex
	sent int
	err  error
}

func (h *harness) feed(t *testing.T, prefix string, every time.Duration) *feeder {
	t.Helper()
	f := &feeder{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		for i := 0; ; i++ {
			select {
			case <-f.quit:
				return
			case <-time.After(every):
			}
			id := fmt.Sprintf("%s%d", prefix, i)
			rec, err := h.rawRecord(id, paymentIntent(id, "pi_"+id, "succeeded", 1700000000+int64(i)))
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				err = h.prod.ProduceSync(ctx, rec).FirstErr()
				cancel()
			}
			f.mu.Lock()
			if err != nil {
				f.err = fmt.Errorf("%s: %w", id, err)
			} else {
				f.sent++
			}
			f.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { f.stop(t) })
	return f
}

// stop ends the feed and returns how many events were acknowledged.
func (f *feeder) stop(t *testing.T) int {
	t.Helper()
	select {
	case <-f.quit:
	default:
		close(f.quit)
	}
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		t.Fatalf("feeding the raw topic: %v", f.err)
	}
	return f.sent
}

// rawRecord is the record h.send writes for a Stripe webhook, for senders
// off the test goroutine.
func (h *harness) rawRecord(eventID string, payload []byte) (*kgo.Record, error) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	e := &envelope.Envelope{
		ID: fmt.Sprintf("id-%d", seq.Add(1)), Source: "stripe", EventType: "payment_intent.succeeded", EventID: eventID,
		IdempotencyKey: envelope.IdempotencyKey("stripe", eventID), SchemaVersion: "2024-06-20",
		ReceivedAt: now, CorrelationID: "corr-" + eventID, Channel: envelope.ChannelWebhook,
		Headers: map[string]string{}, Payload: payload, ContentType: "application/json",
	}
	val, err := h.codec.Encode(e)
	if err != nil {
		return nil, err
	}
	return &kgo.Record{Topic: h.topics.Raw, Key: []byte(e.IdempotencyKey), Value: val,
		Headers: []kgo.RecordHeader{{Key: HeaderCorrelationID, Value: []byte(e.CorrelationID)}}}, nil
}

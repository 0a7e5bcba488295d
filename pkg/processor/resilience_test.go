package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/testenv"
)

func TestProcessorResilience(t *testing.T) { resilienceSuite(t, testenv.Embedded) }

func TestIntegrationProcessorResilience(t *testing.T) {
	testenv.Real(t)
	resilienceSuite(t, testenv.Real)
}

// eventIDs counts processed records per source event id.
func eventIDs(h *harness, min int) map[string]int {
	ids := map[string]int{}
	for _, p := range h.processed(min) {
		ids[p["event_id"].(string)]++
	}
	return ids
}

func resilienceSuite(t *testing.T, newEnv func(testing.TB) *testenv.Env) {
	t.Run("a processor that dies before committing loses nothing and doubles nothing", func(t *testing.T) {
		h := newHarness(t, newEnv(t))
		const n = 30
		for i := range n {
			id := fmt.Sprintf("evt_c%d", i)
			h.send("stripe", "payment_intent.succeeded", id, "2024-06-20", envelope.ChannelWebhook, paymentIntent(id, fmt.Sprintf("pi_%d", i), "succeeded", int64(1700000000+i)))
		}
		// The first commit of any of its workers crashes the process.
		var crashed atomic.Bool
		a := h.startHooked("crashy", nil, func() bool { crashed.Store(true); return true })
		testenv.Eventually(t, 30*time.Second, "the first processor to crash", crashed.Load)
		if err := <-a.done; !errors.Is(err, errCrashed) {
			t.Fatalf("crashed processor returned %v", err)
		}
		a.done <- nil
		if got := a.p.Counts().Total(Processed); got != 0 {
			t.Fatalf("crashed processor counted %d committed outcomes", got)
		}
		h.start("b", nil)
		h.waitAll(n)
		ids := eventIDs(h, n)
		for i := range n {
			if c := ids[fmt.Sprintf("evt_c%d", i)]; c != 1 {
				t.Errorf("evt_c%d has %d outputs, want 1", i, c)
			}
		}
		if len(ids) != n {
			t.Errorf("%d distinct outputs, want %d", len(ids), n)
		}
	})

	t.Run("one instance's workers share the partitions and account for every input once", func(t *testing.T) {
		h := newHarness(t, newEnv(t))
		r := h.start("multi", func(c *Config) { c.BatchSize = 5; c.Workers = 3 })
		if len(r.p.workers) != 3 {
			t.Fatalf("%d workers, want 3", len(r.p.workers))
		}
		const n = 90
		for i := range n {
			id := fmt.Sprintf("evt_w%d", i)
			h.send("stripe", "payment_intent.succeeded", id, "2024-06-20", envelope.ChannelWebhook, paymentIntent(id, fmt.Sprintf("pi_%d", i%30), "succeeded", int64(1700000000+i)))
		}
		h.waitAll(n)
		// Each worker is a member of the group, with partitions of its own.
		groups, err := kadm.NewClient(r.p.workers[0].sess.Client()).DescribeGroups(context.Background(), h.config().Group)
		if err != nil {
			t.Fatal(err)
		}
		g := groups[h.config().Group]
		if len(g.Members) != 3 {
			t.Fatalf("group has %d members, want 3", len(g.Members))
		}
		for _, m := range g.Members {
			if a, _ := m.Assigned.AsConsumer(); a == nil || len(a.Topics) == 0 {
				t.Errorf("member %s has no partitions", m.MemberID)
			}
		}
		ids := eventIDs(h, int(h.total(Processed)))
		for id, c := range ids {
			if c != 1 {
				t.Errorf("%s has %d outputs", id, c)
			}
		}
		if int64(len(ids)) != h.total(Processed) || h.all() != n {
			t.Fatalf("%d distinct outputs, %d processed, %d outcomes for %d inputs", len(ids), h.total(Processed), h.all(), n)
		}
	})

	t.Run("partitions lost between batches cost no aborted batch", func(t *testing.T) {
		h := newHarness(t, newEnv(t))
		logs := &syncBuffer{} // a's
		h.log = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		one := func(c *Config) { c.Workers = 1 }
		a := h.start("a", one)
		h.log = nil
		h.send("stripe", "payment_intent.succeeded", "evt_l0", "2024-06-20", envelope.ChannelWebhook, paymentIntent("evt_l0", "pi_l0", "succeeded", 1700000000))
		h.waitAll(1)
		// b joins while a is idle: a gives up partitions outside any
		// transaction, which franz-go's session would hold against a's
		// next commit, and then rejoins to let b have them, which would
		// abort a commit overlapping it. The events are sent at once.
		h.start("b", one)
		testenv.Eventually(t, 30*time.Second, "a to lose partitions", a.p.workers[0].revoked.Load)
		const n = 40
		for i := 1; i <= n; i++ {
			id := fmt.Sprintf("evt_l%d", i)
			h.send("stripe", "payment_intent.succeeded", id, "2024-06-20", envelope.ChannelWebhook, paymentIntent(id, fmt.Sprintf("pi_l%d", i), "succeeded", int64(1700000000+i)))
		}
		h.waitAll(n + 1)
		if a.p.Counts().Total(Processed) == 0 {
			t.Fatal("a processed nothing after the rebalance: the test proves nothing")
		}
		for _, l := range logs.lines() {
			if strings.Contains(l, "transaction aborted") {
				t.Fatalf("a batch was aborted after the rebalance: %s", l)
			}
		}
		if ids := eventIDs(h, n+1); len(ids) != n+1 {
			t.Fatalf("%d distinct outputs, want %d", len(ids), n+1)
		}
	})

	t.Run("three instances with one leaving and one joining account for every input once", func(t *testing.T) {
		h := newHarness(t, newEnv(t))
		small := func(c *Config) { c.BatchSize = 5 }
		h.start("1", small)
		leaving := h.start("2", small)
		h.start("3", small)
		const n = 120
		inputs := 0
		for i := range n {
			id := fmt.Sprintf("evt_g%d", i)
			h.send("stripe", "payment_intent.succeeded", id, "2024-06-20", envelope.ChannelWebhook, paymentIntent(id, fmt.Sprintf("pi_%d", i%40), "succeeded", int64(1700000000+i)))
			inputs++
			if i == n/3 {
				leaving.stop(t)
			}
			if i == 2*n/3 {
				h.start("4", small)
			}
		}
		h.waitAll(int64(inputs))
		if all := h.all(); all != int64(inputs) {
			t.Fatalf("outcomes %d, inputs %d", all, inputs)
		}
		ids := eventIDs(h, int(h.total(Processed)))
		var outputs int64
		for id, c := range ids {
			if c != 1 {
				t.Errorf("%s has %d outputs", id, c)
			}
			outputs += int64(c)
		}
		if outputs != h.total(Processed) {
			t.Errorf("%d outputs on the topic, %d counted processed", outputs, h.total(Processed))
		}
	})
}

// Redis going away pauses processing (nothing skipped, nothing committed
// past it); it resumes when Redis is back. Embedded only: it restarts the
// in-process Redis.
func TestRedisOutagePausesAndResumes(t *testing.T) {
	env := testenv.Embedded(t)
	h := newHarness(t, env)
	h.start("a", nil)
	h.send("stripe", "payment_intent.succeeded", "evt_r0", "2024-06-20", envelope.ChannelWebhook, paymentIntent("evt_r0", "pi_r", "succeeded", 1700000000))
	h.waitAll(1)
	env.Stack.Miniredis.Close()
	for i := 1; i <= 5; i++ {
		id := fmt.Sprintf("evt_r%d", i)
		h.send("stripe", "payment_intent.succeeded", id, "2024-06-20", envelope.ChannelWebhook, paymentIntent(id, fmt.Sprintf("pi_r%d", i), "succeeded", int64(1700000000+i)))
	}
	// While Redis is down nothing completes. Give the processor time to
	// poll the records and fail on Redis at least once.
	testenv.Eventually(t, 10*time.Second, "the raw records to be polled", func() bool {
		return len(h.env.ReadAll(t, h.topics.Raw, 6, 100*time.Millisecond, 10*time.Second)) == 6
	})
	if got := h.all(); got != 1 {
		t.Fatalf("%d outcomes while Redis was down, want 1", got)
	}
	if err := env.Stack.Miniredis.Restart(); err != nil {
		t.Fatal(err)
	}
	h.waitAll(6)
	if ids := eventIDs(h, 6); len(ids) != 6 {
		t.Fatalf("%d distinct outputs after Redis came back, want 6", len(ids))
	}
}

package processor

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

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
		var crashed atomic.Bool
		a := h.startHooked("crashy", nil, func() bool { return crashed.CompareAndSwap(false, true) })
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

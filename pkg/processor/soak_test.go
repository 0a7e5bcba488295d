package processor

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/testenv"
)

// TestSoakSinkAndRedisOutagesLeakNothing cycles, ten times, a sink that
// hangs until the delivery times out and then answers again, and a Redis
// outage and its return, with an event through each. Goroutines and open
// fds must come back to where they were after warm-up: a processor runs
// for weeks, through many of both.
func TestSoakSinkAndRedisOutagesLeakNothing(t *testing.T) {
	if raceBuild() {
		t.Skip("soak test: -race slows the outages' recovery past its budget")
	}
	var hang atomic.Bool
	var calls atomic.Int64
	ds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		// Read first: the server notices the client leave only once the
		// body is in.
		_, _ = io.Copy(io.Discard, r.Body)
		if hang.Load() {
			<-r.Context().Done() // until the delivery gives up
			return
		}
		_, _ = io.WriteString(w, `{"status":"accepted"}`)
	}))
	t.Cleanup(ds.Close)
	env := testenv.Embedded(t)
	h := newHarnessWith(t, env, `
sources:
  shop:
    kind: shopify
    secrets_env: [T_SHOP]
    events:
      "orders/*":
        contract: shopify/order
        entity_key: "shopify:order:{/id}"
        natural_key: "{/id}:{/updated_at}"
        occurred_at: /updated_at
        sink: {url: "`+ds.URL+`", timeout: 300ms}
`, []time.Duration{200 * time.Millisecond}, nil)
	// A client that gives up on a dead server at once: go-redis's default
	// dial retries take seconds per try.
	h.rdb = redis.NewClient(&redis.Options{Addr: env.Stack.Miniredis.Addr(), DialerRetries: 1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { h.rdb.Close() })
	r := h.start("a", func(c *Config) { c.BatchDeadline = time.Second })
	n := int64(0)
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	send := func() {
		n++
		id := fmt.Sprintf("soak_%d", n)
		h.send("shop", "orders/updated", id, "2025-01", envelope.ChannelWebhook, shopOrder(1000+n, at.Add(time.Duration(n)*time.Second), "paid", true))
	}
	send()
	h.waitAll(n)
	base := testenv.TakeBaseline()
	for round := 1; round <= 10; round++ {
		// The sink hangs: the delivery times out, the event goes to the
		// retry tier and is delivered once the sink answers again.
		hang.Store(true)
		before := calls.Load()
		send()
		testenv.Eventually(t, 10*time.Second, "a delivery to the hanging sink", func() bool { return calls.Load() > before })
		hang.Store(false)
		h.waitAll(n)

		// Redis goes away while an event waits, and comes back.
		env.Stack.Miniredis.Close()
		send()
		testenv.Eventually(t, 10*time.Second, "the processor to wait for Redis", func() bool {
			w := r.p.Waiting()
			return len(w) == 1 && w[0].On == "redis"
		})
		if err := env.Stack.Miniredis.Restart(); err != nil {
			t.Fatal(err)
		}
		h.waitAll(n)
	}
	base.Settled(t, 4, 10*time.Second, "after 10 sink hangs and 10 Redis outages", nil)
}

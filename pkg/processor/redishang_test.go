package processor

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/testenv"
	"github.com/inletdev/inlet/pkg/testenv/redisha"
	"github.com/inletdev/inlet/pkg/testenv/syncbuf"
)

// TestRedisHangAbandonsWithoutRenewingTheSession: a real Redis that stops
// answering (CLIENT PAUSE, as a server stalled or a host gone silent) holds
// a claim's round trip until the batch's context ends. The batch was then
// aborted on that spent context: the abort failed, and the worker took its
// Kafka session for broken, logged an error blaming it and renewed it
// (leaving and rejoining the group) on every batch of the stall.
func TestRedisHangAbandonsWithoutRenewingTheSession(t *testing.T) {
	addr := redisha.StartServer(t)
	h := newHarness(t, testenv.Embedded(t))
	h.rdb = redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { h.rdb.Close() })
	admin := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { admin.Close() })
	var logs syncbuf.Buffer
	h.log = bufLog(&logs)
	h.start("a", func(c *Config) {
		// The batch's context (deadline plus drain) ends within the
		// pause; the client's read timeout (3 s) would not end it first.
		c.Workers, c.BatchDeadline, c.DrainTimeout, c.ClaimLease = 1, time.Second, time.Second, 3*time.Second
	})
	h.sendPI("evt_h0", 0)
	h.waitAll(1)
	if err := admin.Do(context.Background(), "client", "pause", 4000, "all").Err(); err != nil {
		t.Fatal(err)
	}
	h.send("stripe", "payment_intent.succeeded", "evt_h1", "2024-06-20", envelope.ChannelWebhook, paymentIntent("evt_h1", "pi_evt_h1", "succeeded", 1700000001))
	testenv.Eventually(t, 20*time.Second, "the batch abandoned while Redis stalls", func() bool {
		return len(linesWith(t, &logs, "batch abandoned before writing; it will be redelivered")) > 0
	})
	h.waitAll(2)
	h.checkOnce(2, "evt_h")
	if n := linesWith(t, &logs, "transactional session failed; opening a new one"); len(n) != 0 {
		t.Fatalf("the Kafka session was renewed for a Redis stall: %v", n)
	}
}

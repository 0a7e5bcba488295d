package processor

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/testenv"
)

// receivedAt makes the harness stamp the next envelopes it sends as
// received at *at instead of now.
func (h *harness) receivedAt(at *time.Time) {
	h.encode = func(e *envelope.Envelope) ([]byte, error) {
		e.ReceivedAt = *at
		return h.codec.Encode(e)
	}
}

// TestEqualTimeReceivedLaterWins: Stripe's created has one-second
// resolution, so two events of one payment intent often share it. Equal
// times applied ("the later processed wins"), so an event processed after
// a later-received one of the same time (its retry, a requeue, a
// redelivery) replaced it: payment_intent.created's retry, coming back
// after payment_intent.succeeded, put the intent back to
// requires_payment_method in inlet.state, and delivered it to the sink
// after the newer one. The later received now wins.
func TestEqualTimeReceivedLaterWins(t *testing.T) {
	t.Run("applied", func(t *testing.T) {
		h := newHarness(t, testenv.Embedded(t))
		base := time.Now().UTC().Truncate(time.Microsecond)
		at := base.Add(time.Second)
		h.receivedAt(&at)
		h.send("stripe", "payment_intent.succeeded", "evt_s", "2024-06-20", envelope.ChannelWebhook, paymentIntent("evt_s", "pi_tie", "succeeded", 1700000000))
		at = base
		h.send("stripe", "payment_intent.created", "evt_c", "2024-06-20", envelope.ChannelWebhook, paymentIntent("evt_c", "pi_tie", "requires_payment_method", 1700000000))
		h.start("a", nil)
		h.waitAll(2)
		if p, s := h.total(Processed), h.total(Stale); p != 1 || s != 1 {
			t.Fatalf("processed %d stale %d, want 1 and 1 (the earlier received stale)", p, s)
		}
		st, ok, err := storeFor(h).Entity(context.Background(), "stripe:pi:pi_tie")
		if err != nil || !ok || st.EventID != "evt_s" {
			t.Fatalf("entity holds %q (%v, %v), want evt_s, the later received", st.EventID, ok, err)
		}
	})
	t.Run("delivered to a sink, the earlier one retried", func(t *testing.T) {
		sink := &downstream{script: []int{503}} // the first delivery fails
		ds := httptest.NewServer(sink)
		t.Cleanup(ds.Close)
		h := newHarnessWith(t, testenv.Embedded(t), `
sources:
  stripe:
    kind: stripe
    secrets_env: [T_STRIPE]
    retry: {tiers: [1s, 2s], max_attempts: 3}
    events:
      "payment_intent.*":
        contract: stripe/payment_intent
        entity_key: "stripe:pi:{/data/object/id}"
        occurred_at: /created
        sink: {url: "`+ds.URL+`", timeout: 2s}
`, testTiers, nil)
		base := time.Now().UTC().Truncate(time.Microsecond)
		at := base
		h.receivedAt(&at)
		h.send("stripe", "payment_intent.created", "evt_c", "2024-06-20", envelope.ChannelWebhook, paymentIntent("evt_c", "pi_tie", "requires_payment_method", 1700000000))
		h.start("a", nil)
		testenv.Eventually(t, 20*time.Second, "the first delivery to fail", func() bool { return len(sink.times()) >= 1 })
		at = base.Add(time.Second)
		h.send("stripe", "payment_intent.succeeded", "evt_s", "2024-06-20", envelope.ChannelWebhook, paymentIntent("evt_s", "pi_tie", "succeeded", 1700000000))
		h.waitAll(2)
		if p, s := h.total(Processed), h.total(Stale); p != 1 || s != 1 {
			t.Fatalf("processed %d stale %d, want 1 and 1 (the retry of the earlier received stale)", p, s)
		}
		if n := len(sink.times()); n != 2 {
			t.Fatalf("%d deliveries, want 2 (created failed, succeeded): the earlier received was delivered after the later", n)
		}
		st, ok, err := storeFor(h).Entity(context.Background(), "stripe:pi:pi_tie")
		if err != nil || !ok || st.EventID != "evt_s" {
			t.Fatalf("entity holds %q (%v, %v), want evt_s, the later received", st.EventID, ok, err)
		}
	})
}

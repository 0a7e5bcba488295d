package processor

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/retry"
	"github.com/inletdev/inlet/pkg/testenv"
)

func TestProcessor(t *testing.T) { processorSuite(t, testenv.Embedded) }

// TestIntegrationProcessor runs the same suite on real Kafka and Redis.
func TestIntegrationProcessor(t *testing.T) {
	testenv.Real(t)
	processorSuite(t, testenv.Real)
}

func processorSuite(t *testing.T, newEnv func(testing.TB) *testenv.Env) {
	t.Run("an event becomes a processed record and the entity state", func(t *testing.T) {
		h := newHarness(t, newEnv(t))
		h.start("a", nil)
		h.send("stripe", "payment_intent.succeeded", "evt_1", "2024-06-20", envelope.ChannelWebhook, paymentIntent("evt_1", "pi_1", "succeeded", 1700000000))
		h.waitAll(1)
		out := h.processed(1)
		if len(out) != 1 {
			t.Fatalf("%d processed records, want 1", len(out))
		}
		p := out[0]
		data := p["data"].(map[string]any)
		obj := data["data"].(map[string]any)["object"].(map[string]any)
		if p["_key"] != "stripe:pi:pi_1" || p["entity_key"] != "stripe:pi:pi_1" || obj["id"] != "pi_1" || p["event_id"] != "evt_1" {
			t.Fatalf("processed record: %v", p)
		}
		if p["_h_correlation-id"] != "corr-evt_1" || !strings.HasPrefix(p["_h_traceparent"].(string), "00-4bf92f") || p["_h_inlet-attempt"] != "1" {
			t.Fatalf("headers not carried: %v", p)
		}
		if p["_h_inlet-record-name"] != "inlet.processed.stripe.payment_intent" {
			t.Fatalf("inlet-record-name = %v, want the processed record's full name", p["_h_inlet-record-name"])
		}
		// The only record of the raw topic: offset 0 of its partition.
		if origin, _ := p["_h_inlet-origin"].(string); !regexp.MustCompile(`^` + regexp.QuoteMeta(h.topics.Raw) + `/[0-9]+/0$`).MatchString(origin) {
			t.Fatalf("inlet-origin = %q, want %s/<partition>/0", origin, h.topics.Raw)
		}
		if occ, ok := p["occurred_at"].(time.Time); !ok || occ.Unix() != 1700000000 {
			t.Fatalf("occurred_at = %v", p["occurred_at"])
		}
		st := h.env.ReadAll(t, h.topics.State, 1, 300*time.Millisecond, 10*time.Second)
		if len(st) != 1 || string(st[0].Key) != "stripe:pi:pi_1" {
			t.Fatalf("state topic: %d records", len(st))
		}
		if got := retry.Get(st[0].Headers, retry.HeaderRecordName); got != "inlet.processed.stripe.payment_intent" {
			t.Fatalf("state record's inlet-record-name = %q", got)
		}
		// Both topics' subjects (record name strategy) hold the schema the
		// records are written with: a tool looking it up by subject for
		// the state topic finds it too.
		id, err := h.registryClient().SchemaID(st[0].Value)
		if err != nil {
			t.Fatal(err)
		}
		for _, subject := range []string{h.topics.ProcessedSubject("inlet.processed.stripe.payment_intent"), h.topics.StateSubject("inlet.processed.stripe.payment_intent")} {
			got, err := h.registryClient().SR().SchemaByVersion(context.Background(), subject, -1)
			if err != nil || got.ID != id {
				t.Errorf("subject %s: latest id %d (%v), want %d, the records' schema", subject, got.ID, err, id)
			}
		}
	})

	t.Run("events larger than 1 MiB are fetched and decoded", func(t *testing.T) {
		// 1.5 MiB of unknown field: past FetchOpts' 256 KiB per partition,
		// which Kafka (and kfake) must still return whole, and past
		// hamba's default 1 MiB bound on a bytes field, which made such
		// envelopes undecodable.
		h := newHarness(t, newEnv(t))
		h.start("a", nil)
		big := paymentIntent("evt_big", "pi_big", "succeeded", 1700000000)
		big = append(append(append(big[:len(big)-1:len(big)-1], `,"padding":"`...), strings.Repeat("x", 3<<19)...), `"}`...)
		h.send("stripe", "payment_intent.succeeded", "evt_big", "2024-06-20", envelope.ChannelWebhook, big)
		h.send("stripe", "payment_intent.succeeded", "evt_after", "2024-06-20", envelope.ChannelWebhook, paymentIntent("evt_after", "pi_after", "succeeded", 1700000000))
		h.waitAll(2)
		if p := h.total(Processed); p != 2 {
			// The invalid record's headers say why.
			for _, r := range h.env.ReadAll(t, h.topics.Invalid, 1, 300*time.Millisecond, 10*time.Second) {
				for _, hd := range r.Headers {
					t.Logf("%s: %.300s", hd.Key, hd.Value)
				}
			}
			t.Fatalf("processed %d, want 2 (invalid %d, dlq %d)", p, h.total(Invalid), h.total(DeadLetter))
		}
	})

	t.Run("a processed record over the size limit makes the event invalid", func(t *testing.T) {
		// 1.4 MiB of invalid UTF-8 in free-form data: the canonical JSON
		// turns each byte into U+FFFD (3 bytes), past maxOutputBytes.
		// Processed records are bounded like ingest's bodies, whatever
		// they compress to: an incompressible one that Kafka refused
		// would fail the transaction on every redelivery.
		h := newHarness(t, newEnv(t))
		h.start("a", nil)
		blob := bytes.Repeat([]byte{0xff}, 1400<<10)
		big := append(append([]byte(`{"type":"invoice.paid","timestamp":"2025-01-01T00:00:00Z","data":{"id":"inv_big","blob":"`), blob...), `"}}`...)
		h.send("billing", "invoice.paid", "msg_big", "v1", envelope.ChannelWebhook, big)
		h.send("billing", "invoice.paid", "msg_small", "v1", envelope.ChannelWebhook, []byte(`{"type":"invoice.paid","timestamp":"2025-01-01T00:00:00Z","data":{"id":"inv_small"}}`))
		h.waitAll(2)
		if p, i := h.total(Processed), h.total(Invalid); p != 1 || i != 1 {
			t.Fatalf("processed %d invalid %d, want 1 and 1", p, i)
		}
		inv := h.env.ReadAll(t, h.topics.Invalid, 1, 300*time.Millisecond, 10*time.Second)
		if len(inv) != 1 || !strings.Contains(retry.Get(inv[0].Headers, retry.HeaderErrors), "over the") {
			t.Fatalf("invalid records: %d, want 1 whose errors say it is too big", len(inv))
		}
		// Its entity's time did not move: an older event still applies.
		h.send("billing", "invoice.paid", "msg_older", "v1", envelope.ChannelWebhook, []byte(`{"type":"invoice.paid","timestamp":"2024-01-01T00:00:00Z","data":{"id":"inv_big","n":1}}`))
		h.waitAll(3)
		if p := h.total(Processed); p != 2 {
			t.Fatalf("processed %d, want 2: the oversized event moved its entity's time", p)
		}
	})

	t.Run("a business time far after receipt is invalid and does not block the entity", func(t *testing.T) {
		// Applied, a year-5138 time would stay the entity's and make
		// every real update stale.
		h := newHarness(t, newEnv(t))
		h.start("a", nil)
		h.send("billing", "invoice.paid", "msg_future", "v1", envelope.ChannelWebhook, []byte(`{"type":"invoice.paid","timestamp":"5138-01-01T00:00:00Z","data":{"id":"inv_future"}}`))
		h.send("billing", "invoice.paid", "msg_now", "v1", envelope.ChannelWebhook, []byte(`{"type":"invoice.paid","timestamp":"2025-01-01T00:00:00Z","data":{"id":"inv_future","n":2}}`))
		h.waitAll(2)
		if p, i := h.total(Processed), h.total(Invalid); p != 1 || i != 1 {
			t.Fatalf("processed %d invalid %d, want 1 and 1", p, i)
		}
		inv := h.env.ReadAll(t, h.topics.Invalid, 1, 300*time.Millisecond, 10*time.Second)
		if len(inv) != 1 || !strings.Contains(retry.Get(inv[0].Headers, retry.HeaderErrors), "max_future") {
			t.Fatalf("invalid records: %d, want 1 whose errors name max_future", len(inv))
		}
	})

	t.Run("ten concurrent deliveries of one event make one output", func(t *testing.T) {
		h := newHarness(t, newEnv(t))
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				h.send("stripe", "payment_intent.succeeded", "evt_dup", "2024-06-20", envelope.ChannelWebhook, paymentIntent("evt_dup", "pi_dup", "succeeded", 1700000000))
			})
		}
		wg.Wait()
		h.start("a", nil)
		h.start("b", nil)
		h.waitAll(10)
		if n := len(h.processed(1)); n != 1 {
			t.Fatalf("%d outputs, want 1", n)
		}
		if p, d := h.total(Processed), h.total(Duplicate); p != 1 || d != 9 {
			t.Fatalf("processed %d duplicate %d, want 1 and 9", p, d)
		}
	})

	t.Run("the same business event via webhook and events endpoint makes one output", func(t *testing.T) {
		h := newHarness(t, newEnv(t))
		h.start("a", nil)
		h.send("billing", "invoice.paid", "msg_webhook_1", "v1", envelope.ChannelWebhook, []byte(`{"type":"invoice.paid","timestamp":"2025-01-01T00:00:00Z","data":{"id":"inv_9","amount":5}}`))
		h.send("billing", "invoice.paid", "line-inv_9", "v1", envelope.ChannelEvents, []byte(`{"id":"line-inv_9","type":"invoice.paid","occurred_at":"2025-01-01T00:00:00Z","data":{"id":"inv_9","amount":5}}`))
		h.waitAll(2)
		if n := len(h.processed(1)); n != 1 {
			t.Fatalf("%d outputs, want 1", n)
		}
		if d := h.total(Duplicate); d != 1 {
			t.Fatalf("duplicates %d, want 1", d)
		}
	})

	t.Run("out-of-order updates leave the newest state and count the stale ones", func(t *testing.T) {
		h := newHarness(t, newEnv(t))
		h.start("a", nil)
		base := time.Date(2025, 1, 10, 12, 0, 0, 0, time.UTC)
		// Arrival order 3,1,4,2,5: 1 arrives after 3, 2 after 4 → 2 stale.
		order := []int{3, 1, 4, 2, 5}
		for i, n := range order {
			h.send("shop", "orders/updated", fmt.Sprintf("wh-%d", n), "2025-01", envelope.ChannelWebhook, shopOrder(77, base.Add(time.Duration(n)*time.Minute), fmt.Sprintf("s%d", n), true))
			h.waitAll(int64(i + 1)) // one at a time: arrival order is processing order
		}
		if s := h.total(Stale); s != 2 {
			t.Fatalf("stale = %d, want 2", s)
		}
		st := h.env.ReadAll(t, h.topics.State, 3, 500*time.Millisecond, 10*time.Second)
		last := st[len(st)-1]
		if !strings.Contains(string(last.Value), "s5") {
			t.Fatalf("latest state is not the newest update")
		}
		ent, ok, err := storeFor(h).Entity(t.Context(), "shopify:order:77")
		if err != nil || !ok || ent.EventID != "wh-5" {
			t.Fatalf("redis entity = %+v %v %v, want wh-5", ent, ok, err)
		}
	})

	t.Run("versions, validation and unknown fields", func(t *testing.T) {
		h := newHarness(t, newEnv(t))
		h.start("a", nil)
		ts := time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)
		h.send("shop", "orders/create", "wh-v1", "2024-07", envelope.ChannelWebhook, shopOrder(1, ts, "paid", false))      // old version: upcast
		h.send("shop", "orders/create", "wh-v2", "2025-01", envelope.ChannelWebhook, shopOrder(2, ts, "paid", true))       // current, extra fields
		h.send("shop", "orders/create", "wh-old", "2019-04", envelope.ChannelWebhook, shopOrder(3, ts, "paid", true))      // no handler for version
		h.send("shop", "orders/create", "wh-bad", "2025-01", envelope.ChannelWebhook, []byte(`{"id":4,"updated_at":"x"}`)) // missing required fields
		h.send("stripe", "charge.refunded", "evt_nohandler", "2024-06-20", envelope.ChannelWebhook, []byte(`{"id":"evt_nohandler"}`))
		h.waitAll(5)
		if p, i := h.total(Processed), h.total(Invalid); p != 2 || i != 3 {
			t.Fatalf("processed %d invalid %d, want 2 and 3", p, i)
		}
		for _, p := range h.processed(2) {
			data := p["data"].(map[string]any)
			if st, ok := data["financial_status"].(string); !ok || st != "paid" {
				t.Errorf("%s: financial_status = %v (kept through the upcast to v2)", p["_key"], data["financial_status"])
			}
		}
		inv := h.env.ReadAll(t, h.topics.Invalid, 3, 500*time.Millisecond, 10*time.Second)
		reasons := map[string]string{}
		for _, r := range inv {
			var reason, errs string
			for _, hd := range r.Headers {
				switch hd.Key {
				case HeaderReason:
					reason = string(hd.Value)
				case HeaderErrors:
					errs = string(hd.Value)
				}
			}
			reasons[string(r.Key)] = reason + " | " + errs
		}
		if !strings.HasPrefix(reasons["shop:wh-old"], "no handler") || !strings.HasPrefix(reasons["stripe:evt_nohandler"], "no handler") {
			t.Errorf("no-handler reasons: %v", reasons)
		}
		if r := reasons["shop:wh-bad"]; !strings.HasPrefix(r, "validation") || !strings.Contains(r, "/name") {
			t.Errorf("validation reason should name the missing field path: %s", r)
		}
	})

	t.Run("outcomes account for every input", func(t *testing.T) {
		h := newHarness(t, newEnv(t))
		h.start("a", nil)
		inputs := 0
		send := func(src, typ, id, ver string, b []byte) {
			h.send(src, typ, id, ver, envelope.ChannelWebhook, b)
			inputs++
		}
		for i := range 20 {
			send("stripe", "payment_intent.succeeded", fmt.Sprintf("evt_a%d", i), "2024-06-20", paymentIntent(fmt.Sprintf("evt_a%d", i), fmt.Sprintf("pi_%d", i%5), "succeeded", int64(1700000000+i)))
		}
		for i := range 5 {
			send("stripe", "payment_intent.succeeded", fmt.Sprintf("evt_a%d", i), "2024-06-20", paymentIntent(fmt.Sprintf("evt_a%d", i), fmt.Sprintf("pi_%d", i%5), "succeeded", int64(1700000000+i)))
		}
		send("stripe", "payment_intent.created", "evt_bad", "2024-06-20", []byte(`{"id":"evt_bad","type":"payment_intent.created","created":"soon"}`))
		h.waitAll(int64(inputs))
		got := h.all()
		if got != int64(inputs) {
			t.Fatalf("outcomes %d, inputs %d", got, inputs)
		}
		if h.total(Duplicate) < 5 || h.total(Invalid) != 1 {
			t.Fatalf("duplicate %d invalid %d", h.total(Duplicate), h.total(Invalid))
		}
	})
}

// TestBusinessTimeOutOfRange: a business time the store cannot compare (an
// envelope's occurred_at from a producer other than ingest) makes its event
// invalid, naming the field; the events after it go on. The store refused
// the whole batch for it, on every redelivery.
func TestBusinessTimeOutOfRange(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t))
	h.start("a", nil)
	h.send("billing", "invoice.paid", "line-old", "v1", envelope.ChannelEvents, []byte(`{"id":"line-old","type":"invoice.paid","occurred_at":"1600-01-01T00:00:00Z","data":{"id":"inv_old","amount":5}}`))
	h.send("billing", "invoice.paid", "line-new", "v1", envelope.ChannelEvents, []byte(`{"id":"line-new","type":"invoice.paid","occurred_at":"2025-01-01T00:00:00Z","data":{"id":"inv_new","amount":5}}`))
	h.waitAll(2)
	if p, i := h.total(Processed), h.total(Invalid); p != 1 || i != 1 {
		t.Fatalf("processed %d, invalid %d; want 1 and 1", p, i)
	}
	inv := h.env.ReadAll(t, h.topics.Invalid, 1, 300*time.Millisecond, 10*time.Second)
	if len(inv) != 1 || !strings.Contains(retry.Get(inv[0].Headers, retry.HeaderErrors), "occurred_at") {
		t.Fatalf("%d invalid records, want 1 whose errors name occurred_at", len(inv))
	}
}

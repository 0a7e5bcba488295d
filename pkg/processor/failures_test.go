package processor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/inletdev/inlet/pkg/alert"
	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/retry"
	"github.com/inletdev/inlet/pkg/router"
	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/pkg/testenv"
	"github.com/inletdev/inlet/pkg/testenv/syncbuf"
)

// downstream is a sink that answers from a script of statuses, then 200,
// and records when each delivery arrived and its headers.
type downstream struct {
	mu      sync.Mutex
	script  []int
	always  int
	calls   []time.Time
	keys    []string
	headers []http.Header
}

func (d *downstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, time.Now())
	d.keys = append(d.keys, r.Header.Get("Idempotency-Key"))
	d.headers = append(d.headers, r.Header.Clone())
	status := 200
	switch {
	case d.always != 0:
		status = d.always
	case len(d.script) > 0:
		status, d.script = d.script[0], d.script[1:]
	}
	w.WriteHeader(status)
}

func (d *downstream) requests() []http.Header {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]http.Header(nil), d.headers...)
}

func (d *downstream) times() []time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]time.Time(nil), d.calls...)
}

// alerts collects alert webhooks.
type alerts struct {
	mu   sync.Mutex
	msgs []alert.Message
}

func (a *alerts) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var m alert.Message
	_ = json.NewDecoder(r.Body).Decode(&m)
	a.mu.Lock()
	a.msgs = append(a.msgs, m)
	a.mu.Unlock()
}

func (a *alerts) got() []alert.Message {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]alert.Message(nil), a.msgs...)
}

var testTiers = []time.Duration{time.Second, 2 * time.Second}

// failureHarness runs a processor whose shop source delivers to sink, with
// 1s and 2s retry tiers, 3 attempts, and alerts to a test receiver.
func failureHarness(t *testing.T, env *testenv.Env, sink *downstream) (*harness, *alerts) {
	t.Helper()
	ds := httptest.NewServer(sink)
	t.Cleanup(ds.Close)
	rcv := &alerts{}
	as := httptest.NewServer(rcv)
	t.Cleanup(as.Close)
	al := alert.New(alert.Config{WebhookURL: as.URL, Window: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { al.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	yaml := shopSinkSources(ds.URL, `
    runbook: https://runbooks.example.com/inlet/dlq
    retry: {tiers: [1s, 2s], max_attempts: 3}`)
	return newHarnessWith(t, env, yaml, testTiers, al), rcv
}

// shopSinkSources is a sources file whose shop orders are delivered to
// sinkURL, with more of the shop source's settings in extra.
func shopSinkSources(sinkURL, extra string) string {
	return `
sources:
  shop:
    kind: shopify
    secrets_env: [T_SHOP]` + extra + `
    events:
      "orders/*":
        contract: shopify/order
        entity_key: "shopify:order:{/id}"
        natural_key: "{/id}:{/updated_at}"
        occurred_at: /updated_at
        sink: {url: "` + sinkURL + `", timeout: 2s}
`
}

func TestFailureHandling(t *testing.T) { failureSuite(t, testenv.Embedded) }

func TestIntegrationFailureHandling(t *testing.T) {
	testenv.Real(t)
	failureSuite(t, testenv.Real)
}

func failureSuite(t *testing.T, newEnv func(testing.TB) *testenv.Env) {
	order := func(id int) []byte {
		return shopOrder(int64(id), time.Date(2025, 1, 1, 0, 0, id, 0, time.UTC), "paid", true)
	}

	t.Run("a sink failing twice is retried on time and delivered once", func(t *testing.T) {
		sink := &downstream{script: []int{503, 503}}
		h, _ := failureHarness(t, newEnv(t), sink)
		h.start("a", nil)
		h.send("shop", "orders/updated", "wh-r1", "2025-01", envelope.ChannelWebhook, order(1))
		h.waitAll(1)
		calls := sink.times()
		if len(calls) != 3 || h.total(Processed) != 1 || h.total(Retried) != 2 {
			t.Fatalf("calls %d processed %d retried %d; want 3, 1, 2", len(calls), h.total(Processed), h.total(Retried))
		}
		for i, tier := range testTiers {
			gap := calls[i+1].Sub(calls[i])
			if gap < tier || gap > tier+2*time.Second {
				t.Errorf("retry %d came %v after the failure; due after %v, at most 2s late", i+1, gap, tier)
			}
		}
		out := h.processed(1)
		if len(out) != 1 || out[0]["_h_inlet-attempt"] != "3" {
			t.Fatalf("outputs %d, attempt header %v", len(out), out[0]["_h_inlet-attempt"])
		}
		// Consumed from the second retry tier, it still points at the raw
		// record it came from: the only one, at offset 0.
		if origin, _ := out[0]["_h_inlet-origin"].(string); !regexp.MustCompile(`^` + regexp.QuoteMeta(h.topics.Raw) + `/[0-9]+/0$`).MatchString(origin) {
			t.Fatalf("inlet-origin = %q, want %s/<partition>/0", origin, h.topics.Raw)
		}
	})

	t.Run("a sink that keeps failing dead-letters after the budget and alerts", func(t *testing.T) {
		sink := &downstream{always: 503}
		h, rcv := failureHarness(t, newEnv(t), sink)
		h.start("a", nil)
		h.send("shop", "orders/updated", "wh-dlq", "2025-01", envelope.ChannelWebhook, order(2))
		h.waitAll(1)
		if d := h.total(DeadLetter); d != 1 || len(sink.times()) != 3 {
			t.Fatalf("dlq %d after %d calls; want 1 after 3", d, len(sink.times()))
		}
		dlq := h.env.ReadAll(t, h.topics.DLQ, 1, 300*time.Millisecond, 10*time.Second)
		hist := retry.History(dlq[0].Headers)
		if len(dlq) != 1 || len(hist) != 3 || retry.Get(dlq[0].Headers, HeaderReason) != "retry budget exhausted" || retry.Get(dlq[0].Headers, retry.HeaderRunbook) == "" {
			t.Fatalf("dlq records %d, history %d, headers %v", len(dlq), len(hist), dlq[0].Headers)
		}
		env, err := h.codec.Decode(context.Background(), dlq[0].Value)
		if err != nil || string(env.Payload) != string(order(2)) {
			t.Fatalf("dlq value is not the original envelope: %v", err)
		}
		testenv.Eventually(t, 5*time.Second, "the DLQ alert", func() bool { return len(rcv.got()) == 1 })
		a := rcv.got()[0]
		if a.Kind != alert.KindDLQ || a.Runbook != "https://runbooks.example.com/inlet/dlq" || a.EventID != "wh-dlq" || !strings.Contains(string(a.History), "503") || a.Excerpt == "" {
			t.Fatalf("alert: %+v", a)
		}
	})

	t.Run("a source that names no retry tiers uses the processor's, and its budget follows", func(t *testing.T) {
		sink := &downstream{always: 503}
		ds := httptest.NewServer(sink)
		t.Cleanup(ds.Close)
		yaml := shopSinkSources(ds.URL, "")
		// One tier of 1s: the defaults (30s, 2m, 15m) have no topic here.
		h := newHarnessWith(t, newEnv(t), yaml, []time.Duration{time.Second}, nil)
		h.start("a", nil)
		h.send("shop", "orders/updated", "wh-tiers", "2025-01", envelope.ChannelWebhook, order(4))
		h.waitAll(1)
		// One retry (one tier, plus the first try), then the DLQ.
		if d, r, calls := h.total(DeadLetter), h.total(Retried), len(sink.times()); d != 1 || r != 1 || calls != 2 {
			t.Fatalf("dlq %d retried %d sink calls %d; want 1, 1, 2", d, r, calls)
		}
		if n := len(h.env.ReadAll(t, h.topics.Retry[0], 1, 300*time.Millisecond, 10*time.Second)); n != 1 {
			t.Fatalf("%d records on %s, want 1", n, h.topics.Retry[0])
		}
	})

	t.Run("a budget beyond the processor's tiers is refused at start", func(t *testing.T) {
		h := newHarnessWith(t, newEnv(t), shopSinkSources("http://127.0.0.1:1", "\n    retry: {max_attempts: 4}"), []time.Duration{time.Second}, nil)
		cfg := h.config()
		cfg.InstanceID = h.env.Prefix + "-budget"
		p, err := New(cfg, h.deps(cfg))
		if err == nil {
			p.closeWorkers()
			t.Fatal("New accepted 4 attempts on one tier")
		}
		if !strings.Contains(err.Error(), "retry.max_attempts 4 is more than its 1 tiers allow") {
			t.Fatalf("error %q does not say what is wrong", err)
		}
	})

	t.Run("a permanent sink error dead-letters at once", func(t *testing.T) {
		sink := &downstream{always: 400}
		h, _ := failureHarness(t, newEnv(t), sink)
		h.start("a", nil)
		h.send("shop", "orders/updated", "wh-400", "2025-01", envelope.ChannelWebhook, order(3))
		h.waitAll(1)
		if h.total(DeadLetter) != 1 || len(sink.times()) != 1 || h.total(Retried) != 0 {
			t.Fatalf("dlq %d calls %d retried %d", h.total(DeadLetter), len(sink.times()), h.total(Retried))
		}
	})

	t.Run("a validation error goes to invalid, not the DLQ, and alerts as invalid", func(t *testing.T) {
		sink := &downstream{}
		h, rcv := failureHarness(t, newEnv(t), sink)
		h.start("a", nil)
		h.send("shop", "orders/updated", "wh-bad", "2025-01", envelope.ChannelWebhook, []byte(`{"id":9}`))
		h.waitAll(1)
		if h.total(Invalid) != 1 || h.total(DeadLetter) != 0 || len(sink.times()) != 0 {
			t.Fatalf("invalid %d dlq %d sink calls %d", h.total(Invalid), h.total(DeadLetter), len(sink.times()))
		}
		testenv.Eventually(t, 5*time.Second, "the invalid alert", func() bool { return len(rcv.got()) == 1 })
		if a := rcv.got()[0]; a.Kind != alert.KindInvalid || !strings.Contains(string(a.History), `"stage":"validate"`) {
			t.Fatalf("alert kind %s, history %s; want invalid, with the validation error's entry", a.Kind, a.History)
		}
		// The entry carries the source's runbook, as the alert does (and
		// as DLQ entries do): inletctl invalid show prints it.
		inv := h.env.ReadAll(t, h.topics.Invalid, 1, 300*time.Millisecond, 10*time.Second)
		if rb := retry.Get(inv[0].Headers, retry.HeaderRunbook); rb != "https://runbooks.example.com/inlet/dlq" || rb != rcv.got()[0].Runbook {
			t.Fatalf("invalid entry's runbook %q, alert's %q; want the source's", rb, rcv.got()[0].Runbook)
		}
	})

	t.Run("a processor killed while a record sits in a retry tier loses and doubles nothing", func(t *testing.T) {
		sink := &downstream{script: []int{503}}
		h, _ := failureHarness(t, newEnv(t), sink)
		// a dies (no commit, no leave) on the batch after the one that moved
		// an event to the retry tier: the retried record, when due.
		var batches atomic.Int32
		var retried atomic.Bool
		a := h.startHooked("a", nil, func() bool { return retried.Load() && batches.Add(1) > 0 })
		for i := range 5 {
			h.send("shop", "orders/updated", fmt.Sprintf("wh-k%d", i), "2025-01", envelope.ChannelWebhook, order(10+i))
		}
		testenv.Eventually(t, 20*time.Second, "a record in the retry tier", func() bool { return h.total(Retried) >= 1 })
		retried.Store(true)
		select {
		case err := <-a.done:
			if !errors.Is(err, errCrashed) {
				t.Fatalf("processor a: %v", err)
			}
			a.done <- nil
		case <-time.After(20 * time.Second):
			t.Fatal("processor a did not pick up the due retry")
		}
		h.start("b", nil)
		h.waitAll(5)
		ids := eventIDs(h, 5)
		if len(ids) != 5 {
			t.Fatalf("%d distinct outputs, want 5", len(ids))
		}
		for id, n := range ids {
			if n != 1 {
				t.Errorf("%s: %d outputs", id, n)
			}
		}
	})

	t.Run("the retry tier does not block the raw topic", func(t *testing.T) {
		sink := &downstream{script: []int{503}}
		h, _ := failureHarness(t, newEnv(t), sink)
		h.start("a", nil)
		h.send("shop", "orders/updated", "wh-slow", "2025-01", envelope.ChannelWebhook, order(20))
		testenv.Eventually(t, 10*time.Second, "the first failure", func() bool { return h.total(Retried) == 1 })
		start := time.Now()
		h.send("shop", "orders/updated", "wh-fast", "2025-01", envelope.ChannelWebhook, order(21))
		testenv.Eventually(t, 10*time.Second, "the second event", func() bool { return h.total(Processed) >= 1 })
		if d := time.Since(start); d > testTiers[0] {
			t.Errorf("a raw event waited %v behind a retry", d)
		}
		h.waitAll(2)
	})

	t.Run("a failed delivery does not move the entity's time", func(t *testing.T) {
		// The newer update's sink refuses it for good (DLQ); an older
		// update of the same entity must still count: the newer one was
		// never written anywhere but the DLQ.
		sink := &downstream{script: []int{400}}
		h, _ := failureHarness(t, newEnv(t), sink)
		h.start("a", nil)
		newer := time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)
		h.send("shop", "orders/updated", "wh-new", "2025-01", envelope.ChannelWebhook, shopOrder(77, newer, "paid", true))
		h.waitAll(1)
		if h.total(DeadLetter) != 1 {
			t.Fatalf("dlq %d, want the refused delivery there", h.total(DeadLetter))
		}
		if _, ok, err := storeFor(h).Entity(t.Context(), "shopify:order:77"); ok || err != nil {
			t.Fatalf("the entity has a stored time after its only event failed delivery (err %v)", err)
		}
		h.send("shop", "orders/updated", "wh-old", "2025-01", envelope.ChannelWebhook, shopOrder(77, newer.Add(-time.Hour), "pending", true))
		h.waitAll(2)
		st, ok, err := storeFor(h).Entity(t.Context(), "shopify:order:77")
		if h.total(Stale) != 0 || h.total(Processed) != 1 || !ok || err != nil || !st.EventTime.Equal(newer.Add(-time.Hour)) {
			t.Fatalf("processed %d stale %d; stored %v (ok %v, err %v): want the older update processed and stored", h.total(Processed), h.total(Stale), st.EventTime, ok, err)
		}
		if n := len(h.env.ReadAll(t, h.topics.State, 1, time.Second, 10*time.Second)); n != 1 {
			t.Fatalf("%d state records, want the older update's", n)
		}
	})

	t.Run("a hanging sink sends events to a retry tier, not the batch round again", func(t *testing.T) {
		var calls atomic.Int64
		ds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			// Never answers: the client's timeout ends it. (The server
			// notices the client leaving only once the body is read.)
			_, _ = io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
		}))
		t.Cleanup(ds.Close)
		h := newHarnessWith(t, newEnv(t), shopSinkSources(ds.URL, "\n    retry: {tiers: [1s, 2s], max_attempts: 3}"), testTiers, nil)
		// 80 events, 16 deliveries at a time, each cut at the sink's 2s
		// timeout: 10s of deliveries, past the 2s batch deadline and the
		// 6s the batch may take in all.
		const n = 80
		for i := range n {
			h.send("shop", "orders/updated", fmt.Sprintf("wh-hang-%d", i), "2025-01", envelope.ChannelWebhook,
				shopOrder(int64(1000+i), time.Date(2025, 1, 1, 0, 0, i, 0, time.UTC), "paid", true))
		}
		h.start("a", func(c *Config) { c.DrainTimeout = 4 * time.Second; c.BatchDeadline = 2 * time.Second; c.Workers = 1 })
		testenv.Eventually(t, 60*time.Second, "every event to reach a retry tier or the DLQ", func() bool {
			return h.total(Retried)+h.total(DeadLetter) >= n
		})
		if h.total(Processed) != 0 {
			t.Fatalf("%d processed through a sink that never answers", h.total(Processed))
		}
	})
}

func TestRetryPolicy(t *testing.T) {
	t.Setenv("T_SHOP", "s")
	processorTiers := []time.Duration{10 * time.Second, time.Minute}
	for _, tt := range []struct {
		name, retry string
		want        retry.Policy
	}{
		{"nothing set: the processor's tiers, one attempt each plus the first", ``,
			retry.Policy{Tiers: processorTiers, MaxAttempts: 3}},
		{"tiers set", `retry: {tiers: [1m]}`,
			retry.Policy{Tiers: []time.Duration{time.Minute}, MaxAttempts: 2}},
		{"both set", `retry: {tiers: [10s, 1m], max_attempts: 2}`,
			retry.Policy{Tiers: processorTiers, MaxAttempts: 2}},
		{"only the budget set", `retry: {max_attempts: 2}`,
			retry.Policy{Tiers: processorTiers, MaxAttempts: 2}},
		// Parse cannot check it against tiers it does not know; New does.
		{"a budget over the default tiers", `retry: {max_attempts: 6}`,
			retry.Policy{Tiers: processorTiers, MaxAttempts: 6}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, err := source.Parse([]byte("sources:\n  shop:\n    kind: shopify\n    secrets_env: [T_SHOP]\n    " + tt.retry + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			src, _ := f.Get("shop")
			got := retryPolicy(src.Retry, processorTiers)
			if !slices.Equal(got.Tiers, tt.want.Tiers) || got.MaxAttempts != tt.want.MaxAttempts {
				t.Fatalf("policy %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestOversizedOutputs: the copy a failed event leaves on the invalid (or
// retry, or dead-letter) topic is its raw record plus headers. A raw record
// as large as ingest writes still fits with them; one that cannot (written
// before ingest kept room, or by another producer) gets a copy without its
// value that names the raw record, instead of a refused produce that
// aborted its batch on every try and stopped the partitions sharing it.
func TestOversizedOutputs(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t))
	raw := func(key string, size int) *kgo.Record {
		r := &kgo.Record{Topic: h.topics.Raw, Key: []byte(key)}
		r.Value = bytes.Repeat([]byte{'x'}, size-kafka.RecordSize(r)) // undecodable: invalid
		if err := h.prod.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatalf("raw record of %d bytes: %v", size, err)
		}
		return r
	}
	raw("big:1", kafka.MaxRawRecordBytes)
	if big := raw("big:2", kafka.MaxMessageBytes-64); len(big.Value) < kafka.MaxMessageBytes-1024 {
		t.Fatalf("setup: big:2 holds %d bytes, not a record too large for any copy", len(big.Value))
	}
	h.send("stripe", "payment_intent.succeeded", "evt_small", "2024-06-20", envelope.ChannelWebhook, paymentIntent("evt_small", "pi_small", "succeeded", 1700000000))
	h.start("a", nil)
	h.waitAll(3)
	if h.total(Invalid) != 2 || h.total(Processed) != 1 {
		t.Fatalf("invalid %d processed %d; want 2 and 1", h.total(Invalid), h.total(Processed))
	}
	recs := h.env.ReadAll(t, h.topics.Invalid, 2, 2*time.Second, 30*time.Second)
	if len(recs) != 2 {
		t.Fatalf("%d invalid records, want 2", len(recs))
	}
	seen := map[string]bool{}
	for _, r := range recs {
		omitted := retry.Get(r.Headers, retry.HeaderValueOmitted)
		seen[string(r.Key)] = true
		switch string(r.Key) {
		case "big:1": // as large as ingest writes: whole
			if omitted != "" || len(r.Value) != kafka.MaxRawRecordBytes-kafka.RecordSize(&kgo.Record{Key: r.Key}) {
				t.Errorf("big:1: value of %d bytes, omitted %q; want the raw value whole", len(r.Value), omitted)
			}
		case "big:2": // too large with any headers: named, not copied
			origin := retry.Get(r.Headers, retry.HeaderOrigin)
			if len(r.Value) != 0 || omitted == "" || origin == "" {
				t.Errorf("big:2: value of %d bytes, omitted %q, origin %q; want no value and where the event is", len(r.Value), omitted, origin)
			}
		default:
			t.Errorf("an invalid record of key %q", r.Key)
		}
	}
	if !seen["big:1"] || !seen["big:2"] {
		t.Errorf("invalid records for %v, want big:1 and big:2", seen)
	}
}

// TestSinkNewestWinsInBatchOrder: events of one entity in one batch, some
// for a sink, are decided in batch order against what was applied before
// them, so the state topic ends on the newest applied event and a failed
// delivery makes no later, older event stale.
func TestSinkNewestWinsInBatchOrder(t *testing.T) {
	// IDs whose raw records share a partition (testenv's 3), so that their
	// order in the batch is the order sent.
	part := kgo.StickyKeyPartitioner(nil).ForTopic("x")
	samePartition := func(prefix string, n int) []string {
		var ids []string
		want := -1
		for i := 0; len(ids) < n; i++ {
			id := fmt.Sprintf("%s-%d", prefix, i)
			p := part.Partition(&kgo.Record{Key: []byte(envelope.IdempotencyKey("shop", id))}, 3)
			if want < 0 {
				want = p
			}
			if p == want {
				ids = append(ids, id)
			}
		}
		return ids
	}
	newer := time.Date(2025, 1, 1, 0, 0, 10, 0, time.UTC)
	older := newer.Add(-5 * time.Second)
	lastState := func(h *harness, n int) map[string]any {
		recs := h.decoded(h.topics.State, n)
		return recs[len(recs)-1]
	}

	t.Run("a newer event for a sink, then an older one without", func(t *testing.T) {
		sink := &downstream{}
		ds := httptest.NewServer(sink)
		t.Cleanup(ds.Close)
		h := newHarnessWith(t, testenv.Embedded(t), `
sources:
  shop:
    kind: shopify
    secrets_env: [T_SHOP]
    events:
      "orders/updated":
        contract: shopify/order
        entity_key: "shopify:order:{/id}"
        occurred_at: /updated_at
        sink: {url: "`+ds.URL+`", timeout: 2s}
      "orders/create":
        contract: shopify/order
        entity_key: "shopify:order:{/id}"
        occurred_at: /updated_at
`, testTiers, nil)
		ids := samePartition("wh-mix", 2)
		h.send("shop", "orders/updated", ids[0], "2025-01", envelope.ChannelWebhook, shopOrder(61, newer, "paid", true))
		h.send("shop", "orders/create", ids[1], "2025-01", envelope.ChannelWebhook, shopOrder(61, older, "pending", true))
		h.start("a", func(c *Config) { c.Workers = 1 })
		h.waitAll(2)
		if h.total(Processed) != 1 || h.total(Stale) != 1 {
			t.Fatalf("processed %d stale %d; want the older event stale", h.total(Processed), h.total(Stale))
		}
		if st := lastState(h, 1); st["event_id"] != ids[0] {
			t.Fatalf("the state topic ends on %v; want the newer event %s", st["event_id"], ids[0])
		}
	})

	t.Run("a newer event whose delivery fails does not make an older one stale", func(t *testing.T) {
		sink := &downstream{script: []int{503}} // the first call: the newer event's
		h, _ := failureHarness(t, testenv.Embedded(t), sink)
		ids := samePartition("wh-fail", 2)
		h.send("shop", "orders/updated", ids[0], "2025-01", envelope.ChannelWebhook, shopOrder(62, newer, "paid", true))
		h.send("shop", "orders/updated", ids[1], "2025-01", envelope.ChannelWebhook, shopOrder(62, older, "pending", true))
		h.start("a", func(c *Config) { c.Workers = 1 })
		h.waitAll(2)
		if h.total(Stale) != 0 || h.total(Processed) != 2 || h.total(Retried) != 1 {
			t.Fatalf("processed %d stale %d retried %d; want both processed, the newer after a retry", h.total(Processed), h.total(Stale), h.total(Retried))
		}
		if st := lastState(h, 2); st["event_id"] != ids[0] {
			t.Fatalf("the state topic ends on %v; want the newer event %s", st["event_id"], ids[0])
		}
		st, ok, err := storeFor(h).Entity(t.Context(), "shopify:order:62")
		if err != nil || !ok || !st.EventTime.Equal(newer) {
			t.Fatalf("stored time %v (ok %v, err %v), want the newer event's %v", st.EventTime, ok, err, newer)
		}
	})
}

// TestDeliveriesGetTheirOwnTime: a batch that waited for a busy entity
// lock most of its deadline still gives its deliveries time; they used to
// get what was left of the batch deadline, and a healthy sink's event was
// cut short and charged a retry.
func TestDeliveriesGetTheirOwnTime(t *testing.T) {
	ds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(600 * time.Millisecond) // a sink that takes its time: the scenario
	}))
	t.Cleanup(ds.Close)
	h := newHarnessWith(t, testenv.Embedded(t), shopSinkSources(ds.URL, ""), testTiers, nil)
	h.start("a", func(c *Config) { c.BatchDeadline = 2 * time.Second; c.DrainTimeout = 4 * time.Second; c.Workers = 1 })
	// A first event, so that the worker is polling when the second comes.
	h.send("shop", "orders/updated", "wh-warm", "2025-01", envelope.ChannelWebhook, shopOrder(70, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), "paid", true))
	h.waitAll(1)
	// Another worker holds the entity's lock for 1.6s of the 2s deadline.
	st := storeFor(h)
	if _, err := st.ClaimBatch(t.Context(), []string{"lock:shopify:order:71"}, "another-worker"); err != nil {
		t.Fatal(err)
	}
	h.send("shop", "orders/updated", "wh-slowlock", "2025-01", envelope.ChannelWebhook, shopOrder(71, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), "paid", true))
	time.Sleep(1600 * time.Millisecond) // the other worker's batch: the scenario
	if err := st.ReleaseBatch(t.Context(), []string{"lock:shopify:order:71"}, "another-worker"); err != nil {
		t.Fatal(err)
	}
	h.waitAll(2)
	if h.total(Processed) != 2 || h.total(Retried) != 0 {
		t.Fatalf("processed %d retried %d: the delivery was not given its time", h.total(Processed), h.total(Retried))
	}
}

// TestDeadLetterOfALargeEventKeepsItsHistory: a raw record as large as
// ingest writes (it keeps kafka.FailureHeadroom free for the failure
// headers) that failed as often as the history keeps, each error quoting
// an HTML error page, is dead-lettered with its whole history. Bounded
// before JSON escaping (<, >, & written as \u003c…), the history outgrew
// the headroom and fit cut it to the newest entry.
func TestDeadLetterOfALargeEventKeepsItsHistory(t *testing.T) {
	p := &Processor{propagator: propagation.TraceContext{}, d: Deps{Topics: kafka.TopicNames("inlet", kafka.DefaultRetryTiers)}}
	page := "upstream answered 502: " + strings.Repeat("<tr><td>&nbsp;</td></tr>", 60)
	r := &kgo.Record{Topic: "inlet.retry.15m", Key: []byte("shop:evt_1"), Timestamp: time.Now()}
	r.Headers = retry.Set(r.Headers, retry.HeaderCorrelationID, "corr-1")
	r.Headers = retry.Set(r.Headers, retry.HeaderOrigin, "inlet.raw/0/7")
	r.Headers = retry.Set(r.Headers, retry.HeaderAttempt, "4")
	for range 31 {
		r.Headers = retry.AppendError(r.Headers, retry.ErrorEntry{At: time.Now().UTC(), Stage: "handle", Error: page})
	}
	r.Value = bytes.Repeat([]byte{'x'}, kafka.MaxRawRecordBytes-rawSize(r))
	if rawSize(r) != kafka.MaxRawRecordBytes {
		t.Fatalf("setup: raw size %d", rawSize(r))
	}
	it := &item{ctx: context.Background(), rec: r, src: &source.Source{Name: "shop"}, ev: &router.Event{Attempt: 4},
		failure: errors.New(page), stage: "handle", outcome: DeadLetter,
		next: retry.Decision{DeadLetter: true, Reason: "retry budget exhausted"}}
	dl := p.deadLetterRecord(it)
	if n := len(retry.History(dl.Headers)); n != 32 {
		t.Fatalf("dead letter carries %d history entries, want 32 (the errors header was %d bytes before this failure, FailureHeadroom is %d)",
			n, len(retry.Get(r.Headers, retry.HeaderErrors)), kafka.FailureHeadroom)
	}
}

// panicky is a Go handler that panics in Handle for one event and in
// Deliver for another, and passes the rest to the shipped handler.
type panicky struct{ router.Handler }

func (p panicky) Handle(ctx context.Context, ev *router.Event) (*router.Output, error) {
	if ev.Envelope.EventID == "evt_boom" {
		panic("boom in Handle")
	}
	return p.Handler.Handle(ctx, ev)
}

func (p panicky) Deliver(_ context.Context, ev *router.Event, _ *router.Output) error {
	if ev.Envelope.EventID == "evt_sink_boom" {
		panic(errors.New("boom in Deliver"))
	}
	return nil
}

// TestAPanickingHandlerFailsItsEventOnly: a handler that panics fails the
// event it panicked on (a retry, then the dead-letter topic, the panic in
// its history) and the processor goes on with the others. The panic
// crashed the processor, which met the same record on every start.
func TestAPanickingHandlerFailsItsEventOnly(t *testing.T) {
	h := newHarnessWith(t, testenv.Embedded(t), testSources, []time.Duration{time.Second}, nil)
	shipped, _, err := h.router.Lookup("stripe", "payment_intent.succeeded", "2024-06-20")
	if err != nil {
		t.Fatal(err)
	}
	h.router = router.New()
	if err := h.router.Handle(router.Route{Source: "stripe", EventType: "payment_intent.*", Version: "*"}, panicky{shipped}); err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	h.log = bufLog(logs)
	for _, id := range []string{"evt_boom", "evt_ok", "evt_sink_boom"} {
		h.send("stripe", "payment_intent.succeeded", id, "2024-06-20", envelope.ChannelWebhook, paymentIntent(id, "pi_"+id, "succeeded", 1700000000))
	}
	r := h.start("a", nil)
	h.waitAll(3)
	if p, d, rt := h.total(Processed), h.total(DeadLetter), h.total(Retried); p != 1 || d != 2 || rt != 2 {
		t.Fatalf("processed %d dead-lettered %d retried %d; want 1, 2, 2", p, d, rt)
	}
	want := map[string]string{"stripe:evt_boom": "the handler's Handle panicked: boom in Handle", "stripe:evt_sink_boom": "the handler's Deliver panicked: boom in Deliver"}
	for _, rec := range h.env.ReadAll(t, h.topics.DLQ, 2, 300*time.Millisecond, 10*time.Second) {
		hist := retry.History(rec.Headers)
		if len(hist) != 2 || hist[0].Error != want[string(rec.Key)] || hist[1].Error != want[string(rec.Key)] {
			t.Errorf("dead letter %s: history %+v, want two entries %q", rec.Key, hist, want[string(rec.Key)])
		}
	}
	select {
	case err := <-r.done:
		t.Fatalf("the processor stopped: %v", err)
	default:
	}
	// The panic's log line keeps the log contract: stage is the
	// pipeline's, the step in failed_stage (it said stage "Handle").
	lines := linesWith(t, logs, "handler panicked; the event fails and takes its retry tiers")
	if len(lines) != 4 {
		t.Fatalf("%d panic lines, want 4 (two events, two attempts each)", len(lines))
	}
	for _, m := range lines {
		want := map[string]string{"corr-evt_boom": "handle", "corr-evt_sink_boom": "deliver"}[fmt.Sprint(m["correlation_id"])]
		if m["stage"] != "process" || m["failed_stage"] != want || want == "" {
			t.Errorf("panic line: stage %v, failed_stage %v, correlation_id %v; want stage process and failed_stage %q", m["stage"], m["failed_stage"], m["correlation_id"], want)
		}
	}
}

// nothingFor is a Go handler that returns no Output and no error for one
// event (a "skip" the API has no word for) and passes the rest on.
type nothingFor struct{ router.Handler }

func (n nothingFor) Handle(ctx context.Context, ev *router.Event) (*router.Output, error) {
	if ev.Envelope.EventID == "evt_nothing" {
		return nil, nil
	}
	return n.Handler.Handle(ctx, ev)
}

// TestAHandlerReturningNoOutputInvalidatesItsEventOnly: a Go handler that
// returns (nil, nil) sends that event to the invalid topic, saying so, as
// an Output without an entity key or schema does. It dereferenced the nil
// Output outside the handler's guard and crashed the processor, which met
// the same record on every start.
func TestAHandlerReturningNoOutputInvalidatesItsEventOnly(t *testing.T) {
	h := newHarnessWith(t, testenv.Embedded(t), testSources, []time.Duration{time.Second}, nil)
	shipped, _, err := h.router.Lookup("stripe", "payment_intent.succeeded", "2024-06-20")
	if err != nil {
		t.Fatal(err)
	}
	h.router = router.New()
	if err := h.router.Handle(router.Route{Source: "stripe", EventType: "payment_intent.*", Version: "*"}, nothingFor{shipped}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"evt_nothing", "evt_ok"} {
		h.send("stripe", "payment_intent.succeeded", id, "2024-06-20", envelope.ChannelWebhook, paymentIntent(id, "pi_"+id, "succeeded", 1700000000))
	}
	r := h.start("a", nil)
	h.waitAll(2)
	if p, i := h.total(Processed), h.total(Invalid); p != 1 || i != 1 {
		t.Fatalf("processed %d invalid %d; want 1 and 1", p, i)
	}
	inv := h.env.ReadAll(t, h.topics.Invalid, 1, 300*time.Millisecond, 10*time.Second)
	if hist := retry.History(inv[0].Headers); string(inv[0].Key) != "stripe:evt_nothing" || len(hist) != 1 || !strings.Contains(hist[0].Error, "handler returned no output") {
		t.Errorf("invalid record %s: history %+v, want one entry saying the handler returned no output", inv[0].Key, hist)
	}
	select {
	case err := <-r.done:
		t.Fatalf("the processor stopped: %v", err)
	default:
	}
}

// deliverCtx is a Deliverer that keeps the context it was called with.
type deliverCtx struct{ ctx context.Context }

func (d *deliverCtx) Deliver(ctx context.Context, _ *router.Event, _ *router.Output) error {
	d.ctx = ctx
	return nil
}

// TestDeliveryCarriesTheEventsBaggage: a sink got the event's trace
// context but not the sender's baggage, which the processed records
// carry.
func TestDeliveryCarriesTheEventsBaggage(t *testing.T) {
	m, _ := baggage.NewMember("tenant", "acme")
	bag, _ := baggage.New(m)
	p := &Processor{log: slog.New(slog.DiscardHandler)}
	it := &item{ctx: baggage.ContextWithBaggage(context.Background(), bag), span: trace.SpanFromContext(context.Background())}
	var d deliverCtx
	if err := p.deliverOne(context.Background(), make(chan struct{}, 1), &d, it); err != nil {
		t.Fatal(err)
	}
	if got := baggage.FromContext(d.ctx).Member("tenant").Value(); got != "acme" {
		t.Fatalf("baggage tenant %q in the delivery's context, want acme", got)
	}
}

package ingest

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/testenv"
)

func TestIngest(t *testing.T) { ingestSuite(t, testenv.Embedded) }

// TestIntegrationIngest runs the same suite against real Kafka and Redis.
func TestIntegrationIngest(t *testing.T) {
	testenv.Real(t) // skips when not configured
	ingestSuite(t, testenv.Real)
}

func stripeEvent(id string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"object":"event","api_version":"2024-06-20","created":1700000000,"type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","status":"succeeded","amount":1200}}}`, id)
}

func ingestSuite(t *testing.T, newEnv func(testing.TB) *testenv.Env) {
	t.Run("each provider is verified, enveloped and written as received", func(t *testing.T) {
		h := newHarness(t, newEnv(t), nil)
		stripeBody := stripeEvent("evt_1")
		cases := []struct {
			src, eventType, eventID, version string
			body                             []byte
			hdr                              map[string]string
		}{
			{"stripe", "payment_intent.succeeded", "evt_1", "2024-06-20", stripeBody, nil},
			{"gh", "push", "72d3162e-cc78-11e3-81ab-4c9367dc0958", "v1", []byte(`{"ref":"refs/heads/main"}`),
				map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"}},
			{"shop", "orders/updated", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", "2025-01", []byte(`{"id":820982911946154508,"updated_at":"2025-01-10T12:00:00-05:00"}`),
				map[string]string{"X-Shopify-Topic": "orders/updated", "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", "X-Shopify-API-Version": "2025-01"}},
			{"billing", "invoice.paid", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "v1", []byte(`{"type":"invoice.paid","timestamp":"2025-01-01T00:00:00Z","data":{"id":"inv_1"}}`),
				map[string]string{"webhook-id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"}},
			{"internal", "blob", "", "v1", []byte("not json \x00\xff at all"), nil},
			{"open", "thing.happened", "t-1", "v1", []byte(`{"id":"t-1","type":"thing.happened"}`), nil},
		}
		for _, c := range cases {
			a := do(t, h.signed(t, c.src, c.body, c.hdr))
			if a.status != http.StatusAccepted {
				t.Fatalf("%s: status %d (%s)", c.src, a.status, a.raw)
			}
			if a.body.CorrelationID == "" || a.header.Get("X-Correlation-ID") != a.body.CorrelationID || a.body.ID == "" {
				t.Fatalf("%s: answer lacks ids: %s", c.src, a.raw)
			}
		}
		envs := h.rawEnvelopes(t, len(cases))
		if len(envs) != len(cases) {
			t.Fatalf("raw topic has %d envelopes, want %d", len(envs), len(cases))
		}
		bySource := map[string]int{}
		for i, e := range envs {
			bySource[e.Source] = i
		}
		for _, c := range cases {
			e := envs[bySource[c.src]]
			if !bytes.Equal(e.Payload, c.body) {
				t.Errorf("%s: payload changed: %q", c.src, e.Payload)
			}
			if e.EventType != c.eventType || e.SchemaVersion != c.version {
				t.Errorf("%s: type/version = %s/%s, want %s/%s", c.src, e.EventType, e.SchemaVersion, c.eventType, c.version)
			}
			if c.eventID != "" && e.EventID != c.eventID {
				t.Errorf("%s: event id = %s, want %s", c.src, e.EventID, c.eventID)
			}
			if c.eventID == "" && !strings.HasPrefix(e.EventID, "sha256:") {
				t.Errorf("%s: event id without a vendor id = %s, want the body hash", c.src, e.EventID)
			}
			for k := range e.Headers {
				if strings.Contains(strings.ToLower(k), "signature") || strings.Contains(strings.ToLower(k), "hmac") {
					t.Errorf("%s: signature header %s kept in the envelope", c.src, k)
				}
			}
		}
		if e := envs[bySource["stripe"]]; e.OccurredAt == nil || e.OccurredAt.Unix() != 1700000000 {
			t.Errorf("stripe occurred_at = %v, want created", e.OccurredAt)
		}
	})

	t.Run("bad input gets a clear answer and writes nothing", func(t *testing.T) {
		h := newHarness(t, newEnv(t), nil)
		body := stripeEvent("evt_bad")
		unsigned := func(src string, b []byte, hdr map[string]string) *http.Request {
			req, _ := http.NewRequest(http.MethodPost, h.url+"/webhooks/"+src, bytes.NewReader(b))
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			return req
		}
		tampered := h.signed(t, "stripe", body, nil)
		tampered.Body = ioNopCloser(bytes.Replace(body, []byte("1200"), []byte("9999"), 1))
		stale := unsigned("stripe", body, nil)
		_ = h.sources.Sources["stripe"].Provider().Sign(stale.Header, body, time.Now().Add(-10*time.Minute))
		otherSecret := unsigned("stripe", body, map[string]string{"Stripe-Signature": "t=" + fmt.Sprint(time.Now().Unix()) + ",v1=" + strings.Repeat("ab", 32)})
		huge := bytes.Repeat([]byte("a"), 4097)
		cases := []struct {
			name   string
			req    *http.Request
			status int
		}{
			{"unknown source", unsigned("nope", body, nil), 404},
			{"missing signature", unsigned("stripe", body, nil), 401},
			{"wrong signature", otherSecret, 401},
			{"tampered body", tampered, 401},
			{"stale timestamp", stale, 401},
			{"github signature garbage", unsigned("gh", body, map[string]string{"X-Hub-Signature-256": "sha256=zz", "X-GitHub-Event": "push"}), 401},
			{"over the size limit (content-length)", h.signed(t, "stripe", huge, nil), 413},
			{"not JSON", h.signed(t, "stripe", []byte(`{"id":"evt_x",`), nil), 400},
			{"no event type", h.signed(t, "stripe", []byte(`{"id":"evt_x"}`), nil), 400},
			// Invalid UTF-8 in an event type made every /metrics scrape
			// fail; in an id it made two ids one key.
			{"event type not UTF-8", h.signed(t, "stripe", []byte("{\"id\":\"evt_x\",\"type\":\"bad\xff\"}"), nil), 400},
			{"event id not UTF-8", h.signed(t, "stripe", []byte("{\"id\":\"evt_\xfe\",\"type\":\"x\"}"), nil), 400},
			{"event type header not UTF-8", h.signed(t, "gh", []byte(`{"zen":"x"}`), map[string]string{"X-GitHub-Event": "push\xff", "X-GitHub-Delivery": "d-utf8"}), 400},
			{"wrong method", func() *http.Request { r, _ := http.NewRequest(http.MethodGet, h.url+"/webhooks/stripe", nil); return r }(), 405},
		}
		for _, c := range cases {
			a := do(t, c.req)
			if a.status != c.status {
				t.Errorf("%s: status %d, want %d (%s)", c.name, a.status, c.status, a.raw)
			}
			if c.status == 401 && !strings.Contains(string(a.raw), "signature verification failed") {
				t.Errorf("%s: 401 body %s", c.name, a.raw)
			}
		}
		// Chunked (no Content-Length) over the limit is cut while reading.
		req := h.signed(t, "stripe", huge, nil)
		req.ContentLength = -1
		req.Body = ioNopCloser(huge)
		if a := do(t, req); a.status != 413 {
			t.Errorf("chunked oversize: status %d, want 413", a.status)
		}
		// A body cut short of its Content-Length is malformed, not accepted
		// truncated.
		if status := truncatedBody(t, h.url, "/webhooks/stripe", 2000, []byte(`{"id":"evt_cut","type":"x"}`)); status != 400 {
			t.Errorf("body shorter than Content-Length: status %d, want 400", status)
		}
		// Exactly the limit is accepted.
		exact := make([]byte, 4096)
		copy(exact, `{"id":"evt_exact","type":"x","pad":"`)
		for i := len(`{"id":"evt_exact","type":"x","pad":"`); i < 4094; i++ {
			exact[i] = 'p'
		}
		copy(exact[4094:], `"}`)
		if a := do(t, h.signed(t, "stripe", exact, nil)); a.status != 202 {
			t.Fatalf("body of exactly the limit: status %d (%s)", a.status, a.raw)
		}
		envs := h.rawEnvelopes(t, 1)
		if len(envs) != 1 || envs[0].EventID != "evt_exact" {
			t.Fatalf("raw topic holds %d envelopes, want only evt_exact", len(envs))
		}
	})

	t.Run("a kept header over the bound is left out: a body at the limit still fits a record", func(t *testing.T) {
		// The body limit leaves 64 KiB for the envelope around the body.
		// Kept headers came on top unbounded: with -max-header-bytes
		// raised, a 100 KiB one made the record too large (413). They are
		// bounded now (maxKeptHeaderBytes), so the event fits and the
		// header is left out; TestRecordSizeCountsTraceHeaders covers the
		// 413 that remains for what does not fit.
		h := newHarness(t, newEnv(t), func(c *Config) { c.MaxHeaderBytes = 256 << 10 })
		const limit = kafka.MaxBodyBytes // the keep source's max_body
		body := make([]byte, limit)
		copy(body, `{"id":"big-1","type":"blob.sent","pad":"`)
		for i := len(`{"id":"big-1","type":"blob.sent","pad":"`); i < limit-2; i++ {
			body[i] = 'p'
		}
		copy(body[limit-2:], `"}`)
		req, _ := http.NewRequest(http.MethodPost, h.url+"/webhooks/keep", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Blob", strings.Repeat("b", 100<<10))
		if a := do(t, req); a.status != 202 {
			t.Fatalf("body at the limit with a 100 KiB kept header: status %d (%.200s), want 202", a.status, a.raw)
		}
		envs := h.rawEnvelopes(t, 1)
		if len(envs) != 1 || envs[0].EventID != "big-1" || len(envs[0].Payload) != limit || envs[0].Headers["X-Blob"] != "" {
			t.Fatalf("raw topic holds %d envelopes, want big-1 with its whole body and without X-Blob", len(envs))
		}
	})

	t.Run("duplicate deliveries are all acknowledged and share one key", func(t *testing.T) {
		h := newHarness(t, newEnv(t), nil)
		body := stripeEvent("evt_dup")
		for range 3 {
			if a := do(t, h.signed(t, "stripe", body, nil)); a.status != 202 {
				t.Fatalf("status %d", a.status)
			}
		}
		envs := h.rawEnvelopes(t, 3)
		for _, e := range envs {
			if e.IdempotencyKey != "stripe:evt_dup" {
				t.Fatalf("key %s", e.IdempotencyKey)
			}
		}
	})

	t.Run("the producers share the writes, one key and one partition to each", func(t *testing.T) {
		// As many producers as the test topics have partitions: each
		// producer then writes exactly one partition.
		const producers = 3
		h := newHarness(t, newEnv(t), func(c *Config) { c.Producers = producers })
		const events, deliveries = 60, 3
		var wg sync.WaitGroup
		for i := range events {
			for range deliveries {
				wg.Go(func() {
					if a := do(t, h.signed(t, "stripe", stripeEvent(fmt.Sprintf("evt_p%d", i)), nil)); a.status != 202 {
						t.Errorf("evt_p%d: status %d", i, a.status)
					}
				})
			}
		}
		wg.Wait()
		recs := h.env.ReadAll(t, h.topics.Raw, events*deliveries, 300*time.Millisecond, 20*time.Second)
		if len(recs) != events*deliveries {
			t.Fatalf("%d records on the raw topic, want %d", len(recs), events*deliveries)
		}
		keyProducer := map[string]int64{}
		producerPartition := map[int64]int32{}
		for _, r := range recs {
			if id, ok := keyProducer[string(r.Key)]; ok && id != r.ProducerID {
				t.Errorf("key %s written by producers %d and %d: its deliveries may be reordered", r.Key, id, r.ProducerID)
			}
			keyProducer[string(r.Key)] = r.ProducerID
			if p, ok := producerPartition[r.ProducerID]; ok && p != r.Partition {
				t.Errorf("producer %d wrote partitions %d and %d: its batches are split", r.ProducerID, p, r.Partition)
			}
			producerPartition[r.ProducerID] = r.Partition
		}
		if len(producerPartition) != producers {
			t.Errorf("records from %d producers, want all %d to take a share", len(producerPartition), producers)
		}
	})

	t.Run("correlation id from header or traceparent travels into headers", func(t *testing.T) {
		h := newHarness(t, newEnv(t), nil)
		tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		a1 := do(t, h.signed(t, "stripe", stripeEvent("evt_c1"), map[string]string{"X-Correlation-ID": "order-42"}))
		a2 := do(t, h.signed(t, "stripe", stripeEvent("evt_c2"), map[string]string{"Traceparent": tp}))
		a3 := do(t, h.signed(t, "stripe", stripeEvent("evt_c3"), map[string]string{"X-Correlation-ID": "bad id with spaces"}))
		if a1.body.CorrelationID != "order-42" || a2.body.CorrelationID != "4bf92f3577b34da6a3ce929d0e0e4736" || len(a3.body.CorrelationID) != 32 {
			t.Fatalf("correlation ids: %q %q %q", a1.body.CorrelationID, a2.body.CorrelationID, a3.body.CorrelationID)
		}
		recs := h.env.ReadAll(t, h.topics.Raw, 3, 300*time.Millisecond, 10*time.Second)
		seen := map[string]bool{}
		for _, r := range recs {
			seen[header(r, HeaderCorrelationID)] = true
			if header(r, HeaderCorrelationID) == a2.body.CorrelationID && header(r, HeaderTraceparent) != tp {
				t.Errorf("traceparent header = %q", header(r, HeaderTraceparent))
			}
		}
		for _, a := range []answer{a1, a2, a3} {
			if !seen[a.body.CorrelationID] {
				t.Errorf("correlation id %s not on any record", a.body.CorrelationID)
			}
		}
	})

	t.Run("every 2xx under concurrency is on the log exactly once", func(t *testing.T) {
		h := newHarness(t, newEnv(t), nil)
		const senders, each = 32, 25
		var mu sync.Mutex
		accepted := map[string]int{}
		var wg sync.WaitGroup
		for s := range senders {
			wg.Go(func() {
				for i := range each {
					id := fmt.Sprintf("evt_%d_%d", s, i)
					a := do(t, h.signed(t, "stripe", stripeEvent(id), nil))
					if a.status == 202 {
						mu.Lock()
						accepted[id]++
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		if len(accepted) != senders*each {
			t.Fatalf("%d of %d accepted", len(accepted), senders*each)
		}
		onLog := map[string]int{}
		for _, e := range h.rawEnvelopes(t, len(accepted)) {
			onLog[e.EventID]++
		}
		for id, n := range accepted {
			if onLog[id] != n {
				t.Errorf("%s: answered 2xx %d times, on the log %d times", id, n, onLog[id])
			}
		}
		if len(onLog) != len(accepted) {
			t.Errorf("log has %d distinct events, accepted %d", len(onLog), len(accepted))
		}
	})
}

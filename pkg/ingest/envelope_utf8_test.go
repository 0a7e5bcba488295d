package ingest

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/testenv"
)

// Header values net/http lets through (any byte from 0x80 up) but that are
// not UTF-8 reach the envelope's Avro strings as valid UTF-8, each invalid
// sequence replaced with U+FFFD: Avro consumers (fastavro) refuse the
// record otherwise, and the raw topic keeps it forever.
func TestEnvelopeHeadersValidUTF8(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t), nil)
	// Webhooks (a kind none and a signed Shopify delivery) and a batch.
	open, _ := http.NewRequest(http.MethodPost, h.url+"/webhooks/open", bytes.NewReader([]byte(`{"id":"u1","type":"t"}`)))
	open.Header.Set("Content-Type", "application/json; charset=\xff")
	open.Header.Set("User-Agent", "agent-\xe9")
	shop := h.signed(t, "shop", []byte(`{"id":1}`), map[string]string{
		"X-Shopify-Topic": "orders/updated", "X-Shopify-Webhook-Id": "u2", "X-Shopify-API-Version": "2025-01",
		"X-Shopify-Shop-Domain": "caf\xe9.myshopify.com",
	})
	batch, _ := http.NewRequest(http.MethodPost, h.url+"/events/billing", strings.NewReader(`{"id":"u3","type":"invoice.paid","data":{}}`))
	batch.Header.Set("Authorization", "Bearer batch-token-1")
	batch.Header.Set("User-Agent", "batcher-\xff\xfe")
	for _, req := range []*http.Request{open, shop, batch} {
		if a := do(t, req); a.status/100 != 2 {
			t.Fatalf("%s: status %d %s", req.URL.Path, a.status, a.raw)
		}
	}
	want := map[string]map[string]string{
		"u1": {"User-Agent": "agent-\uFFFD", "Content-Type": "application/json; charset=\uFFFD"},
		"u2": {"X-Shopify-Shop-Domain": "caf\uFFFD.myshopify.com"},
		"u3": {"User-Agent": "batcher-\uFFFD"},
	}
	envs := h.rawEnvelopes(t, 3)
	for _, e := range envs {
		if e.EventID == "u1" && e.ContentType != "application/json; charset=\uFFFD" {
			t.Errorf("u1: content_type %q", e.ContentType)
		}
		for k, v := range want[e.EventID] {
			if e.Headers[k] != v {
				t.Errorf("%s: header %s = %q, want %q", e.EventID, k, e.Headers[k], v)
			}
		}
		for name, v := range envelopeStrings(e) {
			if !utf8.ValidString(v) {
				t.Errorf("%s: %s = %q is not UTF-8 (an Avro string)", e.EventID, name, v)
			}
		}
	}
	if len(envs) != 3 {
		t.Fatalf("%d envelopes, want 3", len(envs))
	}
}

// envelopeStrings are the envelope's string fields, headers included.
func envelopeStrings(e *envelope.Envelope) map[string]string {
	m := map[string]string{
		"id": e.ID, "source": e.Source, "event_type": e.EventType, "event_id": e.EventID,
		"idempotency_key": e.IdempotencyKey, "schema_version": e.SchemaVersion,
		"correlation_id": e.CorrelationID, "channel": e.Channel, "content_type": e.ContentType,
	}
	for k, v := range e.Headers {
		m["header "+k] = v
		m["header name "+k] = k
	}
	return m
}

package ingest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/pkg/telemetry"
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
	batch.Header.Set("Authorization", "Bearer batch-token-1-0123456789")
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

// TestUnpairedSurrogateMetadataIsRefused: an event id (or type) holding a
// \u escape of an unpaired UTF-16 surrogate reads as U+FFFD, so
// "ord-\ud800" and "ord-\udbff" were written under one key and one event
// was lost to compaction and dedup. A webhook is answered 400, a batch
// line rejected naming the field; the escapes in data alone are fine.
func TestUnpairedSurrogateMetadataIsRefused(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t), nil)
	body := strings.Join([]string{
		`{"id":"ord-\ud800","type":"invoice.paid","data":{"amount":1}}`,
		`{"id":"ord-\udbff","type":"invoice.paid","data":{"amount":2}}`,
		`{"id":"ord-3","type":"invoice.\udc00","data":{}}`,
		`{"id":"ord-4","type":"invoice.paid","data":{"note":"\ud800"}}`,
	}, "\n")
	status, br, _ := postBatch(t, h, "/events/billing", "Bearer batch-token-1-0123456789", []byte(body), "")
	if status != http.StatusMultiStatus || br.Accepted != 1 || br.Rejected != 3 {
		t.Fatalf("batch: status %d %+v; want 207, ord-4 accepted and 3 rejected", status, br)
	}
	for i, field := range []string{"id", "id", "type"} {
		if r := br.Results[i]; r.Status != LineRejected || !strings.HasPrefix(r.Error, field+": ") || !strings.Contains(r.Error, "surrogate") {
			t.Errorf("line %d: %+v; want rejected naming %s and the surrogate", r.Line, r, field)
		}
	}
	for _, b := range []string{`{"id":"w-\udc00","type":"x"}`, `{"id":"w-\udfff","type":"x"}`} {
		req, _ := http.NewRequest(http.MethodPost, h.url+"/webhooks/open", strings.NewReader(b))
		if a := do(t, req); a.status != http.StatusBadRequest || !strings.Contains(a.body.Error, "event_id") || !strings.Contains(a.body.Error, "surrogate") {
			t.Errorf("webhook %s: status %d %s; want 400 naming event_id and the surrogate", b, a.status, a.raw)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, h.url+"/webhooks/open", strings.NewReader(`{"id":"w-1","type":"x","note":"\udfff"}`))
	if a := do(t, req); a.status != http.StatusAccepted {
		t.Errorf("webhook with the escape in data only: status %d %s, want 202", a.status, a.raw)
	}
	envs := h.rawEnvelopes(t, 2)
	got := map[string]bool{}
	for _, e := range envs {
		got[e.EventID] = true
	}
	if len(envs) != 2 || !got["ord-4"] || !got["w-1"] {
		t.Fatalf("raw topic holds %v, want ord-4 and w-1 only", got)
	}
}

// TestKeptHeadersAreBounded: a batch copies the request's kept headers into
// every line's envelope, so a 60 KiB User-Agent on 5 lines wrote 300 KB to
// the raw topic (600 MiB for 10,000 lines), kept forever. An oversized
// value is left out; the correlation and trace headers stay.
func TestKeptHeadersAreBounded(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t), nil)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	set := func(req *http.Request) {
		req.Header.Set("User-Agent", strings.Repeat("u", 60<<10))
		req.Header.Set("X-Correlation-ID", "corr-bounded")
		req.Header.Set("Traceparent", tp)
		req.Header.Set("Tracestate", "k="+strings.Repeat("v", 250))
		req.Header.Set("Content-Type", "application/x-ndjson")
	}
	recs := batchAndWebhook(t, h, "amp", "keep", set)
	for _, r := range recs {
		if len(r.Value) > maxKeptHeaderBytes+1<<10 {
			t.Errorf("raw record of %d bytes for a line of 30: the kept headers are not bounded", len(r.Value))
		}
		e, err := h.codec.Decode(context.Background(), r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := e.Headers["User-Agent"]; ok {
			t.Errorf("%s: the 60 KiB User-Agent was kept", e.EventID)
		}
		for k, v := range map[string]string{"X-Correlation-Id": "corr-bounded", "Traceparent": tp, "Tracestate": "k=" + strings.Repeat("v", 250)} {
			if e.Headers[k] != v {
				t.Errorf("%s: %s = %q, want it kept", e.EventID, k, e.Headers[k])
			}
		}
	}
}

// TestKeptHeadersTotalBound: past the bound on all kept names and values
// together, later headers are left out (and named for the log), never the
// correlation and trace headers, which come first.
func TestKeptHeadersTotalBound(t *testing.T) {
	f, err := source.Parse([]byte("sources:\n  s:\n    kind: none\n    keep_headers: [X-A, X-B, X-C, X-D]\n"))
	if err != nil {
		t.Fatal(err)
	}
	src, _ := f.Get("s")
	h := http.Header{}
	for _, k := range []string{"X-A", "X-B", "X-C"} {
		h.Set(k, strings.Repeat("v", 3<<10))
	}
	h.Set("X-D", "small")
	h.Set("User-Agent", strings.Repeat("u", maxKeptHeaderValue+1))
	h.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	h.Set("X-Correlation-Id", "c1")
	h.Set("Content-Type", "application/json")
	kept, ct, omitted := keptHeaders(src, h)
	total := 0
	for k, v := range kept {
		total += len(k) + len(v)
	}
	if total > maxKeptHeaderBytes {
		t.Errorf("kept %d bytes, bound %d", total, maxKeptHeaderBytes)
	}
	for _, k := range []string{"Traceparent", "X-Correlation-Id", "Content-Type", "X-A", "X-B", "X-D"} {
		if kept[k] != h.Get(k) {
			t.Errorf("%s not kept", k)
		}
	}
	if ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	if want := []string{"User-Agent", "X-C"}; !slices.Equal(omitted, want) {
		t.Errorf("omitted %v, want %v", omitted, want)
	}
}

// TestKeptHeadersBoundAfterRepair: a content type bounded before its
// invalid bytes were replaced (each by three) could be stored at 8 KiB;
// an X-Correlation-Id ingest would not take as the correlation id is not
// kept, so it cannot crowd out a tracestate.
func TestKeptHeadersBoundAfterRepair(t *testing.T) {
	f, err := source.Parse([]byte("sources:\n  s:\n    kind: none\n"))
	if err != nil {
		t.Fatal(err)
	}
	src, _ := f.Get("s")
	h := http.Header{}
	h.Set("Content-Type", strings.Repeat("\xffa", maxKeptHeaderValue/2))
	h.Set("X-Correlation-Id", strings.Repeat("c", maxKeptHeaderValue))
	h.Set("Tracestate", "vendor="+strings.Repeat("t", maxKeptHeaderValue-16))
	kept, ct, omitted := keptHeaders(src, h)
	if len(ct) > maxKeptHeaderValue {
		t.Errorf("content type of %d bytes stored, bound %d", len(ct), maxKeptHeaderValue)
	}
	if _, ok := kept["X-Correlation-Id"]; ok {
		t.Error("a correlation id ingest does not take was kept")
	}
	if kept["Tracestate"] != h.Get("Tracestate") {
		t.Error("the tracestate was crowded out")
	}
	if !slices.Contains(omitted, "Content-Type") || !slices.Contains(omitted, "X-Correlation-Id") {
		t.Errorf("omitted %v, want Content-Type and X-Correlation-Id named", omitted)
	}
}

// TestTraceHeadersBoundedInRecords: the trace context the propagators
// write into each record's headers is bounded as the envelope's kept
// headers are (a value over 4 KiB left out, 8 KiB for all of them). A batch
// copied the sender's tracestate (W3C allows ~16 KiB) and baggage (8 KiB)
// into every line's record, on a raw topic kept forever, even when its
// envelopes left the tracestate out for its size. traceparent, first, is
// always kept, so the trace goes on.
func TestTraceHeadersBoundedInRecords(t *testing.T) {
	tel := &telemetry.Telemetry{
		Tracer:     tracenoop.NewTracerProvider().Tracer(""),
		Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}
	h := newHarness(t, testenv.Embedded(t), nil, tel)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	// 32 members of ~250 bytes: a valid W3C tracestate of ~8 KiB.
	var members []string
	for i := range 32 {
		members = append(members, fmt.Sprintf("k%d=%s", i, strings.Repeat("v", 245)))
	}
	tracestate := strings.Join(members, ",")
	if _, err := trace.ParseTraceState(tracestate); err != nil {
		t.Fatal(err)
	}
	// Three members of 2.5 KiB: valid baggage of ~7.5 KiB.
	var bag []string
	for i := range 3 {
		bag = append(bag, fmt.Sprintf("b%d=%s", i, strings.Repeat("x", 2500)))
	}
	baggageHdr := strings.Join(bag, ",")
	if b, err := baggage.Parse(baggageHdr); err != nil || b.Len() != 3 {
		t.Fatalf("baggage: %d members, %v", b.Len(), err)
	}
	set := func(req *http.Request) {
		req.Header.Set("Traceparent", tp)
		req.Header.Set("Tracestate", tracestate)
		req.Header.Set("Baggage", baggageHdr)
	}
	recs := batchAndWebhook(t, h, "tr", "open", set)
	ours := map[string]bool{HeaderCorrelationID: true, HeaderSource: true, HeaderEventType: true}
	for _, r := range recs {
		total := 0
		for _, rh := range r.Headers {
			if ours[rh.Key] {
				continue
			}
			if len(rh.Value) > maxKeptHeaderValue {
				t.Errorf("%s: record header %s of %d bytes, bound %d", r.Key, rh.Key, len(rh.Value), maxKeptHeaderValue)
			}
			total += len(rh.Key) + len(rh.Value)
		}
		if total > maxKeptHeaderBytes {
			t.Errorf("%s: %d bytes of trace headers, bound %d", r.Key, total, maxKeptHeaderBytes)
		}
		if got := header(r, "traceparent"); got[:35] != tp[:35] {
			t.Errorf("%s: traceparent %q, want the sender's trace %q", r.Key, got, tp)
		}
	}
}

// TestBoundTraceHeadersTotal: past the bound on all trace headers together
// the later ones are left out and named, never our own headers before them
// nor the traceparent written first.
func TestBoundTraceHeadersTotal(t *testing.T) {
	hs := []kgo.RecordHeader{
		{Key: HeaderCorrelationID, Value: []byte(strings.Repeat("c", 100))},
		{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")},
		{Key: "tracestate", Value: []byte(strings.Repeat("s", 3<<10))},
		{Key: "baggage", Value: []byte(strings.Repeat("b", maxKeptHeaderValue+1))},
		{Key: "x-custom", Value: []byte(strings.Repeat("x", 3<<10))},
		{Key: "x-more", Value: []byte(strings.Repeat("m", 3<<10))},
	}
	kept, omitted := boundTraceHeaders(slices.Clone(hs), 1)
	var names []string
	for _, h := range kept {
		names = append(names, h.Key)
	}
	if !slices.Equal(names, []string{HeaderCorrelationID, "traceparent", "tracestate", "x-custom"}) || !slices.Equal(omitted, []string{"baggage", "x-more"}) {
		t.Fatalf("kept %v, omitted %v", names, omitted)
	}
	if _, omitted := boundTraceHeaders(slices.Clone(hs[:3]), 1); omitted != nil {
		t.Fatalf("within the bounds: omitted %v", omitted)
	}
}

// batchAndWebhook sends a batch of five lines to billing and one webhook
// to webhookSource, each request with set's headers, ids starting with
// prefix, and returns the six raw records.
func batchAndWebhook(t *testing.T, h *harness, prefix, webhookSource string, set func(*http.Request)) []*kgo.Record {
	t.Helper()
	var lines []string
	for i := 1; i <= 5; i++ {
		lines = append(lines, fmt.Sprintf(`{"id":"%s%d","type":"t","data":1}`, prefix, i))
	}
	req, _ := http.NewRequest(http.MethodPost, h.url+"/events/billing", strings.NewReader(strings.Join(lines, "\n")))
	req.Header.Set("Authorization", "Bearer batch-token-1-0123456789")
	set(req)
	if a := do(t, req); a.status != http.StatusOK {
		t.Fatalf("batch: status %d %.300s", a.status, a.raw)
	}
	req, _ = http.NewRequest(http.MethodPost, h.url+"/webhooks/"+webhookSource, strings.NewReader(fmt.Sprintf(`{"id":"%s6","type":"t"}`, prefix)))
	set(req)
	if a := do(t, req); a.status != http.StatusAccepted {
		t.Fatalf("webhook: status %d %s", a.status, a.raw)
	}
	recs := h.env.ReadAll(t, h.topics.Raw, 6, 500*time.Millisecond, 20*time.Second)
	if len(recs) != 6 {
		t.Fatalf("%d raw records, want 6", len(recs))
	}
	return recs
}

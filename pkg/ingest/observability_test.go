package ingest

import (
	"bytes"
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/inletdev/inlet/pkg/telemetry"
	"github.com/inletdev/inlet/pkg/telemetry/telemetrytest"
	"github.com/inletdev/inlet/pkg/testenv"
)

func TestIngestMetricsAndTraces(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	spans := tracetest.NewSpanRecorder()
	tel, err := telemetry.New(context.Background(), "test", telemetry.WithReader(reader), telemetry.WithSpanProcessor(spans))
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, testenv.Embedded(t), nil, tel)
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	do(t, h.signed(t, "stripe", stripeEvent("evt_ok"), map[string]string{"Traceparent": tp}))
	bad := h.signed(t, "stripe", stripeEvent("evt_bad"), nil)
	bad.Header.Set("Stripe-Signature", "t=1,v1=00")
	do(t, bad)
	do(t, h.signed(t, "stripe", bytes.Repeat([]byte("x"), 5000), nil))
	do(t, h.signed(t, "stripe", []byte(`{"oops`), nil))
	req, _ := http.NewRequest(http.MethodPost, h.url+"/webhooks/nope", strings.NewReader("{}"))
	do(t, req)

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	latencies := uint64(0)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					var parts []string
					for _, k := range []string{"source", "event_type", "outcome", "reason"} {
						v, _ := dp.Attributes.Value(attribute.Key(k))
						parts = append(parts, v.AsString())
					}
					got[strings.Join(parts, "|")] += dp.Value
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					latencies += dp.Count
				}
			}
		}
	}
	want := map[string]int64{
		"stripe|payment_intent.succeeded|accepted|": 1,
		"stripe||rejected|signature":                1,
		"stripe||rejected|size":                     1,
		"stripe||rejected|malformed":                1,
		"unknown||rejected|unknown_source":          1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("series %v", got)
	}
	if latencies != 5 {
		t.Errorf("%d latency observations, want 5", latencies)
	}

	// The raw record carries the ingest span, child of the sender's.
	recs := h.env.ReadAll(t, h.topics.Raw, 1, 300*time.Millisecond, 10*time.Second)
	raw := header(recs[0], HeaderTraceparent)
	var ingestSpan string
	for _, s := range spans.Ended() {
		if s.Name() == "ingest.webhook" && s.SpanContext().TraceID().String() == "4bf92f3577b34da6a3ce929d0e0e4736" {
			ingestSpan = s.SpanContext().SpanID().String()
		}
	}
	if ingestSpan == "" || raw != "00-4bf92f3577b34da6a3ce929d0e0e4736-"+ingestSpan+"-01" {
		t.Fatalf("raw traceparent %q, ingest span %q", raw, ingestSpan)
	}
}

// TestBatchMetrics: every batch line is counted, those the reader refuses
// (too long) too, and a batch request's latency is recorded like a
// webhook's.
func TestBatchMetrics(t *testing.T) {
	reader, tel := newMetered(t)
	h := newHarness(t, testenv.Embedded(t), nil, tel)
	long := `{"id":"big","type":"x","data":"` + strings.Repeat("x", 2<<20) + `"}` // over billing's 1 MiB max_body
	body := strings.Join([]string{
		`{"id":"m1","type":"invoice.paid","data":{"id":"inv_m1"}}`,
		long,
		`{"id":"m2",`,
	}, "\n")
	if status, br, _ := postBatch(t, h, "/events/billing", "Bearer batch-token-1-0123456789", []byte(body), ""); status != http.StatusMultiStatus || br.Accepted != 1 || br.Rejected != 2 {
		t.Fatalf("status %d %+v", status, br)
	}
	got := telemetrytest.Int64s(t, reader, "inlet.ingest.requests", "source", "outcome", "reason")
	want := map[string]int64{"billing|accepted|": 1, "billing|rejected|size": 1, "billing|rejected|malformed": 1}
	if !maps.Equal(got, want) {
		t.Fatalf("requests %v, want %v", got, want)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var batches uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if d, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == "inlet.ingest.request.duration" {
				for _, dp := range d.DataPoints {
					if v, _ := dp.Attributes.Value("code"); v.AsString() == "2xx" {
						batches += dp.Count
					}
				}
			}
		}
	}
	if batches != 1 {
		t.Fatalf("%d 2xx latency observations, want 1 (the batch)", batches)
	}
}

// TestDrainingIsInTheLatencyHistogram: a request refused while draining is
// counted, and observed in the latency histogram as a 5xx, which the
// dashboard's 5xx rate reads; it was only counted.
func TestDrainingIsInTheLatencyHistogram(t *testing.T) {
	reader, tel := newMetered(t)
	h := newHarness(t, testenv.Embedded(t), nil, tel)
	h.srv.draining.Store(true)
	defer h.srv.draining.Store(false) // the harness's own Shutdown drains for real
	for _, path := range []string{"/webhooks/stripe", "/events/billing"} {
		rec := httptest.NewRecorder()
		h.srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader(`{}`)))
		if rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s while draining: %d", path, rec.Code)
		}
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if d, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == "inlet.ingest.request.duration" {
				for _, dp := range d.DataPoints {
					src, _ := dp.Attributes.Value("source")
					code, _ := dp.Attributes.Value("code")
					got[src.AsString()+"|"+code.AsString()] += dp.Count
				}
			}
		}
	}
	if want := map[string]uint64{"stripe|5xx": 1, "billing|5xx": 1}; !maps.Equal(got, want) {
		t.Fatalf("latency observations %v, want %v", got, want)
	}
}

// TestDrainingBatchIsCountedUnderItsSource: a batch refused while draining
// is counted under the source it names however it names it (path,
// ?source=, X-Inlet-Source); the two latter were counted "unknown".
func TestDrainingBatchIsCountedUnderItsSource(t *testing.T) {
	reader, tel := newMetered(t)
	h := newHarness(t, testenv.Embedded(t), nil, tel)
	h.srv.draining.Store(true)
	defer h.srv.draining.Store(false)
	for _, c := range []struct{ path, header string }{{"/events/billing", ""}, {"/events?source=billing", ""}, {"/events", "billing"}} {
		req := httptest.NewRequest(http.MethodPost, c.path, strings.NewReader(`{}`))
		if c.header != "" {
			req.Header.Set("X-Inlet-Source", c.header)
		}
		rec := httptest.NewRecorder()
		h.srv.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s while draining: %d", c.path, rec.Code)
		}
	}
	got := telemetrytest.Int64s(t, reader, "inlet.ingest.requests", "source", "reason")
	if want := map[string]int64{"billing|draining": 3}; !maps.Equal(got, want) {
		t.Fatalf("requests while draining %v, want %v", got, want)
	}
}

// TestWebhookSpanNamesConfiguredSource: a webhook span's inlet.source is a
// configured source or "unknown", as the metrics' label is: it held the
// invented path, kilobytes of it, on every span of a probe.
func TestWebhookSpanNamesConfiguredSource(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tel, err := telemetry.New(context.Background(), "test", telemetry.WithSpanProcessor(spans))
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, testenv.Embedded(t), nil, tel)
	req, _ := http.NewRequest(http.MethodPost, h.url+"/webhooks/invented-"+strings.Repeat("x", 8<<10), strings.NewReader("{}"))
	if a := do(t, req); a.status != http.StatusNotFound {
		t.Fatalf("status %d %s, want 404", a.status, a.raw)
	}
	found := false
	for _, s := range spans.Ended() {
		for _, kv := range s.Attributes() {
			if kv.Key == "inlet.source" {
				found = true
				if v := kv.Value.AsString(); v != "unknown" {
					t.Errorf("span %s: inlet.source is %d bytes, want %q", s.Name(), len(v), "unknown")
				}
			}
		}
	}
	if !found {
		t.Fatal("no span with inlet.source")
	}
}

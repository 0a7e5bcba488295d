package ingest

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/inletdev/inlet/pkg/telemetry"
	"github.com/inletdev/inlet/pkg/testenv"
)

// headerMaps are header sets as net/http builds them and as a caller of the
// handler might: canonical keys, keys left as sent, repeated values, empty
// value lists, nil.
var headerMaps = []http.Header{
	nil,
	{},
	{"X-Correlation-Id": {"a", "b"}, "Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, "Tracestate": {"k=v"},
		"Baggage": {"a=1", "b=2"}, "Content-Type": {"application/json"}, "B3": {"x"}, "X-B3-Traceid": {"y"}, "Uberctx-K": {"z"}},
	{"x-correlation-id": {"lower"}, "traceparent": {"lower"}, "baggage": {"lower"}, "content-type": {"lower"}, "X-CORRELATION-ID": {"upper"}},
	{"X-Correlation-Id": {}, "Traceparent": nil, "Content-Type": {""}},
	{"bad key": {"v"}, "X-Custom-Trace": {"c"}},
}

func TestFirstValueIsHeaderGet(t *testing.T) {
	for _, k := range []string{headerCorrelationID, headerTraceparent, headerContentType, headerContentLength} {
		if c := textproto.CanonicalMIMEHeaderKey(k); c != k {
			t.Fatalf("%q is not canonical (%q)", k, c)
		}
	}
	for i, h := range headerMaps {
		for _, k := range []string{headerCorrelationID, headerTraceparent, headerContentType, "B3", "X-Custom-Trace"} {
			if got, want := firstValue(h, k), h.Get(k); got != want {
				t.Errorf("map %d, %s: firstValue %q, Header.Get %q", i, k, got, want)
			}
		}
	}
	t.Run("correlation id only from the canonical key", func(t *testing.T) {
		h := http.Header{"x-correlation-id": {"lower"}}
		if got := correlationID(h); got == "lower" || len(got) != 32 {
			t.Fatalf("correlationID read a non-canonical key: %q", got)
		}
		h = http.Header{}
		h.Set("X-CORRELATION-ID", "upper")
		if got := correlationID(h); got != "upper" {
			t.Fatalf("correlationID = %q, want the value set as X-CORRELATION-ID", got)
		}
	})
	t.Run("ids a URL path cleans away are replaced", func(t *testing.T) {
		// The history is asked for by the id as a path segment: an event
		// sent with ".", ".." or "/" could not be traced.
		for _, v := range []string{".", "..", "/"} {
			h := http.Header{}
			h.Set(headerCorrelationID, v)
			if got := correlationID(h); got == v || len(got) != 32 {
				t.Errorf("X-Correlation-ID %q kept as %q, want a generated id", v, got)
			}
		}
		for _, v := range []string{"...", "//", "/x", "x/.."} {
			h := http.Header{}
			h.Set(headerCorrelationID, v)
			if got := correlationID(h); got != v {
				t.Errorf("X-Correlation-ID %s replaced by %q; only ., .. and / are", v, got)
			}
		}
	})
}

// TestHeaderCarrier: whatever key a propagator asks for, headerCarrier
// answers as propagation.HeaderCarrier does.
func TestHeaderCarrier(t *testing.T) {
	keys := []string{"traceparent", "tracestate", "baggage", "Traceparent", "TRACEPARENT", "b3", "x-b3-traceid",
		"X-B3-TraceId", "uber-trace-id", "uberctx-k", "x-custom-trace", "bad key", ""}
	for _, k := range []string{"traceparent", "tracestate", "baggage"} {
		if got, want := carrierKey(k), textproto.CanonicalMIMEHeaderKey(k); got != want {
			t.Fatalf("carrierKey(%q) = %q, want %q", k, got, want)
		}
	}
	for i, h := range headerMaps {
		fast, ref := headerCarrier(h), propagation.HeaderCarrier(h)
		for _, k := range keys {
			if got, want := fast.Get(k), ref.Get(k); got != want {
				t.Errorf("map %d, Get(%q) = %q, HeaderCarrier %q", i, k, got, want)
			}
			if got, want := fast.Values(k), ref.Values(k); !slices.Equal(got, want) {
				t.Errorf("map %d, Values(%q) = %q, HeaderCarrier %q", i, k, got, want)
			}
		}
		got, want := fast.Keys(), ref.Keys()
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("map %d, Keys = %q, HeaderCarrier %q", i, got, want)
		}
	}
	h := http.Header{}
	headerCarrier(h).Set("traceparent", "v")
	if h.Get("Traceparent") != "v" {
		t.Fatalf("Set: %v", h)
	}
}

// testPropagator carries an opaque value in X-Custom-Trace, standing in
// for any propagator beyond W3C's (b3, jaeger, in-house).
type testPropagator struct{}

type testTraceKey struct{}

func (testPropagator) Inject(ctx context.Context, c propagation.TextMapCarrier) {
	if v, _ := ctx.Value(testTraceKey{}).(string); v != "" {
		c.Set("x-custom-trace", v)
	}
}

func (testPropagator) Extract(ctx context.Context, c propagation.TextMapCarrier) context.Context {
	if v := c.Get("x-custom-trace"); v != "" {
		return context.WithValue(ctx, testTraceKey{}, v)
	}
	return ctx
}

func (testPropagator) Fields() []string { return []string{"x-custom-trace"} }

// TestPropagation: whatever propagators are configured, what the sender's
// headers carry reaches the record headers, and nothing is invented when
// they carry nothing.
func TestPropagation(t *testing.T) {
	tel := &telemetry.Telemetry{
		Tracer: tracenoop.NewTracerProvider().Tracer(""),
		Propagator: propagation.NewCompositeTextMapPropagator(
			propagation.TraceContext{}, propagation.Baggage{}, testPropagator{}),
	}
	h := newHarness(t, testenv.Embedded(t), nil, tel)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	send := func(id string, hdr http.Header) int {
		t.Helper()
		body := stripeEvent(id)
		req := httptest.NewRequest(http.MethodPost, "/webhooks/stripe", bytes.NewReader(body))
		req.Header = hdr
		src, _ := h.sources.Get("stripe")
		if err := src.Provider().Sign(req.Header, body, time.Now()); err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		h.srv.Handler().ServeHTTP(w, req)
		return w.Code
	}
	all := http.Header{}
	all.Set("traceparent", tp)
	all.Set("tracestate", "vendor=1")
	all.Add("baggage", "tenant=acme")
	all.Add("baggage", "plan=pro")
	all.Set("x-custom-trace", "custom-1")
	// Keys a hand-built request may hold without canonicalisation are
	// invisible to Header.Get, hence to every propagator.
	lower := http.Header{"traceparent": {tp}, "baggage": {"tenant=acme"}, "x-custom-trace": {"custom-2"}}
	for id, hdr := range map[string]http.Header{"evt_all": all, "evt_none": {}, "evt_lower": lower} {
		if code := send(id, hdr); code != http.StatusAccepted {
			t.Fatalf("%s: status %d", id, code)
		}
	}
	recs := h.env.ReadAll(t, h.topics.Raw, 3, 300*time.Millisecond, 10*time.Second)
	got := map[string]map[string]string{}
	for _, r := range recs {
		hs := map[string]string{}
		for _, rh := range r.Headers {
			hs[rh.Key] = string(rh.Value)
		}
		got[string(r.Key)] = hs
	}
	all0 := got["stripe:evt_all"]
	if all0["traceparent"] != tp || all0["tracestate"] != "vendor=1" || all0["x-custom-trace"] != "custom-1" {
		t.Errorf("evt_all: record headers %v", all0)
	}
	if b, err := baggage.Parse(all0["baggage"]); err != nil || b.Member("tenant").Value() != "acme" || b.Member("plan").Value() != "pro" {
		t.Errorf("evt_all: baggage %q (%v), want both members", all0["baggage"], err)
	}
	for _, id := range []string{"stripe:evt_none", "stripe:evt_lower"} {
		for _, k := range []string{"traceparent", "tracestate", "baggage", "x-custom-trace"} {
			if v, ok := got[id][k]; ok {
				t.Errorf("%s: record header %s = %q, want none", id, k, v)
			}
		}
	}
	if _, ok := got["stripe:evt_all"]; !ok || len(got) != 3 {
		t.Fatalf("records %v", got)
	}
}

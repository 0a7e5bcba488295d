package ingest

import (
	"net/http"
	"net/textproto"

	"go.opentelemetry.io/otel/propagation"
)

// Canonical names of the HTTP headers the webhook path reads and writes.
// They are looked up in the header map directly: http.Header.Get
// canonicalises its argument on every call, which cost about 30 ns for a
// canonical name and 90 ns plus an allocation for a name such as
// "X-Correlation-ID" (measured with go1.26). h[k] for a canonical k is
// exactly what h.Get(k) reads, whatever the map holds, so nothing relies on
// net/http having canonicalised the incoming keys.
const (
	headerCorrelationID = "X-Correlation-Id"
	headerTraceparent   = "Traceparent"
	headerContentType   = "Content-Type"
	headerContentLength = "Content-Length"
)

// firstValue is h.Get(key) for a key already in canonical form.
func firstValue(h http.Header, key string) string {
	if vs := h[key]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// headerCarrier is propagation.HeaderCarrier, except that the keys the W3C
// propagators ask for (lower case, so Get would canonicalise them into a new
// string each time) map to their canonical form without allocating. Any
// other key goes through textproto's canonicalisation, as HeaderCarrier
// does, so every propagator (b3, jaeger, custom ones) reads what it would
// read through HeaderCarrier.
type headerCarrier http.Header

var (
	_ propagation.TextMapCarrier = headerCarrier(nil)
	_ propagation.ValuesGetter   = headerCarrier(nil)
)

func carrierKey(key string) string {
	switch key {
	case "traceparent":
		return "Traceparent"
	case "tracestate":
		return "Tracestate"
	case "baggage":
		return "Baggage"
	}
	return textproto.CanonicalMIMEHeaderKey(key)
}

// Get returns the first value of key.
func (c headerCarrier) Get(key string) string { return firstValue(http.Header(c), carrierKey(key)) }

// Values returns every value of key (the baggage propagator joins them).
func (c headerCarrier) Values(key string) []string { return c[carrierKey(key)] }

// Set sets key to value.
func (c headerCarrier) Set(key, value string) { http.Header(c).Set(key, value) }

// Keys lists the header names.
func (c headerCarrier) Keys() []string { return propagation.HeaderCarrier(c).Keys() }

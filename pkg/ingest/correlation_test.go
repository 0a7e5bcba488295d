package ingest

import (
	"context"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// TestTraceparentOfAFutureVersion: W3C Trace Context has a reader of a
// version above 00 take the first 55 characters when a '-' or the end
// follows, as OpenTelemetry's propagator does: such a delivery continued
// its trace, but its correlation id was a random one, not the trace id.
func TestTraceparentOfAFutureVersion(t *testing.T) {
	const id = "4bf92f3577b34da6a3ce929d0e0e4736"
	base := "-" + id + "-00f067aa0ba902b7-01"
	for tp, want := range map[string]bool{
		"00" + base:            true,
		"00" + base + "-extra": false, // version 00 is exactly 55
		"01" + base:            true,
		"01" + base + "-extra": true,
		"01" + base + "extra":  false, // no '-' after the flags
		"ff" + base:            false,
		"cc" + base[:40]:       false, // short
		"0g" + base:            false,
	} {
		if got := validTraceparent(tp); got != want {
			t.Errorf("%q: %v, want %v", tp, got, want)
		}
		// Where it is taken, it agrees with the propagator that continues
		// the trace.
		sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.HeaderCarrier(http.Header{"Traceparent": {tp}})))
		if want && (!sc.IsValid() || sc.TraceID().String() != id) {
			t.Errorf("%q: the propagator does not continue it (%v)", tp, sc)
		}
		if want {
			if got := correlationID(http.Header{"Traceparent": {tp}}); got != id {
				t.Errorf("%q: correlation id %s, want the trace id", tp, got)
			}
		}
	}
}

package telemetry

import (
	"context"
	"slices"
	"strings"
	"testing"
)

// OTEL_PROPAGATORS picks the propagators as the OpenTelemetry
// specification has it; unset, W3C trace context and baggage. It was not
// read: a B3 deployment's traces were not continued.
func TestPropagatorsFromTheEnvironment(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		env  string
		want []string // the propagator's Fields, sorted
	}{
		{"", []string{"baggage", "traceparent", "tracestate"}},
		{"b3", []string{"b3"}},
		{"tracecontext, b3multi", []string{"traceparent", "tracestate", "x-b3-flags", "x-b3-sampled", "x-b3-spanid", "x-b3-traceid"}},
		{"jaeger", []string{"uber-trace-id"}},
		{"none", nil},
	} {
		t.Run("OTEL_PROPAGATORS="+tc.env, func(t *testing.T) {
			t.Setenv("OTEL_PROPAGATORS", tc.env)
			tel, err := New(ctx, "test")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = tel.Shutdown(ctx) })
			got := slices.Sorted(slices.Values(tel.Propagator.Fields()))
			got = slices.Compact(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("fields %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("an unknown name refuses the start", func(t *testing.T) {
		t.Setenv("OTEL_PROPAGATORS", "tracecontext,w3c")
		_, err := New(ctx, "test")
		if err == nil || !strings.Contains(err.Error(), "OTEL_PROPAGATORS") || !strings.Contains(err.Error(), "w3c") {
			t.Fatalf("New: %v, want an error naming OTEL_PROPAGATORS and w3c", err)
		}
	})
}

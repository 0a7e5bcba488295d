package telemetry

import (
	"log/slog"
	"strings"

	"context"
	"github.com/inletdev/inlet/pkg/testenv/syncbuf"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// collector counts the OTLP exports it receives, by path.
func collector(t *testing.T) (paths func() map[string]int) {
	t.Helper()
	var mu sync.Mutex
	got := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.URL.Path]++
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "none")
	return func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]int{}
		for k, v := range got {
			out[k] = v
		}
		return out
	}
}

// export makes a span and a measurement and flushes both.
func export(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	tel, err := New(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	_, span := tel.Tracer.Start(ctx, "s")
	span.End()
	c, err := tel.Meter.Int64Counter("inlet.test")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(ctx, 1)
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestExporterSelectionVariables: OTEL_TRACES_EXPORTER and
// OTEL_METRICS_EXPORTER (none, or a list without otlp) and
// OTEL_SDK_DISABLED turn a signal's OTLP export off, as the OpenTelemetry
// specification defines them, even with OTEL_EXPORTER_OTLP_ENDPOINT set.
// They were ignored: with the endpoint set for traces, metrics went over
// OTLP too, counting every series twice next to the /metrics scrape, and
// nothing but unsetting the endpoint turned that off.
func TestExporterSelectionVariables(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		env                     map[string]string
		wantTraces, wantMetrics bool
	}{
		{"default", nil, true, true},
		{"metrics none", map[string]string{"OTEL_METRICS_EXPORTER": "none"}, true, false},
		{"metrics prometheus", map[string]string{"OTEL_METRICS_EXPORTER": "prometheus"}, true, false},
		{"metrics otlp", map[string]string{"OTEL_METRICS_EXPORTER": " otlp "}, true, true},
		{"traces none", map[string]string{"OTEL_TRACES_EXPORTER": "none"}, false, true},
		{"traces otlp,console", map[string]string{"OTEL_TRACES_EXPORTER": "console,otlp"}, true, true},
		{"sdk disabled", map[string]string{"OTEL_SDK_DISABLED": "true"}, false, false},
		{"sdk disabled TRUE", map[string]string{"OTEL_SDK_DISABLED": "TRUE"}, false, false},
		{"sdk not disabled", map[string]string{"OTEL_SDK_DISABLED": "false"}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := collector(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			export(t)
			p := got()
			if (p["/v1/traces"] > 0) != tc.wantTraces || (p["/v1/metrics"] > 0) != tc.wantMetrics {
				t.Errorf("exports %v, want traces %v, metrics %v", p, tc.wantTraces, tc.wantMetrics)
			}
		})
	}
}

// TestUnsupportedProtocolIsSaid: Inlet's exporters speak OTLP/HTTP with
// protobuf whatever OTEL_EXPORTER_OTLP_PROTOCOL says. Set to grpc (with
// the endpoint on a collector's gRPC port, 4317), every export failed with
// a malformed-response error that did not name the cause; the start now
// says it, per signal exported.
func TestUnsupportedProtocolIsSaid(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want []string // signals warned about
	}{
		{map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, []string{"OTEL_EXPORTER_OTLP_PROTOCOL=grpc"}},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}, []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc"}},
		{map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf", "OTEL_METRICS_EXPORTER": "none"}, []string{"OTEL_EXPORTER_OTLP_PROTOCOL=grpc"}},
		{map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, nil},
		{map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_SDK_DISABLED": "true"}, nil},
	} {
		collector(t)
		for k, v := range tc.env {
			t.Setenv(k, v)
		}
		var buf syncbuf.Buffer
		tel, err := New(t.Context(), "test", WithLogger(slog.New(slog.NewJSONHandler(&buf, nil))))
		if err != nil {
			t.Fatal(err)
		}
		_ = tel.Shutdown(t.Context())
		out := buf.String()
		for _, w := range tc.want {
			if !strings.Contains(out, w) || !strings.Contains(out, "OTLP/HTTP") {
				t.Errorf("%v: log %q, want a warning naming %s", tc.env, out, w)
			}
		}
		if len(tc.want) == 0 && strings.Contains(out, "PROTOCOL") {
			t.Errorf("%v: log %q, want no protocol warning", tc.env, out)
		}
		for k := range tc.env {
			t.Setenv(k, "")
		}
	}
}

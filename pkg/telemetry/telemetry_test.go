package telemetry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// TestSeriesBeyondTheSDKDefaultKeepTheirLabels: 4 sources × 101 types (a
// Limiter's 100 and "other") × 6 outcomes is within what Inlet's labels
// allow; every one of those series keeps its labels (none folds into
// otel.metric.overflow, otel_metric_overflow in Prometheus, as past the
// SDK's default of 2,000).
func TestSeriesBeyondTheSDKDefaultKeepTheirLabels(t *testing.T) {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	tel, err := New(ctx, "test", WithReader(reader))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(ctx) })
	c, err := tel.Meter.Int64Counter("inlet.events")
	if err != nil {
		t.Fatal(err)
	}
	const want = 4 * 101 * 6
	for s := range 4 {
		for ty := range 101 {
			for o := range 6 {
				c.Add(ctx, 1, metric.WithAttributes(attribute.String("source", strconv.Itoa(s)),
					attribute.String("event_type", strconv.Itoa(ty)), attribute.String("outcome", strconv.Itoa(o))))
			}
		}
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "inlet.events" {
				continue
			}
			points := m.Data.(metricdata.Sum[int64]).DataPoints
			for _, p := range points {
				if v, ok := p.Attributes.Value("otel.metric.overflow"); ok && v.AsBool() {
					t.Fatalf("%d series folded into the overflow series", p.Value)
				}
			}
			if len(points) != want {
				t.Fatalf("%d series, want %d", len(points), want)
			}
			return
		}
	}
	t.Fatal("inlet.events not collected")
}

// TestServiceNameFromTheEnvironment: OTEL_SERVICE_NAME, which the
// manifests set, names the service; the name New is given is the default.
// The given name won, so renaming a service per environment did nothing.
func TestServiceNameFromTheEnvironment(t *testing.T) {
	for env, want := range map[string]string{"": "inlet-ingest", "ingest-eu": "ingest-eu"} {
		t.Setenv("OTEL_SERVICE_NAME", env)
		t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
		ctx := context.Background()
		tel, err := New(ctx, "inlet-ingest")
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		tel.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		_ = tel.Shutdown(ctx)
		var info string
		for line := range strings.Lines(rec.Body.String()) {
			if strings.HasPrefix(line, "target_info{") {
				info = line
			}
		}
		if !strings.Contains(info, `service_name="`+want+`"`) || !strings.Contains(info, `deployment_environment="test"`) {
			t.Errorf("OTEL_SERVICE_NAME %q: target_info %q, want service_name %q and the resource attribute", env, info, want)
		}
	}
}

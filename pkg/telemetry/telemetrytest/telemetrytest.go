// Package telemetrytest reads OpenTelemetry metrics back in tests.
package telemetrytest

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Int64s collects r and returns the int64 sum and gauge points of the
// metric named name, keyed by the values of labels joined with "|" (a label
// a point does not have is left out; with no labels the key is ""). Points
// with the same key add up.
func Int64s(t testing.TB, r *sdkmetric.ManualReader, name string, labels ...string) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	key := func(s attribute.Set) string {
		parts := make([]string, 0, len(labels))
		for _, l := range labels {
			if v, ok := s.Value(attribute.Key(l)); ok {
				parts = append(parts, v.AsString())
			}
		}
		return strings.Join(parts, "|")
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					out[key(dp.Attributes)] += dp.Value
				}
			case metricdata.Gauge[int64]:
				for _, dp := range d.DataPoints {
					out[key(dp.Attributes)] += dp.Value
				}
			}
		}
	}
	return out
}

package telemetry

import (
	"context"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// Redis spans, when spans are recorded, carry no command text: keys and
// values are business data (natural keys, history entries).
func TestRedisSpansLeaveOutCommands(t *testing.T) {
	m := miniredis.RunT(t)
	spans := tracetest.NewSpanRecorder()
	tel, err := New(context.Background(), "test", WithSpanProcessor(spans))
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	if err := tel.InstrumentRedis(rdb); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := rdb.Set(ctx, "inlet:dedup:shop:customer@example.com", "done", 0).Err(); err != nil {
		t.Fatal(err)
	}
	pipe := rdb.Pipeline()
	pipe.RPush(ctx, "inlet:trace:c1", `{"event_id":"evt_secret"}`)
	pipe.Expire(ctx, "inlet:trace:c1", 0)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	ended := spans.Ended()
	if len(ended) < 2 {
		t.Fatalf("%d spans for a command and a pipeline, want a span each", len(ended))
	}
	for _, s := range ended {
		for _, a := range s.Attributes() {
			v := a.Value.String()
			if strings.Contains(v, "customer@example.com") || strings.Contains(v, "evt_secret") || strings.HasPrefix(string(a.Key), "code.") {
				t.Errorf("span %q carries %s=%q", s.Name(), a.Key, v)
			}
		}
	}
}

// Without anywhere to send spans, Redis calls start none: the tracing hook
// formatted every pipeline's commands for spans nobody received.
func TestRedisNotTracedWithoutExporter(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	m := miniredis.RunT(t)
	tel, err := New(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	spans := tracetest.NewSpanRecorder()
	tel.TracerProv.RegisterSpanProcessor(spans) // sees any span the SDK provider starts
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	if err := tel.InstrumentRedis(rdb); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(context.Background(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n := len(spans.Ended()); n != 0 {
		t.Fatalf("%d Redis spans with no exporter configured", n)
	}
}

package ingest

import (
	"context"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/inletdev/inlet/pkg/telemetry"
	"github.com/inletdev/inlet/pkg/testenv"
)

// TestBatchSpanSaysItFailed: a batch answered 503 because Kafka took
// none of its lines has an ingest.events span that says so, as a webhook's
// ingest.webhook span does for its 503 (status Error, the status code and
// the outcome). It said nothing: the failed batch read as a success in the
// trace.
func TestBatchSpanSaysItFailed(t *testing.T) {
	env := testenv.Embedded(t)
	spans := tracetest.NewSpanRecorder()
	tel, err := telemetry.New(context.Background(), "test", telemetry.WithSpanProcessor(spans))
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, env, func(c *Config) { c.AckTimeout = 700 * time.Millisecond }, tel)
	defer kafkaDown(t, env)()
	if a := do(t, h.signed(t, "stripe", stripeEvent("evt_down"), nil)); a.status != http.StatusServiceUnavailable {
		t.Fatalf("webhook status %d, want 503", a.status)
	}
	if status, br, _ := postBatch(t, h, "/events/billing", "Bearer batch-token-1-0123456789", []byte(`{"id":"down1","type":"invoice.paid","data":{}}`+"\n"), ""); status != http.StatusServiceUnavailable {
		t.Fatalf("batch status %d %+v, want 503", status, br)
	}
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans.Ended() {
		byName[s.Name()] = s
	}
	for _, name := range []string{"ingest.webhook", "ingest.events"} {
		s := byName[name]
		if s == nil {
			t.Errorf("no %s span", name)
			continue
		}
		code := ""
		for _, a := range s.Attributes() {
			if a.Key == "http.response.status_code" {
				code = a.Value.Emit()
			}
		}
		if s.Status().Code != codes.Error || code != "503" {
			t.Errorf("%s span of a 503: status %v, http.response.status_code %q; want Error and 503 (attributes %v)", name, s.Status().Code, code, s.Attributes())
		}
	}
}

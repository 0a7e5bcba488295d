package telemetry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/inletdev/inlet/pkg/testenv/poll"
	"github.com/inletdev/inlet/pkg/testenv/syncbuf"
)

// TestSDKErrorsGoToTheLogWithoutTheURLPath: the SDK's own errors (a failed
// OTLP export) went through the standard library's log package, plain text
// on stderr, quoting the endpoint's URL whole: some vendors take the key in
// its path or query.
func TestSDKErrorsGoToTheLogWithoutTheURLPath(t *testing.T) {
	var buf bytes.Buffer
	if _, err := New(t.Context(), "test", WithLogger(slog.New(slog.NewJSONHandler(&buf, nil)))); err != nil {
		t.Fatal(err)
	}
	const endpoint = "https://otlp.example.com:4318/KEY-7f3a/v1/traces?api_key=KEY-7f3a"
	otel.Handle(fmt.Errorf("traces export: %w", &url.Error{Op: "Post", URL: endpoint, Err: errors.New("connection refused")}))
	out := buf.String()
	if !strings.Contains(out, "telemetry export failed") || !strings.Contains(out, "https://otlp.example.com:4318") || !strings.Contains(out, "connection refused") {
		t.Fatalf("log = %q, want the failure with the endpoint's scheme and host", out)
	}
	if strings.Contains(out, "KEY-7f3a") {
		t.Fatalf("log quotes the endpoint's path or query: %s", out)
	}
}

// TestRefusedExportQuotesNoCredential: a collector (or a vendor's
// gateway) refusing an export answers a status the exporter does not
// retry, and the SDK's error for it quotes the request's URL whole (not as
// a url.Error) and the collector's answer, which often quotes the API key
// it refused: both reached the log.
func TestRefusedExportQuotesNoCredential(t *testing.T) {
	const key = "CANARY-otlpkey-7f3a"
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"error":"invalid API key %s (Authorization: %s) for %s"}`, r.Header.Get("X-Api-Key"), r.Header.Get("Authorization"), r.URL.Path)
	}))
	t.Cleanup(collector.Close)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", collector.URL+"/PATHKEY-7f3a/v1/traces")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50") // ms: the batcher's own export, whose errors go to the handler
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key="+key+",authorization=Bearer%20CANARY-otlpbearer-7f3a")
	var logs syncbuf.Buffer
	tel, err := New(t.Context(), "test", WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	_, span := tel.Tracer.Start(t.Context(), "refused")
	span.End()
	poll.Eventually(t, 10*time.Second, "the refused export to be logged", func() bool {
		return strings.Contains(logs.String(), "telemetry export failed")
	})
	_ = tel.Shutdown(context.Background())
	out := logs.String()
	if !strings.Contains(out, "401") || !strings.Contains(out, strings.TrimPrefix(collector.URL, "http://")) {
		t.Errorf("want the refusal logged with its status and the collector's host:\n%s", out)
	}
	for _, secret := range []string{key, "CANARY-otlpbearer-7f3a", "PATHKEY-7f3a"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log quotes %s:\n%s", secret, out)
		}
	}
}

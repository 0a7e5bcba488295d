package telemetry

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
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

package ingest

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/testenv"
)

// A webhook nested deeper than encoding/json reads, at the largest body,
// is refused as not JSON.
func TestWebhookDeepNestingRefused(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t), nil)
	depth := kafka.MaxBodyBytes / 2 // the keep source's max_body, all brackets
	body := []byte(strings.Repeat("[", depth) + strings.Repeat("]", depth))
	req, _ := http.NewRequest(http.MethodPost, h.url+"/webhooks/keep", bytes.NewReader(body))
	req.Header.Set("X-Event-Type", "blob.sent")
	req.Header.Set("X-Event-Id", "deep-1")
	if a := do(t, req); a.status != http.StatusBadRequest || a.body.Error != "body is not valid JSON" {
		t.Fatalf("status %d %s, want 400 not valid JSON", a.status, a.raw)
	}
}

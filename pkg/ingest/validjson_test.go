package ingest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/testenv"
)

// nested is depth levels of [ closed again: valid JSON for encoding/json
// up to 10000 levels.
func nested(depth int) []byte {
	return []byte(strings.Repeat("[", depth) + strings.Repeat("]", depth))
}

// FuzzValidJSON: validJSON accepts exactly what encoding/json accepts, so
// switching validators never turns a 400 into a 202 or the reverse.
func FuzzValidJSON(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `[1,2`, "\"\xff\"", `{"a":"\ud800"}`, `1e999`, `-0`, `01`, `{"a":1}x`, ` `, `nul`, "\"\x01\"", `{"a":[{}]}`, ``} {
		f.Add([]byte(s))
	}
	// encoding/json stops at 10000 levels; gjson does not.
	for _, d := range []int{gjsonMaxBytes / 2, 10000, 10001} {
		f.Add(nested(d))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("%.40q… (%d bytes): validJSON %v, encoding/json %v", b, len(b), got, want)
		}
	})
}

// TestValidJSONDeepNesting: hostile nesting, up to the largest body a
// source may accept, is judged as encoding/json judges it, within a
// bounded stack. gjson recursed per level: 64 MiB of stack for 1 MiB of
// "[[[…", 256 MiB at the largest body. Over the limit set here the runtime
// stops the whole test binary ("goroutine stack exceeds"), which is how
// this test fails.
func TestValidJSONDeepNesting(t *testing.T) {
	defer debug.SetMaxStack(debug.SetMaxStack(16 << 20))
	for _, d := range []int{gjsonMaxBytes / 2, 10000, 10001, 1 << 19, kafka.MaxBodyBytes / 2} {
		b := nested(d)
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Errorf("depth %d: validJSON %v, encoding/json %v", d, got, want)
		}
	}
}

// A webhook nested deeper than encoding/json reads, at the largest body,
// is refused as not JSON.
func TestWebhookDeepNestingRefused(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t), nil)
	body := nested(kafka.MaxBodyBytes / 2) // the keep source's max_body
	req, _ := http.NewRequest(http.MethodPost, h.url+"/webhooks/keep", bytes.NewReader(body))
	req.Header.Set("X-Event-Type", "blob.sent")
	req.Header.Set("X-Event-Id", "deep-1")
	if a := do(t, req); a.status != http.StatusBadRequest || a.body.Error != "body is not valid JSON" {
		t.Fatalf("status %d %s, want 400 not valid JSON", a.status, a.raw)
	}
}

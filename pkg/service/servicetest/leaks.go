package servicetest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// LeakMark is in every canary secret of the services' leak tests; Leaks
// also looks for it base64- and hex-encoded and in lower case.
const LeakMark = "CANARY"

var leakEncodedMarks = []string{
	base64.StdEncoding.EncodeToString([]byte(LeakMark))[:8], // "Q0FOQVJZ"
	hex.EncodeToString([]byte(LeakMark)),
	strings.ToLower(LeakMark),
}

// Leaks returns the canary marks, and the secret-derived values of
// derived (a signature made with a canary secret), found in out.
func Leaks(out string, derived ...string) []string {
	var found []string
	for _, m := range append([]string{LeakMark}, leakEncodedMarks...) {
		if strings.Contains(out, m) {
			found = append(found, m)
		}
	}
	for _, d := range derived {
		if d != "" && strings.Contains(out, d) {
			found = append(found, "signature "+d)
		}
	}
	return found
}

// OTLPCapture is an OTLP/HTTP collector keeping every export's body.
type OTLPCapture struct {
	mu     sync.Mutex
	bodies bytes.Buffer
	traces int
}

// CaptureOTLP starts a collector and sets the OTEL_* variables pointing a
// service at it, its credential (OTEL_EXPORTER_OTLP_HEADERS) a canary too.
func CaptureOTLP(t *testing.T) *OTLPCapture {
	t.Helper()
	c := &OTLPCapture{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.bodies.Write(b)
		if r.URL.Path == "/v1/traces" {
			c.traces++
		}
		c.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20"+LeakMark+"-otlp-7f3a")
	t.Setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "none")
	return c
}

// Spans returns what was exported, failing t when no span was: the check
// of span attributes would then pass vacuously.
func (c *OTLPCapture) Spans(t *testing.T) string {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.traces == 0 {
		t.Error("no span exported to the OTLP endpoint: span attributes were not checked")
	}
	return c.bodies.String()
}

// DumpRecords reads cl's records until a poll of 500 ms brings none and at
// least atLeast were read, and returns each as text: topic, key, value and
// every header. It fails t if fewer than atLeast came within 20 s.
func DumpRecords(t *testing.T, cl *kgo.Client, atLeast int) string {
	t.Helper()
	var out strings.Builder
	records := 0
	deadline := time.Now().Add(20 * time.Second)
	for quiet := false; !quiet; {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		recs := fs.Records()
		for _, rec := range recs {
			records++
			out.WriteString(rec.Topic + " " + string(rec.Key) + " " + string(rec.Value) + "\n")
			for _, h := range rec.Headers {
				out.WriteString(h.Key + "=" + string(h.Value) + "\n")
			}
		}
		quiet = len(recs) == 0 && records >= atLeast
		if !quiet && time.Now().After(deadline) {
			t.Fatalf("read %d records within 20s, want at least %d", records, atLeast)
		}
	}
	return out.String()
}

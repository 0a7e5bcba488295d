package ingest

import (
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/telemetry/telemetrytest"
	"github.com/inletdev/inlet/pkg/testenv"
	"github.com/inletdev/inlet/pkg/testenv/syncbuf"
)

// TestSignatureFailuresLoggedOncePerPeriod: every request that failed its
// signature (or batch token) was logged at warn, so anyone could flood the
// logs with unsigned requests. The first of a burst is logged at warn per
// source, the rest at debug, and the next warn says how many; the metrics
// still count every one.
func TestSignatureFailuresLoggedOncePerPeriod(t *testing.T) {
	reader, tel := newMetered(t)
	var logs syncbuf.Buffer
	var skew atomic.Int64
	h := newHarnessDeps(t, testenv.Embedded(t), testSources, nil, func(d *Deps) {
		d.Telemetry = tel
		d.Log = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		d.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	})
	const n = 25
	unsigned := func() {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, h.url+"/webhooks/stripe", strings.NewReader(`{"id":"evt_1","type":"invoice.paid"}`))
		req.Header.Set("Stripe-Signature", "t=1,v1=00")
		if a := do(t, req); a.status != http.StatusUnauthorized {
			t.Fatalf("unsigned webhook: %d %s", a.status, a.raw)
		}
	}
	for range n {
		unsigned()
		// Without a token, and with a wrong one on a signed source.
		if status, br, _ := postBatch(t, h, "/events/billing", "", []byte(batchLineFor("b")), ""); status != http.StatusUnauthorized {
			t.Fatalf("batch without a token: %d %+v", status, br)
		}
		if status, br, _ := postBatch(t, h, "/events/internal", "Bearer not-the-token-0123456789", []byte(batchLineFor("i")), ""); status != http.StatusUnauthorized {
			t.Fatalf("badly signed batch: %d %+v", status, br)
		}
	}
	type line struct {
		Level  string `json:"level"`
		Msg    string `json:"msg"`
		Source string `json:"source"`
		Reason string `json:"reason"`
		Quiet  *int64 `json:"at_debug_since_last"`
	}
	// levels counts the signature rejections logged after the first from
	// bytes, per source and level, and returns the warn lines.
	levels := func(from int) (map[string]int, []line) {
		got, warns := map[string]int{}, []line(nil)
		for _, l := range strings.Split(strings.TrimSpace(logs.String()[from:]), "\n") {
			var e line
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				t.Fatalf("log line %s: %v", l, err)
			}
			if e.Msg != "rejected" || e.Reason != "signature" {
				continue
			}
			got[e.Source+"|"+e.Level]++
			if e.Level == "WARN" {
				warns = append(warns, e)
			}
		}
		return got, warns
	}
	got, warns := levels(0)
	want := map[string]int{
		"stripe|WARN": 1, "stripe|DEBUG": n - 1,
		"billing|WARN": 1, "billing|DEBUG": n - 1,
		"internal|WARN": 1, "internal|DEBUG": n - 1,
	}
	if !maps.Equal(got, want) {
		t.Fatalf("signature failures logged %v, want one warn per source and the rest at debug", got)
	}
	for _, w := range warns {
		if w.Quiet == nil || *w.Quiet != 0 {
			t.Errorf("first warn for %s: at_debug_since_last %v, want 0", w.Source, w.Quiet)
		}
	}

	// A period later the next failure is at warn again, with the count.
	skew.Store(int64(10 * time.Minute))
	from := len(logs.String())
	unsigned()
	got, warns = levels(from)
	if !maps.Equal(got, map[string]int{"stripe|WARN": 1}) || len(warns) != 1 || warns[0].Quiet == nil || *warns[0].Quiet != n-1 {
		t.Fatalf("a period later: %v %+v, want one warn saying %d went at debug", got, warns, n-1)
	}

	requests := telemetrytest.Int64s(t, reader, "inlet.ingest.requests", "source", "outcome", "reason")
	for src, want := range map[string]int64{"stripe": n + 1, "billing": n, "internal": n} {
		if c := requests[src+"|rejected|"+reasonSignature]; c != want {
			t.Errorf("%s: %d signature rejections counted, want every one (%d)", src, c, want)
		}
	}
}

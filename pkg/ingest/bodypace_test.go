package ingest

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/telemetry/telemetrytest"
	"github.com/inletdev/inlet/pkg/testenv"
	"github.com/inletdev/inlet/pkg/testenv/syncbuf"
)

// TestStalledUnsignedBodiesFreeTheBudget: a party holding no
// secret at all opens a few connections to a source's webhook path,
// declares 1 MiB bodies and sends a quarter of each, then waits. The
// bodies are read before any signature is checked, and each buffer is
// reserved four times what arrived, so the whole
// -max-body-bytes-in-flight is held for up to -read-timeout: every other
// source's correctly signed webhook is refused 503 meanwhile.
func TestStalledUnsignedBodiesFreeTheBudget(t *testing.T) {
	const mib = 1 << 20
	h := newHarness(t, testenv.Embedded(t), func(c *Config) {
		c.MaxBodyBytesInFlight, c.ReadTimeout, c.BodyIdleTimeout = 16*mib, 30*time.Second, 2*time.Second
	})
	sent := 0
	for range 16 {
		conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		// To the shop path: no secret is needed to be read.
		fmt.Fprintf(conn, "POST /webhooks/shop HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", mib)
		part := make([]byte, mib/4+1)
		if _, err := conn.Write(part); err != nil {
			t.Fatal(err)
		}
		sent += len(part)
	}
	testenv.Eventually(t, 10*time.Second, "the budget held", func() bool { return h.bodiesHeld() >= 16*mib-64<<10 })
	t.Logf("%d KiB sent (no secret) hold %d KiB of the %d KiB budget", sent>>10, h.bodiesHeld()>>10, 16*mib>>10)
	held := time.Now()
	h.waitHeld(t, 0, "the stalled bodies cut and the budget freed")
	if waited := time.Since(held); waited > 5*time.Second {
		t.Errorf("the budget was held %v more, want about -body-idle-timeout (2s)", waited)
	}
	body := []byte(`{"id":"evt_iso","type":"payment_intent.succeeded","created":1700000000,"data":{"object":{"id":"pi_1"}}}`)
	a := do(t, h.signed(t, "stripe", body, nil))
	if a.status != http.StatusAccepted {
		t.Errorf("another source's signed %d-byte webhook: %d %s", len(body), a.status, a.raw)
	}
}

// TestTrickledUnsignedBodiesFreeTheBudget: as above, but after its quarter
// each body goes on at one byte every 200 ms, never idle for
// -body-idle-timeout (1 s). Before -body-min-rate the 16 held the whole
// 16 MiB budget until -read-timeout (still held 8 s later), and another
// source's signed webhook was answered 503. Each is now cut (408) about
// an idle timeout after it fell behind 1 KiB/s, and the budget is free.
func TestTrickledUnsignedBodiesFreeTheBudget(t *testing.T) {
	const mib = 1 << 20
	h := newHarness(t, testenv.Embedded(t), func(c *Config) {
		c.MaxBodyBytesInFlight, c.ReadTimeout, c.BodyIdleTimeout, c.BodyMinRate = 16*mib, 30*time.Second, time.Second, 1024
	})
	var trickled []*rawRequest
	for range 16 {
		r := startRequest(t, h, "/webhooks/shop", mib, nil)
		r.send(make([]byte, mib/4+1))
		r.trickle(200 * time.Millisecond)
		trickled = append(trickled, r)
	}
	// Well before -read-timeout, which would cut them too.
	deadline := time.After(15 * time.Second)
	cut := 0
wait:
	for _, r := range trickled {
		select {
		case a := <-r.answer:
			if a.err != nil || a.status != http.StatusRequestTimeout {
				t.Errorf("a trickled body: %d %s (%v), want 408", a.status, a.body, a.err)
			}
			cut++
		case <-deadline:
			break wait
		}
	}
	if cut < len(trickled) {
		t.Errorf("%d of %d trickled bodies still read 15 s on (-body-idle-timeout 1s, -read-timeout 30s), holding %d KiB of the %d KiB budget",
			len(trickled)-cut, len(trickled), h.bodiesHeld()>>10, 16*mib>>10)
	} else {
		h.waitHeld(t, 0, "the trickled bodies' budget freed")
	}
	body := []byte(`{"id":"evt_trickle","type":"payment_intent.succeeded","created":1700000000,"data":{"object":{"id":"pi_1"}}}`)
	if a := do(t, h.signed(t, "stripe", body, nil)); a.status != http.StatusAccepted {
		t.Errorf("another source's signed %d-byte webhook: %d %s", len(body), a.status, a.raw)
	}
}

// trickle sends one byte of body (a one-byte chunk when chunked) every
// period, until a write fails (the server answered and closed) or the
// test ends.
func (r *rawRequest) trickle(every time.Duration) {
	b := []byte(" ")
	if r.chunked {
		b = []byte("1\r\n \r\n")
	}
	stop := make(chan struct{})
	r.t.Cleanup(func() { close(stop) })
	go func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := r.conn.Write(b); err != nil {
					return
				}
			}
		}
	}()
}

// pace sends b in pieces of n bytes, one every period, then ends a
// chunked body: a slow sender's steady pace.
func (r *rawRequest) pace(b []byte, n int, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for len(b) > 0 {
		k := min(n, len(b))
		r.send(b[:k])
		if b = b[k:]; len(b) > 0 {
			<-tick.C
		}
	}
	if r.chunked {
		r.end()
	}
}

// newPaceHarness is a budget harness (sources open and signed, bodies up
// to 1 MiB) with -body-idle-timeout 1 s and -body-min-rate 1 KiB/s, mod
// applied after, its logs in logs.
func newPaceHarness(t *testing.T, mod func(*Config)) (h *harness, count func() map[string]int64, logs *syncbuf.Buffer) {
	t.Helper()
	const limit = 1 << 20
	reader, tel := newMetered(t)
	logs = &syncbuf.Buffer{}
	h = newHarnessDeps(t, testenv.Embedded(t), fmt.Sprintf(budgetSources, limit), func(c *Config) {
		c.MaxBodyBytesInFlight, c.ReadTimeout, c.BodyIdleTimeout, c.BodyMinRate = limit, 30*time.Second, time.Second, 1024
		if mod != nil {
			mod(c)
		}
	}, func(d *Deps) {
		d.Telemetry = tel
		d.Log = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	return h, func() map[string]int64 {
		return telemetrytest.Int64s(t, reader, "inlet.ingest.requests", "source", "outcome", "reason")
	}, logs
}

// TestSlowBodies: a body read before its signature is checked that falls
// behind -body-min-rate is cut with 408 and gives its budget back, well
// before -read-timeout (30 s here; each answer is waited for at most
// 20 s), whatever it declared and however it is framed, on both
// endpoints; an honest slow sender above the rate, or one whose body is
// in within the first idle timeout, is not cut.
func TestSlowBodies(t *testing.T) {
	h, count, logs := newPaceHarness(t, nil)
	var lines strings.Builder
	for i := range 160 { // about 8 KiB
		lines.WriteString(batchLineFor(fmt.Sprintf("slow-%03d", i)))
	}
	signedBatch := []byte(lines.String())
	for _, tt := range []struct {
		name string
		code int
		run  func(t *testing.T) rawAnswer
	}{
		// Hostile: a part, then nothing.
		{"stalled body", http.StatusRequestTimeout, func(t *testing.T) rawAnswer {
			r := startRequest(t, h, "/webhooks/open", 64<<10, nil)
			r.send(make([]byte, 1<<10))
			return r.wait()
		}},
		// Hostile: a byte now and then, never idle for 1 s.
		{"trickle just inside the idle timeout", http.StatusRequestTimeout, func(t *testing.T) rawAnswer {
			r := startRequest(t, h, "/webhooks/open", 64<<10, nil)
			r.trickle(700 * time.Millisecond)
			return r.wait()
		}},
		{"trickle after a burst", http.StatusRequestTimeout, func(t *testing.T) rawAnswer {
			// The burst earns one idle timeout in hand, no more: a rate
			// averaged from the start would let 256 KiB buy minutes.
			r := startRequest(t, h, "/webhooks/open", 1<<20, nil)
			r.send(make([]byte, 256<<10+1))
			r.trickle(200 * time.Millisecond)
			return r.wait()
		}},
		{"trickle with the largest declared length", http.StatusRequestTimeout, func(t *testing.T) rawAnswer {
			r := startRequest(t, h, "/webhooks/open", 1<<20, nil)
			r.trickle(200 * time.Millisecond)
			return r.wait()
		}},
		{"chunked trickle", http.StatusRequestTimeout, func(t *testing.T) rawAnswer {
			r := startRequest(t, h, "/webhooks/open", -1, nil)
			r.send(make([]byte, 10<<10))
			r.trickle(200 * time.Millisecond)
			return r.wait()
		}},
		{"signed batch trickle", http.StatusRequestTimeout, func(t *testing.T) rawAnswer {
			r := startRequest(t, h, "/events/signed", 64<<10, signedHeader(t, h, "signed", signedBatch))
			r.trickle(200 * time.Millisecond)
			return r.wait()
		}},
		{"chunked signed batch trickle", http.StatusRequestTimeout, func(t *testing.T) rawAnswer {
			r := startRequest(t, h, "/events/signed", -1, signedHeader(t, h, "signed", signedBatch))
			r.trickle(200 * time.Millisecond)
			return r.wait()
		}},
		// Honest: 512 bytes every 100 ms is 5 KiB/s, five times the rate,
		// over about 1.5 s.
		{"slow webhook above the rate", http.StatusAccepted, func(t *testing.T) rawAnswer {
			body := jsonBody("slow-cl", 8<<10)
			r := startRequest(t, h, "/webhooks/open", len(body), nil)
			r.pace(body, 512, 100*time.Millisecond)
			return r.wait()
		}},
		{"slow chunked webhook above the rate", http.StatusAccepted, func(t *testing.T) rawAnswer {
			body := jsonBody("slow-chunked", 8<<10)
			r := startRequest(t, h, "/webhooks/open", -1, nil)
			r.pace(body, 512, 100*time.Millisecond)
			return r.wait()
		}},
		{"slow signed batch above the rate", http.StatusOK, func(t *testing.T) rawAnswer {
			r := startRequest(t, h, "/events/signed", len(signedBatch), signedHeader(t, h, "signed", signedBatch))
			r.pace(signedBatch, 512, 100*time.Millisecond)
			return r.wait()
		}},
		{"under the rate, but in within the first idle timeout", http.StatusAccepted, func(t *testing.T) rawAnswer {
			body := jsonBody("tiny", 100)
			r := startRequest(t, h, "/webhooks/open", len(body), nil)
			r.pace(body, 25, 150*time.Millisecond) // 166 bytes/s, done in 0.45 s
			return r.wait()
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.run(t)
			wantStatus(t, tt.name, a, tt.code)
			if tt.code == http.StatusRequestTimeout {
				var v struct {
					Error         string `json:"error"`
					CorrelationID string `json:"correlation_id"`
				}
				if err := json.Unmarshal(a.body, &v); err != nil || v.Error != readFailureText(reasonSlowBody, 0, 0) || v.CorrelationID == "" {
					t.Errorf("answer %s, want the slow body's", a.body)
				}
			}
			h.waitHeld(t, 0, "the body's reservation released")
		})
	}
	want := map[string]int64{
		"open|rejected|" + reasonSlowBody:   5,
		"signed|rejected|" + reasonSlowBody: 2,
		"open|accepted|":                    3,
		"signed|accepted|":                  160, // the batch's lines
	}
	if got := count(); !maps.Equal(got, want) {
		t.Errorf("requests %v, want %v", got, want)
	}
	// The log says which flag cut the body; the answer does not.
	if !strings.Contains(logs.String(), "body arrived slower than -body-min-rate (1024 bytes/s)") {
		t.Errorf("no log line names -body-min-rate:\n%s", logs.String())
	}
}

// TestBodyMinRateOff: with -body-min-rate 0 only -body-idle-timeout and
// -read-timeout cut a body: one that sends a byte every 300 ms for 2 s,
// each well within the idle timeout, then the rest, is accepted.
func TestBodyMinRateOff(t *testing.T) {
	h, _, _ := newPaceHarness(t, func(c *Config) { c.BodyMinRate = 0 })
	body := jsonBody("off", 64)
	r := startRequest(t, h, "/webhooks/open", len(body), nil)
	r.pace(body[:7], 1, 300*time.Millisecond)
	r.send(body[7:])
	wantStatus(t, "a trickle with -body-min-rate 0", r.wait(), http.StatusAccepted)
}

// TestPacedReaderEarn: each byte buys 1/rate of a second, and at most one
// idle timeout is held in hand, however much arrives at once.
func TestPacedReaderEarn(t *testing.T) {
	t0 := time.Now()
	b := &pacedReader{idle: 5 * time.Second, rate: 1000, due: t0.Add(5 * time.Second), inHand: true}
	b.earn(256<<10, t0.Add(time.Second)) // 262 s bought, 5 s kept
	if want := t0.Add(6 * time.Second); !b.due.Equal(want) || !b.inHand {
		t.Fatalf("after a burst: due %v in hand %v, want %v in hand", b.due.Sub(t0), b.inHand, want.Sub(t0))
	}
	b.earn(10, t0.Add(3*time.Second)) // 10 ms bought
	if want := t0.Add(6*time.Second + 10*time.Millisecond); !b.due.Equal(want) || b.inHand {
		t.Fatalf("after a trickle: due %v in hand %v, want %v not in hand", b.due.Sub(t0), b.inHand, want.Sub(t0))
	}
}

package ingest

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/testenv"
)

// TestIntegrationIngestBrokerStopped stops the real broker under load:
// while it is down every answer is 503 with Retry-After and never 2xx; once
// it is back ingest answers 2xx again by itself (franz-go reconnects), and
// every event answered 2xx is on the raw topic. Once with a graceful stop
// (SIGTERM), once with a crash (SIGKILL: the idempotent producer's
// in-flight batches meet a broker that recovers its log).
//
// The senders behave like providers: an event answered 503 is sent again
// (here after 100 ms instead of Retry-After) until it is answered 2xx.
func TestIntegrationIngestBrokerStopped(t *testing.T) {
	testenv.Real(t).Services(t) // skip early when not controllable
	t.Run("SIGTERM", func(t *testing.T) {
		brokerDownUnderLoad(t, func(svc *testenv.Services) { svc.StopKafka(t) })
	})
	t.Run("SIGKILL", func(t *testing.T) {
		brokerDownUnderLoad(t, func(svc *testenv.Services) { svc.KillKafka(t) })
	})
}

func brokerDownUnderLoad(t *testing.T, stop func(*testenv.Services)) {
	env := testenv.Real(t)
	svc := env.Services(t)
	const ackTimeout = 1500 * time.Millisecond
	h := newHarness(t, env, func(c *Config) {
		c.AckTimeout = ackTimeout
		c.RetryAfter = 3 * time.Second
	})
	l := startLoad(t, h, 8)

	l.waitFor(t, 20*time.Second, "load to be accepted before the broker stops", func(s loadStats) bool { return s.accepted >= 100 })
	stop(svc)
	downFrom := time.Now() // the broker process is gone
	testenv.Eventually(t, 15*time.Second, "readyz to report the broker unreachable", func() bool {
		resp, err := http.Get(h.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	l.waitFor(t, 20*time.Second, "answers to requests sent while the broker is down", func(s loadStats) bool {
		return s.answeredWithin(downFrom, time.Now()) >= 16
	})
	downTo := time.Now() // the broker starts after this
	svc.StartKafka(t)
	upAt := time.Now()
	l.waitFor(t, 30*time.Second, "ingest to accept again after the broker is back", func(s loadStats) bool {
		return s.acceptedSince(upAt) >= 50
	})
	answers := l.stop(t)

	var down, down503, acceptedInWindow int
	accepted := map[string]bool{}
	for _, a := range answers {
		if a.err != nil {
			t.Errorf("%s: no answer after %v: %v", a.id, a.end.Sub(a.start), a.err)
			continue
		}
		switch a.status {
		case http.StatusAccepted:
			accepted[a.id] = true
		case http.StatusServiceUnavailable:
			if a.retryAfter != "3" {
				t.Errorf("%s: 503 with Retry-After %q, want 3", a.id, a.retryAfter)
			}
		default:
			t.Errorf("%s: status %d (%s), want 202 or 503", a.id, a.status, a.body)
		}
		if took := a.end.Sub(a.start); took > ackTimeout+2*time.Second {
			t.Errorf("%s: answered %d after %v; the ack timeout is %v", a.id, a.status, took, ackTimeout)
		}
		if a.status == http.StatusAccepted && a.end.After(downFrom) && a.end.Before(downTo) {
			// Only possible for a request whose write the broker acked
			// just before it exited.
			acceptedInWindow++
		}
		if a.start.After(downFrom) && a.end.Before(downTo) {
			down++
			if a.status == http.StatusServiceUnavailable {
				down503++
			} else {
				t.Errorf("%s: sent and answered while the broker was down: status %d, want 503 (%s)", a.id, a.status, a.body)
			}
		}
	}
	if down < 16 {
		t.Errorf("only %d requests were sent and answered while the broker was down", down)
	}
	t.Logf("%d answers: %d events accepted; while the broker was down (%v): %d requests, %d answered 503; 2xx answered in that window for requests sent before it: %d",
		len(answers), len(accepted), downTo.Sub(downFrom).Round(time.Millisecond), down, down503, acceptedInWindow)

	var firstUp time.Time
	for _, a := range answers {
		if a.status == http.StatusAccepted && a.start.After(upAt) && (firstUp.IsZero() || a.end.Before(firstUp)) {
			firstUp = a.end
		}
	}
	t.Logf("first 2xx for a request sent after the broker was ready: %v after ready", firstUp.Sub(upAt).Round(time.Millisecond))

	onLog := map[string]int{}
	raw := h.rawEnvelopes(t, len(accepted))
	for _, e := range raw {
		onLog[e.EventID]++
	}
	copies := 0
	for _, n := range onLog {
		if n > 1 {
			copies += n - 1
		}
	}
	// A 503 means "maybe written": a write that missed the ack deadline
	// can land later, and the sender's retry then adds a second copy,
	// which the processor deduplicates.
	t.Logf("raw topic: %d records, %d distinct events, %d extra copies of events first answered 503", len(raw), len(onLog), copies)
	lost := 0
	for id := range accepted {
		if onLog[id] == 0 {
			lost++
			t.Errorf("%s was answered 2xx but is not on the raw topic", id)
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d accepted events are not on the raw topic", lost, len(accepted))
	}
}

// loadAnswer is one request of a load run.
type loadAnswer struct {
	id         string
	status     int
	retryAfter string
	body       string
	start, end time.Time
	err        error
}

type loadStats struct {
	answers  []loadAnswer
	accepted int // answers that were 2xx
}

func (s loadStats) acceptedSince(from time.Time) int {
	n := 0
	for _, a := range s.answers {
		if a.status == http.StatusAccepted && a.start.After(from) {
			n++
		}
	}
	return n
}

func (s loadStats) answeredWithin(from, to time.Time) int {
	n := 0
	for _, a := range s.answers {
		if a.start.After(from) && a.end.Before(to) {
			n++
		}
	}
	return n
}

// load is n goroutines sending signed Stripe webhooks back to back, each
// resending an event until it is answered 2xx.
type load struct {
	mu      sync.Mutex
	answers []loadAnswer
	quit    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
}

func startLoad(t *testing.T, h *harness, n int) *load {
	t.Helper()
	l := &load{quit: make(chan struct{})}
	// No client timeout shorter than the server's: a hanging answer shows
	// up as an answer slower than the ack timeout.
	cl := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	for g := range n {
		l.wg.Go(func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("evt_load_%d_%d", g, i)
				body := stripeEvent(id)
				for {
					select {
					case <-l.quit:
						return
					default:
					}
					req := h.signed(t, "stripe", body, nil)
					a := loadAnswer{id: id, start: time.Now()}
					resp, err := cl.Do(req)
					if err == nil {
						b, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						a.status, a.retryAfter, a.body = resp.StatusCode, resp.Header.Get("Retry-After"), string(b)
					}
					a.end, a.err = time.Now(), err
					l.mu.Lock()
					l.answers = append(l.answers, a)
					l.mu.Unlock()
					if a.status == http.StatusAccepted {
						break
					}
					select {
					case <-l.quit:
						return
					case <-time.After(100 * time.Millisecond):
					}
				}
			}
		})
	}
	t.Cleanup(func() { l.stop(t) })
	return l
}

func (l *load) snapshot() loadStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := loadStats{answers: make([]loadAnswer, len(l.answers))}
	copy(s.answers, l.answers)
	for _, a := range s.answers {
		if a.status == http.StatusAccepted {
			s.accepted++
		}
	}
	return s
}

func (l *load) waitFor(t *testing.T, timeout time.Duration, what string, cond func(loadStats) bool) {
	t.Helper()
	testenv.Eventually(t, timeout, what, func() bool { return cond(l.snapshot()) })
}

// stop ends the load, waits for the senders and returns every answer.
func (l *load) stop(t *testing.T) []loadAnswer {
	l.once.Do(func() { close(l.quit) })
	l.wg.Wait()
	return l.snapshot().answers
}

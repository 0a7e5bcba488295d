package gen

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// slowTarget answers 202 after d and records when each request arrived.
func slowTarget(t *testing.T, d time.Duration) (*httptest.Server, func() []time.Time) {
	t.Helper()
	var (
		mu       sync.Mutex
		arrivals []time.Time
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		mu.Unlock()
		time.Sleep(d)
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []time.Time {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Time(nil), arrivals...)
	}
}

func steadyPlan(rate float64, d time.Duration) []*Delivery {
	p := &planner{runID: "s", start: time.Now(), rate: rate, dur: d, max: 1 << 20}
	return planSteady(p)
}

// TestOpenModelKeepsRate: a target that takes 200 ms per request still gets
// 100 requests/s started on schedule; the run does not slow to the
// target's pace.
func TestOpenModelKeepsRate(t *testing.T) {
	srv, arrivals := slowTarget(t, 200*time.Millisecond)
	r, err := NewRunner(Config{Target: srv.URL, Duration: 2 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	plan := steadyPlan(100, 2*time.Second)
	if len(plan) != 200 {
		t.Fatalf("planned %d requests, want 200", len(plan))
	}
	res, err := r.RunPlan(context.Background(), plan)
	if err != nil {
		t.Fatal(err)
	}
	got := arrivals()
	if len(got) != 200 || res.Codes[202] != 200 {
		t.Fatalf("%d requests arrived, answers %v; want 200", len(got), res.Codes)
	}
	// Every request started close to its intended time: the whole
	// schedule arrived within 2 s plus a little, not 200 × 200 ms / N.
	if span := got[len(got)-1].Sub(res.Start); span > 2300*time.Millisecond {
		t.Errorf("last request arrived %v after the start; the schedule slipped", span)
	}
	late := 0
	for _, d := range res.Deliveries {
		if d.Latency > 400*time.Millisecond {
			late++
		}
	}
	if late > 10 {
		t.Errorf("%d requests took over 400 ms against a 200 ms target: they were not started on schedule", late)
	}
	if p50 := us(res.Latency.ValueAtQuantile(50)); p50 < 200*time.Millisecond {
		t.Errorf("p50 %v is below the target's 200 ms", p50)
	}
}

// TestLatencyIncludesQueueing: with only 10 requests in flight against a
// 200 ms target, 100 requests/s cannot be served; the requests that wait
// for a slot are measured from their intended time, so the recorded
// latency grows far past the 200 ms service time (no coordinated
// omission).
func TestLatencyIncludesQueueing(t *testing.T) {
	srv, arrivals := slowTarget(t, 200*time.Millisecond)
	r, err := NewRunner(Config{Target: srv.URL, Duration: time.Second, MaxInFlight: 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.RunPlan(context.Background(), steadyPlan(100, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(arrivals()); n != 100 {
		t.Fatalf("%d requests arrived, want 100", n)
	}
	// 100 requests at 10 × 5/s take ~2 s; the last, intended at ~1 s,
	// ends at ~2 s: about 1 s of latency, of which 800 ms is queueing.
	if p99 := us(res.Latency.ValueAtQuantile(99)); p99 < 700*time.Millisecond {
		t.Errorf("p99 %v: the wait for a slot is not in the latency", p99)
	}
	if mx := us(res.Latency.Max()); mx > 3*time.Second {
		t.Errorf("max %v: longer than the run", mx)
	}
}

// answering is a target that answers every request with status and body
// (JSON when body is set).
func answering(t *testing.T, status int, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if body != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// runOne sends the single delivery d to srv.
func runOne(t *testing.T, srv *httptest.Server, d *Delivery) *Result {
	t.Helper()
	r, err := NewRunner(Config{Target: srv.URL, Timeout: 2 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.RunPlan(context.Background(), []*Delivery{d})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// validBatch is a delivery like the mix scenario's batches: BatchLines
// valid billing lines, expecting 200.
func validBatch(runID string) *Delivery {
	p := &planner{runID: runID, start: time.Now()}
	d := &Delivery{At: 0, Expect: 200}
	for range BatchLines {
		e := p.newEvent(KindStandardWebhooks, p.start)
		e.Batch = true
		d.Batch = append(d.Batch, e)
	}
	return d
}

// observedAsAnswered is what a system that did exactly what the answers
// say leaves behind: each accepted event on raw, one processed record per
// entity, the state naming it, and the outcome counters risen by the
// accepted deliveries.
func observedAsAnswered(res *Result) Observed {
	raw, proc, state := map[string]int{}, map[string]int{}, map[string]string{}
	for _, e := range res.Events {
		if e.Accepted() > 0 {
			raw[e.RawKey()] += e.Accepted()
			proc[e.EntityKey] = 1
			state[e.EntityKey] = e.CorrelationID()
		}
	}
	acc, _ := res.AcceptedDeliveries()
	before := Scrape{Outcomes: map[string]float64{}}
	after := Scrape{Outcomes: map[string]float64{"processed": float64(acc)}}
	return Observed{RawKeys: raw, Processed: proc, StateLast: state, Before: &before, After: &after, Settled: true}
}

// TestBatchRefusingValidLineIsUnexpected guards "a valid event refused
// fails the run" for NDJSON batches. Before, a batch expecting 200 took
// any 2xx, so a 207 that rejected one of its valid lines was an expected
// answer, the rejected line was left out of every check, and the verdict
// was PASS; lines given no result (the batch cut short) were not recorded
// at all, and a 503 that rejected a valid line counted only as retryable.
func TestBatchRefusingValidLineIsUnexpected(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   int
		results  string
		rejected []int // 0-based lines that must count as rejected
	}{
		{"207 rejecting a line", http.StatusMultiStatus,
			`{"line":1,"status":"accepted"},{"line":2,"status":"accepted"},` +
				`{"line":3,"status":"rejected","error":"missing required field(s): data"},` +
				`{"line":4,"status":"accepted"},{"line":5,"status":"accepted"}`, []int{2}},
		{"207 cut short after two lines", http.StatusMultiStatus,
			`{"line":1,"status":"accepted"},{"line":2,"status":"accepted"}`, []int{2, 3, 4}},
		{"200 leaving a line without a result", http.StatusOK,
			`{"line":1,"status":"accepted"},{"line":2,"status":"accepted"},` +
				`{"line":3,"status":"accepted"},{"line":4,"status":"accepted"}`, []int{4}},
		{"503 rejecting a line", http.StatusServiceUnavailable,
			`{"line":1,"status":"accepted"},{"line":2,"status":"rejected","error":"malformed"},` +
				`{"line":3,"status":"failed"},{"line":4,"status":"accepted"},{"line":5,"status":"accepted"}`, []int{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := answering(t, tc.status, `{"results":[`+tc.results+`]}`)
			d := validBatch("rvb")
			res := runOne(t, srv, d)
			if res.Unexpected != 1 || res.Retryable != 0 {
				t.Errorf("unexpected %d, retryable %d; want 1, 0", res.Unexpected, res.Retryable)
			}
			if d.Refused != len(tc.rejected) {
				t.Errorf("refused %d lines, want %d", d.Refused, len(tc.rejected))
			}
			for _, i := range tc.rejected {
				if e := d.Batch[i]; e.Rejected() != 1 || e.Accepted()+e.Ambiguous() != 0 {
					t.Errorf("line %d: rejected %d accepted %d ambiguous %d; want it rejected once",
						i+1, e.Rejected(), e.Accepted(), e.Ambiguous())
				}
			}
			if v := CheckOutcome(res.Events, res.Unexpected, observedAsAnswered(res)); v.Pass {
				t.Errorf("a valid batch line refused passed:\n%s", v)
			}
		})
	}
}

// TestTimeout408IsRetryable guards that a 408 (ingest's answer when a body
// did not arrive within its read timeout: nothing written) counts as a
// retryable answer, as the event itself counts it ambiguous. Before, it
// counted as unexpected, failing "http answers".
func TestTimeout408IsRetryable(t *testing.T) {
	p := &planner{runID: "rv408", start: time.Now()}
	for name, d := range map[string]*Delivery{
		"webhook": p.single(KindGitHub, 0),
		"batch":   validBatch("rv408b"),
	} {
		t.Run(name, func(t *testing.T) {
			res := runOne(t, answering(t, http.StatusRequestTimeout, ""), d)
			for _, e := range res.Events {
				if e.Ambiguous() != 1 {
					t.Fatalf("event ambiguous %d, want 1", e.Ambiguous())
				}
			}
			if res.Unexpected != 0 || res.Retryable != 1 {
				t.Errorf("408 counted unexpected %d, retryable %d; want 0, 1", res.Unexpected, res.Retryable)
			}
		})
	}
}

func TestArrivals(t *testing.T) {
	if n := len(Arrivals(constant(100), 2*time.Second, 1000)); n != 200 {
		t.Errorf("constant 100/s for 2s: %d arrivals", n)
	}
	if n := len(Arrivals(constant(100), 2*time.Second, 50)); n != 50 {
		t.Errorf("max 50: %d arrivals", n)
	}
	// Ramp from 5 to 100 over 10 s: (5+100)/2 × 10 = 525.
	if n := len(Arrivals(RampRate(100, 10*time.Second), 10*time.Second, 10000)); n < 520 || n > 530 {
		t.Errorf("ramp: %d arrivals, want ~525", n)
	}
	from, to := BurstWindow(50 * time.Second)
	if from != 10*time.Second || to != 40*time.Second {
		t.Errorf("burst window %v..%v", from, to)
	}
}

func TestPlans(t *testing.T) {
	for _, name := range ScenarioNames() {
		t.Run(name, func(t *testing.T) {
			cfg := Config{Scenario: name, Duration: 6 * time.Second, MaxRequests: 5000}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			ds := Plan(cfg, time.Now())
			if len(ds) == 0 || len(ds) > cfg.MaxRequests {
				t.Fatalf("%d deliveries", len(ds))
			}
			for i := 1; i < len(ds); i++ {
				if ds[i].At < ds[i-1].At || ds[i].At >= cfg.Duration {
					t.Fatalf("delivery %d at %v out of order or past the end", i, ds[i].At)
				}
			}
			switch name {
			case "dupstorm":
				n := map[*Event]int{}
				for _, d := range ds {
					n[d.Event]++
				}
				for e, c := range n {
					if c != DupCopies+1 {
						t.Fatalf("event %s sent %d times", e.ID, c)
					}
				}
			case "outoforder":
				inOrder := true
				last := map[string]time.Time{}
				for _, d := range ds {
					if d.Event.BusinessTime.Before(last[d.Event.EntityKey]) {
						inOrder = false
					}
					last[d.Event.EntityKey] = d.Event.BusinessTime
				}
				if inOrder {
					t.Fatal("every order's updates are in order")
				}
			case "large":
				for _, d := range ds[:10] {
					if n := len(d.Event.Body()); n != d.Event.Size {
						t.Fatalf("body %d bytes, want %d", n, d.Event.Size)
					}
				}
			}
		})
	}
	if err := (&Config{Scenario: "nope"}).Validate(); err == nil {
		t.Error("unknown scenario accepted")
	}
}

func TestFindKnee(t *testing.T) {
	build := func(lat func(sec int) int64) *Result {
		r := &Result{}
		for s := range 20 {
			w := Window{Offered: 10 * (s + 1), OK: 10 * (s + 1), Latency: newHist()}
			for range w.Offered {
				_ = w.Latency.RecordValue(lat(s))
			}
			r.Windows = append(r.Windows, w)
		}
		return r
	}
	spike := build(func(s int) int64 {
		if s == 7 {
			return 1_000_000
		}
		return 2_000
	})
	if k := FindKnee(spike); k.Found {
		t.Errorf("a one-second stall taken for the knee: %+v", k)
	}
	if st := Stalls(spike); len(st) != 1 || st[7] == "" {
		t.Errorf("stalls %v, want second 7", st)
	}
	knee := build(func(s int) int64 {
		if s >= 12 {
			return int64(s) * 100_000
		}
		return 2_000
	})
	if k := FindKnee(knee); !k.Found || k.Second != 12 || k.Offered != 130 {
		t.Errorf("knee %+v, want second 12 at 130/s", k)
	}
}

// TestSummaryOfferedRate: the offered rate is the schedule's, not the
// requests over the whole run. Before, it divided by the run's length,
// which includes waiting for the last answers: against a target taking 2s
// to answer, a 5/s schedule of 3s was printed as ~3 req/s offered.
func TestSummaryOfferedRate(t *testing.T) {
	srv, _ := slowTarget(t, 2*time.Second)
	r, err := NewRunner(Config{Target: srv.URL, Duration: 3 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.RunPlan(context.Background(), steadyPlan(5, 3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.OfferedRate(); got < 4.9 || got > 5.1 {
		t.Errorf("offered %.2f req/s, want 5", got)
	}
	if s := res.Summary(); !strings.Contains(s, "(5.0 req/s offered)") {
		t.Errorf("summary %q does not say 5.0 req/s offered", s)
	}
}

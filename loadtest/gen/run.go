package gen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, 1 µs to 10 min, 3 digits.
const (
	histMin    = 1
	histMax    = int64(10 * time.Minute / time.Microsecond)
	histDigits = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histDigits) }

// Window is one second of the run.
type Window struct {
	// Offered counts requests whose intended time falls in the second.
	Offered int
	// Completed and OK count answers (any / 2xx) that ended in the second.
	Completed, OK int
	// Latency holds the latencies of the requests intended in the second.
	Latency *hdrhistogram.Histogram
}

// Result is what a run measured.
type Result struct {
	Config     Config
	Start, End time.Time
	// Deliveries are the planned requests with their answers; Events the
	// distinct events they carried.
	Deliveries []*Delivery
	Events     []*Event
	// Latency is every answered request's latency, from its intended time.
	Latency *hdrhistogram.Histogram
	Windows []Window
	// Codes counts answers by status code (0: no answer).
	Codes map[int]int
	// Unexpected counts answers other than the expected one, retryable
	// ones excepted (5xx, 408, 429 and transport errors: those are
	// Retryable), and batch answers that refused a valid line (see
	// Delivery.Refused) whatever their code.
	Unexpected, Retryable int
	// Scrapes are the admin /metrics samples, one a second (empty when no
	// admin URL was given).
	Scrapes []Scrape
}

// Sent is the number of requests started.
func (r *Result) Sent() int {
	n := 0
	for _, c := range r.Codes {
		n += c
	}
	return n
}

// OfferedRate is the requests sent per second of the schedule: over
// Duration, or the seconds that had intended sends when the schedule ended
// sooner (-max-requests, an interrupted run). Not over End−Start, which
// includes waiting for the last answers (up to -timeout).
func (r *Result) OfferedRate() float64 {
	n := 0
	for i, w := range r.Windows {
		if w.Offered > 0 {
			n = i + 1
		}
	}
	span := time.Duration(n) * time.Second
	if d := r.Config.Duration; d > 0 && d < span {
		span = d
	}
	if span <= 0 {
		return 0
	}
	return float64(len(r.Deliveries)) / span.Seconds()
}

// AcceptedDeliveries counts the writes to the raw topic the answers
// confirm: 2xx'd webhooks plus accepted batch lines.
func (r *Result) AcceptedDeliveries() (accepted, ambiguous int) {
	for _, e := range r.Events {
		accepted += e.Accepted()
		ambiguous += e.Ambiguous()
	}
	return
}

// Runner runs a scenario against a target.
type Runner struct {
	cfg    Config
	client *http.Client
	// Scraper, when set, samples the admin metrics during the run.
	Scraper *Scraper

	mu      sync.Mutex
	res     *Result
	started time.Time
}

// NewRunner validates cfg and builds a runner. client may be nil.
func NewRunner(cfg Config, client *http.Client) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if client == nil {
		client = &http.Client{Transport: &http.Transport{
			MaxIdleConns: cfg.MaxInFlight, MaxIdleConnsPerHost: cfg.MaxInFlight,
			IdleConnTimeout: 30 * time.Second, DisableCompression: true,
		}}
	}
	return &Runner{cfg: cfg, client: client}, nil
}

// Run plans the scenario and sends it on schedule. It returns when every
// request has answered or timed out, or ctx is done (unsent requests are
// then dropped from the result). The run never outlasts Duration plus
// Timeout plus a second.
func (r *Runner) Run(ctx context.Context) (*Result, error) {
	start := time.Now()
	plan := Plan(r.cfg, start)
	if len(plan) == 0 {
		return nil, errors.New("gen: the scenario planned no request (rate or duration too small)")
	}
	return r.RunPlan(ctx, plan)
}

// RunPlan sends plan on schedule (see Run).
func (r *Runner) RunPlan(ctx context.Context, plan []*Delivery) (*Result, error) {
	last := plan[len(plan)-1].At
	ctx, cancel := context.WithTimeout(ctx, last+r.cfg.Timeout+time.Second)
	defer cancel()
	res := &Result{Config: r.cfg, Latency: newHist(), Codes: map[int]int{},
		Windows: make([]Window, int(last/time.Second)+1+int(r.cfg.Timeout/time.Second)+1)}
	for i := range res.Windows {
		res.Windows[i].Latency = newHist()
	}
	seen := map[*Event]bool{}
	for _, d := range plan {
		for _, e := range d.events() {
			if !seen[e] {
				seen[e] = true
				res.Events = append(res.Events, e)
			}
		}
	}
	r.res = res

	var stopScrape func() []Scrape
	r.started = time.Now()
	res.Start = r.started
	if r.Scraper != nil {
		r.Scraper.start = r.started
		stopScrape = r.Scraper.Every(time.Second)
	}
	sem := make(chan struct{}, r.cfg.MaxInFlight)
	var wg sync.WaitGroup
	timer := time.NewTimer(0)
	<-timer.C
schedule:
	for _, d := range plan {
		intended := r.started.Add(d.At)
		if wait := time.Until(intended); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				break schedule
			}
		}
		res.Deliveries = append(res.Deliveries, d)
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				r.finish(d, intended, 0, ctx.Err())
				return
			}
			defer func() { <-sem }()
			r.send(ctx, d, intended)
		}()
	}
	wg.Wait()
	res.End = time.Now()
	if stopScrape != nil {
		res.Scrapes = stopScrape()
	}
	return res, nil
}

func (d *Delivery) events() []*Event {
	if d.Event != nil {
		return []*Event{d.Event}
	}
	return d.Batch
}

// send builds, signs and posts one delivery; the clock for the signature is
// the actual send time.
func (r *Runner) send(ctx context.Context, d *Delivery, intended time.Time) {
	req, err := r.request(ctx, d, time.Now())
	if err != nil {
		r.finish(d, intended, 0, err)
		return
	}
	rctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	resp, err := r.client.Do(req.WithContext(rctx))
	if err != nil {
		r.finish(d, intended, 0, err)
		return
	}
	var body []byte
	if d.Batch != nil {
		body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	} else {
		_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	}
	resp.Body.Close()
	if err != nil {
		r.finish(d, intended, 0, err)
		return
	}
	if d.Batch != nil {
		d.Refused = recordBatch(d.Batch, resp.StatusCode, body)
	}
	r.finish(d, intended, resp.StatusCode, nil)
}

func (r *Runner) request(ctx context.Context, d *Delivery, now time.Time) (*http.Request, error) {
	target := strings.TrimRight(r.cfg.Target, "/")
	if d.Batch != nil {
		var buf bytes.Buffer
		for _, e := range d.Batch {
			buf.Write(e.Body())
			buf.WriteByte('\n')
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target+"/events/billing", &buf)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-ndjson")
		req.Header.Set("Authorization", "Bearer "+r.cfg.Secrets.BillingToken)
		req.Header.Set("X-Correlation-ID", d.Batch[0].ID+"-batch")
		return req, nil
	}
	e := d.Event
	body := e.Body()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target+"/webhooks/"+e.Source, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	e.Headers(req.Header)
	secret := r.cfg.Secrets.For(e.Kind)
	if d.BadSignature {
		secret = wrongSecret(e.Kind)
	}
	if err := Sign(e.Kind, secret, req.Header, body, e.ID, now); err != nil {
		return nil, err
	}
	return req, nil
}

// recordBatch counts each line's answer from the batch response and
// returns how many valid lines it refused: rejected, or given no result.
// Ingest gives no result to the line where it stopped reading and those
// after it (pkg/ingest handleBatch): they were not read, so nothing of
// them was written, and they count as rejected. Without per-line results,
// every line gets the answer's code, except 207, which says some lines
// were not written without saying which: those are ambiguous.
func recordBatch(lines []*Event, status int, body []byte) (refused int) {
	var ans struct {
		Results []struct {
			Line   int    `json:"line"`
			Status string `json:"status"`
		} `json:"results"`
	}
	if (status == http.StatusOK || status == http.StatusMultiStatus || status == http.StatusServiceUnavailable) &&
		json.Unmarshal(body, &ans) == nil && len(ans.Results) > 0 {
		answered := make([]bool, len(lines))
		for _, res := range ans.Results {
			if res.Line < 1 || res.Line > len(lines) || answered[res.Line-1] {
				continue
			}
			answered[res.Line-1] = true
			e := lines[res.Line-1]
			switch res.Status {
			case "accepted":
				e.record(http.StatusAccepted)
			case "rejected":
				e.record(http.StatusBadRequest)
				if !e.Invalid {
					refused++
				}
			default:
				e.record(http.StatusServiceUnavailable)
			}
		}
		for i, e := range lines {
			if !answered[i] {
				e.record(http.StatusBadRequest)
				if !e.Invalid {
					refused++
				}
			}
		}
		return refused
	}
	if status == http.StatusMultiStatus {
		status = 0
	}
	for _, e := range lines {
		e.record(status)
	}
	return 0
}

func (r *Runner) finish(d *Delivery, intended time.Time, status int, err error) {
	now := time.Now()
	d.Status = status
	if err != nil {
		d.Err = err.Error()
	}
	d.Latency = now.Sub(intended)
	d.Done = now.Sub(r.started)
	if d.Event != nil {
		d.Event.record(status)
	} else if status == 0 {
		for _, e := range d.Batch {
			e.record(0)
		}
	}
	us := max(d.Latency.Microseconds(), histMin)
	r.mu.Lock()
	defer r.mu.Unlock()
	res := r.res
	res.Codes[status]++
	switch {
	case d.Refused > 0:
		res.Unexpected++ // a valid event refused, whatever the code
	case d.expects(status):
	case retryable(status):
		res.Retryable++
	default:
		res.Unexpected++
	}
	_ = res.Latency.RecordValue(min(us, histMax))
	if w := int(d.At / time.Second); w < len(res.Windows) {
		res.Windows[w].Offered++
		_ = res.Windows[w].Latency.RecordValue(min(us, histMax))
	}
	if w := int(d.Done / time.Second); w < len(res.Windows) {
		res.Windows[w].Completed++
		if status >= 200 && status < 300 {
			res.Windows[w].OK++
		}
	}
}

// expects says whether status is the answer the delivery expects. A
// webhook expecting a 2xx takes any 2xx; a batch takes exactly its code,
// since its 2xx codes differ in what they say of the lines (200: every
// line durable; 207: some refused or not read).
func (d *Delivery) expects(status int) bool {
	if d.Batch == nil && d.Expect >= 200 && d.Expect < 300 {
		return status >= 200 && status < 300
	}
	return status == d.Expect
}

// retryable says whether an answer leaves the sender to retry: no answer
// (a transport error or timeout), 5xx, 408 (the body did not arrive in
// time; nothing was written) and 429.
func retryable(status int) bool {
	return status == 0 || status >= 500 || status == http.StatusRequestTimeout || status == http.StatusTooManyRequests
}

// Summary is a one-screen text summary of the answers.
func (r *Result) Summary() string {
	var b strings.Builder
	el := r.End.Sub(r.Start).Seconds()
	fmt.Fprintf(&b, "scenario %s: %d requests in %.1fs (%.1f req/s offered), %d events\n",
		r.Config.Scenario, r.Sent(), el, r.OfferedRate(), len(r.Events))
	fmt.Fprintf(&b, "answers: %v (unexpected %d, retryable/none %d)\n", r.Codes, r.Unexpected, r.Retryable)
	h := r.Latency
	fmt.Fprintf(&b, "latency from intended send time: p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
		us(h.ValueAtQuantile(50)), us(h.ValueAtQuantile(90)), us(h.ValueAtQuantile(99)),
		us(h.ValueAtQuantile(99.9)), us(h.Max()))
	if st := Stalls(r); len(st) > 0 {
		fmt.Fprintf(&b, "slow seconds (p99 over 4x the early baseline, or 2xx under 90%% of offered): %s\n", fmtStalls(st))
	}
	if r.Config.Scenario == "ramp" {
		if k := FindKnee(r); k.Found {
			fmt.Fprintf(&b, "knee: at %ds, offered %.0f req/s (%s)\n", k.Second, k.Offered, k.Reason)
		} else {
			b.WriteString("knee: not reached (raise -rate)\n")
		}
	}
	return b.String()
}

func us(v int64) time.Duration {
	return (time.Duration(v) * time.Microsecond).Round(10 * time.Microsecond)
}

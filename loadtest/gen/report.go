package gen

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Knee is where the ramp stopped keeping up.
type Knee struct {
	Found  bool
	Second int
	// Offered is the offered rate (req/s) in that second.
	Offered float64
	Reason  string
}

// FindKnee returns the start of the first run of KneeSeconds seconds in a
// row that are all bad: p99 above four times the baseline (the median p99
// of the first fifth of the run, and at least 50 ms more), or 2xx answers
// under 90% of the offered rate. A shorter bad stretch is a stall (see
// Stalls), not the knee.
func FindKnee(r *Result) Knee {
	bad := badSeconds(r)
	run := 0
	for i, b := range bad {
		if b == "" {
			run = 0
			continue
		}
		run++
		if run == KneeSeconds {
			s := i - KneeSeconds + 1
			return Knee{Found: true, Second: s, Offered: float64(r.Windows[s].Offered), Reason: bad[s]}
		}
	}
	return Knee{}
}

// KneeSeconds is how long latency or throughput must stay bad to be the knee.
const KneeSeconds = 3

// Stalls lists the bad seconds (see FindKnee) with why.
func Stalls(r *Result) map[int]string {
	out := map[int]string{}
	for i, b := range badSeconds(r) {
		if b != "" {
			out[i] = b
		}
	}
	return out
}

// badSeconds says for each second with offered requests why it is bad
// ("" when it is not).
func badSeconds(r *Result) []string {
	n := 0
	for i, w := range r.Windows {
		if w.Offered > 0 {
			n = i + 1
		}
	}
	out := make([]string, n)
	var base []float64
	for _, w := range r.Windows[:max(n/5, 1)] {
		if w.Latency.TotalCount() > 0 {
			base = append(base, float64(w.Latency.ValueAtQuantile(99)))
		}
	}
	if len(base) == 0 {
		return out
	}
	sort.Float64s(base)
	limit := max(4*base[len(base)/2], base[len(base)/2]+50_000)
	for i := 0; i < n; i++ {
		w := r.Windows[i]
		if w.Offered == 0 {
			continue
		}
		switch p99 := float64(w.Latency.ValueAtQuantile(99)); {
		case p99 > limit:
			out[i] = fmt.Sprintf("p99 %s > %s", us(int64(p99)), us(int64(limit)))
		case float64(w.OK) < 0.9*float64(w.Offered) && i+1 < n:
			out[i] = fmt.Sprintf("2xx/s %d < 90%% of offered %d", w.OK, w.Offered)
		}
	}
	return out
}

// Report is the HTML report and its PNGs.
type Report struct {
	Dir  string
	HTML string // path of index.html
	PNGs []string
}

type chart struct {
	Title, File, Data string
}

// WriteReport writes dir/index.html (PNGs inline as base64) and the PNGs
// beside it.
func WriteReport(dir string, r *Result, v *Verdict) (*Report, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	rep := &Report{Dir: dir, HTML: filepath.Join(dir, "index.html")}
	var charts []chart
	for _, c := range []struct {
		title, file string
		build       func(*Result) (*plot.Plot, error)
	}{
		{"Throughput (per second)", "throughput.png", plotThroughput},
		{"Ingest latency from intended send time, by intended second", "latency.png", plotLatency},
		{"Processing and end-to-end latency (scraped /metrics, per interval)", "e2e.png", plotE2E},
		{"Retry, DLQ and invalid depth, consumer lag (scraped /metrics)", "depth.png", plotDepth},
	} {
		p, err := c.build(r)
		if err != nil {
			return nil, fmt.Errorf("gen: %s: %w", c.file, err)
		}
		wt, err := p.WriterTo(9*vg.Inch, 4*vg.Inch, "png")
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		if _, err := wt.WriteTo(&buf); err != nil {
			return nil, err
		}
		path := filepath.Join(dir, c.file)
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			return nil, err
		}
		rep.PNGs = append(rep.PNGs, path)
		charts = append(charts, chart{Title: c.title, File: c.file, Data: base64.StdEncoding.EncodeToString(buf.Bytes())})
	}
	var html bytes.Buffer
	if err := reportTmpl.Execute(&html, reportData(r, v, charts)); err != nil {
		return nil, err
	}
	return rep, os.WriteFile(rep.HTML, html.Bytes(), 0o644)
}

type row struct{ K, V string }

func reportData(r *Result, v *Verdict, charts []chart) map[string]any {
	h := r.Latency
	el := r.End.Sub(r.Start).Seconds()
	acc, amb := r.AcceptedDeliveries()
	summary := []row{
		{"scenario", fmt.Sprintf("%s — %s", r.Config.Scenario, Scenarios[r.Config.Scenario].Description)},
		{"target", r.Config.Target},
		{"started", r.Start.UTC().Format(time.RFC3339)},
		{"schedule", fmt.Sprintf("rate %.0f/s for %s (max %d requests), run id %s", effectiveRate(r.Config), r.Config.Duration, r.Config.MaxRequests, r.Config.RunID)},
		{"requests", fmt.Sprintf("%d in %.1fs (last answers included), %.1f req/s offered; %d distinct events", r.Sent(), el, r.OfferedRate(), len(r.Events))},
		{"answers", fmt.Sprintf("%v; unexpected %d; retryable or unanswered %d", r.Codes, r.Unexpected, r.Retryable)},
		{"raw writes confirmed", fmt.Sprintf("%d (+%d unanswered)", acc, amb)},
	}
	var pct []row
	for _, q := range []float64{50, 90, 95, 99, 99.9, 99.99, 100} {
		pct = append(pct, row{fmt.Sprintf("p%g", q), us(h.ValueAtQuantile(q)).String()})
	}
	if len(r.Scrapes) >= 2 {
		d := r.Scrapes[len(r.Scrapes)-1].E2E.Sub(r.Scrapes[0].E2E)
		p := r.Scrapes[len(r.Scrapes)-1].Processing.Sub(r.Scrapes[0].Processing)
		summary = append(summary,
			row{"processing latency (during run)", fmt.Sprintf("p50 %s p99 %s (%d events)", secs(p.Quantile(.5)), secs(p.Quantile(.99)), int(p.Count()))},
			row{"end-to-end latency (during run)", fmt.Sprintf("p50 %s p99 %s (%d events)", secs(d.Quantile(.5)), secs(d.Quantile(.99)), int(d.Count()))})
	}
	if st := Stalls(r); len(st) > 0 {
		summary = append(summary, row{"slow seconds", fmtStalls(st)})
	}
	if r.Config.Scenario == "ramp" {
		if k := FindKnee(r); k.Found {
			summary = append(summary, row{"knee", fmt.Sprintf("at %ds, offered %.0f req/s: %s", k.Second, k.Offered, k.Reason)})
		} else {
			summary = append(summary, row{"knee", "not reached: raise -rate"})
		}
	}
	return map[string]any{"Summary": summary, "Percentiles": pct, "Verdict": v, "Charts": charts}
}

func effectiveRate(c Config) float64 {
	if c.Rate == 0 {
		return Scenarios[c.Scenario].DefaultRate
	}
	return c.Rate
}

func secs(s float64) string {
	if math.IsNaN(s) {
		return "n/a"
	}
	return time.Duration(s * float64(time.Second)).Round(100 * time.Microsecond).String()
}

var reportTmpl = template.Must(template.New("report").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Inlet load test: {{(index .Summary 0).V}}</title>
<style>body{font-family:sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}
.pass{color:#070;font-weight:bold}.fail{color:#b00;font-weight:bold}.skip{color:#777}img{max-width:100%}</style></head><body>
<h1>Inlet load test</h1>
{{with .Verdict}}<h2>Verdict: {{if .Pass}}<span class="pass">PASS</span>{{else}}<span class="fail">FAIL</span>{{end}}{{with .Skipped}} ({{.}} checks not made){{end}}</h2>
<table><tr><th></th><th>check</th><th>detail</th></tr>
{{range .Checks}}<tr><td class="{{if .Skipped}}skip{{else if .Pass}}pass{{else}}fail{{end}}">{{if .Skipped}}not checked{{else if .Pass}}ok{{else}}FAIL{{end}}</td><td>{{.Name}}</td><td>{{.Detail}}</td></tr>
{{end}}</table>{{else}}<h2>Verdict: not verified</h2>{{end}}
<h2>Run</h2><table>{{range .Summary}}<tr><th>{{.K}}</th><td>{{.V}}</td></tr>{{end}}</table>
<h2>Ingest latency (HDR histogram, from the intended send time: coordinated-omission safe)</h2>
<table><tr>{{range .Percentiles}}<th>{{.K}}</th>{{end}}</tr><tr>{{range .Percentiles}}<td>{{.V}}</td>{{end}}</tr></table>
{{range .Charts}}<h2>{{.Title}}</h2><img alt="{{.File}}" src="data:image/png;base64,{{.Data}}">
{{end}}</body></html>
`))

func newPlot(title, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "seconds since start"
	p.Y.Label.Text = y
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	return p
}

func addLines(p *plot.Plot, series ...any) error {
	if err := plotutil.AddLines(p, series...); err != nil {
		return err
	}
	return nil
}

func plotThroughput(r *Result) (*plot.Plot, error) {
	p := newPlot("throughput", "requests/s")
	off, done, ok := plotter.XYs{}, plotter.XYs{}, plotter.XYs{}
	for i, w := range r.Windows {
		x := float64(i)
		off = append(off, plotter.XY{X: x, Y: float64(w.Offered)})
		done = append(done, plotter.XY{X: x, Y: float64(w.Completed)})
		ok = append(ok, plotter.XY{X: x, Y: float64(w.OK)})
	}
	return p, addLines(p, "offered (intended)", off, "answered", done, "2xx", ok)
}

func plotLatency(r *Result) (*plot.Plot, error) {
	p := newPlot("ingest latency", "milliseconds")
	series := map[float64]plotter.XYs{50: {}, 90: {}, 99: {}, 100: {}}
	for i, w := range r.Windows {
		if w.Latency.TotalCount() == 0 {
			continue
		}
		for q := range series {
			series[q] = append(series[q], plotter.XY{X: float64(i), Y: float64(w.Latency.ValueAtQuantile(q)) / 1000})
		}
	}
	if len(series[50]) == 0 {
		return p, nil
	}
	return p, addLines(p, "p50", series[50], "p90", series[90], "p99", series[99], "max", series[100])
}

func plotE2E(r *Result) (*plot.Plot, error) {
	p := newPlot("processing and end-to-end latency", "milliseconds")
	e50, e99, p50, p99 := plotter.XYs{}, plotter.XYs{}, plotter.XYs{}, plotter.XYs{}
	for i := 1; i < len(r.Scrapes); i++ {
		x := r.Scrapes[i].At.Seconds()
		d := r.Scrapes[i].E2E.Sub(r.Scrapes[i-1].E2E)
		if d.Count() > 0 {
			e50 = append(e50, plotter.XY{X: x, Y: d.Quantile(.5) * 1000})
			e99 = append(e99, plotter.XY{X: x, Y: d.Quantile(.99) * 1000})
		}
		pd := r.Scrapes[i].Processing.Sub(r.Scrapes[i-1].Processing)
		if pd.Count() > 0 {
			p50 = append(p50, plotter.XY{X: x, Y: pd.Quantile(.5) * 1000})
			p99 = append(p99, plotter.XY{X: x, Y: pd.Quantile(.99) * 1000})
		}
	}
	if len(e50)+len(p50) == 0 {
		p.Title.Text += " (no samples: no admin URL, or nothing processed)"
		return p, nil
	}
	return p, addLines(p, "end-to-end p50", e50, "end-to-end p99", e99, "processing p50", p50, "processing p99", p99)
}

func plotDepth(r *Result) (*plot.Plot, error) {
	p := newPlot("queue depths", "records")
	retry, dlq, inv, lag := plotter.XYs{}, plotter.XYs{}, plotter.XYs{}, plotter.XYs{}
	for _, s := range r.Scrapes {
		x := s.At.Seconds()
		var rd float64
		for _, v := range s.RetryDepth {
			rd += v
		}
		retry = append(retry, plotter.XY{X: x, Y: rd})
		dlq = append(dlq, plotter.XY{X: x, Y: s.DLQDepth})
		inv = append(inv, plotter.XY{X: x, Y: s.Invalid})
		lag = append(lag, plotter.XY{X: x, Y: s.Lag})
	}
	if len(retry) == 0 {
		p.Title.Text += " (no samples: no admin URL)"
		return p, nil
	}
	if err := addLines(p, "retry (all tiers)", retry, "dlq", dlq, "invalid", inv, "consumer lag", lag); err != nil {
		return nil, err
	}
	p.Y.Min = 0
	return p, nil
}

// fmtStalls lists the bad seconds in order.
func fmtStalls(st map[int]string) string {
	secs := make([]int, 0, len(st))
	for s := range st {
		secs = append(secs, s)
	}
	sort.Ints(secs)
	var parts []string
	for _, s := range secs {
		parts = append(parts, fmt.Sprintf("%ds: %s", s, st[s]))
	}
	return strings.Join(parts, "; ")
}

package gen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sample is one Prometheus text-format sample.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// ParseMetrics reads the Prometheus text exposition format (comments and
// timestamps ignored).
func ParseMetrics(r io.Reader) ([]Sample, error) {
	var out []Sample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s := Sample{Labels: map[string]string{}}
		rest := line
		if i := strings.IndexAny(line, "{ "); i < 0 {
			return nil, fmt.Errorf("gen: metrics line %q", line)
		} else {
			s.Name, rest = line[:i], line[i:]
		}
		if rest[0] == '{' {
			rest = rest[1:]
			for {
				rest = strings.TrimLeft(rest, ", ")
				if rest == "" {
					return nil, fmt.Errorf("gen: metrics line %q: unterminated labels", line)
				}
				if rest[0] == '}' {
					rest = rest[1:]
					break
				}
				eq := strings.IndexByte(rest, '=')
				if eq < 0 || eq+1 >= len(rest) || rest[eq+1] != '"' {
					return nil, fmt.Errorf("gen: metrics line %q: bad label", line)
				}
				name := rest[:eq]
				rest = rest[eq+2:]
				var val strings.Builder
				closed := false
				for i := 0; i < len(rest); i++ {
					c := rest[i]
					if c == '\\' && i+1 < len(rest) {
						i++
						switch rest[i] {
						case 'n':
							val.WriteByte('\n')
						default:
							val.WriteByte(rest[i])
						}
						continue
					}
					if c == '"' {
						rest, closed = rest[i+1:], true
						break
					}
					val.WriteByte(c)
				}
				if !closed {
					return nil, fmt.Errorf("gen: metrics line %q: unterminated label value", line)
				}
				s.Labels[name] = val.String()
			}
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return nil, fmt.Errorf("gen: metrics line %q: no value", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("gen: metrics line %q: %v", line, err)
		}
		s.Value = v
		out = append(out, s)
	}
	return out, sc.Err()
}

// Outcomes are the final outcomes of inlet_events_total ("retried" is on
// the way to one of them).
var Outcomes = []string{"processed", "duplicate", "stale", "invalid", "dlq"}

// Scrape is the processor's state at one moment.
type Scrape struct {
	// At is since the scraper started.
	At time.Duration
	// Outcomes sums inlet_events_total by outcome over the sources.
	Outcomes map[string]float64
	// RetryDepth is inlet_retry_depth by tier; DLQDepth and InvalidDepth
	// the depth gauges; Lag inlet_consumer_lag summed over topics.
	RetryDepth          map[string]float64
	DLQDepth, Invalid   float64
	Lag                 float64
	E2E, Processing     Buckets
	IngestAccepted, Err float64
}

// Final sums the final outcomes.
func (s Scrape) Final() float64 {
	var n float64
	for _, o := range Outcomes {
		n += s.Outcomes[o]
	}
	return n
}

// Buckets is a cumulative Prometheus histogram summed over label sets:
// upper bound → count.
type Buckets map[float64]float64

// Sub returns b − a, bucket by bucket.
func (b Buckets) Sub(a Buckets) Buckets {
	out := Buckets{}
	for le, v := range b {
		out[le] = v - a[le]
	}
	return out
}

// Count is the +Inf bucket.
func (b Buckets) Count() float64 { return b[math.Inf(1)] }

// Quantile estimates the q-quantile (0..1) by linear interpolation within
// the bucket, as PromQL's histogram_quantile does. NaN when empty.
func (b Buckets) Quantile(q float64) float64 {
	les := make([]float64, 0, len(b))
	for le := range b {
		les = append(les, le)
	}
	sort.Float64s(les)
	total := b.Count()
	if total <= 0 || len(les) == 0 {
		return math.NaN()
	}
	rank := q * total
	prevLe, prevC := 0.0, 0.0
	for _, le := range les {
		c := b[le]
		if c >= rank {
			if math.IsInf(le, 1) {
				return prevLe // above the highest finite bound
			}
			if c == prevC {
				return le
			}
			return prevLe + (le-prevLe)*(rank-prevC)/(c-prevC)
		}
		prevLe, prevC = le, c
	}
	return prevLe
}

// NewScrape folds samples into a Scrape.
func NewScrape(samples []Sample) Scrape {
	s := Scrape{Outcomes: map[string]float64{}, RetryDepth: map[string]float64{}, E2E: Buckets{}, Processing: Buckets{}}
	for _, m := range samples {
		switch m.Name {
		case "inlet_events_total":
			s.Outcomes[m.Labels["outcome"]] += m.Value
		case "inlet_retry_depth":
			s.RetryDepth[m.Labels["tier"]] += m.Value
		case "inlet_dlq_depth":
			s.DLQDepth += m.Value
		case "inlet_invalid_depth":
			s.Invalid += m.Value
		case "inlet_consumer_lag":
			s.Lag += m.Value
		case "inlet_end_to_end_latency_seconds_bucket", "inlet_processing_latency_seconds_bucket":
			le, err := strconv.ParseFloat(m.Labels["le"], 64)
			if err != nil {
				continue
			}
			if strings.HasPrefix(m.Name, "inlet_end") {
				s.E2E[le] += m.Value
			} else {
				s.Processing[le] += m.Value
			}
		case "inlet_ingest_requests_total":
			if m.Labels["outcome"] == "accepted" {
				s.IngestAccepted += m.Value
			}
		}
	}
	return s
}

// Scraper reads an admin /metrics endpoint.
type Scraper struct {
	URL    string // the admin base URL
	Client *http.Client
	start  time.Time
}

// NewScraper scrapes adminURL + "/metrics".
func NewScraper(adminURL string) *Scraper {
	return &Scraper{URL: strings.TrimRight(adminURL, "/") + "/metrics", Client: &http.Client{Timeout: 5 * time.Second}, start: time.Now()}
}

// Scrape reads the endpoint once. Cancelling ctx abandons the request.
func (s *Scraper) Scrape(ctx context.Context) (Scrape, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL, nil)
	if err != nil {
		return Scrape{}, err
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		return Scrape{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Scrape{}, fmt.Errorf("gen: %s answered %s", s.URL, resp.Status)
	}
	samples, err := ParseMetrics(resp.Body)
	if err != nil {
		return Scrape{}, err
	}
	sc := NewScrape(samples)
	sc.At = time.Since(s.start)
	return sc, nil
}

// Every scrapes every d in a goroutine until the returned stop is called;
// stop returns the samples (failed scrapes are skipped).
func (s *Scraper) Every(d time.Duration) (stop func() []Scrape) {
	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu  sync.Mutex
		out []Scrape
		wg  sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			if sc, err := s.Scrape(ctx); err == nil {
				mu.Lock()
				out = append(out, sc)
				mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() []Scrape {
		cancel()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return out
	}
}

package gen

import (
	"math/rand/v2"
	"sort"
	"time"
)

// Delivery is one planned request and, after the run, its answer.
type Delivery struct {
	// At is the intended send time, from the start of the run.
	At time.Duration
	// Event is the delivered event; Batch holds the lines of an NDJSON
	// batch instead.
	Event *Event
	Batch []*Event
	// BadSignature signs with a wrong secret (expect 401).
	BadSignature bool
	// Expect is the expected status: 202 for a webhook (any 2xx will do),
	// 200 for a batch of valid lines (exactly), 401 for a bad signature,
	// 413 for a body over the limit.
	Expect int
	// Refused counts the batch's valid lines the answer rejected or left
	// without a result; any makes the answer unexpected.
	Refused int

	// Status is the answer's code; 0 when none came (Err says why).
	Status int
	Err    string
	// Latency is from the intended send time to the end of the answer.
	Latency time.Duration
	// Done is when the answer ended, from the start of the run.
	Done time.Duration
}

// Scenario plans a run's deliveries.
type Scenario struct {
	Name        string
	Description string
	// DefaultRate is used when Config.Rate is 0.
	DefaultRate float64
	plan        func(p *planner) []*Delivery
}

// Scenarios are the scenarios by name; the k6 scripts in loadtest/k6 have
// the same ones.
var Scenarios = map[string]Scenario{
	"steady":     {"steady", "constant arrival rate, valid events of every provider", 100, planSteady},
	"ramp":       {"ramp", "arrival rate ramping linearly from rate/20 to rate, to find the knee", 400, planRamp},
	"burst":      {"burst", "base rate with a 10x burst for 30s (scaled down for short runs)", 50, planBurst},
	"dupstorm":   {"dupstorm", "each event sent 10x at once and once more later; one output each", 110, planDupStorm},
	"outoforder": {"outoforder", "5 updates per Shopify order delivered in shuffled updated_at order; newest must win", 100, planOutOfOrder},
	"mix":        {"mix", "provider mix plus NDJSON batches, 5% invalid payloads, 1% bad signatures", 100, planMix},
	"large":      {"large", "bodies near the body limit, some exactly at it, some 1 byte over (413)", 10, planLarge},
}

// ScenarioNames lists the scenarios, sorted.
func ScenarioNames() []string {
	names := make([]string, 0, len(Scenarios))
	for n := range Scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// planner carries what the plan functions need.
type planner struct {
	rate      float64
	dur       time.Duration
	max       int
	limit     int
	start     time.Time
	runID     string
	orderBase int64
	seq       int64
	rng       *rand.Rand
}

// Plan returns the deliveries of cfg's scenario, sorted by intended time,
// at most cfg.MaxRequests. cfg must have been validated.
func Plan(cfg Config, start time.Time) []*Delivery {
	sc := Scenarios[cfg.Scenario]
	p := &planner{
		rate: cfg.Rate, dur: cfg.Duration, max: cfg.MaxRequests, limit: cfg.BodyLimit,
		start: start, runID: cfg.RunID,
		orderBase: (start.UnixMilli() % 1_000_000_000) * 1_000_000,
		rng:       rand.New(rand.NewPCG(uint64(cfg.Seed), 0x1d1e7)),
	}
	if p.rate == 0 {
		p.rate = sc.DefaultRate
	}
	ds := sc.plan(p)
	sort.SliceStable(ds, func(i, j int) bool { return ds[i].At < ds[j].At })
	if len(ds) > p.max {
		ds = ds[:p.max]
	}
	return ds
}

// Arrivals returns the intended times of an arrival-rate profile rate(t)
// (requests per second) over d, at most max of them: the i-th arrival is
// where the integral of the rate reaches i.
func Arrivals(rate func(t time.Duration) float64, d time.Duration, max int) []time.Duration {
	const step = time.Millisecond
	var (
		out []time.Duration
		acc float64
	)
	for t := time.Duration(0); t < d && len(out) < max; t += step {
		acc += rate(t) * step.Seconds()
		for acc >= 1-1e-9 && len(out) < max {
			acc--
			out = append(out, t)
		}
	}
	return out
}

func constant(r float64) func(time.Duration) float64 { return func(time.Duration) float64 { return r } }

var validKinds = []string{KindStripe, KindGitHub, KindShopify, KindStandardWebhooks}

// single is one valid webhook of a kind, sent once at t.
func (p *planner) single(kind string, t time.Duration) *Delivery {
	return &Delivery{At: t, Event: p.newEvent(kind, p.start.Add(t)), Expect: 202}
}

func (p *planner) rotate(times []time.Duration) []*Delivery {
	ds := make([]*Delivery, 0, len(times))
	for i, t := range times {
		ds = append(ds, p.single(validKinds[i%len(validKinds)], t))
	}
	return ds
}

func planSteady(p *planner) []*Delivery {
	return p.rotate(Arrivals(constant(p.rate), p.dur, p.max))
}

// RampRate is the ramp scenario's profile: rate/20 rising linearly to rate.
func RampRate(rate float64, d time.Duration) func(time.Duration) float64 {
	lo := rate / 20
	return func(t time.Duration) float64 { return lo + (rate-lo)*t.Seconds()/d.Seconds() }
}

func planRamp(p *planner) []*Delivery {
	return p.rotate(Arrivals(RampRate(p.rate, p.dur), p.dur, p.max))
}

// BurstWindow is when the burst scenario sends 10x: 30s starting at a fifth
// of the run, shortened to three fifths of runs shorter than 50s.
func BurstWindow(d time.Duration) (from, to time.Duration) {
	from = d / 5
	return from, from + min(30*time.Second, d*3/5)
}

func planBurst(p *planner) []*Delivery {
	from, to := BurstWindow(p.dur)
	rate := func(t time.Duration) float64 {
		if t >= from && t < to {
			return 10 * p.rate
		}
		return p.rate
	}
	return p.rotate(Arrivals(rate, p.dur, p.max))
}

// DupCopies is how many times the duplicate storm sends an event at once;
// one more copy follows later.
const DupCopies = 10

func planDupStorm(p *planner) []*Delivery {
	later := min(10*time.Second, p.dur/3)
	var ds []*Delivery
	kinds := []string{KindStripe, KindShopify, KindStandardWebhooks, KindGitHub}
	for i, t := range Arrivals(constant(p.rate/(DupCopies+1)), p.dur-later, p.max/(DupCopies+1)) {
		e := p.newEvent(kinds[i%len(kinds)], p.start.Add(t))
		for range DupCopies {
			ds = append(ds, &Delivery{At: t, Event: e, Expect: 202})
		}
		ds = append(ds, &Delivery{At: t + later, Event: e, Expect: 202})
	}
	return ds
}

// OutOfOrderUpdates is how many updates each order gets in outoforder.
const OutOfOrderUpdates = 5

func planOutOfOrder(p *planner) []*Delivery {
	times := Arrivals(constant(p.rate), p.dur, p.max)
	var ds []*Delivery
	for i := 0; i+OutOfOrderUpdates <= len(times); i += OutOfOrderUpdates {
		first := p.newEvent(KindShopify, p.start)
		order := first.EntityKey
		// Updates 1s apart in business time, all before the first send.
		base := p.start.Add(times[i]).Truncate(time.Second).Add(-OutOfOrderUpdates * time.Second)
		evs := []*Event{first}
		for range OutOfOrderUpdates - 1 {
			e := p.newEvent(KindShopify, p.start)
			evs = append(evs, e)
		}
		for k, e := range evs {
			e.EntityKey = order
			e.BusinessTime = base.Add(time.Duration(k) * time.Second)
			e.setNaturalKey()
		}
		p.rng.Shuffle(len(evs), func(a, b int) { evs[a], evs[b] = evs[b], evs[a] })
		for k, e := range evs {
			ds = append(ds, &Delivery{At: times[i+k], Event: e, Expect: 202})
		}
	}
	return ds
}

// Mix shares: of the requests, BatchShare are NDJSON batches of BatchLines
// lines; of the events, InvalidShare carry a payload that fails its
// contract and BadSignatureShare of webhooks are signed with a wrong secret.
const (
	BatchShare        = 0.05
	BatchLines        = 5
	InvalidShare      = 0.05
	BadSignatureShare = 0.01
)

func planMix(p *planner) []*Delivery {
	var ds []*Delivery
	for _, t := range Arrivals(constant(p.rate), p.dur, p.max) {
		bt := p.start.Add(t)
		if p.rng.Float64() < BatchShare {
			d := &Delivery{At: t, Expect: 200}
			for range BatchLines {
				e := p.newEvent(KindStandardWebhooks, bt)
				e.Batch = true
				d.Batch = append(d.Batch, e)
			}
			ds = append(ds, d)
			continue
		}
		e := p.newEvent(validKinds[p.rng.IntN(len(validKinds))], bt)
		d := &Delivery{At: t, Event: e, Expect: 202}
		switch r := p.rng.Float64(); {
		case r < BadSignatureShare:
			d.BadSignature, d.Expect = true, 401
		case r < BadSignatureShare+InvalidShare:
			e.Invalid, e.EntityKey = true, ""
		}
		ds = append(ds, d)
	}
	return ds
}

func planLarge(p *planner) []*Delivery {
	var ds []*Delivery
	for i, t := range Arrivals(constant(p.rate), p.dur, p.max) {
		e := p.newEvent(KindShopify, p.start.Add(t))
		d := &Delivery{At: t, Event: e, Expect: 202}
		switch i % 10 {
		case 4:
			e.Size = p.limit // exactly the limit is accepted
		case 9:
			e.Size = p.limit + 1
			d.Expect = 413
		default:
			e.Size = p.limit - 512 - p.rng.IntN(4096)
		}
		ds = append(ds, d)
	}
	return ds
}

package gen

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/testenv"
)

// world is a synthetic run: three single events, one order with two
// updates, one planted invalid event, one rejected event; all answered as
// planned, with the observations of a correct system.
func world() ([]*Event, Observed) {
	now := time.Unix(1_760_000_000, 0)
	p := &planner{runID: "v", orderBase: 100, start: now}
	var evs []*Event
	for _, k := range []string{KindStripe, KindGitHub, KindStandardWebhooks} {
		e := p.newEvent(k, now)
		e.record(202)
		evs = append(evs, e)
	}
	dup := evs[0]
	dup.record(202) // delivered twice
	older, newer := p.newEvent(KindShopify, now), p.newEvent(KindShopify, now.Add(time.Second))
	newer.EntityKey = older.EntityKey
	newer.setNaturalKey()
	newer.record(202)
	older.record(202) // arrived last: stale
	inv := p.newEvent(KindShopify, now)
	inv.Invalid, inv.EntityKey = true, ""
	inv.record(202)
	rej := p.newEvent(KindGitHub, now)
	rej.record(401)
	evs = append(evs, older, newer, inv, rej)

	obs := Observed{RawKeys: map[string]int{}, Processed: map[string]int{}, StateLast: map[string]string{}, Settled: true}
	for _, e := range evs {
		if e.Accepted() > 0 {
			obs.RawKeys[e.RawKey()] += e.Accepted()
		}
	}
	for _, e := range evs[:3] {
		obs.Processed[e.EntityKey] = 1
		obs.StateLast[e.EntityKey] = e.CorrelationID()
	}
	obs.Processed[newer.EntityKey] = 1
	obs.StateLast[newer.EntityKey] = newer.CorrelationID()
	before := Scrape{Outcomes: map[string]float64{"processed": 10}}
	after := Scrape{Outcomes: map[string]float64{"processed": 14, "duplicate": 1, "stale": 1, "invalid": 1}}
	obs.Before, obs.After = &before, &after
	return evs, obs
}

func TestCheckOutcome(t *testing.T) {
	t.Run("correct system passes", func(t *testing.T) {
		evs, obs := world()
		v := CheckOutcome(evs, 0, obs)
		if !v.Pass {
			t.Fatalf("want PASS:\n%s", v)
		}
		if v.AcceptedDeliveries != 7 || v.AcceptedEvents != 6 {
			t.Errorf("accepted deliveries %d events %d", v.AcceptedDeliveries, v.AcceptedEvents)
		}
	})
	for _, tc := range []struct {
		name, check string
		plant       func(evs []*Event, obs *Observed)
		count       func(*Verdict) int
	}{
		{"lost event", "no 2xx lost", func(evs []*Event, obs *Observed) { delete(obs.RawKeys, evs[1].RawKey()) },
			func(v *Verdict) int { return v.Lost }},
		{"duplicate output", "duplicates → one output", func(evs []*Event, obs *Observed) { obs.Processed[evs[0].EntityKey] = 2 },
			func(v *Verdict) int { return v.DuplicateOutputs }},
		{"rejected but written", "rejected not written", func(evs []*Event, obs *Observed) { obs.RawKeys[evs[6].RawKey()] = 1 },
			func(v *Verdict) int { return v.WrittenRejected }},
		{"older update won", "state is the newest", func(evs []*Event, obs *Observed) { obs.StateLast[evs[3].EntityKey] = evs[3].CorrelationID() },
			func(v *Verdict) int { return v.StaleState }},
		{"never processed", "valid events processed", func(evs []*Event, obs *Observed) { delete(obs.Processed, evs[2].EntityKey) },
			func(v *Verdict) int { return v.Unprocessed }},
		{"outcome missing", "every delivery has an outcome", func(evs []*Event, obs *Observed) { obs.After.Outcomes["stale"] = 0 },
			func(v *Verdict) int { return 1 }},
		{"outcome not settled", "every delivery has an outcome", func(evs []*Event, obs *Observed) { obs.Settled = false },
			func(v *Verdict) int { return 1 }},
		{"unexpected answers", "http answers", nil, func(v *Verdict) int { return 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, obs := world()
			unexpected := 0
			if tc.plant != nil {
				tc.plant(evs, &obs)
			} else {
				unexpected = 3
			}
			v := CheckOutcome(evs, unexpected, obs)
			if v.Pass {
				t.Fatalf("want FAIL:\n%s", v)
			}
			if tc.count(v) != 1 {
				t.Errorf("count %d, want 1:\n%s", tc.count(v), v)
			}
			for _, c := range v.Checks {
				if c.Pass == strings.HasPrefix(c.Name, tc.check) {
					t.Errorf("check %q pass=%t (%s)", c.Name, c.Pass, c.Detail)
				}
			}
		})
	}
	// Not reading the topics (-kafka '') or the metrics (-admin '') is
	// documented; before, "no 2xx lost" still ran on the nil raw keys and
	// reported every 2xx'd event lost, and "every delivery has an outcome"
	// failed, so such a run could only FAIL.
	notMade := func(t *testing.T, v *Verdict, why string, names ...string) {
		t.Helper()
		if !v.Pass {
			t.Fatalf("want PASS:\n%s", v)
		}
		for _, name := range names {
			found := false
			for _, c := range v.Checks {
				if c.Name != name {
					continue
				}
				found = true
				if !c.Skipped || !strings.Contains(c.Detail, why) {
					t.Errorf("check %q skipped=%t (%s); want not checked: %s", c.Name, c.Skipped, c.Detail, why)
				}
			}
			if !found {
				t.Errorf("check %q missing:\n%s", name, v)
			}
		}
		if !strings.Contains(v.String(), "not made") {
			t.Errorf("the verdict does not say checks were not made:\n%s", v)
		}
	}
	topicChecks := []string{"no 2xx lost (raw topic)", "rejected not written", "duplicates → one output",
		"valid events processed", "state is the newest"}
	t.Run("topics not read: their checks are not made", func(t *testing.T) {
		evs, obs := world()
		obs.RawKeys, obs.Processed, obs.StateLast = nil, nil, nil
		v := CheckOutcome(evs, 0, obs)
		if v.Lost != 0 {
			t.Errorf("%d events reported lost from a topic not read", v.Lost)
		}
		notMade(t, v, "not read", topicChecks...)
	})
	t.Run("topics read failed: their checks are not made, with the error", func(t *testing.T) {
		evs, obs := world()
		obs.RawKeys, obs.Processed, obs.StateLast = nil, nil, nil
		obs.TopicsErr = errors.New("gen: reading topics: context deadline exceeded after 12 records")
		notMade(t, CheckOutcome(evs, 0, obs), "deadline exceeded after 12 records", topicChecks...)
	})
	t.Run("metrics not scraped: outcome checks are not made", func(t *testing.T) {
		evs, obs := world()
		obs.Before, obs.After = nil, nil
		notMade(t, CheckOutcome(evs, 0, obs), "-admin", "every delivery has an outcome", "planted invalid → invalid")
	})
	t.Run("unanswered deliveries widen the outcome range", func(t *testing.T) {
		evs, obs := world()
		evs[0].record(503) // may or may not have been written
		obs.After.Outcomes["duplicate"]++
		if v := CheckOutcome(evs, 0, obs); !v.Pass {
			t.Fatalf("want PASS:\n%s", v)
		}
	})
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP inlet_events_total x
# TYPE inlet_events_total counter
inlet_events_total{event_type="orders/updated",outcome="processed",source="shop"} 3
inlet_events_total{event_type="push",outcome="duplicate",source="github"} 2
inlet_retry_depth{tier="30s"} 4
inlet_dlq_depth 1
inlet_end_to_end_latency_seconds_bucket{source="shop",le="0.1"} 1
inlet_end_to_end_latency_seconds_bucket{source="shop",le="1"} 3
inlet_end_to_end_latency_seconds_bucket{source="shop",le="+Inf"} 4
weird{a="x\"y",b="z"} 1.5e+00 1700000000
`
	samples, err := ParseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if got := samples[len(samples)-1]; got.Labels["a"] != `x"y` || got.Value != 1.5 {
		t.Errorf("escaped label: %+v", got)
	}
	s := NewScrape(samples)
	if s.Final() != 5 || s.RetryDepth["30s"] != 4 || s.DLQDepth != 1 || s.E2E.Count() != 4 {
		t.Errorf("scrape %+v", s)
	}
	if q := s.E2E.Quantile(0.5); q < 0.1 || q > 1 {
		t.Errorf("median %v not in the (0.1, 1] bucket", q)
	}
}

func TestAddRetryable(t *testing.T) {
	evs, obs := world()
	v := CheckOutcome(evs, 0, obs)
	v.AddRetryable(1, 1000, 0.01)
	if !v.Pass {
		t.Fatalf("0.1%% retryable failed:\n%s", v)
	}
	v.AddRetryable(145, 2000, 0.01)
	if v.Pass {
		t.Fatalf("7%% retryable passed:\n%s", v)
	}
}

// TestReadTopicsCannotRead: brokers that do not answer, or topics that do
// not exist (a wrong -kafka or -topic-prefix), are an error, so the topic
// checks are reported not checked. Before, ReadTopics polled nothing for a
// few seconds and returned empty maps: every 2xx'd event was reported lost
// and every entity unprocessed.
func TestReadTopicsCannotRead(t *testing.T) {
	p := &planner{runID: "rt", start: time.Now()}
	events := []*Event{p.newEvent(KindStripe, p.start)}
	events[0].record(202)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := ReadTopics(ctx, []string{down}, DefaultTopics("inlet"), events, 500*time.Millisecond); err == nil {
		t.Error("no broker: no error")
	}

	if testing.Short() {
		t.Skip("starts the embedded stack")
	}
	env := testenv.Embedded(t)
	topics := env.CreateTopics(t, nil)
	brokers := env.KafkaConfig().Brokers
	if _, err := ReadTopics(ctx, brokers, Topics{Raw: topics.Raw, Processed: topics.Processed, State: topics.State}, events, 500*time.Millisecond); err != nil {
		t.Fatalf("existing topics: %v", err)
	}
	_, err = ReadTopics(ctx, brokers, DefaultTopics("nosuchprefix"), events, 500*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "nosuchprefix.raw") {
		t.Errorf("missing topics: error %v, want one naming nosuchprefix.raw", err)
	}
}

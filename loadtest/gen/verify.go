package gen

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Observed is what the outcome checker found after a run.
type Observed struct {
	// RawKeys counts the raw topic's records by key (only the run's keys
	// need be present); nil when the topic was not read.
	RawKeys map[string]int
	// Processed counts inlet.processed records by entity key; nil when the
	// topic was not read.
	Processed map[string]int
	// StateLast is the correlation-id header of the last inlet.state record
	// of each entity key; nil when not read.
	StateLast map[string]string
	// Before and After are admin metrics scrapes around the run (nil: not
	// scraped). Settled says the outcome counters stopped moving.
	Before, After *Scrape
	Settled       bool
	// TopicsErr is why the topics could not be read, when reading them
	// failed; the maps above are then nil, and the checks that need them
	// say so.
	TopicsErr error
	// Unverified says the outcome was not looked at (-verify=false): the
	// checks of topics and metrics say so rather than naming -kafka or
	// -admin.
	Unverified bool
}

// Check is one verdict line.
type Check struct {
	Name string
	Pass bool
	// Skipped says the check was not made: what it needs was not
	// collected (Detail says why). A skipped check passes.
	Skipped bool
	Detail  string
}

// Verdict is the outcome check of a run.
type Verdict struct {
	Pass   bool
	Checks []Check
	// The counts the checks are built on.
	Events, AcceptedEvents, AcceptedDeliveries, AmbiguousDeliveries  int
	Lost, WrittenRejected, DuplicateOutputs, Unprocessed, StaleState int
	OutcomeDelta                                                     map[string]float64
}

func (v *Verdict) add(name string, pass bool, format string, args ...any) {
	v.Checks = append(v.Checks, Check{Name: name, Pass: pass, Detail: fmt.Sprintf(format, args...)})
	if !pass {
		v.Pass = false
	}
}

// skip adds a check that was not made, and why.
func (v *Verdict) skip(name, why string) {
	v.Checks = append(v.Checks, Check{Name: name, Pass: true, Skipped: true, Detail: "not checked: " + why})
}

// Skipped is the number of checks not made.
func (v *Verdict) Skipped() int {
	n := 0
	for _, c := range v.Checks {
		if c.Skipped {
			n++
		}
	}
	return n
}

// String is the verdict as printed: PASS or FAIL (with the number of
// checks not made), then one line per check.
func (v *Verdict) String() string {
	var b strings.Builder
	if v.Pass {
		b.WriteString("VERDICT: PASS")
	} else {
		b.WriteString("VERDICT: FAIL")
	}
	if n := v.Skipped(); n > 0 {
		fmt.Fprintf(&b, " (%d of %d checks not made)", n, len(v.Checks))
	}
	b.WriteString("\n")
	for _, c := range v.Checks {
		mark := "ok  "
		switch {
		case c.Skipped:
			mark = "--  "
		case !c.Pass:
			mark = "FAIL"
		}
		fmt.Fprintf(&b, "  %s %-26s %s\n", mark, c.Name, c.Detail)
	}
	return b.String()
}

// examples lists up to 3 items for a failure message.
func examples(xs []string) string {
	if len(xs) > 3 {
		return strings.Join(xs[:3], ", ") + ", …"
	}
	return strings.Join(xs, ", ")
}

// CheckOutcome compares what the run was answered (events with their
// accepted/rejected/ambiguous counts) with what is on the topics and in the
// metrics. unexpected is the number of unexpected HTTP answers. A check
// whose observations are missing (a topic not read, no metrics scraped) is
// reported skipped, not failed. It is pure: tests feed it synthetic
// observations.
func CheckOutcome(events []*Event, unexpected int, obs Observed) *Verdict {
	v := &Verdict{Pass: true, Events: len(events)}
	var lost, written []string
	type entity struct {
		natural      map[string]bool // distinct valid natural keys, accepted or ambiguous
		validAcc     int
		newest       time.Time // newest business time among accepted valid events
		byCorrelated map[string]*Event
	}
	entities := map[string]*entity{}
	invalidAccepted := 0
	for _, e := range events {
		acc, amb, rej := e.Accepted(), e.Ambiguous(), e.Rejected()
		v.AcceptedDeliveries += acc
		v.AmbiguousDeliveries += amb
		if acc > 0 {
			v.AcceptedEvents++
			if obs.RawKeys != nil && obs.RawKeys[e.RawKey()] == 0 {
				v.Lost++
				lost = append(lost, e.RawKey())
			}
		}
		if acc == 0 && amb == 0 && rej > 0 && obs.RawKeys[e.RawKey()] > 0 {
			v.WrittenRejected++
			written = append(written, e.RawKey())
		}
		if e.Invalid {
			invalidAccepted += acc
			continue
		}
		if e.EntityKey == "" || acc+amb == 0 {
			continue
		}
		en := entities[e.EntityKey]
		if en == nil {
			en = &entity{natural: map[string]bool{}, byCorrelated: map[string]*Event{}}
			entities[e.EntityKey] = en
		}
		en.natural[e.NaturalKey] = true
		en.byCorrelated[e.CorrelationID()] = e
		if acc > 0 {
			en.validAcc++
			if e.BusinessTime.After(en.newest) {
				en.newest = e.BusinessTime
			}
		}
	}
	v.add("http answers", unexpected == 0, "%d unexpected answers", unexpected)
	notRead := func(topic string) string {
		if obs.Unverified {
			return "-verify=false"
		}
		if obs.TopicsErr != nil {
			return fmt.Sprintf("%s not read: %v", topic, obs.TopicsErr)
		}
		return topic + " not read (-kafka)"
	}
	if obs.RawKeys != nil {
		v.add("no 2xx lost (raw topic)", v.Lost == 0, "%d of %d 2xx'd events on inlet.raw; missing: %d %s",
			v.AcceptedEvents-v.Lost, v.AcceptedEvents, v.Lost, examples(lost))
		v.add("rejected not written", v.WrittenRejected == 0, "%d events answered 4xx found on inlet.raw %s", v.WrittenRejected, examples(written))
	} else {
		v.skip("no 2xx lost (raw topic)", notRead("inlet.raw"))
		v.skip("rejected not written", notRead("inlet.raw"))
	}

	if obs.Before != nil && obs.After != nil {
		v.OutcomeDelta = map[string]float64{}
		for _, o := range append(Outcomes, "retried") {
			v.OutcomeDelta[o] = obs.After.Outcomes[o] - obs.Before.Outcomes[o]
		}
		final := int(obs.After.Final() - obs.Before.Final())
		lo, hi := v.AcceptedDeliveries, v.AcceptedDeliveries+v.AmbiguousDeliveries
		v.add("every delivery has an outcome", final >= lo && final <= hi && obs.Settled,
			"processed+duplicate+stale+invalid+dlq rose by %d; want %d (2xx'd deliveries, incl. duplicates)%s; settled=%t; %s",
			final, lo, rangeNote(lo, hi), obs.Settled, fmtDelta(v.OutcomeDelta))
		inv := int(v.OutcomeDelta["invalid"])
		v.add("planted invalid → invalid", inv >= invalidAccepted, "invalid rose by %d, planted %d accepted", inv, invalidAccepted)
	} else {
		why := "no admin metrics scraped (-admin)"
		if obs.Unverified {
			why = "-verify=false"
		}
		v.skip("every delivery has an outcome", why)
		v.skip("planted invalid → invalid", why)
	}

	if obs.Processed != nil {
		var dups, missing []string
		for key, en := range entities {
			n := obs.Processed[key]
			if n > len(en.natural) {
				v.DuplicateOutputs += n - len(en.natural)
				dups = append(dups, fmt.Sprintf("%s×%d", key, n))
			}
			if en.validAcc > 0 && n == 0 {
				v.Unprocessed++
				missing = append(missing, key)
			}
		}
		v.add("duplicates → one output", v.DuplicateOutputs == 0, "%d extra processed records %s", v.DuplicateOutputs, examples(dups))
		v.add("valid events processed", v.Unprocessed == 0, "%d of %d entities without a processed record %s",
			v.Unprocessed, len(entities), examples(missing))
	} else {
		v.skip("duplicates → one output", notRead("inlet.processed"))
		v.skip("valid events processed", notRead("inlet.processed"))
	}
	if obs.StateLast != nil {
		var stale []string
		for key, en := range entities {
			if en.validAcc == 0 {
				continue
			}
			last := en.byCorrelated[obs.StateLast[key]]
			if last == nil || last.BusinessTime.Before(en.newest) {
				v.StaleState++
				stale = append(stale, key)
			}
		}
		v.add("state is the newest", v.StaleState == 0, "%d of %d entities whose last state is not their newest update %s",
			v.StaleState, len(entities), examples(stale))
	} else {
		v.skip("state is the newest", notRead("inlet.state"))
	}
	return v
}

// AddRetryable adds the check that at most maxShare of the sent requests
// got a retryable answer (5xx, 408, 429) or none (timeouts). Such answers lose
// nothing (the sender retries), but past maxShare the target is not
// keeping up with the load.
func (v *Verdict) AddRetryable(retryable, sent int, maxShare float64) {
	share := 0.0
	if sent > 0 {
		share = float64(retryable) / float64(sent)
	}
	v.add("retryable answers", share <= maxShare, "%d of %d (%.2f%%) answered 5xx/408/429 or not at all; at most %.2f%%",
		retryable, sent, 100*share, 100*maxShare)
}

func rangeNote(lo, hi int) string {
	if hi == lo {
		return ""
	}
	return fmt.Sprintf(" to %d (with unanswered ones)", hi)
}

func fmtDelta(d map[string]float64) string {
	var parts []string
	for _, o := range append(Outcomes, "retried") {
		parts = append(parts, fmt.Sprintf("%s %+d", o, int(d[o])))
	}
	return strings.Join(parts, ", ")
}

// Topics are the topic names the checker reads.
type Topics struct{ Raw, Processed, State string }

// DefaultTopics are the topics for a prefix (inlet by default).
func DefaultTopics(prefix string) Topics {
	return Topics{Raw: prefix + ".raw", Processed: prefix + ".processed", State: prefix + ".state"}
}

// ReadTopics reads raw, processed and state from the start with
// read_committed isolation, keeping only keys in want (raw keys for raw,
// entity keys for the others). It stops when no record arrived for quiet
// or at ctx's deadline. Brokers that do not answer, or a topic that does not
// exist, are an error.
func ReadTopics(ctx context.Context, brokers []string, topics Topics, events []*Event, quiet time.Duration) (*Observed, error) {
	raw, ent := map[string]bool{}, map[string]bool{}
	for _, e := range events {
		raw[e.RawKey()] = true
		if e.EntityKey != "" {
			ent[e.EntityKey] = true
		}
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(topics.Raw, topics.Processed, topics.State),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	// Without this the polls below find nothing on a broker that is down
	// or a topic that is not there, and every 2xx'd event is reported lost.
	if err := topicsExist(ctx, cl, topics.Raw, topics.Processed, topics.State); err != nil {
		return nil, err
	}
	obs := &Observed{RawKeys: map[string]int{}, Processed: map[string]int{}, StateLast: map[string]string{}}
	got, polls := 0, 0
	for {
		polls++
		pctx, cancel := context.WithTimeout(ctx, quiet)
		fs := cl.PollFetches(pctx)
		cancel()
		n := 0
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("gen: reading %s/%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return nil, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			n++
			k := string(r.Key)
			switch r.Topic {
			case topics.Raw:
				if raw[k] {
					obs.RawKeys[k]++
				}
			case topics.Processed:
				if ent[k] {
					obs.Processed[k]++
				}
			case topics.State:
				if ent[k] {
					obs.StateLast[k] = header(r, "correlation-id")
				}
			}
		})
		got += n
		if ctx.Err() != nil {
			return obs, fmt.Errorf("gen: reading topics: %w after %d records", ctx.Err(), got)
		}
		// Stop after a quiet poll once records came, or after three quiet
		// polls on empty topics.
		if n == 0 && (got > 0 || polls >= 3) {
			return obs, nil
		}
	}
}

// topicsExist asks the brokers for the topics' metadata, within 10s.
func topicsExist(ctx context.Context, cl *kgo.Client, names ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	for _, n := range names {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(n)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("gen: reading topics: no answer from the brokers: %w", err)
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			name := ""
			if t.Topic != nil {
				name = *t.Topic
			}
			return fmt.Errorf("gen: reading topics: %s: %w", name, err)
		}
	}
	return nil
}

func header(r *kgo.Record, name string) string {
	for _, h := range r.Headers {
		if h.Key == name {
			return string(h.Value)
		}
	}
	return ""
}

// Settle scrapes until the final-outcome total has reached at least want
// and stayed the same for two consecutive scrapes, or ctx is done. It
// returns the last scrape and whether it settled.
func (s *Scraper) Settle(ctx context.Context, before Scrape, want int) (Scrape, bool) {
	var last Scrape
	prev := -1.0
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		sc, err := s.Scrape(ctx)
		if err == nil {
			last = sc
			cur := sc.Final() - before.Final()
			if cur >= float64(want) && cur == prev {
				return sc, true
			}
			prev = cur
		}
		select {
		case <-ctx.Done():
			return last, false
		case <-t.C:
		}
	}
}

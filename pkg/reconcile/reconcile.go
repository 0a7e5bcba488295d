// Package reconcile compares a sender's own record of the events it sent
// with what Inlet received and processed, and reports every gap: an event
// never received, received but not processed (stuck), waiting in a retry
// tier, dead-lettered or invalid and not yet resolved.
//
// Decisions per event (id = the key Inlet uses, source:event-id):
//
//	never_received  no record on the raw topic
//	stuck           on the raw topic, but at or after the processor group's
//	                committed offset (not processed yet, or the processor is
//	                down)
//	retry           a retry record not yet consumed by the group
//	dlq, invalid    an unresolved entry on the DLQ / invalid topic
//	processed       consumed with a final outcome (processed, duplicate,
//	                stale, or a DLQ/invalid entry that was discarded)
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/ops"
	"github.com/inletdev/inlet/pkg/retry"
)

// Status is what became of one sender event.
type Status string

// The statuses, gaps first.
const (
	NeverReceived Status = "never_received"
	Stuck         Status = "stuck"
	InRetry       Status = "retry"
	InDLQ         Status = "dlq"
	Invalid       Status = "invalid"
	Processed     Status = "processed"
)

// Statuses lists every status in report order.
var Statuses = []Status{NeverReceived, Stuck, InRetry, InDLQ, Invalid, Processed}

// Gap reports whether s needs attention.
func (s Status) Gap() bool { return s != Processed }

// Result is one sender event's status.
type Result struct {
	ID            string    `json:"id"`
	SentAt        time.Time `json:"sent_at,omitzero"`
	Status        Status    `json:"status"`
	Where         string    `json:"where,omitempty"` // topic/partition/offset of the deciding record
	CorrelationID string    `json:"correlation_id,omitempty"`
	Error         string    `json:"error,omitempty"`
}

// Report is the outcome of one reconciliation.
type Report struct {
	Source string         `json:"source"`
	Since  time.Time      `json:"since,omitzero"`
	Until  time.Time      `json:"until,omitzero"`
	Group  string         `json:"group"`
	Total  int            `json:"total"`
	Counts map[Status]int `json:"counts"`
	Gaps   int            `json:"gaps"`
	// Undated counts sender events without a time, left out of a
	// --since/--until reconciliation (they cannot be placed in it).
	Undated int `json:"undated,omitempty"`
	// Events lists the gaps, and every event when Config.All is set.
	Events []Result `json:"events"`
}

// ErrUndated is returned when a --since/--until reconciliation would check
// nothing because no event of the log has a time.
var ErrUndated = errors.New("reconcile: sender log without times")

// Config is one reconciliation.
type Config struct {
	Source string
	// Since and Until select sender events by their time (zero: open).
	Since, Until time.Time
	// Group is the processor's consumer group (default inlet-processor).
	Group string
	// Slack is how far before Since the raw topic is read (clock skew
	// between sender and Inlet); default 10 minutes.
	Slack time.Duration
	// All lists processed events too, not only gaps.
	All bool
}

// Deps reach the cluster.
type Deps struct {
	KafkaOpts []kgo.Opt
	Topics    kafka.Topics
	Queues    *ops.Queues
}

// Check decides the status of each of events.
func Check(ctx context.Context, cfg Config, d Deps, events []SenderEvent) (*Report, error) {
	if cfg.Source == "" {
		return nil, errors.New("reconcile: a source is required")
	}
	if cfg.Group == "" {
		cfg.Group = "inlet-processor"
	}
	if cfg.Slack == 0 {
		cfg.Slack = 10 * time.Minute
	}
	cl, err := kgo.NewClient(d.KafkaOpts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	committed, err := adm.FetchOffsets(ctx, cfg.Group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return nil, fmt.Errorf("committed offsets of %s: %w", cfg.Group, err)
	}
	consumed := func(r *kgo.Record) bool {
		o, ok := committed.Lookup(r.Topic, r.Partition)
		return ok && o.Err == nil && r.Offset < o.At
	}
	prefix := cfg.Source + ":"

	// The sender's events in range, chosen first: what is read from the
	// topics is kept only for them, so memory follows the sender log, not
	// the raw topic (which keeps every event of the source for good). An
	// event without a time cannot be placed in a --since/--until range:
	// it is counted as undated instead of being reported on (read from
	// since − slack, the raw topic would not show it received).
	ranged := cfg.Since.IsZero() && cfg.Until.IsZero()
	wanted, undatedIDs := map[string]bool{}, map[string]bool{}
	var inRange []SenderEvent
	for _, ev := range events {
		switch {
		case wanted[ev.ID]:
		case ev.At.IsZero() && !ranged:
			undatedIDs[ev.ID] = true
		case !cfg.Since.IsZero() && ev.At.Before(cfg.Since), !cfg.Until.IsZero() && !ev.At.Before(cfg.Until):
		default:
			wanted[ev.ID] = true
			inRange = append(inRange, ev)
		}
	}
	undated := 0
	for id := range undatedIDs {
		if !wanted[id] { // not dated by another line of the log
			undated++
		}
	}
	if len(inRange) == 0 && undated > 0 {
		// Checking nothing must not read as "no gaps".
		return nil, fmt.Errorf("%w: none of the log's %d events has a time to place it in --since/--until (time fields: %s); run without them to check every event", ErrUndated, undated, strings.Join(timeFields, ", "))
	}

	type seen struct {
		where, corr string
		consumed    bool
	}
	raw := map[string]*seen{} // event id → its raw deliveries, merged
	from := time.Time{}
	if !cfg.Since.IsZero() {
		from = cfg.Since.Add(-cfg.Slack)
	}
	sp, err := kafka.RangeOf(ctx, adm, d.Topics.Raw, from, time.Time{})
	if err != nil {
		return nil, err
	}
	err = kafka.ReadSpan(ctx, d.KafkaOpts, d.Topics.Raw, sp, func(r *kgo.Record) error {
		id, ok := strings.CutPrefix(string(r.Key), prefix)
		if !ok || !wanted[id] {
			return nil
		}
		s := raw[id]
		if s == nil {
			s = &seen{}
			raw[id] = s
		}
		if !s.consumed { // the first consumed delivery decides
			s.where, s.corr, s.consumed = where(r), retry.Get(r.Headers, retry.HeaderCorrelationID), consumed(r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	waiting := map[string]string{} // event id → retry record not consumed yet
	for _, t := range d.Topics.Retry {
		sp, err := kafka.RangeOf(ctx, adm, t, time.Time{}, time.Time{})
		if err != nil {
			return nil, err
		}
		for p, r := range sp {
			if o, ok := committed.Lookup(t, p); ok && o.Err == nil && o.At > r[0] {
				r[0] = o.At
			}
			if r[0] >= r[1] {
				delete(sp, p)
			} else {
				sp[p] = r
			}
		}
		err = kafka.ReadSpan(ctx, d.KafkaOpts, t, sp, func(r *kgo.Record) error {
			if id, ok := strings.CutPrefix(string(r.Key), prefix); ok && wanted[id] {
				waiting[id] = where(r)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}

	type entry struct{ where, err string }
	failed := map[Status]map[string]entry{}
	for st, topic := range map[Status]string{InDLQ: d.Topics.DLQ, Invalid: d.Topics.Invalid} {
		failed[st] = map[string]entry{}
		// Streamed: a queue of millions after an outage is not held.
		err := d.Queues.Scan(ctx, topic, ops.Filter{Source: cfg.Source, Unresolved: true}, func(e *ops.Entry) error {
			id := e.EventID
			if id == "" {
				id, _ = strings.CutPrefix(e.Key, prefix)
			}
			if !wanted[id] {
				return nil
			}
			msg := e.LastError
			if msg == "" {
				msg = e.Reason
			}
			failed[st][id] = entry{e.ID, msg}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}

	rep := &Report{Source: cfg.Source, Since: cfg.Since, Until: cfg.Until, Group: cfg.Group, Counts: map[Status]int{}, Events: []Result{}, Undated: undated}
	for _, ev := range inRange {
		res := Result{ID: ev.ID, SentAt: ev.At}
		s := raw[ev.ID]
		if s != nil {
			res.CorrelationID = s.corr
		}
		switch {
		case failed[InDLQ][ev.ID] != entry{}:
			res.Status, res.Where, res.Error = InDLQ, failed[InDLQ][ev.ID].where, failed[InDLQ][ev.ID].err
		case failed[Invalid][ev.ID] != entry{}:
			res.Status, res.Where, res.Error = Invalid, failed[Invalid][ev.ID].where, failed[Invalid][ev.ID].err
		case waiting[ev.ID] != "":
			res.Status, res.Where = InRetry, waiting[ev.ID]
		case s == nil:
			res.Status = NeverReceived
		case !s.consumed:
			res.Status, res.Where = Stuck, s.where
		default:
			res.Status, res.Where = Processed, s.where
		}
		rep.Total++
		rep.Counts[res.Status]++
		if res.Status.Gap() {
			rep.Gaps++
		}
		if res.Status.Gap() || cfg.All {
			rep.Events = append(rep.Events, res)
		}
	}
	order := map[Status]int{}
	for i, s := range Statuses {
		order[s] = i
	}
	sort.SliceStable(rep.Events, func(i, j int) bool { return order[rep.Events[i].Status] < order[rep.Events[j].Status] })
	return rep, nil
}

func where(r *kgo.Record) string { return retry.Coordinates(r) }

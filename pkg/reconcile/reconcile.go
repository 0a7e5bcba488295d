// Package reconcile compares a sender's own record of the events it sent
// with what Inlet received and processed, and reports every gap: an event
// never received, received but not processed (stuck), waiting in a retry
// tier, dead-lettered or invalid and not yet resolved; and every event an
// operator discarded from those queues.
//
// Decisions per event (id = the key Inlet uses, source:event-id):
//
//	never_received  no record on the raw topic
//	stuck           on the raw topic, but at or after the processor group's
//	                committed offset (not processed yet, or the processor is
//	                down)
//	retry           a retry record not yet consumed by the group
//	dlq, invalid    an unresolved entry on the DLQ / invalid topic
//	discarded       its DLQ / invalid entry was discarded by an operator
//	                (audited, with a reason), and no later delivery of the
//	                event was consumed: it never reached the processed
//	                topic, but it is decided, so not a gap
//	processed       consumed with a final outcome (processed, duplicate or
//	                stale; a requeued entry's event is what became of it)
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
	Discarded     Status = "discarded"
	Processed     Status = "processed"
)

// Statuses lists every status in report order.
var Statuses = []Status{NeverReceived, Stuck, InRetry, InDLQ, Invalid, Discarded, Processed}

// Gap reports whether s needs attention. A discarded event does not: an
// operator decided it, with an audited reason, and a reconcile run from
// cron would otherwise alert on it for good (requeueing it is the only
// way to clear a gap, and that undoes the decision).
func (s Status) Gap() bool { return s != Processed && s != Discarded }

// Result is one sender event's status.
type Result struct {
	ID            string    `json:"id"`
	SentAt        time.Time `json:"sent_at,omitzero"`
	Status        Status    `json:"status"`
	Where         string    `json:"where,omitempty"` // topic/partition/offset of the deciding record
	CorrelationID string    `json:"correlation_id,omitempty"`
	// Error is the failure of a dlq or invalid entry; for a discarded
	// one, the decision: "discard by <who> at <when>: <why>".
	Error string `json:"error,omitempty"`
	// Decision is the audited discard of a discarded event's entry.
	Decision *ops.Decision `json:"decision,omitempty"`
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
	// Events lists the gaps, and every event when Config.All is set
	// (discarded events are not gaps: Counts has them).
	Events []Result `json:"events"`
}

// A reconciliation that would check no event is refused, not reported
// with no gaps: from cron, a failed, truncated or stale export would read
// as all clear.
var (
	// ErrEmptyLog is returned for a sender log (or list) without events.
	ErrEmptyLog = errors.New("reconcile: the sender log holds no events")
	// ErrNoneInRange is returned when no event of the log falls in
	// Since/Until.
	ErrNoneInRange = errors.New("reconcile: no sender event in --since/--until")
	// ErrUndated is returned when a --since/--until reconciliation would
	// check nothing because no event of the log has a time.
	ErrUndated = errors.New("reconcile: sender log without times")
	// ErrNegativeSlack is returned by Check for a Config.Slack below 0:
	// the raw topic would be read from after Since, and an event received
	// in between reported never_received.
	ErrNegativeSlack = errors.New("reconcile: the slack is negative")
)

// Validate refuses a reconciliation of events under cfg that would check
// no event, before anything is read: ErrEmptyLog, ErrNoneInRange or
// ErrUndated, wrapped with what the log holds. Check calls it first.
func Validate(cfg Config, events []SenderEvent) error {
	if len(events) == 0 {
		return fmt.Errorf("%w (a failed or truncated export?): nothing to check, so no report", ErrEmptyLog)
	}
	if cfg.Since.IsZero() && cfg.Until.IsZero() {
		return nil
	}
	if err := checkWindow(cfg.Since, cfg.Until); err != nil {
		return err
	}
	var first, last time.Time
	dated := 0
	undated := map[string]bool{} // counted as Check counts them: by id
	for _, ev := range events {
		switch {
		case ev.At.IsZero():
			undated[ev.ID] = true
		case inWindow(cfg, ev.At):
			return nil
		default:
			dated++
			if first.IsZero() || ev.At.Before(first) {
				first = ev.At
			}
			if ev.At.After(last) {
				last = ev.At
			}
		}
	}
	if dated == 0 {
		return fmt.Errorf("%w: none of the log's %d events has a time to place it in --since/--until (time fields: %s); run without them to check every event", ErrUndated, len(undated), strings.Join(timeFields, ", "))
	}
	var window []string
	if !cfg.Since.IsZero() {
		window = append(window, "--since "+cfg.Since.UTC().Format(time.RFC3339))
	}
	if !cfg.Until.IsZero() {
		window = append(window, "--until "+cfg.Until.UTC().Format(time.RFC3339))
	}
	also := ""
	if len(undated) > 0 {
		also = fmt.Sprintf("; %d more have no time", len(undated))
	}
	return fmt.Errorf("%w: none of the log's %d dated events is in %s: they run from %s to %s%s (a stale export, or the wrong range?): nothing to check, so no report",
		ErrNoneInRange, dated, strings.Join(window, " "), first.UTC().Format(time.RFC3339), last.UTC().Format(time.RFC3339), also)
}

// checkWindow refuses a window [since, until) that holds no time (both
// given, since not before until), wrapping ErrNoneInRange: it was
// reported as a log none of whose events is in it, "a stale export, or
// the wrong range?", and --stripe asked the API for it and said the key
// might be another account's.
func checkWindow(since, until time.Time) error {
	if since.IsZero() || until.IsZero() || since.Before(until) {
		return nil
	}
	return fmt.Errorf("%w: --since must be before --until (the window is [--since, --until), --until excluded): --since %s, --until %s",
		ErrNoneInRange, since.UTC().Format(time.RFC3339Nano), until.UTC().Format(time.RFC3339Nano))
}

// inWindow reports whether at is in [cfg.Since, cfg.Until).
func inWindow(cfg Config, at time.Time) bool {
	return (cfg.Since.IsZero() || !at.Before(cfg.Since)) && (cfg.Until.IsZero() || at.Before(cfg.Until))
}

// Config is one reconciliation.
type Config struct {
	Source string
	// Since and Until select sender events by their time (zero: open).
	Since, Until time.Time
	// Group is the processor's consumer group (default inlet-processor).
	Group string
	// Slack is how far before Since the raw topic is read (clock skew
	// between sender and Inlet); default (0) 10 minutes. Below 0 is
	// refused (ErrNegativeSlack).
	Slack time.Duration
	// All lists processed and discarded events too, not only gaps.
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
	if cfg.Slack < 0 {
		// It read the raw topic from after Since, and reported the events
		// received in between never_received.
		return nil, fmt.Errorf("%w: %s: it is how far before --since the raw topic is read (0 or more)", ErrNegativeSlack, cfg.Slack)
	}
	if cfg.Slack == 0 {
		cfg.Slack = 10 * time.Minute
	}
	// Checking nothing must not read as "no gaps".
	if err := Validate(cfg, events); err != nil {
		return nil, err
	}

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
		case !inWindow(cfg, ev.At):
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

	// delivery is one raw record of an event.
	type delivery struct {
		partition int32
		offset    int64
		at        time.Time
		where     string
		consumed  bool
	}
	type seen struct {
		where, corr string
		consumed    bool
		last        delivery // the latest delivery read
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
		dl := delivery{partition: r.Partition, offset: r.Offset, at: r.Timestamp, where: where(r), consumed: consumed(r)}
		if !s.consumed { // the first consumed delivery decides
			s.where, s.corr, s.consumed = dl.where, retry.Get(r.Headers, retry.HeaderCorrelationID), dl.consumed
		}
		if s.last.where == "" || later(dl.partition, dl.offset, dl.at, s.last.partition, s.last.offset, s.last.at) {
			s.last = dl
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
	// The latest discarded entry of each event, on either queue. Requeued
	// entries are left out: their event went back into processing, and
	// what became of it (processed, a retry, another entry) decides.
	type discard struct {
		where  string
		at     time.Time
		origin string // the raw record it was a failure of
		d      *ops.Decision
	}
	discarded := map[string]discard{}
	for st, topic := range map[Status]string{InDLQ: d.Topics.DLQ, Invalid: d.Topics.Invalid} {
		failed[st] = map[string]entry{}
		// Streamed: a queue of millions after an outage is not held. Not
		// filtered by source: an entry whose value is no envelope and
		// that has no inlet-source header (a record another producer
		// wrote to the raw topic under the event's key) names no source,
		// and left out, its event read as processed.
		err := d.Queues.Scan(ctx, topic, ops.Filter{}, func(e *ops.Entry) error {
			id, ok := entryEvent(e, cfg.Source)
			if !ok || !wanted[id] {
				return nil
			}
			switch {
			case e.Decision == nil:
				msg := e.LastError
				if msg == "" {
					msg = e.Reason
				}
				failed[st][id] = entry{e.ID, msg}
			case e.Decision.Action == ops.ActionDiscard:
				if prev, ok := discarded[id]; !ok || e.At.After(prev.at) {
					discarded[id] = discard{where: e.ID, at: e.At, origin: e.Origin, d: e.Decision}
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}

	// redelivered: a delivery of the event after the one whose entry was
	// discarded (the sender sent it again: the processor released its
	// claim, so it was processed anew), or nil. Where offsets cannot tell,
	// the entry's own time stands for its delivery's: only a delivery
	// received after the entry was written counts as later.
	redelivered := func(s *seen, dc discard) *delivery {
		if s == nil {
			return nil
		}
		topic, p, off, ok := retry.ParseCoordinates(dc.origin)
		if !ok || topic != d.Topics.Raw {
			// The entry does not say which delivery failed.
			if s.last.at.After(dc.at) {
				return &s.last
			}
			return nil
		}
		if later(s.last.partition, s.last.offset, s.last.at, p, off, dc.at) {
			return &s.last
		}
		return nil
	}

	rep := &Report{Source: cfg.Source, Since: cfg.Since, Until: cfg.Until, Group: cfg.Group, Counts: map[Status]int{}, Events: []Result{}, Undated: undated}
	for _, ev := range inRange {
		res := Result{ID: ev.ID, SentAt: ev.At}
		s := raw[ev.ID]
		if s != nil {
			res.CorrelationID = s.corr
		}
		dc, wasDiscarded := discarded[ev.ID]
		var again *delivery
		if wasDiscarded {
			again = redelivered(s, dc)
		}
		switch {
		case failed[InDLQ][ev.ID] != entry{}:
			res.Status, res.Where, res.Error = InDLQ, failed[InDLQ][ev.ID].where, failed[InDLQ][ev.ID].err
		case failed[Invalid][ev.ID] != entry{}:
			res.Status, res.Where, res.Error = Invalid, failed[Invalid][ev.ID].where, failed[Invalid][ev.ID].err
		case waiting[ev.ID] != "":
			res.Status, res.Where = InRetry, waiting[ev.ID]
		case wasDiscarded && again == nil:
			// Decided by an operator, and not delivered again since: it
			// never reached the processed topic.
			res.Status, res.Where, res.Decision = Discarded, dc.where, dc.d
			res.Error = fmt.Sprintf("%s by %s at %s: %s", dc.d.Action, dc.d.Who, dc.d.At.UTC().Format(time.RFC3339), dc.d.Why)
		case again != nil && !again.consumed:
			// Sent again after the discard, not processed yet.
			res.Status, res.Where = Stuck, again.where
		case again != nil:
			res.Status, res.Where = Processed, again.where
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

// entryEvent is the sender's event id of a DLQ or invalid entry of
// source src: its envelope's, or else its key's (source:event-id), which
// is all an entry naming no source has to tell.
func entryEvent(e *ops.Entry, src string) (string, bool) {
	if e.Source != "" && e.Source != src {
		return "", false
	}
	if e.Source != "" && e.EventID != "" {
		return e.EventID, true
	}
	return strings.CutPrefix(e.Key, src+":")
}

// later reports whether the raw record at partition p, offset off (written
// at) came after the one at partition q, offset qoff (written qat). An
// event's deliveries share its key's partition, where offsets order them;
// across partitions (the topic grew some) only the record times can.
func later(p int32, off int64, at time.Time, q int32, qoff int64, qat time.Time) bool {
	if p == q {
		return off > qoff
	}
	return at.After(qat)
}

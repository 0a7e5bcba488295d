// Package ops is the operator's side of Inlet's failure queues: list what
// sits on the dead-letter and invalid topics, requeue records into
// processing with a fresh retry budget (their history kept), or discard them
// with a reason. Every decision is written to the audit topic in the same
// Kafka transaction as the requeue, and a decided record no longer counts as
// unresolved.
package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/retry"
)

// Entry is one record on a failure queue.
type Entry struct {
	ID            string             `json:"id"` // topic/partition/offset
	Topic         string             `json:"topic"`
	Key           string             `json:"key"`
	Source        string             `json:"source"`
	EventType     string             `json:"event_type"`
	EventID       string             `json:"event_id"`
	CorrelationID string             `json:"correlation_id"`
	Origin        string             `json:"origin,omitempty"` // the raw record: topic/partition/offset
	Reason        string             `json:"reason"`
	LastError     string             `json:"last_error"`
	History       []retry.ErrorEntry `json:"error_history"`
	Runbook       string             `json:"runbook,omitempty"`
	At            time.Time          `json:"at"`
	Decision      *Decision          `json:"decision,omitempty"` // nil: unresolved
	Payload       []byte             `json:"-"`

	rec       *kgo.Record // nil once a decision let go of it
	partition int32
	offset    int64
}

// Decision is an operator's audited action on an entry.
type Decision struct {
	ID     string    `json:"id"`
	Action string    `json:"action"` // requeue | discard
	Who    string    `json:"who"`
	Why    string    `json:"why"`
	At     time.Time `json:"at"`
	To     string    `json:"to,omitempty"` // where a requeue went
}

// Filter selects entries; empty fields match everything.
type Filter struct {
	IDs        []string
	Source     string
	EventType  string
	ErrorText  string
	Since      time.Time
	Until      time.Time
	Unresolved bool
}

func (f Filter) match(e *Entry) bool {
	if len(f.IDs) > 0 && !contains(f.IDs, e.ID) {
		return false
	}
	return (f.Source == "" || e.Source == f.Source) &&
		(f.EventType == "" || e.EventType == f.EventType) &&
		(f.ErrorText == "" || strings.Contains(strings.ToLower(e.LastError+" "+e.Reason), strings.ToLower(f.ErrorText))) &&
		(f.Since.IsZero() || !e.At.Before(f.Since)) &&
		(f.Until.IsZero() || e.At.Before(f.Until)) &&
		(!f.Unresolved || e.Decision == nil)
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Queues reads and acts on the failure topics.
type Queues struct {
	cl     *kgo.Client
	adm    *kadm.Client
	topics kafka.Topics
	codec  *envelope.Codec
}

// New returns Queues over the cluster reached with opts.
func New(opts []kgo.Opt, topics kafka.Topics, codec *envelope.Codec) (*Queues, error) {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	return &Queues{cl: cl, adm: kadm.NewClient(cl), topics: topics, codec: codec}, nil
}

// Close releases the client.
func (q *Queues) Close() { q.cl.Close() }

// Scan calls fn with each entry of topic (the DLQ or invalid topic)
// matching f, each with its decision if one was made, in the order the
// records are read (by offset within a partition, partitions interleaved).
// It holds no entry after fn returns, so memory does not grow with the
// queue; an error from fn stops the scan and is returned.
func (q *Queues) Scan(ctx context.Context, topic string, f Filter, fn func(*Entry) error) error {
	decisions, err := q.decisions(ctx)
	if err != nil {
		return err
	}
	sp, err := kafka.RangeOf(ctx, q.adm, topic, time.Time{}, time.Time{})
	if err != nil {
		return err
	}
	return kafka.ReadSpan(ctx, q.cl.Opts(), topic, sp, func(r *kgo.Record) error {
		// Asked by id: skip the others before decoding them.
		if len(f.IDs) > 0 && !contains(f.IDs, retry.Coordinates(r)) {
			return nil
		}
		e := q.entry(ctx, r)
		e.Decision = decisions[e.ID]
		if !f.match(e) {
			return nil
		}
		return fn(e)
	})
}

// List returns every entry of topic matching f, oldest first (see
// [Listing]). It holds them all: for a queue that may be large, use Page.
func (q *Queues) List(ctx context.Context, topic string, f Filter) ([]*Entry, error) {
	l, err := q.Page(ctx, topic, f, "", 0)
	return l.Entries, err
}

// Listing is one page of a queue's matching entries.
type Listing struct {
	// Entries are oldest first: by record time, then partition and
	// offset.
	Entries []*Entry
	// Total counts every matching entry on the queue, on any page.
	Total int
	// Next is the cursor of the page after this one; empty on the last.
	Next string
}

// Page returns at most limit entries of topic matching f (0: no limit),
// oldest first, starting after cursor (empty: from the oldest; else the
// Next of an earlier page). It reads the whole queue but holds at most
// about twice limit entries, so a listing through the admin API cannot
// exhaust the processor's memory however long the queue grew.
func (q *Queues) Page(ctx context.Context, topic string, f Filter, cursor string, limit int) (Listing, error) {
	var l Listing
	if limit < 0 {
		return l, fmt.Errorf("%w: limit %d is negative", ErrBadPage, limit)
	}
	after, err := parseCursor(cursor)
	if err != nil {
		return l, err
	}
	var keep []*Entry
	more := false
	err = q.Scan(ctx, topic, f, func(e *Entry) error {
		l.Total++
		if cursor != "" && !after.before(position(e)) {
			return nil
		}
		keep = append(keep, e)
		if limit > 0 && len(keep) >= 2*limit {
			sortEntries(keep)
			clear(keep[limit:])
			keep, more = keep[:limit], true
		}
		return nil
	})
	if err != nil {
		return Listing{}, err
	}
	sortEntries(keep)
	if limit > 0 && len(keep) > limit {
		clear(keep[limit:])
		keep, more = keep[:limit], true
	}
	l.Entries = keep
	if more && len(keep) > 0 {
		l.Next = position(keep[len(keep)-1]).String()
	}
	return l, nil
}

// ErrBadPage is returned for a cursor or limit Page cannot use.
var ErrBadPage = errors.New("bad page")

// pos is an entry's place in a listing's order.
type pos struct {
	ms        int64 // record time, Unix milliseconds (Kafka's precision)
	partition int32
	offset    int64
}

func position(e *Entry) pos {
	return pos{ms: e.At.UnixMilli(), partition: e.partition, offset: e.offset}
}

func (a pos) before(b pos) bool {
	if a.ms != b.ms {
		return a.ms < b.ms
	}
	if a.partition != b.partition {
		return a.partition < b.partition
	}
	return a.offset < b.offset
}

// String is the cursor: time_partition_offset, all decimal.
func (a pos) String() string {
	return strconv.FormatInt(a.ms, 10) + "_" + strconv.FormatInt(int64(a.partition), 10) + "_" + strconv.FormatInt(a.offset, 10)
}

func parseCursor(s string) (pos, error) {
	if s == "" {
		return pos{}, nil
	}
	bad := fmt.Errorf("%w: cursor %q: want the next value of an earlier page", ErrBadPage, s)
	parts := strings.Split(s, "_")
	if len(parts) != 3 {
		return pos{}, bad
	}
	ms, err1 := strconv.ParseInt(parts[0], 10, 64)
	p, err2 := strconv.ParseInt(parts[1], 10, 32)
	off, err3 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || p < 0 || off < 0 {
		return pos{}, bad
	}
	return pos{ms: ms, partition: int32(p), offset: off}, nil
}

func sortEntries(es []*Entry) {
	slices.SortFunc(es, func(a, b *Entry) int {
		pa, pb := position(a), position(b)
		switch {
		case pa.before(pb):
			return -1
		case pb.before(pa):
			return 1
		}
		return 0
	})
}

// Depth counts the unresolved entries of topic.
func (q *Queues) Depth(ctx context.Context, topic string) (int, error) {
	n, err := q.Depths(ctx, topic)
	if err != nil {
		return 0, err
	}
	return n[0], nil
}

// Depths counts the unresolved entries of each topic, reading the audit
// topic once for all and both whole; it streams the records and decodes
// none of them. For a count kept current, as the processor's gauges are,
// a Tracker reads only what is new.
func (q *Queues) Depths(ctx context.Context, topics ...string) ([]int, error) {
	decisions, err := q.decisions(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]int, len(topics))
	for i, topic := range topics {
		sp, err := kafka.RangeOf(ctx, q.adm, topic, time.Time{}, time.Time{})
		if err != nil {
			return nil, err
		}
		err = kafka.ReadSpan(ctx, q.cl.Opts(), topic, sp, func(r *kgo.Record) error {
			if decisions[retry.Coordinates(r)] == nil {
				out[i]++
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (q *Queues) entry(ctx context.Context, r *kgo.Record) *Entry {
	e := &Entry{
		ID:    retry.Coordinates(r),
		Topic: r.Topic, Key: string(r.Key), At: r.Timestamp,
		Source: retry.Get(r.Headers, retry.HeaderSource), EventType: retry.Get(r.Headers, retry.HeaderEventType),
		CorrelationID: retry.Get(r.Headers, retry.HeaderCorrelationID), Reason: retry.Get(r.Headers, retry.HeaderReason),
		Runbook: retry.Get(r.Headers, retry.HeaderRunbook), History: retry.History(r.Headers), rec: r,
		Origin: retry.Get(r.Headers, retry.HeaderOrigin), partition: r.Partition, offset: r.Offset,
	}
	if n := len(e.History); n > 0 {
		e.LastError = e.History[n-1].Error
	}
	if env, err := q.codec.Decode(ctx, r.Value); err == nil {
		e.Source, e.EventType, e.EventID, e.CorrelationID, e.Payload = env.Source, env.EventType, env.EventID, env.CorrelationID, env.Payload
	}
	return e
}

// Requeue sends the matching unresolved entries back into processing: to
// the first retry tier, due now, attempt 1 (a fresh budget), with their
// error history plus a line saying who requeued them and why. The requeue
// and its audit record are one transaction. dryRun only lists.
func (q *Queues) Requeue(ctx context.Context, topic string, f Filter, who, why string, dryRun bool) ([]*Entry, error) {
	return q.decide(ctx, topic, f, "requeue", who, why, dryRun)
}

// Discard marks the matching unresolved entries as resolved without
// reprocessing. why is required.
func (q *Queues) Discard(ctx context.Context, topic string, f Filter, who, why string, dryRun bool) ([]*Entry, error) {
	return q.decide(ctx, topic, f, "discard", who, why, dryRun)
}

// ErrNoReason is returned when a decision has no reason.
var ErrNoReason = errors.New("a reason is required (--reason)")

func (q *Queues) decide(ctx context.Context, topic string, f Filter, action, who, why string, dryRun bool) ([]*Entry, error) {
	if strings.TrimSpace(why) == "" {
		return nil, ErrNoReason
	}
	if topic != q.topics.DLQ && topic != q.topics.Invalid {
		return nil, fmt.Errorf("%s is not a failure queue", topic)
	}
	if action == "requeue" && len(q.topics.Retry) == 0 {
		return nil, errors.New("no retry tier to requeue to (the processor's -retry-tiers is empty)")
	}
	f.Unresolved = true
	// The entries are kept for the answer without their payload and
	// record: a decision over a long queue holds a few hundred bytes per
	// entry, not the events.
	var out []*Entry
	light := func(e *Entry) {
		e.Payload, e.rec = nil, nil
		out = append(out, e)
	}
	if dryRun {
		err := q.Scan(ctx, topic, f, func(e *Entry) error { light(e); return nil })
		sortEntries(out)
		return out, err
	}
	// One transactional id per queue, taken before the entries are read:
	// a decision already committing finishes first (its id is busy until
	// then) and is seen as decided below; one still reading is fenced, and
	// its commit fails. Two operators (CLI, API, a retry after a timeout)
	// cannot both act on one entry. Records as large as the topics take:
	// a requeued event is as big as it was on the raw topic.
	txn, err := kgo.NewClient(append(q.cl.Opts(),
		kgo.TransactionalID("inlet-ops-"+topic),
		kgo.ProducerBatchMaxBytes(kafka.MaxMessageBytes))...)
	if err != nil {
		return nil, err
	}
	defer txn.Close()
	if _, _, err := txn.ProducerID(ctx); err != nil {
		return nil, fmt.Errorf("%s: take the queue's transactional id: %w", action, err)
	}
	if err := txn.BeginTransaction(); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	// A record that fails does not fail the transaction by itself: without
	// this, a requeue whose record was refused committed its audit entry
	// alone, and the event was marked requeued but never sent.
	var mu sync.Mutex
	var produceErr error
	failed := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			produceErr = errors.Join(produceErr, err)
			mu.Unlock()
		}
	}
	// Each entry is written as it is read: the queue is never held whole.
	err = q.Scan(ctx, topic, f, func(e *Entry) error {
		d := &Decision{ID: e.ID, Action: action, Who: who, Why: why, At: now}
		if action == "requeue" {
			d.To = q.topics.Retry[0]
			h := retry.Clone(e.rec.Headers)
			h = retry.Set(h, retry.HeaderAttempt, "1")
			h = retry.Set(h, retry.HeaderDueAt, strconv.FormatInt(now.UnixMilli(), 10))
			h = retry.Set(h, retry.HeaderReason, "")
			h = retry.AppendError(h, retry.ErrorEntry{At: now, Stage: "requeue", Error: fmt.Sprintf("requeued from %s by %s: %s", e.ID, who, why)})
			txn.Produce(ctx, &kgo.Record{Topic: d.To, Key: e.rec.Key, Value: e.rec.Value, Headers: h}, failed)
		}
		b, _ := json.Marshal(d)
		txn.Produce(ctx, &kgo.Record{Topic: q.topics.Audit, Key: []byte(e.ID), Value: b}, failed)
		e.Decision = d
		light(e)
		return nil
	})
	if err == nil {
		err = txn.Flush(ctx)
	}
	if err == nil {
		mu.Lock()
		err = produceErr
		mu.Unlock()
		if err != nil {
			err = fmt.Errorf("%s: a record was refused, nothing was done: %w", action, err)
		}
	}
	if err == nil && len(out) == 0 {
		err = txn.EndTransaction(ctx, kgo.TryAbort) // nothing written
		return nil, err
	}
	if err != nil {
		if aerr := txn.EndTransaction(ctx, kgo.TryAbort); aerr != nil {
			err = errors.Join(err, aerr)
		}
		if fenced(err) {
			return nil, fmt.Errorf("%s: another decision on %s started meanwhile (or this one outlived its transaction), nothing was done; list again and retry: %w", action, topic, err)
		}
		return nil, err
	}
	if err := txn.EndTransaction(ctx, kgo.TryCommit); err != nil {
		if fenced(err) {
			return nil, fmt.Errorf("%s: another decision on %s started meanwhile (or this one outlived its transaction), nothing was done; list again and retry: %w", action, topic, err)
		}
		return nil, fmt.Errorf("commit %s: %w", action, err)
	}
	sortEntries(out)
	return out, nil
}

// fenced: a later decision on the same queue took its transactional id.
func fenced(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch)
}

// decisions reads the audit topic: the latest decision per record id.
func (q *Queues) decisions(ctx context.Context) (map[string]*Decision, error) {
	recs, err := q.readAll(ctx, q.topics.Audit)
	if err != nil {
		return nil, err
	}
	out := map[string]*Decision{}
	for _, r := range recs {
		var d Decision
		if json.Unmarshal(r.Value, &d) == nil && d.ID != "" {
			out[d.ID] = &d
		}
	}
	return out, nil
}

// readAll reads topic from the start to its current end (read_committed).
func (q *Queues) readAll(ctx context.Context, topic string) ([]*kgo.Record, error) {
	sp, err := kafka.RangeOf(ctx, q.adm, topic, time.Time{}, time.Time{})
	if err != nil {
		return nil, err
	}
	var out []*kgo.Record
	err = kafka.ReadSpan(ctx, q.cl.Opts(), topic, sp, func(r *kgo.Record) error {
		out = append(out, r)
		return nil
	})
	return out, err
}

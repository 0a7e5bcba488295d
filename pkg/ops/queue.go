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
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/registry"
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
	// NoEvent: the entry holds no copy of its event (too large with its
	// failure headers, retry.HeaderValueOmitted); the raw record at Origin
	// is the event, and replaying it is how it is processed again.
	NoEvent bool   `json:"no_event,omitempty"`
	Payload []byte `json:"-"`
	// Headers are the request headers ingest kept in the envelope (the
	// source's allowlist, e.g. X-Shopify-Api-Version), read and left out of
	// listings as Payload is.
	Headers map[string]string `json:"-"`
	// Problem says, on one line, what is wrong with a record as an entry
	// (one another producer wrote, with kcat say, or one damaged): its
	// value is no envelope, or its error history header is not one. Empty
	// for a sound entry. Such an entry is listed like any other, with
	// this as its explanation, and a --error filter matches it.
	Problem string `json:"problem,omitempty"`
	// Value is the record's value as stored when it did not decode as an
	// envelope (Problem says why): what there is to see of it. Read and
	// left out of listings as Payload is.
	Value []byte `json:"-"`

	rec       *kgo.Record // nil once a decision let go of it
	partition int32
	offset    int64
	// skipped says why a requeue left the entry alone (a Skip's Reason),
	// and requeued is the copy it writes otherwise (built once, by skip).
	skipped  string
	requeued *kgo.Record
	// notEnvelope: the registry's verdict is that the value is no
	// envelope (Problem says why), so a requeue would only send it to
	// the invalid topic: it is skipped.
	notEnvelope bool
}

// The actions of a Decision.
const (
	ActionRequeue = "requeue"
	ActionDiscard = "discard"
)

// Decision is an operator's audited action on an entry.
type Decision struct {
	ID     string    `json:"id"`
	Action string    `json:"action"` // ActionRequeue | ActionDiscard
	Who    string    `json:"who"`
	Why    string    `json:"why"`
	At     time.Time `json:"at"`
	To     string    `json:"to,omitempty"` // where a requeue went
	// TopicID is the queue topic's id when decided: a queue deleted and
	// created again reuses the coordinates in ID, and this decision is
	// not about the new entries there. Empty in decisions made before it
	// was recorded (they match any).
	TopicID string `json:"topic_id,omitempty"`
	// The entry's event, so that trace finds the decision by correlation
	// id (see TraceEntries). Empty in decisions made before they were
	// recorded.
	CorrelationID string `json:"correlation_id,omitempty"`
	Source        string `json:"source,omitempty"`
	EventType     string `json:"event_type,omitempty"`
	EventID       string `json:"event_id,omitempty"`
}

// topicIDs returns the ids of the failure queues (none for a topic the
// broker gives no id, or that does not exist).
func (q *Queues) topicIDs(ctx context.Context) (map[string]string, error) {
	td, err := q.adm.ListTopics(ctx, q.topics.DLQ, q.topics.Invalid)
	if err != nil {
		return nil, fmt.Errorf("describe the failure queues: %w", err)
	}
	out := map[string]string{}
	for name, d := range td {
		if d.Err == nil && d.ID != (kadm.TopicID{}) {
			out[name] = d.ID.String()
		}
	}
	return out, nil
}

// about reports whether d is about an entry of the queue whose id is now
// current.
func (d *Decision) about(current string) bool {
	return d.TopicID == "" || current == "" || d.TopicID == current
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

// Selects reports whether f narrows the queue at all (ids, or any of the
// field filters): a decision without is refused, as one slip would decide
// the whole queue.
func (f Filter) Selects() bool {
	return len(f.IDs) > 0 || f.Source != "" || f.EventType != "" || f.ErrorText != "" || !f.Since.IsZero() || !f.Until.IsZero()
}

// CheckRange refuses a since at or after until (both set): nothing could
// match, and an empty listing of a swapped range read as "no such
// problem".
func (f Filter) CheckRange() error {
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return fmt.Errorf("since %s is not before until %s: nothing could match (swapped?)", f.Since.Format(time.RFC3339), f.Until.Format(time.RFC3339))
	}
	return nil
}

// ErrBadID is wrapped by CheckIDs' error.
var ErrBadID = errors.New("not an entry id")

// CheckIDs refuses ids that cannot name an entry (ls prints them as
// topic/partition/offset): a typo is the operator's to fix, where "not on
// this queue" sent them looking for an entry.
func CheckIDs(ids []string) error {
	var bad []string
	for _, id := range ids {
		// As ls prints it, digit for digit: "inlet.dlq/0/02" parsed, named
		// entry 2, and matched nothing (entries are found by that text).
		t, p, off, ok := retry.ParseCoordinates(id)
		if !ok || !legalTopic(t) || p < 0 || off < 0 || id != fmt.Sprintf("%s/%d/%d", t, p, off) {
			bad = append(bad, strconv.Quote(id))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	if few := 5; len(bad) > few {
		bad = append(bad[:few], fmt.Sprintf("and %d more", len(bad)-few))
	}
	return fmt.Errorf("%w: %s (an id is <topic>/<partition>/<offset>, as ls prints it)", ErrBadID, strings.Join(bad, ", "))
}

// legalTopic reports whether t may name a Kafka topic (1–249 of
// [a-zA-Z0-9._-]): " inlet.dlq", pasted with a space, is not one.
func legalTopic(t string) bool {
	if t == "" || len(t) > 249 {
		return false
	}
	for _, c := range []byte(t) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (f Filter) match(e *Entry) bool {
	// f.IDs: scan skips the other records before decoding them.
	return (f.Source == "" || e.Source == f.Source) &&
		(f.EventType == "" || e.EventType == f.EventType) &&
		(f.ErrorText == "" || strings.Contains(strings.ToLower(e.LastError+" "+e.Reason+" "+e.Problem), strings.ToLower(f.ErrorText))) &&
		(f.Since.IsZero() || !e.At.Before(f.Since)) &&
		(f.Until.IsZero() || e.At.Before(f.Until)) &&
		(!f.Unresolved || e.Decision == nil)
}

// ErrUnknownSource is wrapped by UnknownSource's error.
var ErrUnknownSource = errors.New("unknown source")

// maxKnownShown bounds the sources an UnknownSource error names.
const maxKnownShown = 20

// UnknownSource is the error of a filter naming source that matched no
// entry, when known (the sources file's names, sorted) does not name it
// either: a mistyped source, most often, which a count of 0 would hide.
// It is nil when known is nil (the sources are not known), source is
// empty, or known names it. Ask it only of a filter that matched nothing:
// the entries of a source since removed from the file are still on the
// queues, to be listed and decided.
func UnknownSource(known []string, source string) error {
	if known == nil || source == "" || slices.Contains(known, source) {
		return nil
	}
	names := strings.Join(known[:min(len(known), maxKnownShown)], ", ")
	if len(known) > maxKnownShown {
		names += fmt.Sprintf(" and %d more", len(known)-maxKnownShown)
	}
	if len(known) == 0 {
		names = "none"
	}
	return fmt.Errorf("%w %q: not in the sources file (its sources: %s), and no entry matched it", ErrUnknownSource, source, names)
}

// Queues reads and acts on the failure topics.
type Queues struct {
	cl     *kgo.Client
	adm    *kadm.Client
	topics kafka.Topics
	codec  *envelope.Codec
	log    *slog.Logger
	// guard confirms each decision's commits (see decide); one per
	// Queues, so that a check that cannot run is logged once.
	guard *kafka.MarkerGuard
}

// New returns Queues over the cluster reached with opts, with
// kafka.MetadataMinAge for this client and those built from its options.
func New(opts []kgo.Opt, topics kafka.Topics, codec *envelope.Codec) (*Queues, error) {
	cl, err := kgo.NewClient(append(slices.Clip(opts), kgo.MetadataMinAge(kafka.MetadataMinAge))...)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.DiscardHandler)
	return &Queues{cl: cl, adm: kadm.NewClient(cl), topics: topics, codec: codec, log: log, guard: kafka.NewMarkerGuard(TxnID(topics), log)}, nil
}

// SetLogger logs what decisions find of transactions Kafka left open
// (see decide) to log; the default discards. Call it before deciding.
func (q *Queues) SetLogger(log *slog.Logger) {
	q.log = log
	q.guard = kafka.NewMarkerGuard(TxnID(q.topics), log)
}

// Close releases the client.
func (q *Queues) Close() { q.cl.Close() }

// Scan calls fn with each entry of topic (the DLQ or invalid topic)
// matching f, each with its decision if one was made, in the order the
// records are read (by offset within a partition, partitions interleaved).
// It holds no entry after fn returns, so memory does not grow with the
// queue; an error from fn stops the scan and is returned.
func (q *Queues) Scan(ctx context.Context, topic string, f Filter, fn func(*Entry) error) error {
	decisions, _, err := q.decisions(ctx)
	if err != nil {
		return err
	}
	return q.scan(ctx, decisions, topic, f, fn, nil)
}

// scan is Scan with the decisions already read, calling every (when not
// nil) after each record read, matching or not.
func (q *Queues) scan(ctx context.Context, decisions map[string]*Decision, topic string, f Filter, fn func(*Entry) error, every func() error) error {
	sp, err := kafka.RangeOf(ctx, q.adm, topic, time.Time{}, time.Time{})
	if err != nil {
		return err
	}
	// A set: a decision through the admin API may name some 40,000 ids
	// (its 1 MiB body), each record read looked up in them.
	var ids map[string]struct{}
	if len(f.IDs) > 0 {
		ids = make(map[string]struct{}, len(f.IDs))
		for _, id := range f.IDs {
			ids[id] = struct{}{}
		}
	}
	return kafka.ReadSpan(ctx, q.cl.Opts(), topic, sp, func(r *kgo.Record) error {
		// Asked by id: skip the others before decoding them.
		want := ids == nil
		if !want {
			_, want = ids[retry.Coordinates(r)]
		}
		if want {
			e := q.entry(ctx, r)
			e.Decision = decisions[e.ID]
			if f.match(e) {
				if err := fn(e); err != nil {
					return err
				}
			}
		}
		if every != nil {
			return every()
		}
		return nil
	})
}

// List returns every entry of topic matching f, in log order (see
// [Listing]), payloads included. It holds them all: for a queue that may be
// long, select by ids or use Page.
func (q *Queues) List(ctx context.Context, topic string, f Filter) ([]*Entry, error) {
	l, err := q.page(ctx, topic, f, "", 0, true)
	return l.Entries, err
}

// Listing is one page of a queue's matching entries.
type Listing struct {
	// Entries are in log order: by partition, then offset (oldest first
	// within a partition). Unlike record times, that order is the order in
	// which entries become readable, so a walk through the pages misses
	// none that were there when it began.
	Entries []*Entry
	// Total counts every matching entry on the queue, on any page.
	Total int
	// Next is the cursor of the page after this one; empty on the last.
	Next string
}

// Page returns at most limit entries of topic matching f (0: no limit), in
// log order, starting after cursor (empty: from the start; else the Next
// of an earlier page), without their payloads. It reads the whole queue
// but holds at most twice limit entries, so a listing through the admin
// API cannot exhaust the processor's memory however long the queue grew.
func (q *Queues) Page(ctx context.Context, topic string, f Filter, cursor string, limit int) (Listing, error) {
	return q.page(ctx, topic, f, cursor, limit, false)
}

func (q *Queues) page(ctx context.Context, topic string, f Filter, cursor string, limit int, payloads bool) (Listing, error) {
	var l Listing
	if err := CheckIDs(f.IDs); err != nil {
		return l, err
	}
	if limit < 0 {
		return l, fmt.Errorf("%w: limit %d is negative", ErrBadPage, limit)
	}
	after, err := parseCursor(cursor)
	if err != nil {
		return l, err
	}
	keep := firstN{n: limit}
	err = q.Scan(ctx, topic, f, func(e *Entry) error {
		l.Total++
		if cursor != "" && !after.before(position(e)) {
			return nil
		}
		if !payloads {
			e.Payload, e.Headers, e.Value, e.rec, e.requeued = nil, nil, nil, nil, nil
		}
		keep.add(e)
		return nil
	})
	if err != nil {
		return Listing{}, err
	}
	l.Entries = keep.result()
	if keep.more && len(l.Entries) > 0 {
		l.Next = position(l.Entries[len(l.Entries)-1]).String()
	}
	return l, nil
}

// firstN keeps the first n entries in log order of those added (all when n
// is 0), holding at most twice n at any time.
type firstN struct {
	n    int
	es   []*Entry
	more bool // some were left out
}

func (k *firstN) add(e *Entry) {
	k.es = append(k.es, e)
	if k.n > 0 && len(k.es) >= 2*k.n {
		k.cut()
	}
}

func (k *firstN) cut() {
	sortEntries(k.es)
	if k.n > 0 && len(k.es) > k.n {
		clear(k.es[k.n:])
		k.es, k.more = k.es[:k.n], true
	}
}

func (k *firstN) result() []*Entry {
	k.cut()
	return k.es
}

// ErrBadPage is returned for a cursor or limit Page cannot use.
var ErrBadPage = errors.New("bad page")

// pos is an entry's place in log order.
type pos struct {
	partition int32
	offset    int64
}

func position(e *Entry) pos { return pos{partition: e.partition, offset: e.offset} }

func (a pos) before(b pos) bool {
	if a.partition != b.partition {
		return a.partition < b.partition
	}
	return a.offset < b.offset
}

// String is the cursor: partition_offset, both decimal.
func (a pos) String() string {
	return strconv.FormatInt(int64(a.partition), 10) + "_" + strconv.FormatInt(a.offset, 10)
}

func parseCursor(s string) (pos, error) {
	if s == "" {
		return pos{}, nil
	}
	bad := fmt.Errorf("%w: cursor %q: want the next value of an earlier page", ErrBadPage, s)
	ps, offs, ok := strings.Cut(s, "_")
	if !ok {
		return pos{}, bad
	}
	p, err1 := strconv.ParseInt(ps, 10, 32)
	off, err2 := strconv.ParseInt(offs, 10, 64)
	if err1 != nil || err2 != nil || p < 0 || off < 0 {
		return pos{}, bad
	}
	return pos{partition: int32(p), offset: off}, nil
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

// Depths counts the unresolved entries of each topic: a Tracker's first
// refresh, which reads the queues and the audit topic whole, decoding
// nothing. For a count kept current, as the processor's gauges are, keep
// the Tracker: its next refreshes read only what is new.
func (q *Queues) Depths(ctx context.Context, topics ...string) ([]int, error) {
	return NewTracker(q, topics...).Refresh(ctx)
}

func (q *Queues) entry(ctx context.Context, r *kgo.Record) *Entry {
	e := &Entry{
		ID:    retry.Coordinates(r),
		Topic: r.Topic, Key: string(r.Key), At: r.Timestamp,
		Source: retry.Get(r.Headers, retry.HeaderSource), EventType: retry.Get(r.Headers, retry.HeaderEventType),
		CorrelationID: retry.Get(r.Headers, retry.HeaderCorrelationID), Reason: retry.Get(r.Headers, retry.HeaderReason),
		Runbook: retry.Get(r.Headers, retry.HeaderRunbook), History: retry.History(r.Headers), rec: r,
		Origin: retry.Get(r.Headers, retry.HeaderOrigin), partition: r.Partition, offset: r.Offset,
		NoEvent: retry.Get(r.Headers, retry.HeaderValueOmitted) != "",
	}
	if n := len(e.History); n > 0 {
		e.LastError = e.History[n-1].Error
	}
	var problems []string
	env, err := q.codec.Decode(ctx, r.Value)
	switch {
	case err == nil:
		e.Source, e.EventType, e.EventID, e.CorrelationID, e.Payload, e.Headers = env.Source, env.EventType, env.EventID, env.CorrelationID, env.Payload, env.Headers
	case e.NoEvent: // left out on purpose, and said so
	default:
		// Listed blank and shown with an empty payload, such a record
		// said nothing of what it was.
		e.Value = r.Value
		p, verdict := valueProblem(r.Value, err)
		problems, e.notEnvelope = append(problems, p), verdict
	}
	if h := retry.Get(r.Headers, retry.HeaderErrors); h != "" && json.Unmarshal([]byte(h), new([]retry.ErrorEntry)) != nil {
		problems = append(problems, fmt.Sprintf("its %s header is not a JSON error history (%d bytes)", retry.HeaderErrors, len(h)))
	}
	e.Problem = strings.Join(problems, "; ")
	return e
}

// valueProblem says what is wrong with a value that did not decode as an
// envelope (err), and whether that is the registry's verdict on it: not
// when the registry could not be asked, nor when this build cannot read
// a schema that the processor's may (the event may well be sound).
func valueProblem(v []byte, err error) (string, bool) {
	switch {
	case v == nil:
		return "no value (null, as a tombstone): not an Inlet envelope", true
	case len(v) == 0:
		return "empty value: not an Inlet envelope", true
	case errors.Is(err, registry.ErrNotFramed):
		return "value is not an Inlet envelope: not Confluent-framed (no magic byte 0 and schema id)", true
	case registry.IsUnavailable(err) || errors.Is(err, registry.ErrIncompatible):
		return "envelope not decoded (the value may be sound): " + oneLine(err.Error()), false
	}
	return "value is not an Inlet envelope: " + oneLine(err.Error()), true
}

// oneLine keeps a problem on one line, as listings show it.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// Decided is what a requeue or discard did (or, in a dry run, would do).
type Decided struct {
	// Count is how many entries were decided.
	Count int
	// Entries are the first MaxShown of them in log order, without
	// payloads: a decision over a long queue does not hold it.
	Entries []*Entry
	// Skipped counts the entries a requeue matched but could not requeue
	// (see Skip); they are left unresolved.
	Skipped int
	// SkippedEntries are the first MaxShown of them, in log order.
	SkippedEntries []Skip
	// Unmatched are the ids named (Filter.IDs) that the decision found no
	// entry to decide by, each once, in the order named, and why: not on
	// this queue (ReasonNotFound), already decided (ReasonDecided, with
	// that decision), or outside the filter's other fields
	// (ReasonFiltered). Entries a requeue skipped are in SkippedEntries
	// instead. Empty for a decision by filter alone, and when the read of
	// the queue stopped midway (an error). As many as were named: unlike
	// Entries, not bounded by MaxShown, but by the request.
	Unmatched []Miss
	// Repaired lists where Kafka answered a commit of the decision (or of
	// the decision before it) and skipped its markers, as a broker in
	// controlled shutdown can, and the decision wrote them: left open,
	// those records held back every read_committed reader there.
	Repaired []string `json:",omitempty"`
}

// Undecided counts, of a decision naming ids, those it left undecided:
// those it found no entry to decide by, and those a requeue skipped.
func (d Decided) Undecided() int { return len(d.Unmatched) + d.Skipped }

// Miss is an id a decision named and found no entry to decide by, and why.
type Miss struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
	// Decision is the decision already made on the entry (ReasonDecided).
	Decision *Decision `json:"decision,omitempty"`
}

// The Miss.Reason of an id naming no entry of the queue (its topic, a
// mistyped offset, an entry deleted by retention), of an entry already
// decided, and of an entry the filter's other fields do not select.
const (
	ReasonNotFound = "not on this queue"
	ReasonDecided  = "already decided"
	ReasonFiltered = "does not match the filter"
)

// ErrNotFound is returned by a decision naming ids none of which is an
// entry of the queue: the ids are mistyped, or of the other queue.
// Decided.Unmatched lists them. The dry run returns it too.
var ErrNotFound = errors.New("no such entry")

// ErrDecided is returned by a decision naming ids every one of which is an
// entry already decided (by someone else, or by an earlier try of this
// one); Decided.Unmatched lists them with their decisions. The dry run
// returns it too.
var ErrDecided = errors.New("already decided")

// Skip is an entry a requeue left alone, and why.
type Skip struct {
	ID string `json:"id"`
	// Origin is the raw record holding the event (topic/partition/offset):
	// the one to replay. Empty when the entry does not say.
	Origin string `json:"origin"`
	Reason string `json:"reason"`
}

// ErrNoEvent is returned by a requeue that names one entry alone (one id,
// however often given) whose copy of its event was left out
// (retry.HeaderValueOmitted): it was too large with its failure headers. A
// requeue of several entries skips such entries instead (Decided.Skipped).
var ErrNoEvent = errors.New("no copy of its event")

// ReasonNoEvent is the Skip.Reason of an entry without its event,
// ReasonTooLarge that of one whose copy with the retry headers a requeue
// adds would be over what Kafka takes, and SkipHint what to do with such
// entries.
const (
	ReasonNoEvent  = "no copy of its event (too large with its failure headers)"
	ReasonTooLarge = "too large to requeue: its event with the retry headers is over what a Kafka record may hold"
	SkipHint       = "replay each skipped entry's raw record (its origin) with inletctl replay, then discard the entry"
)

// ErrNotEnvelope is returned by a requeue that names one entry alone whose
// value the registry says is no envelope (Entry.Problem: a tombstone,
// another producer's record, a schema id the registry does not have):
// the processor would only send it to the invalid topic. A requeue of
// several entries skips such entries instead (Decided.Skipped, with the
// problem as the Skip's Reason).
var ErrNotEnvelope = errors.New("not an event to requeue")

// NotEnvelopeHint is what to do with entries a requeue skipped for
// holding no envelope.
const NotEnvelopeHint = "discard an entry that is not an event; one whose schema id the registry lacks can be requeued once the registry has it again"

// ErrTooLarge is returned by a requeue that names one entry alone whose
// requeued copy would be over what Kafka takes (ReasonTooLarge). A requeue
// of several entries skips such entries instead (Decided.Skipped).
var ErrTooLarge = errors.New("too large to requeue")

// MaxShown bounds Decided.Entries and Decided.SkippedEntries.
const MaxShown = 1000

// maxShown is MaxShown; tests lower it.
var maxShown = MaxShown

// A decision is written in transactions of at most decideChunk entries,
// each open at most about decideAge: one transaction for a whole queue
// stayed open while the queue was read, and outlived its timeout on a
// long one (and held back every read_committed reader of the audit and
// retry topics meanwhile).
var (
	decideChunk = 10000
	decideAge   = 5 * time.Second
	afterCommit func() // tests: called after each committed chunk
)

// decideBytes bounds the bytes of the records a decision's transaction
// holds (a commit past it): they are kept until the commit is read back,
// to be written again when the Kafka client aborted it
// (kafka.ErrClientAborted), and 10,000 requeued events may be a MiB each.
var decideBytes = 64 << 20

// commitChunk commits a decision's transaction; a test makes it end as
// franz-go sometimes did (see kafka.ErrClientAborted).
var commitChunk = (*kafka.Chunks).Commit

// Requeue sends the matching unresolved entries back into processing: to
// the first retry tier, due now, attempt 1 (a fresh budget), with their
// error history plus a line saying who requeued them and why. Each requeue
// and its audit record are in one transaction. dryRun changes nothing.
// why and who are required (ErrNoReason, ErrNoWho): both are audited.
//
// An entry holding no copy of its event (retry.HeaderValueOmitted) is
// skipped, left unresolved and reported in Decided.Skipped (the dry run
// reports it too): its event is the raw record its Origin names, to be
// replayed. Named alone (one id, however often given), it fails the
// requeue with ErrNoEvent. So is an entry whose value the registry says
// is no envelope (Entry.Problem; ErrNotEnvelope named alone): requeued,
// it would only come back as invalid.
//
// A decision naming ids (f.IDs) reports those it found no entry to decide
// by in Decided.Unmatched, and decides the others; when none of them is on
// the queue it fails with ErrNotFound, and when every one of them was
// already decided with ErrDecided, having done nothing. Its dry run
// reports and fails the same.
//
// A decision over many entries commits as it goes (see decideChunk): if it
// fails midway, the entries decided before the failure stand, the error
// says how many, and running it again goes on with the rest (decided
// entries are not selected again).
func (q *Queues) Requeue(ctx context.Context, topic string, f Filter, who, why string, dryRun bool) (Decided, error) {
	return q.decide(ctx, topic, f, ActionRequeue, who, why, dryRun)
}

// Discard marks the matching unresolved entries as resolved without
// reprocessing, as Requeue does otherwise. why and who are required.
func (q *Queues) Discard(ctx context.Context, topic string, f Filter, who, why string, dryRun bool) (Decided, error) {
	return q.decide(ctx, topic, f, ActionDiscard, who, why, dryRun)
}

// TxnID is the transactional id every requeue and discard of a
// deployment (topics) takes.
func TxnID(topics kafka.Topics) string { return "inlet-ops-" + topics.Audit }

// ErrNoRetryTopic is wrapped by a requeue's error when the first retry
// tier's topic does not exist: the retry tiers given are not the
// processor's.
var ErrNoRetryTopic = errors.New("no such topic")

// ErrNoReason is returned when a decision has no reason.
var ErrNoReason = errors.New("a reason is required (--reason)")

// ErrNoWho is returned when a decision does not say who makes it (who is
// blank): its audit record would name nobody.
var ErrNoWho = errors.New("who decides is required (--who)")

func (q *Queues) decide(ctx context.Context, topic string, f Filter, action, who, why string, dryRun bool) (Decided, error) {
	var res Decided
	if strings.TrimSpace(why) == "" {
		return res, ErrNoReason
	}
	if strings.TrimSpace(who) == "" {
		return res, ErrNoWho
	}
	if err := CheckIDs(f.IDs); err != nil {
		return res, err
	}
	if topic != q.topics.DLQ && topic != q.topics.Invalid {
		return res, fmt.Errorf("%s is not a failure queue", topic)
	}
	if action == "requeue" && len(q.topics.Retry) == 0 {
		return res, errors.New("no retry tier to requeue to (the processor's -retry-tiers is none)")
	}
	if action == "requeue" {
		// Each requeued record would be refused with only
		// UNKNOWN_TOPIC_OR_PARTITION, naming neither the topic nor why.
		td, err := q.adm.ListTopics(ctx, q.topics.Retry[0])
		if err != nil {
			return res, fmt.Errorf("requeue: describe the first retry tier's topic %s: %w", q.topics.Retry[0], err)
		}
		if d, ok := td[q.topics.Retry[0]]; !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			return res, fmt.Errorf("%w: %s, where a requeue writes (the first retry tier): are the retry tiers the processor's (--retry-tiers, INLET_RETRY_TIERS)?", ErrNoRetryTopic, q.topics.Retry[0])
		}
	}
	f.Unresolved = true
	// One entry named alone, however often its id is given: ["x", "x"]
	// is still one entry.
	alone := len(f.IDs) > 0 && !slices.ContainsFunc(f.IDs, func(id string) bool { return id != f.IDs[0] })
	now := time.Now().UTC()
	shown, skipped := firstN{n: maxShown}, firstN{n: maxShown}
	nm := newNamed(f.IDs)
	// skip reports whether a requeue leaves e alone, counting it if so.
	// Named alone, the entry is the whole request: skipping it would
	// answer success having done nothing, so that fails and says why.
	// Among others (several ids, a filter) it is skipped and the rest
	// goes on: one oversized entry stopped a bulk requeue midway.
	skip := func(e *Entry) (bool, error) {
		if action != "requeue" {
			return false, nil
		}
		if e.NoEvent {
			e.skipped = ReasonNoEvent
		} else if e.notEnvelope {
			e.skipped = e.Problem
		} else if e.requeued = requeueRecord(e, q.topics.Retry[0], now, who, why); e.requeued == nil {
			e.skipped = ReasonTooLarge
		} else {
			return false, nil
		}
		if alone && e.NoEvent {
			return true, fmt.Errorf("%s holds %w (too large with its failure headers): replay the raw record %s with inletctl replay instead, then discard this entry", e.ID, ErrNoEvent, e.Origin)
		}
		if alone && e.notEnvelope {
			return true, fmt.Errorf("%s: %w (%s): requeued, it would only come back as invalid; %s", e.ID, ErrNotEnvelope, e.Problem, NotEnvelopeHint)
		}
		if alone {
			return true, fmt.Errorf("%s is %w: its event with the retry headers is over what a Kafka record may hold; replay the raw record %s with inletctl replay instead, then discard this entry", e.ID, ErrTooLarge, e.Origin)
		}
		e.Payload, e.Headers, e.Value, e.rec, e.requeued = nil, nil, nil, nil, nil
		res.Skipped++
		skipped.add(e)
		return true, nil
	}
	if dryRun {
		// Read as the requeue will, so that both agree on what is skipped.
		decisions, _, err := q.decisions(ctx)
		if err != nil {
			return res, err
		}
		sel, fn := nm.selecting(f, func(e *Entry) error {
			if s, err := skip(e); s || err != nil {
				return err
			}
			e.Payload, e.Headers, e.Value, e.rec, e.requeued = nil, nil, nil, nil, nil
			res.Count++
			shown.add(e)
			return nil
		})
		err = q.scan(ctx, decisions, topic, sel, fn, nil)
		res.Entries, res.SkippedEntries = shown.result(), skipsOf(skipped.result())
		if err != nil {
			return res, err
		}
		res.Unmatched = nm.misses()
		return res, nm.refusal(action, topic, res)
	}
	// One transactional id for every decision (both queues write the
	// audit topic), taken before the entries are read: a decision already
	// committing finishes first (its id is busy until then) and is seen as
	// decided below; one still going is fenced, its open transaction
	// aborted, and its next commit fails. Two operators (CLI, API, a retry
	// after a timeout) cannot both act on one entry. With an id per queue,
	// a decision on the other queue holding a transaction open on the
	// audit topic hid every decision committed after it began from the
	// read below (read_committed stops at that transaction), and a retried
	// requeue acted again. Records as large as the topics take: a requeued
	// event is as big as it was on the raw topic.
	txn, err := kgo.NewClient(append(q.cl.Opts(),
		kgo.TransactionalID(TxnID(q.topics)),
		kgo.TransactionTimeout(time.Minute),
		kgo.ProducerBatchMaxBytes(kafka.MaxMessageBytes))...)
	if err != nil {
		return res, err
	}
	defer txn.Close()
	// Before taking the id, which makes the coordinator forget how the
	// last decision ended: one that stopped before confirming its commit
	// (below) may have left records open where Kafka skipped markers.
	// Bounded, and never fails the decision (see kafka.MarkerGuard).
	topics := []string{q.topics.Audit}
	if len(q.topics.Retry) > 0 {
		topics = append(topics, q.topics.Retry[0]) // the last decision may have been a requeue
	}
	res.Repaired = append(res.Repaired, repairedOf(q.guard.SettleCompleted(ctx, txn, topics...))...)
	if _, _, err := txn.ProducerID(ctx); err != nil {
		return res, fmt.Errorf("%s: take the decisions' transactional id: %w", action, err)
	}
	// Read once: the queues' topic ids both filter the decisions made on
	// an earlier topic of the same name and stamp the new ones.
	decisions, ids, err := q.decisions(ctx)
	if err != nil {
		return res, err
	}
	// A record that fails fails its whole transaction (see kafka.Chunks):
	// a requeue whose record was refused once committed its audit entry
	// alone, and the event was marked requeued but never sent.
	chunks := kafka.NewChunks(txn, q.cl.Opts())
	// Decisions are rare: each commit's markers are confirmed on every
	// partition it wrote. A requeue's records left open on the retry
	// topic would stall the processor's reads of that partition; the
	// audit topic left open hides later decisions from the read above (a
	// retried requeue acts again); and the next decision's abort there
	// would throw this one away.
	chunks.Guard(q.guard, nil, func(s kafka.Settled) { res.Repaired = append(res.Repaired, repairedOf(s)...) })
	var (
		pending     []*Entry      // decided in the open transaction
		unconfirmed int           // entries whose commit was sent but not answered
		written     []*kgo.Record // the open transaction's records, as given
		writtenSize int
	)
	produce := func(r *kgo.Record) error {
		written = append(written, unsent(r))
		writtenSize += len(r.Key) + len(r.Value)
		for _, h := range r.Headers {
			writtenSize += len(h.Key) + len(h.Value)
		}
		return chunks.Produce(ctx, r)
	}
	commit := func() error {
		err := commitChunk(chunks, ctx)
		// A commit the client turned into an abort wrote nothing: the
		// same records go again in a new transaction. Before, the
		// decision stopped and blamed another operator's.
		for try := 1; errors.Is(err, kafka.ErrClientAborted) && try <= kafka.ClientAbortRetries; try++ {
			for _, r := range written {
				if err = chunks.Produce(ctx, unsent(r)); err != nil {
					return err
				}
			}
			err = commitChunk(chunks, ctx)
		}
		if err != nil {
			if errors.Is(err, kafka.ErrUnconfirmed) {
				unconfirmed = len(pending)
			}
			return err
		}
		clear(written)
		written, writtenSize = written[:0], 0
		if len(pending) > 0 && afterCommit != nil {
			afterCommit()
		}
		res.Count += len(pending)
		for _, e := range pending {
			shown.add(e)
		}
		pending = pending[:0]
		return nil
	}
	// Each entry is written as it is read: the queue is never held whole.
	sel, fn := nm.selecting(f, func(e *Entry) error {
		if s, err := skip(e); s || err != nil {
			return err
		}
		d := &Decision{ID: e.ID, Action: action, Who: who, Why: why, At: now, TopicID: ids[topic],
			CorrelationID: e.CorrelationID, Source: e.Source, EventType: e.EventType, EventID: e.EventID}
		if action == "requeue" {
			d.To = q.topics.Retry[0]
			if err := produce(e.requeued); err != nil {
				return err
			}
		}
		b, _ := json.Marshal(d)
		if err := produce(&kgo.Record{Topic: q.topics.Audit, Key: []byte(e.ID), Value: b}); err != nil {
			return err
		}
		e.Decision = d
		e.Payload, e.Headers, e.Value, e.rec, e.requeued = nil, nil, nil, nil, nil
		pending = append(pending, e)
		if len(pending) >= decideChunk || writtenSize >= decideBytes {
			return commit()
		}
		return nil
	})
	err = q.scan(ctx, decisions, topic, sel, fn, func() error {
		if chunks.Age() >= decideAge {
			return commit()
		}
		return nil
	})
	if err == nil {
		res.Unmatched = nm.misses() // the queue was read through
		err = commit()
	}
	res.Entries, res.SkippedEntries = shown.result(), skipsOf(skipped.result())
	if err == nil {
		if res.Count > 0 {
			q.awaitVisible(ctx)
		}
		return res, nm.refusal(action, topic, res)
	}
	// A refused commit's transaction is aborted already: aborting it again
	// fails the same way, and the answer said the refusal three times.
	if aerr := chunks.Abort(ctx); aerr != nil && !kafka.Refused(err) {
		err = errors.Join(err, aerr)
	}
	if res.Count > 0 {
		q.awaitVisible(context.WithoutCancel(ctx)) // what stands is listed as decided
	}
	done := "nothing was done"
	if res.Count > 0 {
		done = fmt.Sprintf("%d entries were decided before it and stand; run it again to go on with the rest", res.Count)
	}
	if unconfirmed > 0 {
		done = fmt.Sprintf("%d entries were decided before it and stand, and the last %d may have been too (their commit was sent but not confirmed); list them again before deciding the rest", res.Count, unconfirmed)
	}
	if errors.Is(err, kafka.ErrClientAborted) {
		return res, fmt.Errorf("%s: the Kafka client aborted a commit %d times in a row; %s: %w", action, kafka.ClientAbortRetries+1, done, err)
	}
	if kafka.Refused(err) {
		return res, fmt.Errorf("%s: another decision started meanwhile (or this one outlived its transaction); %s: %w", action, done, err)
	}
	return res, fmt.Errorf("%s: %s: %w", action, done, err)
}

// repairedOf names where s wrote markers Kafka skipped.
func repairedOf(s kafka.Settled) []string {
	var out []string
	for _, h := range s.Repaired {
		out = append(out, h.String())
	}
	return out
}

// unsent is what r carries before it is produced: franz-go fills in the
// rest (partition, offset, timestamp) of the record it is given.
func unsent(r *kgo.Record) *kgo.Record {
	return &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: r.Headers}
}

// named follows the ids a decision names (none: a decision by filter),
// to say why it decided none of some.
type named struct {
	order []string         // each id once, in the order first named
	miss  map[string]*Miss // by id; an empty Reason: selected
}

func newNamed(ids []string) *named {
	if len(ids) == 0 {
		return nil
	}
	n := &named{miss: make(map[string]*Miss, len(ids))}
	for _, id := range ids {
		if _, dup := n.miss[id]; !dup {
			n.miss[id] = &Miss{ID: id, Reason: ReasonNotFound}
			n.order = append(n.order, id)
		}
	}
	return n
}

// selecting returns the filter to scan with and the function to call with
// what it reads in place of f and fn. Naming ids, it reads every entry
// named, decided or not, and notes why it does not decide one.
func (n *named) selecting(f Filter, fn func(*Entry) error) (Filter, func(*Entry) error) {
	if n == nil {
		return f, fn
	}
	return Filter{IDs: f.IDs}, func(e *Entry) error {
		m := n.miss[e.ID]
		switch {
		case e.Decision != nil:
			m.Reason, m.Decision = ReasonDecided, e.Decision
			return nil
		case !f.match(e):
			m.Reason = ReasonFiltered
			return nil
		}
		m.Reason = ""
		return fn(e)
	}
}

// misses are the ids named that matched no entry to decide, in the order
// named (see Decided.Unmatched).
func (n *named) misses() []Miss {
	if n == nil {
		return nil
	}
	var out []Miss
	for _, id := range n.order {
		if m := n.miss[id]; m.Reason != "" {
			out = append(out, *m)
		}
	}
	return out
}

// refusal is the error of a decision d naming ids none of which is on
// the queue (ErrNotFound), or every one of which was already decided
// (ErrDecided); else nil.
func (n *named) refusal(action, topic string, d Decided) error {
	if n == nil || len(d.Unmatched) != len(n.order) {
		return nil
	}
	all := func(reason string) bool {
		return !slices.ContainsFunc(d.Unmatched, func(m Miss) bool { return m.Reason != reason })
	}
	switch {
	case all(ReasonNotFound):
		return fmt.Errorf("%s: nothing was done: %w on %s: %s%s", action, ErrNotFound, topic, namedIDs(d.Unmatched, nil), otherQueue(topic, d.Unmatched))
	case all(ReasonDecided):
		return fmt.Errorf("%s: nothing was done: every entry named was %w: %s", action, ErrDecided, namedIDs(d.Unmatched, func(m Miss) string {
			return fmt.Sprintf(" (%s by %s at %s)", m.Decision.Action, m.Decision.Who, m.Decision.At.Format(time.RFC3339))
		}))
	}
	return nil
}

// namedIDs names the first few misses, each with what more (when not nil)
// says of it.
func namedIDs(ms []Miss, more func(Miss) string) string {
	const few = 5
	var b strings.Builder
	for i, m := range ms[:min(len(ms), few)] {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(m.ID)
		if more != nil {
			b.WriteString(more(m))
		}
	}
	if len(ms) > few {
		fmt.Fprintf(&b, " and %d more", len(ms)-few)
	}
	return b.String()
}

// otherQueue says so when the ids name entries of another topic (the
// other queue, most often): "inletctl invalid discard inlet.dlq/0/18".
func otherQueue(topic string, ms []Miss) string {
	for _, m := range ms {
		if t, _, _, ok := retry.ParseCoordinates(m.ID); ok && t != topic {
			return fmt.Sprintf(" (%s is an entry of %s, not of %s)", m.ID, t, topic)
		}
	}
	return ""
}

// skipsOf is the Skip of each entry a requeue skipped.
func skipsOf(es []*Entry) []Skip {
	out := make([]Skip, 0, len(es))
	for _, e := range es {
		out = append(out, Skip{ID: e.ID, Origin: e.Origin, Reason: e.skipped})
	}
	return out
}

// requeueRecord is e's event on topic (the first retry tier), due at now,
// attempt 1, its history plus who requeued it and why; nil when that is
// over what Kafka takes even with the history cut to the requeue line (an
// event another producer wrote near the limit, whose dead-letter copy
// just fit): produced, Kafka refused it, and with it the transaction of
// every entry of its chunk, on every run of the requeue.
func requeueRecord(e *Entry, topic string, now time.Time, who, why string) *kgo.Record {
	h := retry.Clone(e.rec.Headers)
	h = retry.Set(h, retry.HeaderAttempt, "1")
	h = retry.Set(h, retry.HeaderDueAt, strconv.FormatInt(now.UnixMilli(), 10))
	h = retry.Set(h, retry.HeaderReason, "")
	h = retry.AppendError(h, retry.ErrorEntry{At: now, Stage: retry.StageRequeue, Error: fmt.Sprintf("requeued from %s by %s: %s", e.ID, who, why)})
	r := &kgo.Record{Topic: topic, Key: e.rec.Key, Value: e.rec.Value, Headers: h}
	if kafka.RecordSize(r) > kafka.MaxMessageBytes {
		r.Headers = retry.ShrinkHistory(r.Headers, 256) // as the processor's copies: the newest entry
	}
	if kafka.RecordSize(r) > kafka.MaxMessageBytes {
		return nil
	}
	return r
}

// awaitVisible waits, up to 5 s, until what was written to the audit topic
// so far is readable: a listing made right after a decision (a script
// calling the admin API) still showed the entries undecided. Best effort:
// the decision stands either way.
func (q *Queues) awaitVisible(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_ = kafka.AwaitStable(ctx, q.adm, q.topics.Audit)
}

// decisions reads the audit topic: the latest decision per entry id,
// streamed, leaving out decisions on entries that retention deleted from
// the queues (the audit topic is compacted, and keeps every decision ever
// made). It also returns the queues' topic ids it filtered with.
func (q *Queues) decisions(ctx context.Context) (map[string]*Decision, map[string]string, error) {
	starts := map[string]map[int32]int64{}
	l, err := q.adm.ListStartOffsets(ctx, q.topics.DLQ, q.topics.Invalid)
	if err != nil {
		return nil, nil, fmt.Errorf("list start offsets of the failure queues: %w", err)
	}
	l.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			if starts[o.Topic] == nil {
				starts[o.Topic] = map[int32]int64{}
			}
			starts[o.Topic][o.Partition] = o.Offset
		}
	})
	ids, err := q.topicIDs(ctx)
	if err != nil {
		return nil, nil, err
	}
	sp, err := kafka.RangeOf(ctx, q.adm, q.topics.Audit, time.Time{}, time.Time{})
	if err != nil {
		return nil, nil, err
	}
	out := map[string]*Decision{}
	err = kafka.ReadSpan(ctx, q.cl.Opts(), q.topics.Audit, sp, func(r *kgo.Record) error {
		var d Decision
		if json.Unmarshal(r.Value, &d) != nil || d.ID == "" {
			return nil
		}
		if topic, p, off, ok := retry.ParseCoordinates(d.ID); ok {
			if start, known := starts[topic][p]; known && off < start {
				return nil
			}
			if !d.about(ids[topic]) {
				return nil // about an earlier topic of that name
			}
		}
		out[d.ID] = &d
		return nil
	})
	return out, ids, err
}

package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/ops"
	"github.com/inletdev/inlet/pkg/retry"
	"github.com/inletdev/inlet/pkg/source"
)

// exitNotFound is trace's exit code when nothing is known of the event.
const exitNotFound = 3

// defaultTraceSince bounds trace --event's read of the raw topic, which is
// compacted and kept forever: read whole, a mature one cannot be searched
// in any time an operator waits. 30 days covers the events operators ask
// about: senders redeliver within days and keep their own event lists for
// about a month (Stripe's for 30 days), so a complaint or a reconcile gap
// concerns an event younger than that. Older ones take --since all.
const defaultTraceSince = 30 * 24 * time.Hour

// defaultTraceTimeout is trace --event's time budget.
const defaultTraceTimeout = 2 * time.Minute

// maxDeliveries bounds how many deliveries of one event trace --event
// shows: the first ones, oldest first; it says how to see the others.
const maxDeliveries = 20

// traceCmd is trace, also by the sender's event id: --event ID --source S
// finds the event's deliveries on the raw topic (key source:event-id),
// each with its correlation id, then shows that event's entries of each
// one's history like trace <correlation-id> (exit 3 when none are kept).
// --since bounds how far back the raw topic is read, --timeout how long;
// --all-partitions reads every partition, not only the key's.
func traceCmd(args []string, kcfg *kafka.Config, out io.Writer) (int, error) {
	var eventID, src, sinceArg, timeoutArg string
	allPartitions := false
	sourcesPath := os.Getenv("INLET_SOURCES")
	own := map[string]*string{"event": &eventID, "source": &src, "since": &sinceArg, "timeout": &timeoutArg, "sources": &sourcesPath}
	rest := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name == "all-partitions" {
			b, err := strconv.ParseBool(cmp.Or(val, "true"))
			if err != nil || hasVal && val == "" {
				return exitUsage, fmt.Errorf("trace: --all-partitions=%q: true or false", val)
			}
			allPartitions = b
			continue
		}
		dst, ok := own[name]
		if !strings.HasPrefix(a, "-") || !ok {
			rest = append(rest, a)
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return exitUsage, fmt.Errorf("trace: -%s needs a value", name)
			}
			i++
			val = args[i]
		}
		*dst = val
	}
	if eventID == "" && src == "" {
		if sinceArg != "" || timeoutArg != "" || allPartitions {
			return exitUsage, errors.New("trace: --since, --timeout and --all-partitions go with --event and --source")
		}
		return trace(rest, out)
	}
	if eventID == "" || src == "" {
		return exitUsage, errors.New("trace: --event and --source go together")
	}
	f, code, err := parseTraceFlags(rest)
	if code != 0 || err != nil {
		if code == exitOK {
			err = nil
		}
		return code, err
	}
	if len(f.args) > 0 {
		f.usage()
		return exitUsage, errors.New("trace: --event takes no correlation id")
	}
	since, from, err := parseSince(sinceArg, time.Now())
	if err != nil {
		return exitUsage, err
	}
	timeout := defaultTraceTimeout
	if timeoutArg != "" {
		if timeout, err = time.ParseDuration(timeoutArg); err != nil || timeout <= 0 {
			return exitUsage, fmt.Errorf("trace: --timeout %q: want a positive duration such as 5m", timeoutArg)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	opts, err := kcfg.ClientOpts(nil)
	if err != nil {
		return exitError, err
	}
	topic := kafka.TopicNames(kcfg.TopicPrefix, nil).Raw
	found, err := deliveriesOf(ctx, opts, topic, envelope.IdempotencyKey(src, eventID), since, from, maxDeliveries, allPartitions)
	if si := (*searchIncomplete)(nil); errors.As(err, &si) && errors.Is(err, context.DeadlineExceeded) {
		return exitError, fmt.Errorf("trace: event %s of source %s not found within --timeout %v: %s; narrow --since or raise --timeout", eventID, src, timeout, si.searched())
	}
	if err != nil {
		return exitError, err
	}
	if found.total == 0 {
		if err := traceUnknownSource(sourcesPath, src); err != nil {
			return exitUsage, err
		}
		if since.IsZero() {
			return exitNotFound, fmt.Errorf("event %s of source %s is not on %s (never received?)", eventID, src, topic)
		}
		return exitNotFound, fmt.Errorf("event %s of source %s is not on %s since %s (never received, or earlier: try --since all)", eventID, src, topic, since.UTC().Format(time.RFC3339))
	}
	// Other events may share a correlation id (a sender reusing one):
	// only this one's entries are shown.
	return traceEvent(f, out, eventOf{id: eventID, source: src}, found, since)
}

// parseSince reads --since: an RFC 3339 time, a duration back from now
// (72h, or in days: 30d), 0 or all for the whole topic (the zero time), or
// the next_since a page of deliveries named (TIME/PARTITION/OFFSET: the
// first delivery not shown), which also returns that delivery's position:
// the page from it on. Empty is defaultTraceSince.
func parseSince(s string, now time.Time) (time.Time, *delivery, error) {
	switch s {
	case "":
		return now.Add(-defaultTraceSince), nil, nil
	case "0", "all":
		return time.Time{}, nil, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil, nil
	}
	if at, pos, ok := strings.Cut(s, "/"); ok {
		p, o, _ := strings.Cut(pos, "/")
		t, err := time.Parse(time.RFC3339, at)
		part, perr := strconv.ParseInt(p, 10, 32)
		off, oerr := strconv.ParseInt(o, 10, 64)
		if err != nil || perr != nil || oerr != nil || part < 0 || off < 0 {
			return time.Time{}, nil, fmt.Errorf("trace: --since %q: want the next_since a page named (TIME/PARTITION/OFFSET), an RFC 3339 time, a duration back from now (72h, 30d), or all", s)
		}
		return t, &delivery{at: t, partition: int32(part), offset: off}, nil
	}
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if n, err = strconv.Atoi(days); err == nil {
			d = time.Duration(n) * 24 * time.Hour
		}
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d <= 0 {
		return time.Time{}, nil, fmt.Errorf("trace: --since %q: want an RFC 3339 time (2025-01-31T00:00:00Z), a duration back from now (72h, 30d), or all", s)
	}
	return now.Add(-d), nil, nil
}

// searchIncomplete is correlationOf's error when ctx ended before the
// search did; it says what was searched, so that the next search can be
// bounded better.
type searchIncomplete struct {
	topic   string
	since   time.Time // zero: from the start
	home    int32     // the key's partition
	done    []int32   // read to the end without finding the key
	partial []int32   // being read when ctx ended
	err     error
}

func (e *searchIncomplete) searched() string {
	from := "the start"
	if !e.since.IsZero() {
		from = e.since.UTC().Format(time.RFC3339)
	}
	var parts []string
	if len(e.done) > 0 {
		parts = append(parts, partitions(e.done, e.home)+" read whole")
	}
	if len(e.partial) > 0 {
		parts = append(parts, partitions(e.partial, e.home)+" in part")
	}
	if len(parts) == 0 {
		return fmt.Sprintf("listing the offsets of %s from %s did not finish", e.topic, from)
	}
	return fmt.Sprintf("searched %s from %s to now: %s", e.topic, from, strings.Join(parts, ", "))
}

func (e *searchIncomplete) Error() string { return e.searched() + ": " + e.err.Error() }
func (e *searchIncomplete) Unwrap() error { return e.err }

// partitions names ps, marking home as the key's.
func partitions(ps []int32, home int32) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(int(p))
		if p == home {
			s[i] += " (the key's)"
		}
	}
	if len(ps) == 1 {
		return "partition " + s[0]
	}
	return "partitions " + strings.Join(s, ", ")
}

// delivery is one record of an event on the raw topic: ingest writes
// each delivery by the sender, redeliveries included, under the same key
// (until compaction keeps only the latest).
type delivery struct {
	n         int // 1 for the first found, oldest first
	corr      string
	partition int32
	offset    int64
	at        time.Time // the record's timestamp
	tombstone bool      // no value: a deletion of the key, not a delivery
}

// foreign says what a record of the key without a correlation id is: not
// one ingest wrote (every one it writes has one), so there is no history
// to ask for.
func (d delivery) foreign(topic string) string {
	if d.tombstone {
		return d.where(topic) + ": a tombstone (no value: a deletion of the key written by another producer, not a delivery), without a correlation id"
	}
	return d.where(topic) + ": no correlation-id header (a record ingest did not write), so no history"
}

func (d delivery) where(topic string) string {
	return fmt.Sprintf("%s/%d/%d", topic, d.partition, d.offset)
}

// since is the --since that shows the deliveries from d on, in
// deliveriesOf's order: its time (to the millisecond, a Kafka
// timestamp's precision), partition and offset.
func (d delivery) since() string {
	return fmt.Sprintf("%s/%d/%d", d.at.UTC().Format("2006-01-02T15:04:05.000Z07:00"), d.partition, d.offset)
}

// byPosition orders deliveries oldest first: by timestamp, then
// partition and offset, so that a delivery's position says which come
// after it (two in one millisecond, or stamped out of offset order, are
// still told apart).
func byPosition(a, b delivery) int {
	return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.partition, b.partition), cmp.Compare(a.offset, b.offset))
}

// deliveries are what deliveriesOf found.
type deliveries struct {
	topic string
	shown []delivery // the first ones, oldest first, at most the limit
	total int        // found in all
	next  *delivery  // the first not shown, if any
	// keyOnly: only home, the key's partition under the topic's
	// partitions (of which there are more), was read.
	keyOnly    bool
	allParts   bool // --all-partitions: every partition was read
	home       int32
	partitions int
}

// onePartition says, when only the key's partition was read, that
// deliveries on the others were not looked for, and how to: a delivery
// made before partitions were added to the topic is on the partition
// its key hashed to then (ingest writes by the key's hash under the
// count of the moment). dupOnly (deliveries shown were skipped as
// duplicates, none processed) makes it likelier. "" when every
// partition was read.
func (d *deliveries) onePartition(dupOnly bool) string {
	if !d.keyOnly {
		return ""
	}
	s := fmt.Sprintf("read only partition %d of %s (of %d), the one the key hashes to now; deliveries made before partitions were added to the topic are on the one it hashed to then: --all-partitions reads every partition", d.home, d.topic, d.partitions)
	if dupOnly {
		s = "no delivery shown was processed, only skipped as a duplicate: the processed one may be on another partition (or before --since); " + s
	}
	return s
}

// deliveriesOf finds key's records on the raw topic among those at or
// after since (zero: the whole topic), oldest first (byPosition), keeping
// the first limit: first in the partition the key hashes to (the
// producer's default partitioner), then, only if none is there (the
// partition count changed since), everywhere; with allParts, everywhere at
// once (deliveries made before partitions were added are on the
// partition the key hashed to then). A non-nil from (a page's
// next, read back from --since) leaves out, and does not count, the
// deliveries before it: those an earlier page showed. When ctx ends
// first, the error is a *searchIncomplete wrapping ctx's.
func deliveriesOf(ctx context.Context, opts []kgo.Opt, topic, key string, since time.Time, from *delivery, limit int, allParts bool) (*deliveries, error) {
	si := &searchIncomplete{topic: topic, since: since, home: -1}
	stopped := func(err error) error {
		if err != nil && ctx.Err() != nil {
			si.err = ctx.Err()
			return si
		}
		return err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return nil, stopped(err)
	}
	t, ok := td[topic]
	if !ok || t.Err != nil || len(t.Partitions) == 0 {
		return nil, fmt.Errorf("topic %s not found", topic)
	}
	n := len(t.Partitions)
	home := int32(kgo.StickyKeyPartitioner(nil).ForTopic(topic).Partition(&kgo.Record{Key: []byte(key)}, n))
	si.home = home
	all, err := kafka.RangeOf(ctx, adm, topic, since, time.Time{})
	if err != nil {
		return nil, stopped(err)
	}
	// Read as every topic reader here does (kafka.ReadSpan): a first poll
	// may take seconds on a cold client over a slow link, and stopping at
	// the first empty one said "never received" for events on the log.
	// Only the key's records are kept, a few fields each, and at most
	// about limit+1 of them: a sender redelivering one id a million times
	// must not hold a million in memory. The oldest (byPosition) are kept,
	// trimmed as they pile up: not the first by offset, as ingest stamps a
	// record with the time its request came, before the produce, so a
	// partition's timestamps are not quite in offset order, and the next
	// page, read from the first unshown one's time, showed again those
	// stamped after it at earlier offsets.
	keep := limit + 1
	find := func(parts []int32) ([]delivery, int, error) {
		sp := kafka.Span{}
		for _, p := range parts {
			if r, ok := all[p]; ok {
				sp[p] = r
			}
		}
		var found []delivery
		total := 0
		si.partial = parts
		err := kafka.ReadSpan(ctx, opts, topic, sp, func(r *kgo.Record) error {
			if string(r.Key) != key {
				return nil
			}
			d := delivery{corr: retry.Get(r.Headers, retry.HeaderCorrelationID), partition: r.Partition, offset: r.Offset, at: r.Timestamp, tombstone: r.Value == nil}
			if from != nil && byPosition(d, *from) < 0 {
				return nil // an earlier page's
			}
			total++
			found = append(found, d)
			if len(found) >= 4*keep {
				slices.SortFunc(found, byPosition)
				found = found[:keep]
			}
			return nil
		})
		if err != nil {
			return nil, 0, stopped(err)
		}
		si.partial, si.done = nil, append(si.done, parts...)
		return found, total, nil
	}
	var others []int32
	for p := range t.Partitions {
		if p != home {
			others = append(others, p)
		}
	}
	slices.Sort(others)
	var found []delivery
	var total int
	if allParts {
		found, total, err = find(append([]int32{home}, others...))
	} else if found, total, err = find([]int32{home}); err == nil && total == 0 {
		found, total, err = find(others)
	}
	if err != nil {
		return nil, err
	}
	slices.SortFunc(found, byPosition)
	d := &deliveries{topic: topic, total: total, home: home, partitions: n, keyOnly: !allParts && total > 0 && len(others) > 0, allParts: allParts}
	if len(found) > limit {
		d.next = &found[limit]
		found = found[:limit]
	}
	for i := range found {
		found[i].n = i + 1
	}
	d.shown = found
	return d, nil
}

// traceUnknownSource is, for an event not found, the usage error of a
// --source the sources file (--sources, INLET_SOURCES) does not have, as
// the queue commands give: a mistyped source reads as "never received".
func traceUnknownSource(path, src string) error {
	if path == "" {
		return nil
	}
	sources, err := source.Load(path, source.WithoutSecrets())
	if err != nil {
		return fmt.Errorf("trace: --sources (INLET_SOURCES): %w", err)
	}
	if err := ops.UnknownSource(sources.Names(), src); err != nil {
		return fmt.Errorf("trace: %w (sources file %s)", err, path)
	}
	return nil
}

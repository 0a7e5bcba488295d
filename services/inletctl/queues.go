package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/inletdev/inlet/pkg/admin"
	"github.com/inletdev/inlet/pkg/flagenv"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/ops"
	"github.com/inletdev/inlet/pkg/retry"
	"github.com/inletdev/inlet/pkg/service"
	"github.com/inletdev/inlet/pkg/source"
)

const queueUsage = `Usage: inletctl %[1]s <command> [flags] [id ...]

Commands:
  ls        list entries (default unresolved); --group counts them by error
  show      one entry in full: payload, headers, error history, runbook
  requeue   send entries back into processing with a fresh retry budget
  discard   resolve entries without reprocessing (--reason required)
  depth     the number of unresolved entries

Select entries by id (topic/partition/offset, as ls prints) or with
--source, --type, --error, --since, --until. ls shows --limit entries
(default 100) in log order and the --after cursor of the next page.
requeue skips (and lists) entries holding no copy of their event: replay
each one's raw record (its origin) with inletctl replay, then discard it.
requeue and discard by id list the ids they did not decide (not on this
queue, already decided, does not match the filter, skipped) and exit 1
when there are any, as does their --dry-run.

With the processor's sources file (--sources or INLET_SOURCES), a --source
that is not in it and matches no entry is a usage error (exit 2) naming
the sources it has, and show prints the source's runbook for an entry that
carries none.

Examples:
  inletctl %[1]s ls --group
  inletctl %[1]s requeue --source shop --error 503 --reason "sink fixed" --dry-run
  inletctl %[1]s discard %[2]s/0/17 --reason "order cancelled upstream"
`

// queueFlags are the flags each queue command reads. show takes ids only:
// with a filter, an entry outside it read as "not on the queue".
var queueFlags = map[string][]string{
	"ls":      {"source", "type", "error", "since", "until", "all", "group", "limit", "after", "output", "sources", "retry-tiers", "timeout"},
	"show":    {"output", "sources", "retry-tiers", "timeout"},
	"requeue": {"source", "type", "error", "since", "until", "reason", "dry-run", "output", "who", "sources", "retry-tiers", "timeout"},
	"discard": {"source", "type", "error", "since", "until", "reason", "dry-run", "output", "who", "sources", "retry-tiers", "timeout"},
	"depth":   {"retry-tiers", "timeout"},
}

// flagList is names as flags: "--a, --b".
func flagList(names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "--" + n
	}
	return strings.Join(out, ", ")
}

// queue runs dlq and invalid subcommands.
func queue(name string, args []string, kcfg *kafka.Config, rcfg *service.RegistryConfig, out io.Writer) (int, error) {
	topics := kafka.TopicNames(kcfg.TopicPrefix, kafka.DefaultRetryTiers)
	topic := topics.DLQ
	if name == "invalid" {
		topic = topics.Invalid
	}
	if len(args) == 0 {
		fmt.Fprintf(os.Stderr, queueUsage, name, topic)
		return exitUsage, nil
	}
	cmd := args[0]
	fs := flagenv.New(name + " " + cmd)
	fs.Usage = func() { fmt.Fprintf(os.Stderr, queueUsage, name, topic); fs.PrintDefaults() }
	var f ops.Filter
	var since, until, reason, output, who, sourcesPath string
	var all, group, dry bool
	var limit int
	var after string
	var timeout time.Duration
	fs.StringVar(&f.Source, "source", "", "only this source")
	fs.StringVar(&f.EventType, "type", "", "only this event type")
	fs.StringVar(&f.ErrorText, "error", "", "only entries whose error or reason contains this text")
	fs.StringVar(&since, "since", "", "only entries at or after this RFC 3339 time")
	fs.StringVar(&until, "until", "", "only entries before this RFC 3339 time")
	fs.BoolVar(&all, "all", false, "ls: include resolved entries")
	fs.BoolVar(&group, "group", false, "ls: count by source, type and error instead of listing")
	fs.IntVar(&limit, "limit", admin.DefaultLimit, "ls: entries per page, in log order (0: all)")
	fs.StringVar(&after, "after", "", "ls: start after this cursor (the next page's, as ls prints it)")
	fs.StringVar(&reason, "reason", "", "requeue/discard: why (required, audited)")
	fs.BoolVar(&dry, "dry-run", false, "requeue/discard: show what would change, change nothing")
	fs.StringVar(&output, "output", "table", "table or json")
	fs.DurationVar(&timeout, "timeout", 2*time.Minute, "time budget: a requeue or discard stopped by it keeps what it committed (run it again for the rest)")
	fs.StringVar(&who, "who", currentUser(), "requeue/discard: who decides (required, audited; default: the current user)")
	fs.String(&sourcesPath, "sources", "INLET_SOURCES", "", "the processor's sources file: a --source not in it that matches nothing is refused; show takes runbooks from it")
	tiers := kafka.RetryTiersFlag(fs, "retry tier delays (the processor's): requeue writes to the first")
	ids, err := fs.ParseInterspersed(args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, nil // as replay -h and reconcile -h
		}
		return exitUsage, err
	}
	if !slices.Contains([]string{"ls", "show", "requeue", "discard", "depth"}, cmd) {
		// Before connecting, as every usage error: with the registry
		// down, a mistyped command exited 1 with the connection's error.
		fs.Usage()
		return exitUsage, fmt.Errorf("unknown command %q", cmd)
	}
	// A flag the command does not read is a usage error, not ignored:
	// requeue --limit 1, meant as "one first", requeued every match, and
	// depth --source github counted the whole queue.
	var unread, given []string
	fs.Visit(func(fl *flag.Flag) {
		given = append(given, fl.Name)
		if !slices.Contains(queueFlags[cmd], fl.Name) {
			unread = append(unread, "--"+fl.Name)
		}
	})
	if len(unread) > 0 {
		return exitUsage, fmt.Errorf("%s %s does not take %s (it takes %s)", name, cmd, strings.Join(unread, ", "), flagList(queueFlags[cmd]))
	}
	if cmd == "ls" && group {
		// As the admin API's ?group=true: the groups are one answer, not
		// pages, and --limit and --after were ignored.
		var paging []string
		for _, f := range []string{"limit", "after"} {
			if slices.Contains(given, f) {
				paging = append(paging, "--"+f)
			}
		}
		if len(paging) > 0 {
			return exitUsage, fmt.Errorf("%s ls --group counts every match at once and takes no %s (those page a listing)", name, strings.Join(paging, " or "))
		}
	}
	if cmd == "depth" && len(ids) > 0 {
		return exitUsage, fmt.Errorf("%s depth counts the whole queue's unresolved entries and takes no ids; %s ls --group counts by source, type and error", name, name)
	}
	if output != "table" && output != "json" {
		// As replay and reconcile: a script's --output jsno got a table.
		return exitUsage, fmt.Errorf("--output %q: table or json", output)
	}
	if timeout <= 0 {
		return exitUsage, fmt.Errorf("--timeout %v: want a positive duration such as 10m", timeout)
	}
	f.IDs = ids
	delays, err := tiers()
	if err != nil {
		return exitUsage, err
	}
	topics = kafka.TopicNames(kcfg.TopicPrefix, delays)
	if f.Since, err = parseTime(since); err != nil {
		return exitUsage, err
	}
	if f.Until, err = parseTime(until); err != nil {
		return exitUsage, err
	}
	if err := f.CheckRange(); err != nil {
		return exitUsage, fmt.Errorf("--%w", err)
	}
	if (cmd == "requeue" || cmd == "discard") && !f.Selects() {
		return exitUsage, errors.New("name ids or a filter (--source, --type, --error, --since, --until): refusing to act on the whole queue")
	}
	if cmd == "requeue" || cmd == "discard" {
		// Before connecting: with Kafka or the registry down, a decision
		// without a reason exited 1 with the connection's error.
		if err := decisionFlags(reason, who); err != nil {
			return exitUsage, err
		}
	}
	if cmd == "show" && len(f.IDs) == 0 {
		// It read the whole queue into memory and printed every entry in
		// full, decided ones included.
		fs.Usage()
		return exitUsage, fmt.Errorf("show takes the ids of the entries to show (as %s ls prints them)", name)
	}
	if err := ops.CheckIDs(f.IDs); err != nil {
		return exitUsage, err
	}
	// The sources file, read only when of use: to check a --source
	// filter, and for show's runbooks. Unreadable, it fails a command
	// whose filter it was to check, and only warns on show (the entry is
	// still worth seeing).
	var sources *source.File
	if sourcesPath != "" && (cmd == "show" || (f.Source != "" && (cmd == "ls" || cmd == "requeue" || cmd == "discard"))) {
		if sources, err = source.Load(sourcesPath, source.WithoutSecrets()); err != nil && cmd != "show" {
			return exitUsage, fmt.Errorf("--sources (INLET_SOURCES): %w", err)
		} else if err != nil {
			fmt.Fprintf(os.Stderr, "inletctl: warning: --sources (INLET_SOURCES): %v: runbooks are shown only as entries carry them\n", err)
		}
	}
	// unknownSource: a filter that matched nothing names a source the
	// sources file does not have (see ops.UnknownSource).
	unknownSource := func() error {
		if sources == nil {
			return nil
		}
		if err := ops.UnknownSource(sources.Names(), f.Source); err != nil {
			return fmt.Errorf("%w (sources file %s)", err, sourcesPath)
		}
		return nil
	}

	// Ctrl-C (or SIGTERM) stops a decision as a failure midway does: what
	// it committed stands and is counted, and its open transaction is
	// aborted. Killed, it said nothing, and the transaction held back the
	// processor's reads of the first retry tier (and every read of the
	// audit topic) until it timed out. A second Ctrl-C kills.
	sctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(sctx, stop)
	ctx, cancel := context.WithTimeout(sctx, timeout)
	defer cancel()
	// interrupted says so of err, when Ctrl-C ended the command.
	interrupted := func(err error) error {
		if err == nil || sctx.Err() == nil {
			return err
		}
		return fmt.Errorf("interrupted: %w", err) // what stands, and what to do, is err's to say
	}
	var c *cluster
	if cmd == "depth" {
		// Depth counts offsets and reads headers, decoding nothing (its
		// Queues has no codec).
		c, err = connectKafka(kcfg)
	} else {
		c, err = connect(ctx, kcfg, rcfg, topics)
	}
	if err != nil {
		return exitError, err
	}
	q, err := ops.New(c.opts, topics, c.codec)
	if err != nil {
		return exitError, err
	}
	defer q.Close()
	// Warnings only: transactions Kafka left open that a decision found
	// (and wrote the markers of), or a check it could not run.
	q.SetLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))

	var es []*ops.Entry
	var decided ops.Decided
	code := exitOK
	switch cmd {
	case "ls":
		f.Unresolved = !all
		return list(ctx, q, topic, f, group, after, limit, output == "json", out, unknownSource)
	case "show":
		es, err = q.List(ctx, topic, f)
		inOrderNamed(es, f.IDs)
	case "depth":
		n, err := q.Depth(ctx, topic)
		if err != nil {
			return exitError, err
		}
		fmt.Fprintln(out, n)
		return exitOK, nil
	case "requeue":
		decided, err = q.Requeue(ctx, topic, f, who, reason, dry)
	case "discard":
		decided, err = q.Discard(ctx, topic, f, who, reason, dry)
	default:
		fs.Usage()
		return exitUsage, fmt.Errorf("unknown command %q", cmd)
	}
	if errors.Is(err, ops.ErrNoReason) || errors.Is(err, ops.ErrNoWho) || errors.Is(err, ops.ErrNoRetryTopic) {
		return exitUsage, err
	}
	if errors.Is(err, ops.ErrNotFound) || errors.Is(err, ops.ErrDecided) {
		// Nothing named was there to decide: say which and why (who
		// decided them), as the admin API's 404 or 409 does.
		if output == "json" {
			return exitError, errors.Join(err, jsonEncode(out, admin.NewDecideResponse(cmd, dry, who, decided)))
		}
		printUnmatched(out, decided.Unmatched)
		return exitError, err
	}
	if err != nil && output == "json" && (cmd == "requeue" || cmd == "discard") {
		// A script reads the answer from stdout: what stands (the
		// count committed before a stop midway; none for an entry
		// refused alone), the error on stderr and the exit code.
		return exitError, errors.Join(interrupted(err), jsonEncode(out, admin.NewDecideResponse(cmd, dry, who, decided)))
	}
	if err != nil {
		return exitError, interrupted(err)
	}
	matchedNone := len(f.IDs) == 0 && decided.Count == 0 && decided.Skipped == 0
	if (cmd == "requeue" || cmd == "discard") && matchedNone {
		if err := unknownSource(); err != nil {
			return exitUsage, fmt.Errorf("%s: nothing was done: %w", cmd, err)
		}
	}
	if cmd == "show" {
		// Asked by id: saying nothing would read as "no such problem".
		if missing := notShown(es, f.IDs); len(missing) > 0 {
			msg := fmt.Sprintf("not on %s: %s", topic, strings.Join(missing, ", "))
			// Most often an id of the other queue: say so, as a
			// decision does, and how to see it.
			other, otherName := topics.Invalid, "invalid"
			if name == "invalid" {
				other, otherName = topics.DLQ, "dlq"
			}
			for _, id := range missing {
				if t, _, _, ok := retry.ParseCoordinates(id); ok && t == other {
					msg += fmt.Sprintf(" (%s is an entry of %s: inletctl %s show %s)", id, other, otherName, id)
					break
				}
			}
			defer fmt.Fprintln(os.Stderr, msg)
			code = exitError
		}
	}
	if cmd == "show" && sources != nil {
		for _, e := range es {
			// Entries carry their source's runbook (invalid ones only since
			// 2026-11-29): an older one gets it from the sources file.
			if s, ok := sources.Get(e.Source); e.Runbook == "" && ok {
				e.Runbook = s.Runbook
			}
		}
	}
	if cmd == "show" {
		if output == "json" {
			return code, jsonEncode(out, entriesJSON(es, true))
		}
		for _, e := range es {
			printEntry(out, e)
		}
		return code, nil
	}
	verb := map[string]string{"requeue": "requeued", "discard": "discarded"}[cmd]
	// Asked by id: an id left undecided is a failure to say, as for show,
	// whatever became of the others.
	var undecided error
	if n := decided.Undecided(); len(f.IDs) > 0 && n > 0 {
		not := "were not"
		if dry {
			not = "would not be"
		}
		undecided = fmt.Errorf("%d of the entries named %s %s (listed)", n, not, verb)
		code = exitError
	}
	if output == "json" { // as the admin API answers
		return code, errors.Join(undecided, jsonEncode(out, admin.NewDecideResponse(cmd, dry, who, decided)))
	}
	if matchedNone {
		// A count of 0 alone reads as done: say what matched nothing.
		fmt.Fprintln(out, noneMatched(topic, f, verb, dry, sourcesPath == ""))
		return code, undecided
	}
	printTable(out, decided.Entries)
	fmt.Fprintln(out, countLine(decided.Count, len(decided.Entries), verb, dry))
	printSkipped(out, decided, dry)
	printUnmatched(out, decided.Unmatched)
	return code, undecided
}

// jsonEncode writes v to out as indented JSON.
func jsonEncode(out io.Writer, v any) error {
	enc := json.NewEncoder(jsonOut{out})
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printUnmatched lists the ids named that a decision found no entry to
// decide by, and why: a count alone read as success.
func printUnmatched(out io.Writer, ms []ops.Miss) {
	if len(ms) == 0 {
		return
	}
	fmt.Fprintf(out, "\n%d named, not decided:\n", len(ms))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tREASON\tDECISION")
	for _, m := range ms {
		dec := "-"
		if d := m.Decision; d != nil {
			dec = fmt.Sprintf("%s by %s at %s: %s", d.Action, d.Who, d.At.UTC().Format(time.RFC3339), d.Why)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", cell(m.ID), cell(m.Reason), cell(dec))
	}
	tw.Flush()
}

// countLine says how many entries a decision took, and whether all are
// shown: "12 would be requeued (the first 10 shown)".
func countLine(n, shown int, verb string, dry bool) string {
	if dry {
		verb = "would be " + verb
	}
	if shown < n {
		verb += fmt.Sprintf(" (the first %d shown)", shown)
	}
	return fmt.Sprintf("%d %s", n, verb)
}

// noneMatched says that no unresolved entry of topic matched f, and so
// nothing was (or would be) verb; unchecked: no sources file to check a
// --source against.
func noneMatched(topic string, f ops.Filter, verb string, dry, unchecked bool) string {
	var sel []string
	for _, c := range []struct{ flag, v string }{{"--source", f.Source}, {"--type", f.EventType}, {"--error", f.ErrorText}} {
		if c.v != "" {
			sel = append(sel, c.flag+" "+strconv.Quote(c.v))
		}
	}
	for _, c := range []struct {
		flag string
		t    time.Time
	}{{"--since", f.Since}, {"--until", f.Until}} {
		if !c.t.IsZero() {
			sel = append(sel, c.flag+" "+c.t.UTC().Format(time.RFC3339))
		}
	}
	done := "nothing " + verb
	if dry {
		done = "nothing would be " + verb
	}
	line := fmt.Sprintf("0 matched: no unresolved entry of %s with %s; %s", topic, strings.Join(sel, " "), done)
	if f.Source != "" && unchecked {
		line += " (no sources file to check --source against: give --sources or INLET_SOURCES)"
	}
	return cell(line)
}

// printSkipped lists the entries a requeue left alone, with the raw record
// to replay for each: they stay unresolved, and a count alone would not say
// what to do next.
func printSkipped(out io.Writer, d ops.Decided, dry bool) {
	if d.Skipped == 0 {
		return
	}
	hint := ops.SkipHint
	for _, e := range d.SkippedEntries {
		if e.Reason != ops.ReasonNoEvent && e.Reason != ops.ReasonTooLarge {
			hint += "; " + ops.NotEnvelopeHint // no raw record to replay
			break
		}
	}
	fmt.Fprintf(out, "\n%s, left unresolved: %s\n", countLine(d.Skipped, len(d.SkippedEntries), "skipped", dry), hint)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tORIGIN\tREASON")
	for _, e := range d.SkippedEntries {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", cell(e.ID), cell(e.Origin), cell(e.Reason))
	}
	tw.Flush()
}

// list runs ls: one page of entries, or the groups; JSON as the admin API
// answers. A listing that matched nothing fails with unknownSource's
// error, if any (see queue), as a usage error.
func list(ctx context.Context, q *ops.Queues, topic string, f ops.Filter, group bool, after string, limit int, asJSON bool, out io.Writer, unknownSource func() error) (int, error) {
	if group {
		groups, n, err := q.Groups(ctx, topic, f)
		if err != nil {
			return exitError, err
		}
		if n == 0 {
			if err := unknownSource(); err != nil {
				return exitUsage, err
			}
		}
		if asJSON {
			return exitOK, jsonEncode(out, map[string]any{"count": n, "groups": groups})
		}
		printGroups(out, groups)
		return exitOK, nil
	}
	l, err := q.Page(ctx, topic, f, after, limit)
	if errors.Is(err, ops.ErrBadPage) {
		return exitUsage, err
	}
	if err != nil {
		return exitError, err
	}
	if l.Total == 0 {
		if err := unknownSource(); err != nil {
			return exitUsage, err
		}
	}
	if asJSON {
		v := map[string]any{"count": l.Total, "entries": entriesJSON(l.Entries, false)}
		if l.Next != "" {
			v["next"] = l.Next
		}
		return exitOK, jsonEncode(out, v)
	}
	printTable(out, l.Entries)
	if l.Next != "" {
		fmt.Fprintf(out, "%d of %d shown; next page: --after %s\n", len(l.Entries), l.Total, l.Next)
	}
	return exitOK, nil
}

func printTable(out io.Writer, es []*ops.Entry) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAT\tSOURCE\tTYPE\tEVENT\tREASON\tLAST ERROR\tDECISION")
	for _, e := range es {
		dec := "-"
		if e.Decision != nil {
			dec = e.Decision.Action + " by " + e.Decision.Who
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.At.UTC().Format(time.RFC3339), cell(e.Source), cell(e.EventType), cell(e.EventID), reasonCell(e.Reason, e.Problem), trim(e.LastError, 60), cell(dec))
	}
	tw.Flush()
}

// reasonCell is an entry's reason with, in brackets, what is wrong with
// it as an entry (ops.Entry.Problem): a record that is no envelope was
// listed with every column blank.
func reasonCell(reason, problem string) string {
	if problem == "" {
		return cell(reason)
	}
	if reason != "" {
		reason += " "
	}
	return cell(reason + "[" + retry.Truncate(problem, 120) + "]")
}

func entriesJSON(es []*ops.Entry, withPayload bool) []map[string]any {
	out := make([]map[string]any, 0, len(es))
	for _, e := range es {
		b, _ := json.Marshal(e)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		if withPayload {
			m["payload"] = readable(e.Payload)
			if e.Problem != "" && e.Payload == nil && !e.NoEvent {
				m["value"] = readableValue(e.Value) // the record's, as stored
			}
			if len(e.Headers) > 0 {
				// The sender's values: JSON escapes C0 controls but not
				// C1 (U+009B) or bidi overrides, which a terminal showing
				// jq's output obeys.
				hs := make(map[string]string, len(e.Headers))
				for k, v := range e.Headers {
					hs[shown(k)] = shown(v)
				}
				m["headers"] = hs
			}
		}
		out = append(out, m)
	}
	return out
}

func printEntry(out io.Writer, e *ops.Entry) {
	fmt.Fprintf(out, "id:             %s\nsource/type:    %s / %s\nevent id:       %s\ncorrelation id: %s\nreason:         %s\n",
		e.ID, cell(e.Source), cell(e.EventType), cell(e.EventID), cell(e.CorrelationID), cell(e.Reason))
	if e.Problem != "" {
		fmt.Fprintf(out, "problem:        %s\n", cell(e.Problem))
	}
	if e.Runbook != "" { // none configured: no empty line to read as one
		fmt.Fprintf(out, "runbook:        %s\n", cell(e.Runbook))
	}
	if e.Decision != nil {
		fmt.Fprintf(out, "decision:       %s by %s at %s: %s\n", e.Decision.Action, cell(e.Decision.Who), e.Decision.At.Format(time.RFC3339), cell(e.Decision.Why))
	}
	fmt.Fprintln(out, "error history:")
	for _, h := range e.History {
		fmt.Fprintf(out, "  %s  %-9s %s\n", h.At.Format(time.RFC3339), cell(h.Stage), cell(h.Error))
	}
	if len(e.Headers) > 0 { // the request headers ingest kept: the sender's API version, its delivery id, …
		fmt.Fprintln(out, "headers:")
		for _, k := range slices.Sorted(maps.Keys(e.Headers)) {
			fmt.Fprintf(out, "  %s: %s\n", cell(k), cell(e.Headers[k]))
		}
	}
	if e.Problem != "" && e.Payload == nil && !e.NoEvent {
		// Not an envelope: its value as stored is all there is to see.
		v := shown(string(e.Value))
		if e.Value == nil {
			v = "(null)"
		}
		fmt.Fprintf(out, "value (as stored, %d bytes):\n%s\n\n", len(e.Value), v)
		return
	}
	fmt.Fprintf(out, "payload:\n%s\n\n", shown(string(e.Payload)))
}

// readableValue is a stored value as JSON shows it: null for none, else
// as readable shows bytes.
func readableValue(v []byte) any {
	if v == nil {
		return nil
	}
	return readable(v)
}

// cell is shown text on one line: a table cell or a field of its own.
func cell(s string) string { return shown(oneLine.Replace(s)) }

var oneLine = strings.NewReplacer("\n", " ", "\t", " ", "\r", " ")

func printGroups(out io.Writer, groups []ops.Group) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COUNT\tSOURCE\tTYPE\tREASON\tERROR")
	for _, g := range groups {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", g.Count, cell(g.Source), cell(g.EventType), reasonCell(g.Reason, g.Problem), trim(g.Error, 256)) // all of what was grouped on, on one line
	}
	tw.Flush()
}

func trim(s string, n int) string { return retry.Truncate(cell(s), n+len("…")) }

// shown makes text from events (ids, types, errors, payloads: whatever a
// sender put there) safe to print on an operator's terminal: control
// characters and the bidirectional-text overrides are written as Go
// escapes (\x1b, \u202e) instead of being obeyed, so an event cannot clear
// the screen, retitle the window, plant a link or hide rows of a listing
// an operator is about to requeue or discard by filter. Newlines and tabs
// are kept (payloads are multi-line); table cells replace them first.
func shown(s string) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, unsafeRune) < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1: // a byte that is no UTF-8: a raw C1 (0x9b) among them
			fmt.Fprintf(&b, "\\x%02x", s[i])
		case unsafeRune(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// jsonOut is out for JSON output. encoding/json escapes C0 controls but
// writes DEL, C1 controls (U+009B is a terminal's CSI) and the
// bidirectional overrides as they are, and a terminal showing the output,
// or jq's of it, obeys them: a sender's payload or header could clear the
// screen or reorder what an operator reads. jsonOut writes them as \u
// escapes instead, the same JSON value. They only occur inside strings,
// and each Write must hold whole runes, as json.Encoder's (one a value)
// do.
type jsonOut struct{ w io.Writer }

func (j jsonOut) Write(p []byte) (int, error) {
	if !bytes.ContainsFunc(p, unsafeRune) {
		return j.w.Write(p)
	}
	var b bytes.Buffer
	b.Grow(len(p) + 16)
	for i := 0; i < len(p); {
		r, size := utf8.DecodeRune(p[i:])
		if unsafeRune(r) {
			fmt.Fprintf(&b, `\u%04x`, r)
		} else {
			b.Write(p[i : i+size])
		}
		i += size
	}
	if _, err := j.w.Write(b.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

func unsafeRune(r rune) bool {
	switch {
	case r == '\n' || r == '\t':
		return false
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f: // C0, DEL, C1
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069: // bidi embeddings, overrides, isolates
		return true
	}
	return false
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return t, fmt.Errorf("time %q: want RFC 3339, e.g. 2025-01-31T12:00:00Z", s)
	}
	return t, nil
}

// notShown lists the ids named (each once, in the order named) that no
// entry of es has. Counting entries against ids failed a show naming an
// entry twice, with an empty list.
func notShown(es []*ops.Entry, ids []string) []string {
	found := make(map[string]bool, len(es))
	for _, e := range es {
		found[e.ID] = true
	}
	var missing []string
	for _, id := range ids {
		if !found[id] {
			found[id] = true // listed once
			missing = append(missing, id)
		}
	}
	return missing
}

// decisionFlags checks what a requeue or discard audits: a reason, and who
// decides (--who defaults to the current user, who may have no name, as in
// a container running as an arbitrary uid with USER unset).
func decisionFlags(reason, who string) error {
	if strings.TrimSpace(reason) == "" {
		return ops.ErrNoReason
	}
	if strings.TrimSpace(who) == "" {
		return fmt.Errorf("%w: --who is blank, or no user name was found for this process (USER unset?): pass --who NAME, it is audited", ops.ErrNoWho)
	}
	return nil
}

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return os.Getenv("USER")
}

// inOrderNamed sorts show's entries in the order their ids were named
// (the queue's order otherwise): what was asked for first comes first.
func inOrderNamed(es []*ops.Entry, ids []string) {
	at := make(map[string]int, len(ids))
	for i, id := range ids {
		if _, seen := at[id]; !seen {
			at[id] = i
		}
	}
	slices.SortStableFunc(es, func(a, b *ops.Entry) int { return at[a.ID] - at[b.ID] })
}

package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/inletdev/inlet/pkg/admin"
	"github.com/inletdev/inlet/pkg/flagenv"
	"github.com/inletdev/inlet/pkg/history"
	"github.com/inletdev/inlet/pkg/service"
)

// eventOf picks one event's entries out of a history its correlation id
// shares with others: trace --event.
type eventOf struct{ id, source string }

// has reports whether e is one of the event's entries (one written
// without a source, by an older writer, is taken by its id).
func (f *eventOf) has(e history.Entry) bool {
	return e.EventID == f.id && (e.Source == f.source || e.Source == "")
}

// traceFlags are trace's own flags, and what is left of args.
type traceFlags struct {
	adminURL, output string
	args             []string
	usage            func()
}

// parseTraceFlags reads trace's flags; a non-nil error (or exitOK for -h)
// ends the command with that code.
func parseTraceFlags(args []string) (traceFlags, int, error) {
	fs := flagenv.New("trace")
	var f traceFlags
	fs.String(&f.adminURL, "admin-url", "INLET_ADMIN_URL", "http://127.0.0.1:9090", "admin URL of a processor (its -admin-addr, default 127.0.0.1:9091) or of make run (127.0.0.1:9090)")
	fs.StringVar(&f.output, "output", "table", "table or json")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "Usage: inletctl trace [-admin-url URL] [-output json] <correlation-id>\n"+
			"       inletctl [connection flags] trace --event <event-id> --source S [--since 30d|72h|RFC 3339 time|all] [--timeout 2m] [--all-partitions] [--sources FILE] [-admin-url URL]\n\n"+
			"Example: inletctl trace 4bf92f3577b34da6a3ce929d0e0e4736")
		fs.PrintDefaults()
		// Read by traceCmd before these flags: listed here so -h shows them.
		fmt.Fprint(os.Stderr, `  -event string
    	the sender's event id: find its deliveries on the raw topic (with -source)
  -source string
    	the Inlet source the event was sent to (its name in the sources file, not its kind)
  -since string
    	with -event: how far back to read the raw topic: a duration (72h, 30d), an RFC 3339 time, or all (default 30d)
  -timeout duration
    	with -event: how long the search may take (default 2m0s)
  -all-partitions
    	with -event: read every partition of the raw topic, not only the one the key hashes to now (an event delivered before partitions were added is on another)
  -sources string
    	the processor's sources file, to refuse a -source it does not have (env INLET_SOURCES)
`)
	}
	pos, err := fs.ParseInterspersed(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return f, exitOK, err
		}
		return f, exitUsage, err
	}
	if f.output != "table" && f.output != "json" {
		// As replay and reconcile: a script's -output jsno got a table.
		return f, exitUsage, fmt.Errorf("--output %q: table or json", f.output)
	}
	f.args, f.usage = pos, fs.Usage
	return f, 0, nil
}

// traceAnswer is the admin API's answer for one correlation id, and
// trace's JSON output.
type traceAnswer struct {
	CorrelationID string `json:"correlation_id"`
	// With --event, the event whose entries stages holds.
	Source  string          `json:"source,omitempty"`
	EventID string          `json:"event_id,omitempty"`
	Stages  []history.Entry `json:"stages"`
	// DroppedEntries counts the older entries of the correlation id
	// dropped to keep its history within its bound.
	DroppedEntries int64 `json:"dropped_entries"`
	// Warning says what the stages may lack (operator decisions the
	// admin API could not read).
	Warning string `json:"warning,omitempty"`
	Error   string `json:"error"`
	// Deliveries, with --event, are the event's deliveries found on the
	// raw topic, each with its own history.
	Deliveries []deliveryAnswer `json:"deliveries,omitempty"`
	// DeliveriesFound, with --event, counts them all, shown or not.
	DeliveriesFound int `json:"deliveries_found,omitempty"`
	// NextSince, when more were found than shown, is the --since that
	// shows the next ones: the first not shown, as TIME/PARTITION/OFFSET
	// (a time alone showed again those of the same millisecond).
	NextSince string `json:"next_since,omitempty"`
	// Note, with --event, says what was not searched: the partitions
	// other than the key's, when only it was read.
	Note string `json:"note,omitempty"`
}

// deliveryAnswer is one delivery of an event in trace --event's JSON.
type deliveryAnswer struct {
	CorrelationID  string          `json:"correlation_id"`
	Where          string          `json:"where"` // topic/partition/offset
	At             time.Time       `json:"at"`    // the raw record's timestamp
	Stages         []history.Entry `json:"stages"`
	DroppedEntries int64           `json:"dropped_entries"`
	// Error says why there are no stages, when there are none.
	Error string `json:"error,omitempty"`
}

// errNoHistory is what fetchTrace returns for an id without history
// (404); the message is the admin API's.
type errNoHistory struct{ msg string }

func (e *errNoHistory) Error() string { return e.msg }

// fetchTrace asks the admin API at adminURL for id's history.
func fetchTrace(ctx context.Context, adminURL, id string) (*traceAnswer, error) {
	if id == "" || id == "." || id == ".." || id == "/" {
		// Not a path segment the API can be asked for (a URL cleans "."
		// and ".." away; ServeMux routes no lone %2F), and not an id
		// ingest keeps: nothing is kept under it. One such delivery must
		// not stop trace --event.
		return nil, &errNoHistory{fmt.Sprintf("no history is kept under the correlation id %q", id)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(adminURL, "/")+"/v1/trace/"+url.PathEscape(id), nil)
	// The URL as the messages show it: without a user or password in it.
	adminURL = service.ShownURL(adminURL)
	if err != nil {
		// Not err itself: url.Error quotes the whole URL, password too.
		return nil, fmt.Errorf("-admin-url %s: %s (set it with -admin-url or INLET_ADMIN_URL)", adminURL, service.RedactedReason(err))
	}
	if err := adminAuth(req); err != nil {
		return nil, err
	}
	// Whether the request reached a listener: one that then does not
	// answer in time is there, only slow.
	var sent atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) { sent.Store(i.Err == nil) },
	}))
	resp, err := adminClient.Do(req)
	if err != nil {
		if sent.Load() && errors.Is(err, context.DeadlineExceeded) {
			// Not the address: the API queues calls past the four it
			// serves at once (a minute at most), and this gives up sooner.
			return nil, fmt.Errorf("admin API at %s took the request but did not answer in time: it is busy (it serves four calls at once and queues the rest, and a listing of a long queue takes a while) or waits on Redis or Kafka; try again", adminURL)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // it repeats the URL, named below
		}
		if re := (*redirectError)(nil); errors.As(err, &re) {
			return nil, fmt.Errorf("admin API at %s %v: set -admin-url or INLET_ADMIN_URL to the admin API's own address", adminURL, re)
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("nothing answers at %s (connection refused): is the processor (or make run) running, and is that its admin address? Set it with -admin-url or INLET_ADMIN_URL (make run prints the export; a processor listens on its -admin-addr)", adminURL)
		}
		// %v: the admin URL is named here; no Kafka or registry hint.
		return nil, fmt.Errorf("admin API at %s: %v (set its address with -admin-url or INLET_ADMIN_URL)", adminURL, err)
	}
	defer resp.Body.Close()
	var body traceAnswer
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		// Not the admin API's JSON: most often -admin-url names another
		// listener (ingest's admin port is 9090 too, the processor's 9091).
		return nil, fmt.Errorf("%s answered %s, not the admin API: is -admin-url the processor's admin address (default 127.0.0.1:9091; make run serves it on 127.0.0.1:9090)?", adminURL, resp.Status)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return &body, nil
	case http.StatusNotFound:
		// The admin API's own 404 names the id (or says it keeps no
		// history). Another listener's JSON 404 (ingest's "no such
		// endpoint") read as "no history" and exited 3, as if the event
		// had none.
		if body.CorrelationID == id || body.Error == admin.ErrTextNoHistoryStore {
			return nil, &errNoHistory{body.Error}
		}
		return nil, fmt.Errorf("%s answered %s, not the admin API: is -admin-url the processor's admin address (default 127.0.0.1:9091; make run serves it on 127.0.0.1:9090)?", adminURL, resp.Status)
	case http.StatusUnauthorized:
		return nil, fmt.Errorf("admin API: %s: %s: %s", resp.Status, body.Error, unauthorizedHint(adminURL))
	}
	return nil, fmt.Errorf("admin API: %s: %s", resp.Status, body.Error)
}

// unauthorizedHint says, after a 401 from adminURL, which token was sent
// (or that none was) and where it was sent: the token of one stack shown
// to another's admin API gets the same 401 as none.
func unauthorizedHint(adminURL string) string {
	for _, env := range []string{admin.EnvReadToken, admin.EnvWriteToken} { // adminAuth's order for a read
		name := env
		if os.Getenv(env) == "" {
			if os.Getenv(env+"_FILE") == "" {
				continue
			}
			name = env + "_FILE"
		}
		return fmt.Sprintf("the token from %s was refused by %s: is it that admin API's token (%s or %s; make run prints the one it made up), and is %s the admin API you meant (-admin-url, INLET_ADMIN_URL)?",
			name, adminURL, admin.EnvReadToken, admin.EnvWriteToken, adminURL)
	}
	return fmt.Sprintf("no token was sent to %s: set %s or %s (or their _FILE variants) to its admin token (make run prints the one it made up), and -admin-url or INLET_ADMIN_URL if %s is not the admin API you meant",
		adminURL, admin.EnvReadToken, admin.EnvWriteToken, adminURL)
}

// batchProbe is how many of a batch's first lines trace looks at for a
// correlation id without history: enough to pass a first line or two
// that were rejected, few enough to stay cheap.
const batchProbe = 3

// batchLineID is the correlation id the ingest service gives line n of an
// NDJSON batch answered under id when the line has none of its own: id,
// cut to stay within 128 bytes, then -n (see pkg/ingest/batch.go).
func batchLineID(id string, n int) string {
	suffix := "-" + strconv.Itoa(n)
	return id[:min(len(id), 128-len(suffix))] + suffix
}

// batchHint is what trace adds when id has no history but is the
// correlation id of an NDJSON batch, whose lines are traced under
// <id>-<line>; "" when none of its first lines has history.
func batchHint(ctx context.Context, adminURL, id string) string {
	for n := 1; n <= batchProbe; n++ {
		line := batchLineID(id, n)
		if _, err := fetchTrace(ctx, adminURL, line); err == nil {
			return fmt.Sprintf("; it is an NDJSON batch's correlation id: each line's history is under the id with -<line number> (%s, %s, … ; %s has one): trace one of them, e.g. inletctl trace %s",
				batchLineID(id, 1), batchLineID(id, 2), line, line)
		}
	}
	return ""
}

// trace prints one correlation id's processing history from the admin
// API.
func trace(args []string, out io.Writer) (int, error) {
	f, code, err := parseTraceFlags(args)
	if code != 0 || err != nil {
		if code == exitOK {
			err = nil
		}
		return code, err
	}
	if len(f.args) != 1 {
		f.usage()
		return exitUsage, fmt.Errorf("trace takes one correlation id (got %d)", len(f.args))
	}
	id := f.args[0]
	if id != "" && !history.ValidID(id) {
		return exitUsage, fmt.Errorf("trace %q: %s", id, history.ErrTextBadID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body, err := fetchTrace(ctx, f.adminURL, id)
	if nh := (*errNoHistory)(nil); errors.As(err, &nh) {
		return exitNotFound, errors.New(nh.msg + batchHint(ctx, f.adminURL, id))
	}
	if err != nil {
		return exitError, err
	}
	if f.output == "json" {
		return exitOK, writeJSON(out, body)
	}
	if body.DroppedEntries > 0 {
		fmt.Fprintf(out, "older entries dropped: %d (the history of a correlation id keeps its newest entries; this one is shared by many events)\n", body.DroppedEntries)
	}
	if body.Warning != "" {
		fmt.Fprintf(out, "warning: %s\n", body.Warning)
	}
	return exitOK, table(out, body.Stages)
}

// traceEvent prints the history of each delivery of one event (found on
// the raw topic, at most maxDeliveries of them, oldest first), only the
// event's entries of each: trace --event. It exits 3 when none of them
// has any entry kept.
func traceEvent(f traceFlags, out io.Writer, ev eventOf, found *deliveries, since time.Time) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Deliveries sharing a correlation id (a sender reusing one) share a
	// history: it is asked for once.
	type hist struct {
		corr  string
		ds    []delivery
		ans   *traceAnswer
		kept  int    // entries of the history, the event's or not
		noHis string // why there is none
	}
	var hs []*hist
	byCorr := map[string]*hist{}
	for _, d := range found.shown {
		h, ok := byCorr[d.corr]
		if !ok {
			h = &hist{corr: d.corr}
			byCorr[d.corr] = h
			hs = append(hs, h)
		}
		h.ds = append(h.ds, d)
	}
	result := traceAnswer{Source: ev.source, EventID: ev.id, Stages: []history.Entry{}, DeliveriesFound: found.total}
	entries := 0
	duplicate, processed := false, false // outcomes of the entries shown
	for _, h := range hs {
		var ans *traceAnswer
		var err error
		if h.corr == "" {
			// Records ingest did not write: say what and where each is,
			// where `no history is kept under ""` said neither.
			var what []string
			for _, d := range h.ds {
				what = append(what, d.foreign(found.topic))
			}
			err = &errNoHistory{strings.Join(what, "; ")}
		} else {
			ans, err = fetchTrace(ctx, f.adminURL, h.corr)
		}
		if nh := (*errNoHistory)(nil); errors.As(err, &nh) {
			h.noHis = nh.msg
			ans, err = &traceAnswer{CorrelationID: h.corr}, nil
		}
		if err != nil {
			return exitError, err
		}
		h.kept = len(ans.Stages)
		ans.Stages = slices.DeleteFunc(ans.Stages, func(e history.Entry) bool { return !ev.has(e) })
		if len(ans.Stages) == 0 && h.noHis == "" {
			h.noHis = fmt.Sprintf("the history of correlation id %s holds %d entries, none of event %s of source %s", shown(h.corr), h.kept, shown(ev.id), shown(ev.source))
			if ans.DroppedEntries > 0 {
				h.noHis += fmt.Sprintf(" (%d older entries dropped: the correlation id is shared by many events, and the event's may have been among them)", ans.DroppedEntries)
			}
		}
		h.ans = ans
		for _, e := range ans.Stages {
			duplicate = duplicate || e.Outcome == "duplicate"
			processed = processed || e.Outcome == "processed"
		}
		entries += len(ans.Stages)
		result.Stages = append(result.Stages, ans.Stages...)
		result.DroppedEntries += ans.DroppedEntries
		result.CorrelationID = h.corr
		for _, d := range h.ds {
			result.Deliveries = append(result.Deliveries, deliveryAnswer{
				CorrelationID: h.corr, Where: d.where(found.topic), At: d.at,
				Stages: ans.Stages, DroppedEntries: ans.DroppedEntries, Error: h.noHis,
			})
		}
	}
	if len(found.shown) > 0 {
		// The latest delivery shown: its correlation id heads the answer.
		result.CorrelationID = found.shown[len(found.shown)-1].corr
	}
	// Only the key's partition read: say so, and how to read them all.
	result.Note = found.onePartition(duplicate && !processed)
	if entries == 0 {
		note := ""
		if result.Note != "" {
			note = " (" + result.Note + ")"
		}
		if len(hs) == 1 {
			return exitNotFound, errors.New(hs[0].noHis + note)
		}
		return exitNotFound, fmt.Errorf("none of the %d deliveries of event %s of source %s shown has history kept: %s%s", len(found.shown), shown(ev.id), shown(ev.source), hs[len(hs)-1].noHis, note)
	}
	more := ""
	if n := found.total - len(found.shown); n > 0 {
		result.NextSince = found.next.since()
		more = fmt.Sprintf("%d later deliveries not shown: trace them with --since %s", n, result.NextSince)
		if found.allParts {
			more += " --all-partitions"
		}
	}
	if f.output == "json" {
		return exitOK, writeJSON(out, result)
	}
	if result.Note != "" {
		// First: what the deliveries below may lack.
		fmt.Fprintf(out, "note: %s\n", result.Note)
	}
	if len(found.shown) > 1 {
		from := "from its start"
		if !since.IsZero() {
			from = "since " + since.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(out, "event %s of source %s: %d deliveries on %s %s, oldest first, each with its history\n", shown(ev.id), shown(ev.source), found.total, found.topic, from)
	}
	for i, h := range hs {
		if len(found.shown) > 1 {
			var where []string
			var nums []string
			for _, d := range h.ds {
				where = append(where, d.where(found.topic)+" at "+d.at.UTC().Format("2006-01-02T15:04:05.000Z"))
				nums = append(nums, strconv.Itoa(d.n))
			}
			what := "delivery " + nums[0]
			if len(nums) > 1 {
				what = "deliveries " + strings.Join(nums, ", ")
			}
			if i > 0 {
				fmt.Fprintln(out)
			}
			fmt.Fprintf(out, "%s of %d: %s, correlation id %s\n", what, found.total, strings.Join(where, ", "), shown(h.corr))
			if len(h.ans.Stages) == 0 {
				fmt.Fprintf(out, "  %s\n", h.noHis)
				continue
			}
		}
		if len(h.ans.Stages) < h.kept {
			fmt.Fprintf(out, "correlation id %s is shared by other events: showing event %s's %d of the %d entries kept\n", shown(h.corr), shown(ev.id), len(h.ans.Stages), h.kept)
		}
		if h.ans.DroppedEntries > 0 {
			fmt.Fprintf(out, "older entries dropped: %d (the history of a correlation id keeps its newest entries; this one is shared by many events)\n", h.ans.DroppedEntries)
		}
		if h.ans.Warning != "" {
			fmt.Fprintf(out, "warning: %s\n", h.ans.Warning)
		}
		if err := table(out, h.ans.Stages); err != nil {
			return exitError, err
		}
	}
	if more != "" {
		fmt.Fprintf(out, "\n%s\n", more)
	}
	return exitOK, nil
}

func writeJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(jsonOut{out})
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table prints history entries as trace's timeline. When they are of
// several events (a correlation id shared by them: a sender reusing one),
// an EVENT column says whose each stage is. DETAIL is a stage's error, or
// who made a decision and why.
func table(out io.Writer, stages []history.Entry) error {
	event := func(e history.Entry) string {
		if e.Undecodable {
			return "(undecodable)"
		}
		return cell(e.Source) + "/" + cell(e.EventID)
	}
	several := false
	for _, e := range stages {
		several = several || event(e) != event(stages[0])
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if several {
		fmt.Fprint(tw, "AT\tEVENT\tSTAGE\tATTEMPT\tOUTCOME\tWHERE\tDETAIL\n")
	} else {
		fmt.Fprint(tw, "AT\tSTAGE\tATTEMPT\tOUTCOME\tWHERE\tDETAIL\n")
	}
	for _, e := range stages {
		att := ""
		if e.Attempt > 0 {
			att = fmt.Sprint(e.Attempt)
		}
		where := cell(e.Where)
		if e.Undecodable {
			where += " (undecodable)"
		}
		at := e.At.UTC().Format("2006-01-02T15:04:05.000Z")
		if several {
			at += "\t" + event(e)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", at, cell(e.Stage), att, cell(e.Outcome), where, trim(cmp.Or(e.Error, e.Note), 80))
	}
	return tw.Flush()
}

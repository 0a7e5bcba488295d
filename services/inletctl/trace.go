package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/inletdev/inlet/pkg/flagenv"
	"github.com/inletdev/inlet/pkg/history"
)

// eventOf picks one event's entries out of a history its correlation id
// shares with others: trace --event.
type eventOf struct{ id, source string }

// has reports whether e is one of the event's entries (one written
// without a source, by an older writer, is taken by its id).
func (f *eventOf) has(e history.Entry) bool {
	return e.EventID == f.id && (e.Source == f.source || e.Source == "")
}

// trace prints one event's processing history from the admin API; with
// only set, only that event's entries of it.
func trace(args []string, out io.Writer, only *eventOf) (int, error) {
	fs := flagenv.New("trace")
	var adminURL, output string
	fs.String(&adminURL, "admin-url", "INLET_ADMIN_URL", "http://127.0.0.1:9090", "admin URL of a processor (its -admin-addr, default 127.0.0.1:9091) or of make run (127.0.0.1:9090)")
	fs.StringVar(&output, "output", "table", "table or json")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "Usage: inletctl trace [-admin-url URL] [-output json] <correlation-id>\n"+
			"       inletctl [connection flags] trace --event <event-id> --source S [--since 30d|72h|RFC 3339 time|all] [--timeout 2m] [-admin-url URL]\n\n"+
			"Example: inletctl trace 4bf92f3577b34da6a3ce929d0e0e4736")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, nil
		}
		return exitUsage, err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitUsage, errors.New("trace takes one correlation id")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, adminURL+"/v1/trace/"+url.PathEscape(fs.Arg(0)), nil)
	if err := adminAuth(req); err != nil {
		return exitError, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return exitError, err
	}
	defer resp.Body.Close()
	var body struct {
		CorrelationID string `json:"correlation_id"`
		// With --event, the event whose entries stages holds.
		Source  string          `json:"source,omitempty"`
		EventID string          `json:"event_id,omitempty"`
		Stages  []history.Entry `json:"stages"`
		// DroppedEntries counts the older entries of the correlation id
		// dropped to keep its history within its bound.
		DroppedEntries int64  `json:"dropped_entries"`
		Error          string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		// Not the admin API's JSON: most often -admin-url names another
		// listener (ingest's admin port is 9090 too, the processor's 9091).
		return exitError, fmt.Errorf("%s answered %s, not the admin API: is -admin-url the processor's admin address (default 127.0.0.1:9091; make run serves it on 127.0.0.1:9090)?", adminURL, resp.Status)
	}
	if resp.StatusCode == http.StatusNotFound {
		return 3, errors.New(body.Error)
	}
	if resp.StatusCode != http.StatusOK {
		return exitError, fmt.Errorf("admin API: %s: %s", resp.Status, body.Error)
	}
	kept := len(body.Stages)
	if only != nil {
		body.Source, body.EventID = only.source, only.id
		body.Stages = slices.DeleteFunc(body.Stages, func(e history.Entry) bool { return !only.has(e) })
		if len(body.Stages) == 0 {
			msg := fmt.Sprintf("the history of correlation id %s holds %d entries, none of event %s of source %s", shown(body.CorrelationID), kept, shown(only.id), shown(only.source))
			if body.DroppedEntries > 0 {
				msg += fmt.Sprintf(" (%d older entries dropped: the correlation id is shared by many events, and the event's may have been among them)", body.DroppedEntries)
			}
			return exitNotFound, errors.New(msg)
		}
	}
	if output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return exitOK, enc.Encode(body)
	}
	if only != nil && len(body.Stages) < kept {
		fmt.Fprintf(out, "correlation id %s is shared by other events: showing event %s's %d of the %d entries kept\n", shown(body.CorrelationID), shown(only.id), len(body.Stages), kept)
	}
	if body.DroppedEntries > 0 {
		fmt.Fprintf(out, "older entries dropped: %d (the history of a correlation id keeps its newest entries; this one is shared by many events)\n", body.DroppedEntries)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tSTAGE\tATTEMPT\tOUTCOME\tWHERE\tERROR")
	for _, e := range body.Stages {
		att := ""
		if e.Attempt > 0 {
			att = fmt.Sprint(e.Attempt)
		}
		where := cell(e.Where)
		if e.Undecodable {
			where += " (undecodable)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.At.UTC().Format("2006-01-02T15:04:05.000Z"), cell(e.Stage), att, cell(e.Outcome), where, trim(e.Error, 80))
	}
	return exitOK, tw.Flush()
}

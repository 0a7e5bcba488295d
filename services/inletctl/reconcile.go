package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/inletdev/inlet/pkg/flagenv"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/ops"
	"github.com/inletdev/inlet/pkg/reconcile"
	"github.com/inletdev/inlet/pkg/service"
	"github.com/inletdev/inlet/pkg/source"
)

// exitGaps is reconcile's exit code when any event is not processed, so it
// can run from cron and alert.
const exitGaps = 4

const reconcileUsage = `Usage: inletctl [connection flags] reconcile --source S (--sender-log FILE | --stripe) [--since T] [--until T] [flags]

Compares the sender's own list of events with what Inlet received and
processed, and reports each event as never_received, stuck (on the raw topic,
not processed), retry, dlq, invalid (unresolved), discarded (its DLQ or
invalid entry discarded by an operator: not processed, but decided, so not
a gap) or processed.

The sender log is NDJSON, a JSON array or CSV with an id and a time column:
a Stripe events export ({"id":"evt_…","created":…}), GitHub recent deliveries
(guid, delivered_at) or a Shopify webhook log (webhook_id, created_at).
--stripe lists events from the Stripe API instead (key in STRIPE_API_KEY or
STRIPE_API_KEY_FILE).

Exit code 0: no gaps (discarded events are not gaps); 4: gaps found;
1: failure; 2: usage (with the processor's sources file, --sources or
INLET_SOURCES: a --source not in it, none of whose events was received,
as a mistyped one), or a sender log that cannot be read or leaves
nothing to check (no events at all, as from a failed export; none in
--since/--until, as from a stale one, or none that --stripe lists; none
with a time to place in --since/--until): nothing checked is never
reported clean.

Examples:
  inletctl reconcile --source shop --sender-log deliveries.ndjson --since 2025-01-31T00:00:00Z
  inletctl reconcile --source stripe --stripe --since 2025-01-31T00:00:00Z --output json
`

func reconcileCmd(args []string, kcfg *kafka.Config, rcfg *service.RegistryConfig, out io.Writer) (int, error) {
	fs := flagenv.New("reconcile")
	fs.Usage = func() { fmt.Fprint(os.Stderr, reconcileUsage); fs.PrintDefaults() }
	var cfg reconcile.Config
	var src, logPath, since, until, output, stripeURL, sourcesPath string
	var useStripe bool
	fs.StringVar(&src, "source", "", "the Inlet source the sender delivers to (required)")
	fs.StringVar(&logPath, "sender-log", "", "the sender's event log (- for stdin)")
	fs.BoolVar(&useStripe, "stripe", false, "list the events from the Stripe API (STRIPE_API_KEY)")
	fs.String(&stripeURL, "stripe-api-url", "INLET_STRIPE_API_URL", "https://api.stripe.com", "Stripe API base URL")
	fs.StringVar(&since, "since", "", "only sender events at or after this RFC 3339 time")
	fs.StringVar(&until, "until", "", "only sender events before this RFC 3339 time")
	fs.String(&cfg.Group, "group", "INLET_PROCESSOR_GROUP", "inlet-processor", "the processor's consumer group")
	fs.Duration(&cfg.Slack, "slack", "INLET_RECONCILE_SLACK", 10*time.Minute, "read the raw topic from this long before --since (clock skew)")
	fs.BoolVar(&cfg.All, "all", false, "list processed and discarded events too, not only gaps")
	fs.StringVar(&output, "output", "table", "table or json")
	fs.String(&sourcesPath, "sources", "INLET_SOURCES", "", "the processor's sources file: a --source not in it, none of whose events was found, is refused")
	tiers := kafka.RetryTiersFlag(fs, "retry tier delays (the processor's)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, nil
		}
		return exitUsage, err
	}
	if logPath != "" && useStripe {
		fs.Usage()
		return exitUsage, errors.New("reconcile: --sender-log and --stripe are exclusive: give one")
	}
	if src == "" || fs.NArg() != 0 || (logPath == "") == !useStripe {
		fs.Usage()
		return exitUsage, errors.New("reconcile: --source and one of --sender-log or --stripe are required")
	}
	if output != "table" && output != "json" {
		return exitUsage, fmt.Errorf("--output %q: table or json", output)
	}
	if cfg.Slack < 0 {
		// Accepted, it read the raw topic from after --since and reported
		// the events received in between never_received.
		return exitUsage, fmt.Errorf("--slack %s (INLET_RECONCILE_SLACK): how far before --since the raw topic is read: 0 or more", cfg.Slack)
	}
	var err error
	if cfg.Since, err = parseTime(since); err != nil {
		return exitUsage, err
	}
	if cfg.Until, err = parseTime(until); err != nil {
		return exitUsage, err
	}
	if !cfg.Since.IsZero() && !cfg.Until.IsZero() && !cfg.Since.Before(cfg.Until) {
		// Before any read: --stripe asked the API for an empty window and
		// blamed the key.
		return exitUsage, fmt.Errorf("--since %s must be before --until %s (the window is [--since, --until), --until excluded)", since, until)
	}
	delays, err := tiers()
	if err != nil {
		return exitUsage, err
	}
	cfg.Source = src
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	var events []reconcile.SenderEvent
	if useStripe {
		key, err := flagenv.Secret("STRIPE_API_KEY")
		if err != nil {
			return exitError, err
		}
		if key == "" {
			return exitUsage, errors.New("reconcile --stripe: set STRIPE_API_KEY (or STRIPE_API_KEY_FILE)")
		}
		var f reconcile.Fetcher = &reconcile.Stripe{APIKey: key, BaseURL: stripeURL}
		if events, err = f.Fetch(ctx, cfg.Since, cfg.Until); err != nil {
			return exitError, err
		}
		if len(events) == 0 {
			// Stripe filtered by the window already.
			return exitUsage, fmt.Errorf("reconcile --stripe: the Stripe API listed no events%s (a key of another account or mode? a window older than Stripe's 30 days?): nothing to check, so no report", window(cfg))
		}
	} else {
		r := io.Reader(os.Stdin)
		if logPath != "-" {
			f, err := os.Open(logPath)
			if err != nil {
				return exitUsage, err
			}
			defer f.Close()
			r = f
		}
		if events, err = reconcile.ReadLog(r); err != nil {
			return exitUsage, err
		}
	}
	// Before Kafka is dialled: a log that leaves nothing to check is
	// refused, never reported as 0 gaps.
	if err := reconcile.Validate(cfg, events); err != nil {
		return exitUsage, err
	}

	topics := kafka.TopicNames(kcfg.TopicPrefix, delays)
	c, err := connect(ctx, kcfg, rcfg, topics)
	if err != nil {
		return exitError, err
	}
	q, err := ops.New(c.opts, topics, c.codec)
	if err != nil {
		return exitError, err
	}
	defer q.Close()
	rep, err := reconcile.Check(ctx, cfg, reconcile.Deps{KafkaOpts: c.opts, Topics: topics, Queues: q}, events)
	if errors.Is(err, reconcile.ErrUndated) || errors.Is(err, reconcile.ErrEmptyLog) || errors.Is(err, reconcile.ErrNoneInRange) || errors.Is(err, reconcile.ErrNegativeSlack) {
		return exitUsage, err
	}
	if err != nil {
		return exitError, err
	}
	// Not one event found: most often --source is not the source's name
	// (shopify, its kind, for shop), and every event read as lost, exit
	// 4, from cron too.
	noneFound := rep.Total > 0 && rep.Counts[reconcile.NeverReceived] == rep.Total
	if noneFound && sourcesPath != "" {
		sources, err := source.Load(sourcesPath, source.WithoutSecrets())
		if err != nil {
			return exitUsage, fmt.Errorf("reconcile: --sources (INLET_SOURCES): %w", err)
		}
		if err := ops.UnknownSource(sources.Names(), src); err != nil {
			return exitUsage, fmt.Errorf("reconcile: %w (sources file %s): none of its events was received, check --source", err, sourcesPath)
		}
	}
	if output == "json" {
		if err := writeJSON(out, rep); err != nil {
			return exitError, err
		}
	} else {
		printReconcile(out, rep)
	}
	if noneFound && sourcesPath == "" {
		return exitGaps, fmt.Errorf("none of the %d events was received: is --source %q the source's name in the processor's sources file? (give --sources or INLET_SOURCES to check it)", rep.Total, src)
	}
	if rep.Gaps > 0 {
		return exitGaps, fmt.Errorf("%d of %d events not processed", rep.Gaps, rep.Total)
	}
	return exitOK, nil
}

// window describes --since/--until for a message: "" when neither is set.
func window(cfg reconcile.Config) string {
	s := ""
	if !cfg.Since.IsZero() {
		s += " since " + cfg.Since.UTC().Format(time.RFC3339)
	}
	if !cfg.Until.IsZero() {
		s += " before " + cfg.Until.UTC().Format(time.RFC3339)
	}
	return s
}

func printReconcile(out io.Writer, rep *reconcile.Report) {
	fmt.Fprintf(out, "source %s: %d sender events, %d gaps\n", rep.Source, rep.Total, rep.Gaps)
	for _, s := range reconcile.Statuses {
		fmt.Fprintf(out, "  %-15s %d\n", s, rep.Counts[s])
	}
	if n := rep.Counts[reconcile.Discarded]; n > 0 {
		listed := "--all lists them with the decision"
		if slices.ContainsFunc(rep.Events, func(r reconcile.Result) bool { return r.Status == reconcile.Discarded }) {
			listed = "listed below with the decision"
		}
		fmt.Fprintf(out, "  (%d discarded by an operator from the DLQ or invalid topic: never processed, but decided, so not gaps; %s)\n", n, listed)
	}
	if rep.Undated > 0 {
		fmt.Fprintf(out, "  (%d sender events without a time were left out: they cannot be placed in --since/--until)\n", rep.Undated)
	}
	if len(rep.Events) > 0 {
		fmt.Fprintln(out)
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "EVENT\tSENT\tSTATUS\tWHERE\tCORRELATION\tERROR")
		for _, e := range rep.Events {
			sent := "-"
			if !e.SentAt.IsZero() {
				sent = e.SentAt.UTC().Format(time.RFC3339)
			}
			// All of it from the sender's log or the topics: escapes shown,
			// not obeyed, as in every listing.
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cell(e.ID), sent, cell(string(e.Status)), cell(e.Where), cell(e.CorrelationID), trim(e.Error, 60))
		}
		tw.Flush()
	}
	printGapSteps(out, rep)
}

// printGapSteps says, for each gap status the report has, what to do
// about its events (docs/operations.md, Reconcile): the report listed
// them, and the way to close each kind of gap was only in the guide.
func printGapSteps(out io.Writer, rep *reconcile.Report) {
	// An entry of the queue, to name in the example: a listed one.
	entry := func(st reconcile.Status, fallback string) string {
		for _, e := range rep.Events {
			if e.Status == st && e.Where != "" {
				return cell(e.Where)
			}
		}
		return fallback
	}
	var steps []string
	for _, st := range reconcile.Statuses {
		if !st.Gap() || rep.Counts[st] == 0 {
			continue
		}
		var step string
		switch st {
		case reconcile.NeverReceived:
			step = "not on the raw topic (the delivery failed or never happened): ask the sender to send them again (a redelivery, or a resend from its dashboard or API)"
		case reconcile.Stuck:
			step = fmt.Sprintf("on the raw topic, not processed yet: is the processor running and keeping up (consumer group %s, as --group says)? Run this again once it has caught up", cell(rep.Group))
		case reconcile.InRetry:
			step = "waiting in a retry tier: the processor retries them by itself; run this again after the last tier's delay"
		case reconcile.InDLQ:
			step = fmt.Sprintf("unresolved DLQ entries (the downstream kept failing): see why with inletctl dlq show %s, then, the cause fixed, inletctl dlq requeue them (or discard them, with a reason)", entry(st, "<where>"))
		case reconcile.Invalid:
			step = fmt.Sprintf("unresolved invalid entries (the payload did not fit its contract): see why with inletctl invalid show %s, then, the sender or contract fixed, inletctl invalid requeue them (or discard them, with a reason)", entry(st, "<where>"))
		default:
			continue
		}
		steps = append(steps, fmt.Sprintf("  %s: %s", st, step))
	}
	if len(steps) == 0 {
		return
	}
	fmt.Fprintf(out, "\nwhat to do:\n%s\n", strings.Join(steps, "\n"))
}

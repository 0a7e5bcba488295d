// Command inlet-load sends signed webhook load to an Inlet ingest service
// on an open-model schedule, then checks the outcome on Kafka and in the
// processor's metrics, and writes an HTML report.
//
//	go run ./loadtest/cmd/inlet-load -scenario steady -rate 200 -duration 20s
//
// Defaults point at `make run` (ingest 127.0.0.1:8080, admin 127.0.0.1:9090,
// Kafka 127.0.0.1:9092, or where INLET_INGEST_ADDR, INLET_ADMIN_URL or
// INLET_ADMIN_ADDR, INLET_KAFKA_BROKERS and INLET_TOPIC_PREFIX put it) and
// its dev secrets; secrets come from the same
// variables as the dev stack's (STRIPE_WEBHOOK_SECRET, GITHUB_WEBHOOK_SECRET,
// SHOPIFY_WEBHOOK_SECRET, BILLING_WHSEC, BILLING_EVENTS_TOKEN). Targets off
// loopback are refused without -allow-remote. Checks whose input was not
// collected (empty -kafka or -admin) are reported not checked. Exit status 1
// when the verdict is FAIL or the topics could not be read (the report is
// written all the same), 2 for usage errors.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/inletdev/inlet/loadtest/gen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout)
	var fail verdictFailed
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case errors.As(err, &fail):
		os.Exit(1)
	default:
		fmt.Fprintln(os.Stderr, "inlet-load:", err)
		var u usageError
		if errors.As(err, &u) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError struct{ error }

type verdictFailed struct{}

func (verdictFailed) Error() string { return "verdict: FAIL" }

// targets are where a run goes by default.
type targets struct{ target, admin, kafka, prefix string }

// defaultsFrom takes the defaults from the variables `make run` reads
// (INLET_INGEST_ADDR, INLET_ADMIN_ADDR, INLET_TOPIC_PREFIX) and those its
// printed export lines set (INLET_ADMIN_URL, INLET_KAFKA_BROKERS), else
// make run's defaults: a stack moved to other ports (as README suggests
// when one is taken) was not found by make loadtest, which passes no
// flags.
func defaultsFrom(getenv func(string) string) targets {
	return targets{
		target: "http://" + cmp.Or(getenv("INLET_INGEST_ADDR"), "127.0.0.1:8080"),
		admin:  cmp.Or(getenv("INLET_ADMIN_URL"), "http://"+cmp.Or(getenv("INLET_ADMIN_ADDR"), "127.0.0.1:9090")),
		kafka:  cmp.Or(getenv("INLET_KAFKA_BROKERS"), "127.0.0.1:9092"),
		prefix: cmp.Or(getenv("INLET_TOPIC_PREFIX"), "inlet"),
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("inlet-load", flag.ContinueOnError)
	cfg := gen.Config{}
	var (
		kafka, prefix, outDir string
		verify                bool
		settle                time.Duration
		maxRetryable          float64
	)
	def := defaultsFrom(os.Getenv)
	fs.StringVar(&cfg.Target, "target", def.target, "ingest base URL (default from INLET_INGEST_ADDR, as make run reads it)")
	fs.StringVar(&cfg.AdminURL, "admin", def.admin, "admin/metrics base URL, scraped every second; empty: no scraping (default from INLET_ADMIN_URL or INLET_ADMIN_ADDR)")
	fs.StringVar(&kafka, "kafka", def.kafka, "Kafka brokers for the verification, comma-separated; empty: skip reading topics (default from INLET_KAFKA_BROKERS)")
	fs.StringVar(&prefix, "topic-prefix", def.prefix, "topic name prefix (default from INLET_TOPIC_PREFIX)")
	fs.BoolVar(&cfg.AllowRemote, "allow-remote", false, "allow a target or admin URL off loopback")
	fs.StringVar(&cfg.Scenario, "scenario", "steady", "scenario: "+strings.Join(gen.ScenarioNames(), ", "))
	fs.Float64Var(&cfg.Rate, "rate", 0, "arrival rate, requests/s (0: the scenario's default; ramp: final rate; burst: base rate)")
	fs.DurationVar(&cfg.Duration, "duration", 20*time.Second, "schedule length (at most 10m)")
	fs.IntVar(&cfg.MaxRequests, "max-requests", 100000, "most requests to send")
	fs.IntVar(&cfg.MaxInFlight, "max-inflight", 2000, "most concurrent requests (waiting for a slot counts as latency)")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "per-request timeout")
	fs.IntVar(&cfg.BodyLimit, "body-limit", 1<<20, "the sources' max_body, for -scenario large")
	fs.Int64Var(&cfg.Seed, "seed", 1, "random seed for payloads and shuffles")
	fs.StringVar(&cfg.RunID, "run-id", "", "prefix of every event id (default: from the time)")
	fs.BoolVar(&verify, "verify", true, "check the outcome on Kafka and in the metrics after the run (false: only the answers are judged)")
	fs.DurationVar(&settle, "settle", 30*time.Second, "how long to wait for the processor to catch up before verifying")
	fs.Float64Var(&maxRetryable, "max-retryable", 0.01, "largest share of 5xx/408/429/unanswered requests the verdict allows")
	fs.StringVar(&outDir, "out", "", "report directory (default loadtest/reports/<timestamp>)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	cfg.Secrets = gen.SecretsFromEnv(os.Getenv)
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	if err := ready(ctx, cfg.Target); err != nil {
		return err
	}
	runner, err := gen.NewRunner(cfg, nil)
	if err != nil {
		return err
	}
	var (
		scraper *gen.Scraper
		before  gen.Scrape
	)
	if cfg.AdminURL != "" {
		scraper = gen.NewScraper(cfg.AdminURL)
		if before, err = scraper.Scrape(ctx); err != nil {
			return fmt.Errorf("admin metrics: %w (pass -admin '' to run without them)", err)
		}
		runner.Scraper = scraper
	}
	fmt.Fprintf(out, "inlet-load: %s against %s for %s (run id %s)\n", cfg.Scenario, cfg.Target, cfg.Duration, cfg.RunID)
	res, err := runner.Run(ctx)
	if err != nil {
		return err
	}
	fmt.Fprint(out, res.Summary())

	// Without -verify the outcome (topics, metrics) is not looked at, but
	// the answers are still judged: a run answered 503 throughout fails.
	var (
		verdict   *gen.Verdict
		topicsErr error
		obs       = gen.Observed{Unverified: !verify}
	)
	if verify {
		if scraper != nil {
			acc, _ := res.AcceptedDeliveries()
			fmt.Fprintf(out, "waiting up to %s for the processor to settle...\n", settle)
			sctx, cancel := context.WithTimeout(ctx, settle)
			after, ok := scraper.Settle(sctx, before, acc)
			cancel()
			obs.Before, obs.After, obs.Settled = &before, &after, ok
			res.Scrapes = append(res.Scrapes, after)
		}
		if kafka != "" {
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			got, err := gen.ReadTopics(rctx, strings.Split(kafka, ","), gen.DefaultTopics(prefix), res.Events, 1500*time.Millisecond)
			cancel()
			if err != nil {
				// What was read is partial: the topic checks are not
				// made, the report is still written, and the run ends
				// with the error.
				topicsErr = err
				obs.TopicsErr = err
			} else {
				obs.RawKeys, obs.Processed, obs.StateLast = got.RawKeys, got.Processed, got.StateLast
			}
		}
	}
	verdict = gen.CheckOutcome(res.Events, res.Unexpected, obs)
	verdict.AddRetryable(res.Retryable, res.Sent(), maxRetryable)
	fmt.Fprint(out, verdict)
	if outDir == "" {
		outDir = filepath.Join("loadtest", "reports", res.Start.UTC().Format("20060102T150405Z")+"-"+cfg.Scenario)
	}
	rep, err := gen.WriteReport(outDir, res, verdict)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "report: %s\n", rep.HTML)
	if topicsErr != nil {
		return fmt.Errorf("verification incomplete: %w", topicsErr)
	}
	if !verdict.Pass {
		return verdictFailed{}
	}
	return nil
}

// ready waits up to 5s for the target's /readyz.
func ready(ctx context.Context, target string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	url := strings.TrimRight(target, "/") + "/readyz"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("answered %s", resp.Status)
			}
			return fmt.Errorf("target %s not ready: %v (is `make run` running?)", url, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Command benchingest measures what Inlet's ack contract costs over a bare
// HTTP handler. In one process it runs three servers on 127.0.0.1 and the
// same closed-loop load generator against each:
//
//   - bare: read the body, verify the Stripe signature, answer 200;
//   - naive: the same plus a ProduceSync of the raw body to kfake with
//     franz-go's default producer options;
//   - inlet: the real ingest server (pkg/ingest with its default producers,
//     envelope and registry framing) on an embedded kfake with a DataDir
//     and srfake.
//
// Each cell (mode × connections) gets a warm-up, then a measured window;
// requests/s, p50/p99 latency and non-2xx answers are printed, with the
// process's CPU per answer and the CPU other processes took meanwhile (the
// run shares the machine: when "others" is not near 0%, req/s is not to be
// trusted). After the inlet cells the raw topic's end offsets are checked
// against the 2xx answers. The last line is ratio=<inlet/bare req/s at 256
// connections> (or at the largest connection count given).
//
//	go run ./loadtest/benchingest [-duration 5s] [-conns 16,64,256] [-size 1024]
//	    [-count N] [-modes bare,naive,inlet] [-cpuprofile prefix] [-memprofile file]
//
// Run to run, req/s moves by ±10% on a 2-core machine; use -count 3 to
// compare settings.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/inletdev/inlet/pkg/devstack"
	"github.com/inletdev/inlet/pkg/webhook"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchingest:", err)
		os.Exit(1)
	}
}

type options struct {
	duration   time.Duration
	warmup     time.Duration
	conns      []int
	size       int
	pool       int
	producers  int
	partitions int
	modes      []string
	count      int
	production bool
	cpuprofile string
	memprofile string
}

var allModes = []string{"bare", "naive", "inlet"}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("benchingest", flag.ContinueOnError)
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measured window per cell")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "warm-up before each measured window")
	conns := fs.String("conns", "16,64,256", "comma-separated connection counts")
	fs.IntVar(&o.size, "size", 1024, "webhook body size in bytes")
	fs.IntVar(&o.pool, "bodies", 65536, "distinct pre-signed bodies per cell (event ids repeat after this many requests)")
	fs.IntVar(&o.producers, "producers", ingestConfig.Producers, "inlet's Kafka producer clients (Inlet's -producers)")
	fs.IntVar(&o.partitions, "partitions", 6, "partitions of the raw topics (Inlet's -topic-partitions default)")
	modes := fs.String("modes", strings.Join(allModes, ","), "modes to run, in order (bare is needed for ratios)")
	fs.BoolVar(&o.production, "production", true, "wire inlet like services/ingest (OTel metrics and tracer, kotel hooks, JSON info logs to /dev/null); false: no telemetry, no logs")
	fs.IntVar(&o.count, "count", 1, "rounds of every mode; req/s and latencies are then over all rounds (interleaving rounds evens out drift)")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of each measured window (servers, kfake and generator) to <this>.<mode>-<conns>")
	fs.StringVar(&o.memprofile, "memprofile", "", "write an allocation profile to this file at the end")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for f := range strings.SplitSeq(*conns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return o, fmt.Errorf("-conns: %q is not a positive number", f)
		}
		o.conns = append(o.conns, n)
	}
	for m := range strings.SplitSeq(*modes, ",") {
		m = strings.TrimSpace(m)
		if !slices.Contains(allModes, m) {
			return o, fmt.Errorf("-modes: unknown mode %q (want %s)", m, strings.Join(allModes, ", "))
		}
		o.modes = append(o.modes, m)
	}
	switch {
	case o.duration <= 0 || o.warmup < 0:
		return o, errors.New("-duration must be positive and -warmup not negative")
	case o.count < 1:
		return o, errors.New("-count must be positive")
	case o.pool < 1:
		return o, errors.New("-bodies must be positive")
	case o.size < minBodySize:
		return o, fmt.Errorf("-size must be at least %d", minBodySize)
	}
	return o, nil
}

func run(ctx context.Context, args []string, out io.Writer) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}

	dir, err := os.MkdirTemp("", "benchingest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var stack *devstack.Stack
	if slices.Contains(o.modes, "naive") || slices.Contains(o.modes, "inlet") {
		// No compaction during the run: it is a dev-stack chore, not ingest.
		stack, err = devstack.Start(devstack.Config{DataDir: dir, CompactEvery: time.Hour})
		if err != nil {
			return err
		}
		defer stack.Close()
	}

	fmt.Fprintf(out, "benchingest: load generator and all servers in this one process (GOMAXPROCS=%d, %d CPUs), 127.0.0.1 random ports\n",
		runtime.GOMAXPROCS(0), runtime.NumCPU())
	fmt.Fprintf(out, "  closed-loop HTTP/1.1 keep-alive, one connection per goroutine; %d-byte Stripe-signed bodies, pre-signed, %d distinct event ids per cell\n",
		o.size, o.pool)
	fmt.Fprintf(out, "  each cell: %s warm-up, %s measured, %d round(s); kafka: in-process kfake (DataDir %s), %d partitions; srfake registry\n",
		o.warmup, o.duration, o.count, dir, o.partitions)
	if o.production {
		fmt.Fprintln(out, "  inlet wired like services/ingest: OTel metrics + tracer (no exporter configured), kotel hooks, JSON info logs to /dev/null")
	} else {
		fmt.Fprintln(out, "  inlet without telemetry or logs (-production=false)")
	}

	// All servers run for the whole benchmark and the modes take turns at
	// each connection count, so the cells a ratio compares are measured
	// seconds apart, not a minute apart: other load on the machine drifts.
	targets := map[string]*target{}
	stopAll := func() error {
		var errs []error
		for mode, t := range targets {
			if err := t.stop(); err != nil {
				errs = append(errs, fmt.Errorf("stop %s: %w", mode, err))
			}
			delete(targets, mode)
		}
		return errors.Join(errs...)
	}
	defer stopAll()
	for _, mode := range o.modes {
		t, err := startTarget(ctx, mode, stack, o)
		if err != nil {
			return fmt.Errorf("start %s: %w", mode, err)
		}
		targets[mode] = t
	}
	rawTopic := ""
	if t, ok := targets["inlet"]; ok {
		rawTopic = t.rawTopic
	}
	signer, err := stripeVerifier()
	if err != nil {
		return err
	}

	var (
		runs        []cell
		ids         uint64 // last event id used
		inletAll2xx int64
	)
	for round := 1; round <= o.count; round++ {
		for _, n := range o.conns {
			for _, mode := range o.modes {
				c, err := measure(ctx, o, targets[mode], mode, n, round, &ids, signer, out)
				if err != nil {
					return err
				}
				runs = append(runs, c)
				if mode == "inlet" {
					inletAll2xx += c.all2xx
				}
			}
		}
	}
	if err := stopAll(); err != nil {
		return err
	}
	cells := mergeRounds(runs)
	slices.SortStableFunc(cells, func(a, b cell) int {
		if d := slices.Index(o.modes, a.mode) - slices.Index(o.modes, b.mode); d != 0 {
			return d
		}
		return slices.Index(o.conns, a.conns) - slices.Index(o.conns, b.conns)
	})

	fmt.Fprintln(out)
	printTable(out, cells)
	printErrors(out, cells)

	var sanityErr error
	if rawTopic != "" {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		records, err := endOffsets(sctx, stack, rawTopic)
		cancel()
		if err != nil {
			return fmt.Errorf("sanity check: %w", err)
		}
		verdict := "ok"
		if records < inletAll2xx {
			verdict = "FAIL: fewer records than acknowledged answers"
			sanityErr = fmt.Errorf("sanity check failed: %d records on %s for %d acknowledged answers", records, rawTopic, inletAll2xx)
		}
		fmt.Fprintf(out, "\nsanity: %s holds %d records (end offsets) for %d 2xx answers from inlet (warm-up included): %s\n",
			rawTopic, records, inletAll2xx, verdict)
	}

	if o.memprofile != "" {
		f, err := os.Create(o.memprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return err
		}
	}

	if r, ok := headlineRatio(cells, o.conns); ok {
		fmt.Fprintf(out, "ratio=%.2f\n", r)
	} else {
		fmt.Fprintln(out, "ratio=n/a (needs bare and inlet)")
	}
	return sanityErr
}

// startTarget starts mode's server.
func startTarget(ctx context.Context, mode string, stack *devstack.Stack, o options) (*target, error) {
	switch mode {
	case "bare":
		return startBare()
	case "naive":
		return startNaive(ctx, stack, o.partitions)
	case "inlet":
		return startInlet(ctx, stack, o.partitions, o.producers, o.production)
	}
	return nil, fmt.Errorf("unknown mode %q", mode)
}

// measure runs one cell against t with a freshly signed pool of requests.
func measure(ctx context.Context, o options, t *target, mode string, conns, round int, ids *uint64, signer webhook.Signer, out io.Writer) (cell, error) {
	pool, err := buildRequests(t.addr, o.size, o.pool, ids, signer, time.Now())
	if err != nil {
		return cell{}, err
	}
	defer pool.free()
	runtime.GC()
	before := t.produced.snapshot()
	name := fmt.Sprintf("%s-%d", mode, conns)
	if o.count > 1 {
		name += fmt.Sprintf("-round%d", round)
	}
	res, window, cpu := runCell(ctx, t.addr, pool, conns, o.warmup, o.duration, profiler(o.cpuprofile, name, out))
	if err := ctx.Err(); err != nil {
		return cell{}, fmt.Errorf("interrupted: %w", err)
	}
	c := cell{mode: mode, conns: conns, window: window, cpu: cpu, tally: res}
	fmt.Fprintf(out, "  %-5s %4d conns: %8.0f req/s  other processes %3.0f%% CPU  %s\n",
		mode, conns, c.rate(), 100*c.othersShare(), t.produced.snapshot().sub(before))
	return c, nil
}

// mergeRounds adds up the rounds of each (mode, connections) cell, in
// first-seen order: req/s is then the mean over the rounds' windows.
func mergeRounds(runs []cell) []cell {
	var cells []cell
	for _, r := range runs {
		i := slices.IndexFunc(cells, func(c cell) bool { return c.mode == r.mode && c.conns == r.conns })
		if i < 0 {
			t := newTally()
			t.merge(r.tally)
			r.tally = t
			cells = append(cells, r)
			continue
		}
		cells[i].window += r.window
		cells[i].cpu.self += r.cpu.self
		cells[i].cpu.others += r.cpu.others
		cells[i].merge(r.tally)
	}
	return cells
}

// profiler returns runCell's hook that profiles the window into
// <prefix>.<mode>-<conns>, or nil without a prefix.
func profiler(prefix, cell string, out io.Writer) func() func() {
	if prefix == "" {
		return nil
	}
	return func() func() {
		name := prefix + "." + cell
		f, err := os.Create(name)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(out, "  cpu profile %s: %v\n", name, err)
			if f != nil {
				_ = f.Close()
			}
			return func() {}
		}
		return func() {
			pprof.StopCPUProfile()
			_ = f.Close()
		}
	}
}

func bareRate(cells []cell, conns int) (float64, bool) {
	for _, c := range cells {
		if c.mode == "bare" && c.conns == conns {
			return c.rate(), true
		}
	}
	return 0, false
}

// headlineRatio is inlet/bare at 256 connections, or at the largest count
// run when 256 is not among them.
func headlineRatio(cells []cell, conns []int) (float64, bool) {
	at := 256
	if !slices.Contains(conns, at) {
		at = slices.Max(conns)
	}
	bare, ok := bareRate(cells, at)
	if !ok || bare == 0 {
		return 0, false
	}
	for _, c := range cells {
		if c.mode == "inlet" && c.conns == at {
			return c.rate() / bare, true
		}
	}
	return 0, false
}

func ms(us int64) string { return fmt.Sprintf("%.2fms", float64(us)/1000) }

func printTable(out io.Writer, cells []cell) {
	fmt.Fprintf(out, "%-6s %6s %10s %9s %9s %7s %8s %9s %7s\n", "mode", "conns", "req/s", "p50", "p99", "errors", "vs bare", "cpu/req", "others")
	for _, c := range cells {
		ratio := "-"
		if bare, ok := bareRate(cells, c.conns); ok && bare > 0 {
			ratio = fmt.Sprintf("%.2fx", c.rate()/bare)
		}
		fmt.Fprintf(out, "%-6s %6d %10.0f %9s %9s %7d %8s %7.1fµs %6.0f%%\n", c.mode, c.conns, c.rate(),
			ms(c.hist.ValueAtQuantile(50)), ms(c.hist.ValueAtQuantile(99)), c.errs, ratio,
			float64(c.cpuPerReq().Nanoseconds())/1000, 100*c.othersShare())
	}
	fmt.Fprintln(out, "  cpu/req: this process's CPU (servers, kfake and generator) per 2xx answer in the window.")
	fmt.Fprintln(out, "  others: share of the machine's CPUs used by other processes during the window; if not ~0%, req/s is unreliable.")
}

// printErrors lists every non-2xx answer and I/O error, warm-up included.
func printErrors(out io.Writer, cells []cell) {
	listed := false
	for _, c := range cells {
		if len(c.statuses) == 0 && c.ioErrs == 0 {
			continue
		}
		if !listed {
			fmt.Fprintln(out, "\nerrors (warm-up included):")
			listed = true
		}
		var parts []string
		for _, st := range slices.Sorted(maps.Keys(c.statuses)) {
			parts = append(parts, fmt.Sprintf("HTTP %d ×%d", st, c.statuses[st]))
		}
		if c.ioErrs > 0 {
			parts = append(parts, fmt.Sprintf("I/O ×%d (first: %v)", c.ioErrs, c.firstErr))
		}
		fmt.Fprintf(out, "  %s/%d: %s\n", c.mode, c.conns, strings.Join(parts, ", "))
	}
	if !listed {
		fmt.Fprintln(out, "\nerrors: none (every answer 2xx, warm-up included)")
	}
}

// Command benchprocessor measures what Inlet's processor costs over a bare
// consume-and-commit loop. In one process it pre-loads one raw topic of an
// embedded kfake (DataDir in a temp dir) with N envelopes of ~1 KiB Standard
// Webhooks payloads — 10% duplicates (the same event re-sent), 5% out of
// order (an older update of an entity after a newer one) — and then, each
// with a fresh consumer group over the same records, measures events/s of:
//
//   - bare: poll and commit what was polled, nothing else;
//   - naive: per record, decode the envelope, one unpipelined SET NX PX in
//     Redis, one ProduceSync of the payload, commit the record;
//   - inlet: the real pkg/processor (declarative handler over the
//     standardwebhooks/event contract, Redis dedup claims and newest-wins,
//     one Kafka transaction per batch), until every record has an outcome.
//
// Redis is INLET_REDIS_URL when set, else a redis-server started here on a
// free port when one is on PATH, else the embedded miniredis; the output
// says which. Redis is emptied between modes (only this run's keys, on an
// INLET_REDIS_URL).
//
// By default each entity's records share a partition, so the outcomes are
// known exactly and checked (processed, duplicate, stale); -partition-by key
// spreads them as ingest does. -instances runs several processors in the
// group, -workers sets each one's transactional members (default: the
// processor's); -breakdown (on by default) hooks the processor's Kafka client and
// Redis to show where the wall time went; -cpuprofile writes a profile per
// mode.
//
// -count N runs every mode N times, interleaved, each round with fresh
// groups over the same records; the table shows each mode's median round.
// Bare's time is mostly its group join and first fetch, and it moves by
// ±20% or more from run to run, so one round is a rough figure.
//
// The last line printed is ratio=<inlet/bare events/s> (of the medians).
//
//	go run ./loadtest/benchprocessor [-count 3] [-events 50000] [-batch 1000] [-instances 1] [-workers 2] [-cpuprofile prof] [-memprofile file]
package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/inletdev/inlet/pkg/devstack"
	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/processor"
	"github.com/inletdev/inlet/pkg/registry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchprocessor:", err)
		os.Exit(1)
	}
}

type options struct {
	events      int
	size        int
	partitions  int
	dup, ooo    float64
	batch       int
	instances   int
	workers     int
	keyed       bool // partition the raw topic by idempotency key, as ingest does
	naiveCommit string
	modes       []string
	redis       string
	timeout     time.Duration
	seed        uint64
	cpuprofile  string
	memprofile  string
	count       int
	breakdown   bool
	verbose     bool
	production  bool
}

var allModes = []string{"bare", "naive", "inlet"}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("benchprocessor", flag.ContinueOnError)
	fs.IntVar(&o.events, "events", 50000, "records in the raw topic (duplicates included)")
	fs.IntVar(&o.size, "size", 1024, "payload (webhook body) size in bytes")
	fs.IntVar(&o.partitions, "partitions", 6, "partitions of the raw topic")
	fs.Float64Var(&o.dup, "dup", 0.10, "fraction of records that re-send an earlier event")
	fs.Float64Var(&o.ooo, "ooo", 0.05, "fraction of records that are an older update arriving after a newer one")
	fs.IntVar(&o.batch, "batch", processor.DefaultConfig().BatchSize, "processor batch size (records per transaction)")
	fs.IntVar(&o.instances, "instances", 1, "processors in inlet's group, in this process (replicas sharing the partitions)")
	fs.IntVar(&o.workers, "workers", processor.DefaultConfig().Workers, "transactional workers (group members) per processor")
	partitionBy := fs.String("partition-by", "entity", "raw topic partitioning: entity (each entity on one partition: outcomes exact) or key (by idempotency key, as ingest does: an entity spans partitions)")
	fs.StringVar(&o.naiveCommit, "naive-commit", "record", "when naive commits: record (CommitRecords after each record) or poll (after each poll)")
	modes := fs.String("modes", strings.Join(allModes, ","), "modes to run, in order (bare is needed for ratios)")
	fs.StringVar(&o.redis, "redis", "auto", "auto (INLET_REDIS_URL, else a redis-server started here, else miniredis), url, server or miniredis")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "give up on a mode after this long")
	fs.Uint64Var(&o.seed, "seed", 1, "workload seed")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of each mode's measured run to <this>.<mode>")
	fs.IntVar(&o.count, "count", 1, "rounds of every mode, each over the same records with fresh groups; the table shows each mode's median round (a run's speed moves ±20% here, most of it in bare's group join and first fetch)")
	fs.StringVar(&o.memprofile, "memprofile", "", "write an allocation profile of the whole run (pre-load included) to this file at the end")
	fs.BoolVar(&o.breakdown, "breakdown", true, "hook the processor's Kafka client and Redis to print where inlet's wall time went")
	fs.BoolVar(&o.verbose, "v", false, "log the processor at info level to stderr")
	fs.BoolVar(&o.production, "production", true, "wire inlet like services/processor: OTel metrics and tracer (kotel hooks, instrumented Redis), event history in Redis (7 days), JSON info logs to /dev/null (stderr with -v); false: none of these")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.keyed = *partitionBy == "key"
	for m := range strings.SplitSeq(*modes, ",") {
		m = strings.TrimSpace(m)
		if !slices.Contains(allModes, m) {
			return o, fmt.Errorf("-modes: unknown mode %q (want %s)", m, strings.Join(allModes, ", "))
		}
		o.modes = append(o.modes, m)
	}
	switch {
	case o.events < 10:
		return o, errors.New("-events must be at least 10")
	case o.partitions < 1 || o.batch < 1 || o.instances < 1 || o.workers < 1 || o.timeout <= 0 || o.count < 1:
		return o, errors.New("-partitions, -batch, -instances, -workers, -timeout and -count must be positive")
	case *partitionBy != "entity" && *partitionBy != "key":
		return o, errors.New("-partition-by must be entity or key")
	case o.dup < 0 || o.ooo < 0 || o.dup+2*o.ooo > 0.9:
		return o, errors.New("-dup and -ooo must be ≥ 0 with dup + 2·ooo ≤ 0.9")
	case o.naiveCommit != "record" && o.naiveCommit != "poll":
		return o, errors.New("-naive-commit must be record or poll")
	case !slices.Contains([]string{"auto", "url", "server", "miniredis"}, o.redis):
		return o, errors.New("-redis must be auto, url, server or miniredis")
	}
	return o, nil
}

func run(ctx context.Context, args []string, out io.Writer) (err error) {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	w, err := newWorkload(o.events, o.partitions, o.size, o.dup, o.ooo, o.seed)
	if err != nil {
		return err
	}
	w.keyed = o.keyed

	target, err := chooseRedis(ctx, o.redis)
	if err != nil {
		return err
	}
	defer target.stop()
	dir, err := os.MkdirTemp("", "benchprocessor-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// No compaction during the run: the raw topic is compacted by
	// idempotency key, and duplicates share theirs.
	stack, err := devstack.Start(devstack.Config{DataDir: dir, CompactEvery: time.Hour, RedisURL: target.url})
	if err != nil {
		return err
	}
	defer stack.Close()

	ropt, err := redis.ParseURL(stack.RedisURL)
	if err != nil {
		return err
	}
	ropt.ContextTimeoutEnabled = true // as services/processor's client (service.RedisOptions)
	rdb := redis.NewClient(ropt)
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis %s: %w", redactURL(stack.RedisURL), err)
	}

	var idb [4]byte
	_, _ = rand.Read(idb[:])
	runID := hex.EncodeToString(idb[:])
	topics := kafka.TopicNames("bench"+runID, kafka.DefaultRetryTiers)
	naiveTo := topics.Processed + ".naive"
	if err := createTopics(ctx, stack.Brokers, o.partitions, append(topics.Specs(), kafka.TopicSpec{Name: naiveTo})); err != nil {
		return err
	}
	srcl, err := sr.NewClient(sr.URLs(stack.RegistryURL))
	if err != nil {
		return err
	}
	reg := registry.New(srcl)
	codec, err := envelope.NewCodec(ctx, reg, topics.RawSubject())
	if err != nil {
		return err
	}

	fmt.Fprintf(out, "benchprocessor: everything in this one process but Redis (GOMAXPROCS=%d, %d CPUs)\n", runtime.GOMAXPROCS(0), runtime.NumCPU())
	fmt.Fprintf(out, "  redis: %s, version %s\n", target.kind, redisVersion(ctx, rdb))
	fmt.Fprintf(out, "  kafka: in-process kfake, DataDir %s; raw topic %s, %d partitions; srfake registry\n", dir, topics.Raw, o.partitions)
	fmt.Fprintf(out, "  workload: %d records of %d-byte standard-webhooks payloads in envelopes: %d distinct events over %d entities (%d updates each), %d duplicates (%.0f%%), %d out of order (%.0f%%); seed %d\n",
		o.events, o.size, w.unique, (w.unique+updatesPerEntity-1)/updatesPerEntity, updatesPerEntity, w.dups, 100*o.dup, w.stale, 100*o.ooo, o.seed)
	fmt.Fprintf(out, "  clock: from creating the mode's client (fresh group: join included) until all %d records are committed (bare, naive) or have a committed outcome (inlet)\n", o.events)
	partitioning := "by entity (an entity's records share a partition: outcomes are exact)"
	if o.keyed {
		partitioning = "by idempotency key, as ingest does (an entity spans partitions: the stale count depends on timing)"
	}
	fmt.Fprintf(out, "  raw topic partitioned %s\n", partitioning)
	fmt.Fprintf(out, "  naive commits after each %s; inlet: %d processor(s) of %d worker(s), batch size %d\n", o.naiveCommit, o.instances, o.workers, o.batch)

	t0 := time.Now()
	rawBytes, compBytes, err := load(ctx, stack.Brokers, topics.Raw, codec, w)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  loaded %d records in %.2fs: %.1f MB in batches, %.1f MB snappy-compressed (%.2f×)\n\n",
		o.events, time.Since(t0).Seconds(), float64(rawBytes)/1e6, float64(compBytes)/1e6, float64(rawBytes)/float64(max(compBytes, 1)))

	logLevel := slog.LevelError
	if o.verbose {
		logLevel = slog.LevelInfo
	}
	e := &env{
		brokers: stack.Brokers, topics: topics, naiveTo: naiveTo, reg: reg, codec: codec, rdb: rdb,
		n: o.events, o: o, runID: runID, log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel})),
	}
	keyPrefix := "benchprocessor:" + runID + ":"
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if cerr := target.clean(cctx, rdb, keyPrefix); cerr != nil && err == nil {
			err = fmt.Errorf("clean redis: %w", cerr)
		}
	}()

	rounds := make([][]result, 0, o.count)
	for round := 1; round <= o.count; round++ {
		var results []result
		for _, mode := range o.modes {
			r, err := runMode(ctx, e, target, rdb, keyPrefix, mode, round, o)
			if err != nil {
				return err
			}
			results = append(results, r)
			label := mode
			if o.count > 1 {
				label = fmt.Sprintf("%s #%d", mode, round)
			}
			line := fmt.Sprintf("  %-8s %.2fs: first outcome after %dms; CPU of this process %.2fs (%.1f µs/record)",
				label, r.elapsed.Seconds(), r.first.Milliseconds(), r.cpu.Seconds(), float64(r.cpu.Microseconds())/float64(r.events))
			if target.proc != nil {
				line += fmt.Sprintf(", redis-server %.2fs (%.1f µs/record)", r.redisCPU.Seconds(), float64(r.redisCPU.Microseconds())/float64(r.events))
			}
			fmt.Fprintln(out, line)
			if r.spans != nil {
				r.spans.print(out, r.elapsed)
			}
		}
		rounds = append(rounds, results)
	}
	if o.memprofile != "" {
		if err := writeAllocs(o.memprofile); err != nil {
			return err
		}
	}

	fmt.Fprintln(out)
	results := medians(rounds, o.modes)
	printTable(out, results, rounds)
	// Every round's outcomes must be exact; the median round's are shown.
	var checkErr error
	for i, rs := range rounds {
		if err := checkOutcomes(io.Discard, rs, w, o.naiveCommit); err != nil && checkErr == nil {
			checkErr = fmt.Errorf("round %d: %w", i+1, err)
		}
	}
	if err := checkOutcomes(out, results, w, o.naiveCommit); err != nil && checkErr == nil {
		checkErr = err
	}
	printTargets(out, results)
	if r, ok := ratio(results, "inlet", "bare"); ok {
		fmt.Fprintf(out, "ratio=%.2f\n", r)
	} else {
		fmt.Fprintln(out, "ratio=n/a (needs bare and inlet)")
	}
	return checkErr
}

func createTopics(ctx context.Context, brokers []string, partitions int, specs []kafka.TopicSpec) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return kafka.EnsureTopics(cctx, kadm.NewClient(cl), partitions, -1, specs)
}

// startProfile starts a CPU profile to <prefix>.<mode>; the returned func
// stops it.
func startProfile(prefix, mode string) (func(), error) {
	if prefix == "" {
		return func() {}, nil
	}
	f, err := os.Create(prefix + "." + mode)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// selfCPU is the user+system CPU time of this process so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func find(results []result, mode string) (result, bool) {
	for _, r := range results {
		if r.mode == mode {
			return r, true
		}
	}
	return result{}, false
}

func ratio(results []result, a, b string) (float64, bool) {
	ra, ok1 := find(results, a)
	rb, ok2 := find(results, b)
	if !ok1 || !ok2 {
		return 0, false
	}
	return ra.rate() / rb.rate(), true
}

// printTable prints each mode's (median) result and, over several rounds,
// the range of events/s the rounds gave.
func printTable(out io.Writer, results []result, rounds [][]result) {
	fmt.Fprintf(out, "%-6s %8s %9s %10s %8s %8s", "mode", "events", "seconds", "events/s", "×bare", "×naive")
	if len(rounds) > 1 {
		fmt.Fprintf(out, "   median of %d rounds; range of events/s", len(rounds))
	}
	fmt.Fprintln(out)
	for _, r := range results {
		xb, xn := "-", "-"
		if v, ok := ratio(results, r.mode, "bare"); ok {
			xb = fmt.Sprintf("%.3f", v)
		}
		if v, ok := ratio(results, r.mode, "naive"); ok {
			xn = fmt.Sprintf("%.2f", v)
		}
		fmt.Fprintf(out, "%-6s %8d %9.3f %10.0f %8s %8s", r.mode, r.events, r.elapsed.Seconds(), r.rate(), xb, xn)
		if len(rounds) > 1 {
			lo, hi := math.Inf(1), 0.0
			for _, round := range rounds {
				if x, ok := find(round, r.mode); ok {
					lo, hi = min(lo, x.rate()), max(hi, x.rate())
				}
			}
			fmt.Fprintf(out, "   %.0f–%.0f", lo, hi)
		}
		fmt.Fprintln(out)
	}
}

// checkOutcomes prints what the modes did with the records and fails when
// inlet's outcomes do not add up to the records, or differ from what the
// workload makes certain.
func checkOutcomes(out io.Writer, results []result, w *workload, naiveCommit string) error {
	fmt.Fprintln(out)
	if r, ok := find(results, "naive"); ok {
		fmt.Fprintf(out, "naive: produced=%d duplicate=%d (dedup by event id; no newest-wins; commit per %s)\n", r.counts["produced"], r.counts["duplicate"], naiveCommit)
	}
	r, ok := find(results, "inlet")
	if !ok {
		return nil
	}
	c := r.counts
	var sum int64
	for _, v := range c {
		sum += v
	}
	names := []string{string(processor.Processed), string(processor.Duplicate), string(processor.Stale), string(processor.Invalid), string(processor.DeadLetter)}
	for k := range c {
		if !slices.Contains(names, k) {
			names = append(names, k)
		}
	}
	var parts []string
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s=%d", k, c[k]))
	}
	fmt.Fprintf(out, "inlet outcomes: %s; sum=%d for %d records\n", strings.Join(parts, " "), sum, r.events)
	want := map[string]int64{
		string(processor.Processed): int64(w.unique - w.stale),
		string(processor.Duplicate): int64(w.dups),
		string(processor.Stale):     int64(w.stale),
	}
	if w.keyed {
		fmt.Fprintf(out, "  expected:     processed+stale=%d duplicate=%d invalid=0 dlq=0 (stale depends on timing when an entity spans partitions)\n", w.unique, w.dups)
	} else {
		fmt.Fprintf(out, "  expected:     processed=%d duplicate=%d stale=%d invalid=0 dlq=0\n", want["processed"], want["duplicate"], want["stale"])
	}
	if sum != int64(r.events) {
		fmt.Fprintf(out, "  FAIL: outcomes add up to %d, not %d\n", sum, r.events)
		return fmt.Errorf("inlet outcomes add up to %d, not %d records", sum, r.events)
	}
	if w.keyed {
		// Only the sum of processed and stale is fixed.
		want[string(processor.Processed)] = c[string(processor.Processed)]
		want[string(processor.Stale)] = int64(w.unique) - c[string(processor.Processed)]
	}
	var wrong []string
	for _, k := range names {
		if c[k] != want[k] {
			wrong = append(wrong, fmt.Sprintf("%s %d (want %d)", k, c[k], want[k]))
		}
	}
	if len(wrong) > 0 {
		fmt.Fprintf(out, "  FAIL: %s\n", strings.Join(wrong, ", "))
		return fmt.Errorf("inlet outcomes differ from the workload's: %s", strings.Join(wrong, ", "))
	}
	fmt.Fprintln(out, "  ok: outcomes add up to the records and match the workload")
	return nil
}

func printTargets(out io.Writer, results []result) {
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	if v, ok := ratio(results, "inlet", "bare"); ok {
		fmt.Fprintf(out, "target inlet ≥ 0.20× bare: %s (%.3f×)\n", verdict(v >= 0.2), v)
	}
	if v, ok := ratio(results, "inlet", "naive"); ok {
		fmt.Fprintf(out, "target inlet ≥ 5× naive:   %s (%.2f×)\n", verdict(v >= 5), v)
	}
}

// writeAllocs writes the allocations of the whole run so far to path.
func writeAllocs(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// runMode runs one mode over the pre-loaded records with a fresh group and
// fresh Redis keys, measuring this process's and redis-server's CPU.
func runMode(ctx context.Context, e *env, target *redisTarget, rdb *redis.Client, keyPrefix, mode string, round int, o options) (result, error) {
	if err := target.clean(ctx, rdb, keyPrefix); err != nil {
		return result{}, fmt.Errorf("clean redis: %w", err)
	}
	// Every mode starts as a fresh process would: heap collected and its
	// memory given back to the OS. Without this a mode inherits the heap
	// the previous one grew, and bare, whose run is mostly group join,
	// first fetch and page faults, measured 360–420k records/s after an
	// inlet round against 150–230k as the first mode.
	debug.FreeOSMemory() // collects first
	name := mode
	if o.count > 1 {
		name += "." + strconv.Itoa(round)
	}
	group := "benchprocessor-" + e.runID + "-" + name
	prefix := keyPrefix + name + ":"
	stopProf, err := startProfile(o.cpuprofile, name)
	if err != nil {
		return result{}, err
	}
	cpu0, rcpu0 := selfCPU(), target.cpu()
	var r result
	switch mode {
	case "bare":
		r, err = runBare(ctx, e, group)
	case "naive":
		r, err = runNaive(ctx, e, group, prefix)
	case "inlet":
		r, err = runInlet(ctx, e, group, prefix)
	}
	r.cpu, r.redisCPU = selfCPU()-cpu0, target.cpu()-rcpu0
	stopProf()
	return r, err
}

// medians picks, for each mode, the round with the median events/s (the
// lower middle one for an even count).
func medians(rounds [][]result, modes []string) []result {
	var out []result
	for _, mode := range modes {
		var rs []result
		for _, round := range rounds {
			if r, ok := find(round, mode); ok {
				rs = append(rs, r)
			}
		}
		if len(rs) == 0 {
			continue
		}
		slices.SortFunc(rs, func(a, b result) int { return cmp.Compare(a.rate(), b.rate()) })
		out = append(out, rs[(len(rs)-1)/2])
	}
	return out
}

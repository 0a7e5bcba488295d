package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/alert"
	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/handlers"
	"github.com/inletdev/inlet/pkg/history"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/processor"
	"github.com/inletdev/inlet/pkg/registry"
	"github.com/inletdev/inlet/pkg/service"
	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/pkg/store"
	"github.com/inletdev/inlet/pkg/telemetry"
)

// env is what every mode runs against.
type env struct {
	brokers []string
	topics  kafka.Topics
	naiveTo string // naive's output topic
	reg     *registry.Client
	codec   *envelope.Codec
	rdb     *redis.Client
	n       int
	o       options
	log     *slog.Logger
	runID   string // names this run's groups
}

// result is one mode's measurement. The clock runs from creating the
// mode's client (group join included) to the last outcome.
type result struct {
	mode    string
	events  int
	elapsed time.Duration
	first   time.Duration // until the first outcome: join, init, first fetch
	counts  map[string]int64
	spans   *breakdown // inlet with -breakdown
	// cpu and redisCPU are this process's and redis-server's CPU time
	// during the run.
	cpu, redisCPU time.Duration
}

func (r result) rate() float64 { return float64(r.events) / r.elapsed.Seconds() }

// consumerOpts are a fresh group's options shared by bare and naive: the
// processor's fetch sizes and isolation, manual commits.
func (e *env) consumerOpts(group string) []kgo.Opt {
	return append([]kgo.Opt{
		kgo.SeedBrokers(e.brokers...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(e.topics.Raw),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
	}, processor.FetchOpts()...) // fetch as the processor does
}

// runBare polls and commits what it polled, nothing else.
func runBare(ctx context.Context, e *env, group string) (result, error) {
	res := result{mode: "bare", events: e.n}
	start := time.Now()
	cl, err := kgo.NewClient(e.consumerOpts(group)...)
	if err != nil {
		return res, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, e.o.timeout)
	defer cancel()
	seen := 0
	for seen < e.n {
		fs := cl.PollFetches(ctx)
		if err := fetchErr(ctx, fs); err != nil {
			return res, fmt.Errorf("bare after %d of %d records: %w", seen, e.n, err)
		}
		if n := fs.NumRecords(); n > 0 {
			if seen == 0 {
				res.first = time.Since(start)
			}
			seen += n
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				return res, fmt.Errorf("bare commit: %w", err)
			}
		}
		cl.AllowRebalance()
	}
	res.elapsed = time.Since(start)
	res.counts = map[string]int64{"consumed": int64(seen)}
	return res, nil
}

// runNaive is the consumer one would write by hand: per record, decode the
// envelope, claim its idempotency key with one SET NX PX, ProduceSync the
// payload unless the key was taken, and commit that record.
func runNaive(ctx context.Context, e *env, group, prefix string) (result, error) {
	res := result{mode: "naive", events: e.n}
	start := time.Now()
	cl, err := kgo.NewClient(e.consumerOpts(group)...)
	if err != nil {
		return res, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, e.o.timeout)
	defer cancel()
	lease := strconv.FormatInt(time.Hour.Milliseconds(), 10)
	var seen, produced, dups int64
	for seen < int64(e.n) {
		fs := cl.PollFetches(ctx)
		if err := fetchErr(ctx, fs); err != nil {
			return res, fmt.Errorf("naive after %d of %d records: %w", seen, e.n, err)
		}
		var procErr error
		fs.EachRecord(func(r *kgo.Record) {
			if procErr != nil {
				return
			}
			procErr = naiveOne(ctx, e, cl, prefix, lease, r, &produced, &dups)
			if procErr == nil && e.o.naiveCommit == "record" {
				procErr = cl.CommitRecords(ctx, r)
			}
			seen++
			if seen == 1 {
				res.first = time.Since(start)
			}
		})
		if procErr == nil && e.o.naiveCommit == "poll" && fs.NumRecords() > 0 {
			procErr = cl.CommitUncommittedOffsets(ctx)
		}
		if procErr != nil {
			return res, fmt.Errorf("naive: %w", procErr)
		}
		cl.AllowRebalance()
	}
	res.elapsed = time.Since(start)
	res.counts = map[string]int64{"produced": produced, "duplicate": dups}
	return res, nil
}

func naiveOne(ctx context.Context, e *env, cl *kgo.Client, prefix, lease string, r *kgo.Record, produced, dups *int64) error {
	env, err := e.codec.Decode(ctx, r.Value)
	if err != nil {
		return err
	}
	err = e.rdb.Do(ctx, "SET", prefix+"dedup:"+env.IdempotencyKey, "1", "NX", "PX", lease).Err()
	switch {
	case errors.Is(err, redis.Nil):
		*dups++
		return nil
	case err != nil:
		return err
	}
	*produced++
	return cl.ProduceSync(ctx, &kgo.Record{Topic: e.naiveTo, Key: r.Key, Value: env.Payload}).FirstErr()
}

// runInlet runs the real processor (declarative handlers, Redis store, one
// Kafka transaction per batch) until every record has a committed outcome:
// -instances processors in one group, as separate replicas would.
func runInlet(ctx context.Context, e *env, group, prefix string) (result, error) {
	res := result{mode: "inlet", events: e.n}
	sources, err := source.Parse([]byte(sourcesYAML), source.WithoutSecrets())
	if err != nil {
		return res, err
	}
	rt, err := handlers.Router(sources)
	if err != nil {
		return res, err
	}
	cfg := processor.DefaultConfig()
	cfg.Group = group
	cfg.BatchSize = e.o.batch
	cfg.Workers = e.o.workers

	kopts := []kgo.Opt{kgo.SeedBrokers(e.brokers...)}
	rdb := e.rdb
	if e.o.breakdown || e.o.production {
		// A client of inlet's own: its hooks stay off the naive mode's.
		opt := *e.rdb.Options()
		rdb = redis.NewClient(&opt)
		defer rdb.Close()
	}
	deps := processor.Deps{Topics: e.topics, Sources: sources, Router: rt, Registry: e.reg, Codec: e.codec, Log: e.log}
	if e.o.production {
		closeProd, err := productionDeps(ctx, e.o.verbose, &deps, rdb, prefix)
		if err != nil {
			return res, err
		}
		defer closeProd()
		kopts = append(kopts, deps.Telemetry.KafkaOpts()...)
	}
	if e.o.breakdown {
		res.spans = newBreakdown()
		kopts = append(kopts, kgo.WithHooks(res.spans))
		rdb.AddHook(res.spans)
	}
	deps.KafkaOpts = kopts
	deps.Store = store.New(rdb, store.KeyPrefix(prefix), store.ClaimLease(cfg.ClaimLease), store.LockLease(cfg.LockLease))

	start := time.Now()
	procs := make([]*processor.Processor, e.o.instances)
	for i := range procs {
		c := cfg
		c.InstanceID = fmt.Sprintf("%s-%d", group, i)
		procs[i], err = processor.New(c, deps)
		if err != nil {
			return res, err
		}
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, len(procs))
	for _, p := range procs {
		go func() { done <- p.Run(rctx) }()
	}
	running := len(procs)
	var runErr error
	// wait collects Run's results after stop; each is bounded by the
	// processor's drain timeout.
	wait := func() error {
		stop()
		for ; running > 0; running-- {
			runErr = errors.Join(runErr, <-done)
		}
		return runErr
	}
	defer wait()

	sum := func() int64 {
		var n int64
		for _, p := range procs {
			n += total(p.Counts())
		}
		return n
	}
	deadline := time.After(e.o.timeout)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		n := sum()
		if n > 0 && res.first == 0 {
			res.first = time.Since(start)
		}
		if n >= int64(e.n) {
			res.elapsed = time.Since(start)
			break
		}
		select {
		case <-tick.C:
		case err := <-done:
			running--
			return res, fmt.Errorf("a processor stopped after %d of %d outcomes: %v", n, e.n, err)
		case <-deadline:
			return res, fmt.Errorf("inlet: only %d of %d outcomes after %v", n, e.n, e.o.timeout)
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	if err := wait(); err != nil {
		return res, fmt.Errorf("processor: %w", err)
	}
	// After Run returned no batch is in flight: these are final.
	res.counts = map[string]int64{}
	for _, p := range procs {
		for k, v := range p.Counts().Snapshot() {
			res.counts[string(k.Outcome)] += v
		}
	}
	return res, nil
}

// total sums every outcome.
func total(c *processor.Counts) int64 {
	var n int64
	for _, v := range c.Snapshot() {
		n += v
	}
	return n
}

// fetchErr is the first fetch error, or ctx's.
func fetchErr(ctx context.Context, fs kgo.Fetches) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if fs.IsClientClosed() {
		return errors.New("client closed")
	}
	var err error
	fs.EachError(func(t string, p int32, e error) {
		if err == nil {
			err = fmt.Errorf("fetch %s[%d]: %w", t, p, e)
		}
	})
	return err
}

// productionDeps wires deps the way services/processor does: pkg/telemetry
// (metrics for /metrics, the SDK tracer, rdb instrumented; the caller adds
// deps.Telemetry's Kafka hooks), the event history in rdb with the default
// retention, an alerter without a webhook, and JSON logs at info level to
// /dev/null (stderr when verbose). The returned func undoes it.
func productionDeps(ctx context.Context, verbose bool, deps *processor.Deps, rdb *redis.Client, prefix string) (func(), error) {
	tel, err := telemetry.New(ctx, "inlet-processor")
	if err != nil {
		return nil, err
	}
	undo := func() { _ = tel.Shutdown(context.Background()) }
	if err := tel.InstrumentRedis(rdb); err != nil {
		undo()
		return nil, err
	}
	deps.Telemetry = tel
	deps.History = history.New(rdb, prefix, 0) // its default retention, as services/processor's
	deps.Alerter = alert.New(alert.Config{})
	if verbose {
		return undo, nil
	}
	logs, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		undo()
		return nil, err
	}
	lcfg := service.LogConfig{Level: "info", Format: "json"} // services/processor's defaults
	if deps.Log, err = lcfg.Logger(logs); err != nil {
		logs.Close()
		undo()
		return nil, err
	}
	return func() { undo(); logs.Close() }, nil
}

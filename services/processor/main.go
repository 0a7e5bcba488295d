// Command processor consumes the raw topic in a consumer group and writes
// processed and state records: routed by (source, event type, version),
// validated against payload contracts, deduplicated in Redis, newest-wins,
// exactly-once on the Kafka side. Scale out by running more instances (up
// to the raw topic's partition count).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/inletdev/inlet/pkg/admin"
	"github.com/inletdev/inlet/pkg/alert"
	"github.com/inletdev/inlet/pkg/flagenv"
	"github.com/inletdev/inlet/pkg/handlers"
	"github.com/inletdev/inlet/pkg/history"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/ops"
	"github.com/inletdev/inlet/pkg/processor"
	"github.com/inletdev/inlet/pkg/service"
	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/pkg/store"
	"github.com/inletdev/inlet/pkg/telemetry"
)

// startWait is how the processor waits at start for Kafka and the schema
// registry (tests shorten it).
var startWait = service.DefaultStartWait

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, exitMessage(err))
		os.Exit(1)
	}
}

// exitMessage is err as the processor's last words: after "processor: ",
// unless it begins so already, as pkg/processor's errors do ("processor:
// processor: -workers …" said it twice).
func exitMessage(err error) string {
	const prefix = "processor: "
	msg := err.Error()
	if strings.HasPrefix(msg, prefix) {
		return msg
	}
	return prefix + msg
}

// run is the processor: the log and usage go to stderr. It returns nil
// after -h (usage printed), a graceful shutdown, or a SIGTERM during the
// start.
func run(args []string, stderr io.Writer) error {
	fs := flagenv.New("processor")
	fs.SetOutput(stderr)
	var (
		kcfg        kafka.Config
		pcfg        processor.Config
		rcfg        service.RegistryConfig
		lcfg        service.LogConfig
		acfg        alert.Config
		redcfg      service.RedisConfig
		retention   time.Duration
		sourcesPath string
		adminAddr   string
		checkOnly   bool
	)
	kcfg.RegisterFlags(fs)
	pcfg.RegisterFlags(fs)
	rcfg.RegisterFlags(fs)
	lcfg.RegisterFlags(fs)
	acfg.RegisterFlags(fs)
	fs.Duration(&retention, "history-retention", "INLET_HISTORY_RETENTION", 7*24*time.Hour, "how long each event's processing history is kept for trace lookups (about 700 B of Redis per event; 0: off)")
	tiers := kafka.RetryTiersFlag(fs, "retry tier delays; one topic each (<prefix>.retry.<delay>); sources pick among them")
	fs.String(&sourcesPath, "sources", "INLET_SOURCES", "sources.yaml", "sources file")
	redcfg.RegisterFlags(fs)
	fs.String(&adminAddr, "admin-addr", "INLET_ADMIN_ADDR", "127.0.0.1:9091", "admin listen address: /metrics, /healthz, /readyz and the admin API under /v1/ (DLQ, invalid, depth, trace; bearer tokens from INLET_ADMIN_TOKEN (read and write) and INLET_ADMIN_READ_TOKEN (read), or their _FILE variants; neither: the API is off)")
	fs.BoolVar(&checkOnly, "check-config", false, "validate the configuration and exit")
	if err := fs.ParseFlagsOnly(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // -h, -help: the usage was asked for, and printed
		}
		return err
	}
	log, err := lcfg.Logger(stderr)
	if err != nil {
		return err
	}
	sources, err := source.Load(sourcesPath, source.WithoutSecrets())
	if err != nil {
		return fmt.Errorf("-sources (INLET_SOURCES): %w", err)
	}
	if err := acfg.LoadSecrets(); err != nil {
		return err
	}
	if retention < 0 {
		return fmt.Errorf("-history-retention %v: want 0 (off) or more", retention)
	}
	if err := errors.Join(kcfg.Validate(), pcfg.Validate(), acfg.Validate()); err != nil {
		return err
	}
	rt, err := handlers.Router(sources)
	if err != nil {
		return err
	}
	// Everything a start needs from the configuration is read before
	// --check-config answers, so that a passing check means a start
	// gets past its configuration.
	tierDelays, err := tiers()
	if err != nil {
		return err
	}
	// Each source's retry settings against the tiers: checked in
	// processor.New too, but only after the wait for Kafka, the registry
	// and Redis, and --check-config passed them.
	if _, err := processor.RetryPolicies(sources, tierDelays); err != nil {
		return err
	}
	ropt, err := redcfg.Parse()
	if err != nil {
		return err
	}
	tok, err := admin.TokensFromEnv()
	if err != nil {
		return err
	}
	// The client options read the SASL password and the TLS files: a
	// setting wrong there fails here, not at the first connection.
	kopts, err := kcfg.ClientOpts(log)
	if err != nil {
		return err
	}
	reg, err := rcfg.Client()
	if err != nil {
		return err
	}
	if err := service.CheckAddr("admin-addr", "INLET_ADMIN_ADDR", adminAddr); err != nil {
		return err
	}
	if checkOnly {
		fmt.Printf("configuration ok: %d sources\n", len(sources.Sources))
		return nil
	}
	service.RedisClientLog(log)
	rdb := ropt.NewClient()
	defer rdb.Close()

	ctx, stop := service.SignalContext(log)
	defer stop()
	topics := kafka.TopicNames(kcfg.TopicPrefix, tierDelays)
	tel, err := telemetry.New(ctx, "inlet-processor", telemetry.WithLogger(log))
	if err != nil {
		return err
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	// The admin listener serves from the start: /healthz answers 200 and
	// /readyz 503 saying what the start waits on (Kafka's topics, the
	// schema registry), so that a wait is visible and not a restart loop.
	// Once the processor runs, the admin mux answers (its /readyz: see
	// readyz).
	shownRegistry := service.ShownURLs(rcfg.URLs)
	brokers := strings.Join(kcfg.Brokers, ",")
	probes := &service.StartProbes{}
	probes.Waiting("waiting on Kafka (" + brokers + "): creating or finding the topics " + topics.Raw + " and the others")
	ln, err := service.Listen("admin-addr", "INLET_ADMIN_ADDR", adminAddr)
	if err != nil {
		return err
	}
	adminSrv := service.AdminServer(earlyMux(tel, probes))
	go func() {
		// Only Shutdown or Close ends it normally; anything else leaves
		// /metrics and /healthz dead while processing goes on, so say so.
		if err := adminSrv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin server stopped", "error", err)
		}
	}()
	defer adminSrv.Close()
	log.Info("processor starting", "admin", ln.Addr().String(), "schema_registry", shownRegistry, "kafka_brokers", kcfg.Brokers)
	if err := startWait.AwaitTopics(ctx, &kcfg, topics, "processing", log); err != nil {
		if ctx.Err() != nil {
			log.Info("processor stopped while waiting for Kafka", "kafka_brokers", brokers)
			return nil
		}
		return err
	}
	probes.Waiting("waiting on the schema registry (" + shownRegistry + "): it must have the envelope schema registered under " + topics.RawSubject())
	codec, err := startWait.AwaitCodec(ctx, reg, topics.RawSubject(), rcfg.URLs, "processor", "processing", log)
	if err != nil {
		if ctx.Err() != nil {
			log.Info("processor stopped while waiting for the schema registry", "schema_registry", shownRegistry)
			return nil
		}
		return err
	}
	probes.Waiting("starting: checking Redis " + ropt.Addr)
	acfg.Log = log
	alerter := alert.New(acfg)
	actx, stopAlerts := context.WithCancel(context.Background())
	alertsDone := make(chan struct{})
	go func() { alerter.Run(actx); close(alertsDone) }()
	defer func() { stopAlerts(); <-alertsDone }()
	if acfg.WebhookURL == "" {
		log.Warn("no alert webhook configured (-alert-webhook-url): DLQ and invalid arrivals are only logged and counted")
	}
	if err := tel.InstrumentRedis(rdb); err != nil {
		return err
	}
	if err := alerter.Instrument(tel.Meter); err != nil {
		return err
	}
	kopts = append(kopts, tel.KafkaOpts()...)
	// History costs about 700 B of Redis per event for its retention (see
	// docs/run-on-real-kafka.md); 0 turns it off.
	var hist *history.Store
	trace := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"error":"event history is off on this processor (-history-retention 0); inletctl reconcile reports where events ended up"}`+"\n")
	}))
	if retention == 0 {
		log.Info("event history off (-history-retention 0): /v1/trace answers 404")
	} else {
		hist = history.New(rdb, redcfg.KeyPrefix, retention)
	}
	st := store.New(rdb, append(redcfg.StoreOpts(), pcfg.StoreOpts()...)...)
	if err := service.CheckRedis(ctx, st, log); err != nil {
		return err
	}
	// Persistence, eviction and replicas decide whether dedup state
	// survives: a warning when it would not, nothing stopped.
	st.CheckDurability(ctx, log)
	st.CheckReplicas(ctx, log)
	p, err := processor.New(pcfg, processor.Deps{
		KafkaOpts: kopts, Topics: topics, Sources: sources, Router: rt, Registry: reg, Codec: codec,
		Store: st, Alerter: alerter, Log: log,
		Telemetry: tel, History: hist,
	})
	if err != nil {
		return err
	}
	q, err := ops.New(kopts, topics, codec)
	if err != nil {
		return err
	}
	defer q.Close()
	q.SetLogger(log)
	if hist != nil {
		// Operators' decisions are on the audit topic: trace shows them too.
		trace = hist.HandlerWith(q.TraceEntries)
	}
	api, err := admin.New(tok, admin.Deps{Queues: q, Topics: topics, Sources: sources.Names(), Trace: trace, Log: log, Meter: tel.Meter})
	switch {
	case errors.Is(err, admin.ErrDisabled):
		log.Warn("ADMIN API DISABLED: /v1/dlq, /v1/invalid, /v1/depth and /v1/trace answer 503; set INLET_ADMIN_TOKEN (read+write) and/or INLET_ADMIN_READ_TOKEN (read-only), or their _FILE variants")
	case err != nil:
		return err
	}
	// Draining from the signal on: the batches in hand are being finished.
	var draining atomic.Bool
	stopDraining := context.AfterFunc(ctx, func() { draining.Store(true) })
	defer stopDraining()
	probes.Serve(adminMux(&draining, p.Waiting, tel, api))
	log.Info("processor running", append(startAttrs(pcfg.Group, topics.Raw, ln.Addr().String(), rcfg.URLs, ropt), "redis_wait_replicas", redcfg.WaitReplicas)...)
	// The Kafka clients' close leaves the group and waits for the broker's
	// answer without a deadline: with a broker that answers nothing a
	// SIGTERM took 83 s with the defaults, past the Kubernetes manifest's
	// 70 s grace period. Given up on, the batches in hand were already
	// abandoned at their drain budget: their transactions are aborted by
	// the broker and their claims expire within -claim-lease.
	bound := pcfg.BatchDeadline + pcfg.DrainTimeout + stopMargin
	err = service.RunBounded(ctx, p.Run, bound, fmt.Errorf("not stopped within %v of the signal (-batch-deadline plus -drain-timeout plus %v): the Kafka clients were still closing, "+
		"a broker not answering; exiting without them: uncommitted batches are redelivered, their claims expire within -claim-lease", bound, stopMargin))
	draining.Store(true)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = adminSrv.Shutdown(sctx)
	log.Info("processor stopped", "error", err)
	return err
}

// stopMargin is what the stop may take past -batch-deadline plus
// -drain-timeout before the processor gives up on it: docs/run-on-real-kafka.md
// tells the orchestrator to allow those plus 5 s, and the admin server's
// shutdown and the deferred closes come after.
const stopMargin = 3 * time.Second

// startAttrs are the attributes of the "processor running" line: what the
// processor reads and writes, never a credential. The registry URLs lose
// their user information and query (a query may carry a token); Redis
// is named by host:port (or socket) and database, never its URL, which may
// hold the password.
func startAttrs(group, rawTopic, adminAddr string, registryURLs []string, ropt *service.RedisOptions) []any {
	return []any{
		"group", group, "raw_topic", rawTopic, "admin", adminAddr,
		"schema_registry", service.ShownURLs(registryURLs),
		"redis", ropt.Addr, "redis_db", ropt.DB(), "redis_tls", ropt.TLS(),
	}
}

// readyCovers is what the processor's /readyz answers for; see README's
// Processor section.
const readyCovers = "started (configuration read, topics ensured, envelope schema registered) and not draining; " +
	"an outage of Kafka, Redis or the schema registry leaves it 200; waiting_on lists the ones a batch is waiting out now " +
	"(Redis and the registry while a batch waits for them; Kafka while a worker reconnects after a failed batch, " +
	"not while an idle consumer's fetches retry: ingest's /readyz shows that; a consumed topic Kafka has not got)"

// readyBody is /readyz's answer.
type readyBody struct {
	Status string `json:"status"`
	Covers string `json:"covers"`
	// WaitingOn lists the outages the workers wait out now, each as
	// "<what> since <RFC 3339 time>"; empty while none.
	WaitingOn []string `json:"waiting_on"`
}

// readyz answers 503 while draining and 200 otherwise, outages included:
// the processor serves no traffic, so readiness takes no pod out of a
// load balancer; a not-ready processor would stall a rolling update and
// count against the PodDisruptionBudget during an outage every replica
// shares (restarting or replacing it does not help), and would drop out
// of the headless admin Service that inletctl and the runbooks use just
// when they are needed. What it waits for is in the body instead.
func readyz(draining *atomic.Bool, waiting func() []processor.Wait) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		body := readyBody{Status: "ready", Covers: readyCovers, WaitingOn: []string{}}
		for _, wt := range waiting() {
			body.WaitingOn = append(body.WaitingOn, wt.String())
		}
		w.Header().Set("Content-Type", "application/json")
		if draining.Load() {
			body.Status = "draining"
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(body)
	}
}

// earlyMux is the admin listener's handler from the start: /metrics,
// and probes, which answer /healthz and /readyz (and the admin API's
// paths, 503: not started yet) until the processor runs and hand them to
// adminMux's from then on. Its routes are adminMux's: a request neither
// takes is answered alike before the start and after it
// (service.AdminRoutes).
func earlyMux(tel *telemetry.Telemetry, probes *service.StartProbes) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", tel.Handler())
	mux.Handle("/v1/", probes)
	mux.Handle("GET /healthz", probes)
	mux.Handle("GET /readyz", probes)
	return admin.RefuseUncleaned(service.AdminRoutes(mux))
}

func adminMux(draining *atomic.Bool, waiting func() []processor.Wait, tel *telemetry.Telemetry, api *admin.API) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", tel.Handler())
	api.Register(mux) // /v1/: DLQ, invalid, depth, trace — bearer tokens
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json") // else sniffed as text/plain
		fmt.Fprintln(w, `{"status":"ok"}`)
	})
	mux.HandleFunc("GET /readyz", readyz(draining, waiting))
	return admin.RefuseUncleaned(service.AdminRoutes(mux))
}

// Command ingest is Inlet's HTTP receiver: it verifies webhooks and NDJSON
// batches, writes them as envelopes to the raw topic, and answers 2xx only
// after Kafka acknowledged the write.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/inletdev/inlet/pkg/flagenv"
	"github.com/inletdev/inlet/pkg/ingest"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/service"
	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/pkg/telemetry"
)

// startWait is how ingest waits at start for Kafka and the schema
// registry (tests shorten it).
var startWait = service.DefaultStartWait

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ingest:", err)
		os.Exit(1)
	}
}

// run is ingest: the log and usage go to stderr. It returns nil after -h
// (usage printed), a graceful shutdown, or a SIGTERM during the start.
func run(args []string, stderr io.Writer) error {
	fs := flagenv.New("ingest")
	fs.SetOutput(stderr)
	var (
		kcfg        kafka.Config
		icfg        ingest.Config
		rcfg        service.RegistryConfig
		lcfg        service.LogConfig
		sourcesPath string
		adminAddr   string
		checkOnly   bool
	)
	kcfg.RegisterFlags(fs)
	icfg.RegisterFlags(fs)
	rcfg.RegisterFlags(fs)
	lcfg.RegisterFlags(fs)
	fs.String(&adminAddr, "admin-addr", "INLET_ADMIN_ADDR", "127.0.0.1:9090", "admin listen address (/metrics, /healthz, /readyz)")
	fs.String(&sourcesPath, "sources", "INLET_SOURCES", "sources.yaml", "sources file")
	tiers := kafka.RetryTiersFlag(fs, "retry tier delays (the processor's): ingest creates every Inlet topic at start, these included")
	fs.BoolVar(&checkOnly, "check-config", false, "validate the configuration and exit")
	if err := fs.ParseFlagsOnly(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // -h, -help: usage was asked for, and printed
		}
		return err
	}
	log, err := lcfg.Logger(stderr)
	if err != nil {
		return err
	}
	sources, err := source.Load(sourcesPath)
	if err != nil {
		return fmt.Errorf("-sources (INLET_SOURCES): %w", err)
	}
	if err := kcfg.Validate(); err != nil {
		return err
	}
	tierDelays, err := tiers()
	if err != nil {
		return err
	}
	if err := icfg.Validate(); err != nil {
		return err
	}
	if err := icfg.CheckSources(sources); err != nil {
		return err
	}
	// The client options read the SASL password and the TLS files: a
	// setting wrong there fails here, not at the first connection.
	opts, err := kcfg.ClientOpts(log)
	if err != nil {
		return err
	}
	reg, err := rcfg.Client()
	if err != nil {
		return err
	}
	if err := errors.Join(service.CheckAddr("ingest-addr", "INLET_INGEST_ADDR", icfg.Addr), service.CheckAddr("admin-addr", "INLET_ADMIN_ADDR", adminAddr)); err != nil {
		return err
	}
	if err := service.CheckAddrsApart(service.Addr{Flag: "ingest-addr", Env: "INLET_INGEST_ADDR", Addr: icfg.Addr},
		service.Addr{Flag: "admin-addr", Env: "INLET_ADMIN_ADDR", Addr: adminAddr}); err != nil {
		return err
	}
	if checkOnly {
		fmt.Printf("configuration ok: %d sources\n", len(sources.Sources))
		return nil
	}

	ctx, stop := service.SignalContext(log)
	defer stop()
	tel, err := telemetry.New(ctx, "inlet-ingest", telemetry.WithLogger(log))
	if err != nil {
		return err
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	// The admin listener serves from the start: /healthz answers 200 and
	// /readyz 503 saying what the start waits on (Kafka's topics, the
	// schema registry), so that a wait is visible and not a restart loop.
	// The ingest listener opens only once envelopes can be written: it
	// never answers a webhook it could not store.
	topics := kafka.TopicNames(kcfg.TopicPrefix, tierDelays)
	shownRegistry := service.ShownURLs(rcfg.URLs)
	brokers := strings.Join(kcfg.Brokers, ",")
	probes := &service.StartProbes{}
	probes.Waiting("waiting on Kafka (" + brokers + "): creating or finding the topics " + topics.Raw + " and the others")
	adminLn, err := service.Listen("admin-addr", "INLET_ADMIN_ADDR", adminAddr)
	if err != nil {
		return err
	}
	// The ingest listener opens once envelopes can be written (below).
	// Its port is held from now, refusing connections: a port taken now
	// is said now, and none can be taken during the wait for Kafka.
	reserved, err := service.Reserve("ingest-addr", "INLET_INGEST_ADDR", icfg.Addr)
	if err != nil {
		adminLn.Close()
		return err
	}
	defer reserved.Close()
	admin := service.AdminServer(adminMux(tel, probes))
	go func() {
		// Only Close ends it normally; anything else leaves /metrics and
		// the probes dead while ingest goes on, so say so.
		if err := admin.Serve(adminLn); !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin server stopped", "error", err)
		}
	}()
	defer admin.Close()
	log.Info("ingest starting", "admin", adminLn.Addr().String(), "schema_registry", shownRegistry, "kafka_brokers", kcfg.Brokers)
	if err := startWait.AwaitTopics(ctx, &kcfg, topics, "accepting webhooks", log); err != nil {
		if ctx.Err() != nil {
			log.Info("ingest stopped while waiting for Kafka", "kafka_brokers", brokers)
			return nil
		}
		return err
	}
	probes.Waiting("waiting on the schema registry (" + shownRegistry + "): it must have the envelope schema registered under " + topics.RawSubject())
	codec, err := startWait.AwaitCodec(ctx, reg, topics.RawSubject(), rcfg.URLs, "ingest", "accepting webhooks", log)
	if err != nil {
		if ctx.Err() != nil {
			log.Info("ingest stopped while waiting for the schema registry", "schema_registry", shownRegistry)
			return nil
		}
		return err
	}
	probes.Waiting("starting")
	opts = append(opts, tel.KafkaOpts()...)
	producers, err := ingest.NewProducers(icfg.Producers, opts...)
	if err != nil {
		return err
	}
	defer producers.Close()
	srv, err := ingest.New(icfg, ingest.Deps{Sources: sources, Codec: codec, RawTopic: topics.Raw, Kafka: producers, SR: reg.SR(), Log: log, Telemetry: tel})
	if err != nil {
		return err
	}
	ln, err := reserved.Listen()
	if err != nil {
		return err
	}
	log.Info("ingest listening", "addr", ln.Addr().String(), "admin", adminLn.Addr().String(),
		"schema_registry", shownRegistry, "kafka_brokers", kcfg.Brokers,
		"sources", sources.Names(), "raw_topic", topics.Raw, "max_conns", icfg.MaxConns)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	probes.Serve(srv.Handler())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), icfg.DrainTimeout)
	defer cancel()
	// The server's shutdown also waits for its readiness probe's Kafka
	// ping; with a broker that answers nothing it overran the bound. The
	// requests in flight were answered by then; the producers are closed
	// on the way out.
	err = service.RunBounded(sctx, srv.Shutdown, 250*time.Millisecond,
		fmt.Errorf("drain not finished within -drain-timeout (INLET_DRAIN_TIMEOUT): %w", context.DeadlineExceeded))
	log.Info("ingest stopped", slog.Any("error", err))
	return err
}

// adminMux is the admin listener's handler: /metrics, and probes for
// /healthz and /readyz (ingest's own once it serves).
func adminMux(tel *telemetry.Telemetry, probes *service.StartProbes) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", tel.Handler())
	mux.Handle("GET /healthz", probes)
	mux.Handle("GET /readyz", probes)
	return service.AdminRoutes(mux)
}

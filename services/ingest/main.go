// Command ingest is Inlet's HTTP receiver: it verifies webhooks and NDJSON
// batches, writes them as envelopes to the raw topic, and answers 2xx only
// after Kafka acknowledged the write.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/flagenv"
	"github.com/inletdev/inlet/pkg/ingest"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/service"
	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/pkg/telemetry"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ingest:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flagenv.New("ingest")
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
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := lcfg.Logger(os.Stderr)
	if err != nil {
		return err
	}
	sources, err := source.Load(sourcesPath)
	if err != nil {
		return err
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
	if checkOnly {
		fmt.Printf("configuration ok: %d sources\n", len(sources.Sources))
		return nil
	}

	ctx, stop := service.SignalContext(log)
	defer stop()
	topics := kafka.TopicNames(kcfg.TopicPrefix, tierDelays)
	if err := service.EnsureTopics(ctx, &kcfg, topics, log); err != nil {
		return err
	}
	codec, err := envelope.NewCodec(ctx, reg, topics.RawSubject())
	if err != nil {
		return err
	}
	tel, err := telemetry.New(ctx, "inlet-ingest")
	if err != nil {
		return err
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
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
	adminLn, err := net.Listen("tcp", adminAddr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", tel.Handler())
	mux.Handle("GET /healthz", srv.Handler())
	mux.Handle("GET /readyz", srv.Handler())
	admin := service.AdminServer(mux)
	go func() {
		// Only Close ends it normally; anything else leaves /metrics and
		// the probes dead while ingest goes on, so say so.
		if err := admin.Serve(adminLn); !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin server stopped", "error", err)
		}
	}()
	defer admin.Close()
	ln, err := net.Listen("tcp", icfg.Addr)
	if err != nil {
		return err
	}
	log.Info("ingest listening", "addr", ln.Addr().String(), "sources", sources.Names(), "raw_topic", topics.Raw)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), icfg.DrainTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	<-errc
	log.Info("ingest stopped", slog.Any("error", err))
	return err
}

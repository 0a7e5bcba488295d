package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/inletdev/inlet/pkg/devstack"
	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/ingest"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/registry"
	"github.com/inletdev/inlet/pkg/service"
	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/pkg/telemetry"
	"github.com/inletdev/inlet/pkg/webhook"
)

// secretEnv holds the Stripe secret for the Inlet source; the bare and
// naive servers verify with the same secret.
const (
	secretEnv = "BENCHINGEST_STRIPE_SECRET"
	secret    = "whsec_benchingest_secret"
)

const sourcesYAML = `
sources:
  stripe:
    kind: stripe
    secrets_env: [` + secretEnv + `]
`

// target is a server under test.
type target struct {
	addr string
	stop func() error
	// rawTopic is set for inlet: the sanity check reads its end offsets.
	rawTopic string
	// produced counts the producer's requests and batches (naive, inlet).
	produced *produceStats
}

// ingestConfig is the HTTP config all three servers share: Inlet's defaults.
var ingestConfig = ingest.DefaultConfig()

// serve runs h on a random 127.0.0.1 port with Inlet's HTTP timeouts.
func serve(h http.Handler) (addr string, stop func() error, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	c := ingestConfig
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      c.ReadTimeout + c.AckTimeout + 5*time.Second,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    c.MaxHeaderBytes,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	return ln.Addr().String(), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := srv.Shutdown(ctx)
		if serr := <-done; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		return err
	}, nil
}

// verifying is the handler of the bare and naive servers: read the body
// (bounded like Inlet's), verify the Stripe signature, then call next (nil:
// answer 200).
func verifying(v webhook.Verifier, next func(*http.Request, []byte) int) http.Handler {
	const limit = source.DefaultMaxBody
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		size := r.ContentLength
		if size < 0 || size > limit {
			size = 512
		}
		buf := bytes.NewBuffer(make([]byte, 0, size+1))
		if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit)); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if err := v.Verify(r.Header, buf.Bytes(), time.Now()); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		status := http.StatusOK
		if next != nil {
			status = next(r, buf.Bytes())
		}
		w.WriteHeader(status)
	})
}

func stripeVerifier() (*webhook.Stripe, error) {
	return webhook.NewStripe([][]byte{[]byte(secret)}, 0)
}

// startBare is mode (a): verify and answer.
func startBare() (*target, error) {
	v, err := stripeVerifier()
	if err != nil {
		return nil, err
	}
	addr, stop, err := serve(verifying(v, nil))
	if err != nil {
		return nil, err
	}
	return &target{addr: addr, stop: stop}, nil
}

// startNaive is mode (b): verify, then ProduceSync the raw body with
// franz-go's default producer options, and answer after the ack.
func startNaive(ctx context.Context, stack *devstack.Stack, partitions int) (*target, error) {
	const topic = "benchnaive.raw"
	if err := createTopics(ctx, stack, partitions, []kafka.TopicSpec{{Name: topic}}); err != nil {
		return nil, err
	}
	v, err := stripeVerifier()
	if err != nil {
		return nil, err
	}
	stats := &produceStats{}
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Brokers...), kgo.WithHooks(stats))
	if err != nil {
		return nil, err
	}
	addr, stop, err := serve(verifying(v, func(r *http.Request, body []byte) int {
		pctx, cancel := context.WithTimeout(r.Context(), ingestConfig.AckTimeout)
		defer cancel()
		if err := cl.ProduceSync(pctx, &kgo.Record{Topic: topic, Value: body}).FirstErr(); err != nil {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}))
	if err != nil {
		cl.Close()
		return nil, err
	}
	return &target{addr: addr, produced: stats, stop: func() error {
		err := stop()
		cl.Close()
		return err
	}}, nil
}

// startInlet is mode (c): the real ingest server with its default
// producers (ingest.NewProducers: -producers clients with ProducerOpts), the
// envelope codec and the registry framing. With production set it is wired
// the way services/ingest wires it: pkg/telemetry (OTel metrics for
// /metrics, the SDK tracer), kotel hooks on the producers, and JSON logs at
// info level, written to /dev/null instead of stderr.
func startInlet(ctx context.Context, stack *devstack.Stack, partitions, producers int, production bool) (*target, error) {
	cfg := ingestConfig
	cfg.Producers = producers
	topics := kafka.TopicNames("benchinlet", kafka.DefaultRetryTiers)
	if err := createTopics(ctx, stack, partitions, topics.Specs()); err != nil {
		return nil, err
	}
	srCl, err := sr.NewClient(sr.URLs(stack.RegistryURL))
	if err != nil {
		return nil, err
	}
	reg := registry.New(srCl)
	codec, err := envelope.NewCodec(ctx, reg, topics.RawSubject())
	if err != nil {
		return nil, fmt.Errorf("envelope codec: %w", err)
	}
	if err := os.Setenv(secretEnv, secret); err != nil {
		return nil, err
	}
	sources, err := source.Parse([]byte(sourcesYAML))
	if err != nil {
		return nil, err
	}
	stats := &produceStats{}
	opts := []kgo.Opt{kgo.SeedBrokers(stack.Brokers...), kgo.WithHooks(stats)}
	deps := ingest.Deps{Sources: sources, Codec: codec, RawTopic: topics.Raw, SR: srCl}
	var closers []func() error
	closeAll := func() error {
		var errs []error
		for _, c := range slices.Backward(closers) {
			errs = append(errs, c())
		}
		return errors.Join(errs...)
	}
	if production {
		tel, err := telemetry.New(ctx, "inlet-ingest")
		if err != nil {
			return nil, err
		}
		closers = append(closers, func() error { return tel.Shutdown(context.Background()) })
		logs, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			_ = closeAll()
			return nil, err
		}
		closers = append(closers, logs.Close)
		lcfg := service.LogConfig{Level: "info", Format: "json"} // services/ingest's defaults
		if deps.Log, err = lcfg.Logger(logs); err != nil {
			_ = closeAll()
			return nil, err
		}
		deps.Telemetry = tel
		opts = append(opts, tel.KafkaOpts()...)
	}
	prod, err := ingest.NewProducers(cfg.Producers, opts...)
	if err != nil {
		_ = closeAll()
		return nil, err
	}
	closers = append(closers, func() error { prod.Close(); return nil })
	deps.Kafka = prod
	srv, err := ingest.New(cfg, deps)
	if err != nil {
		_ = closeAll()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = closeAll()
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	return &target{addr: ln.Addr().String(), rawTopic: topics.Raw, produced: stats, stop: func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return errors.Join(srv.Shutdown(sctx), <-done, closeAll())
	}}, nil
}

func createTopics(ctx context.Context, stack *devstack.Stack, partitions int, specs []kafka.TopicSpec) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	return kafka.EnsureTopics(ctx, kadm.NewClient(cl), partitions, -1, specs)
}

// endOffsets sums the end offsets of topic's partitions: the number of
// records ever written to it.
func endOffsets(ctx context.Context, stack *devstack.Stack, topic string) (int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Brokers...))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	if err := offs.Error(); err != nil {
		return 0, err
	}
	var n int64
	offs.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n, nil
}

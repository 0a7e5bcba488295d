// Package ingest is Inlet's HTTP receiver: it verifies each delivery, wraps
// it in an envelope, writes it to the raw topic and answers 2xx only once
// Kafka has acknowledged the write.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/sr"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/flagenv"
	"github.com/inletdev/inlet/pkg/muxpath"
	"github.com/inletdev/inlet/pkg/registry"
	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/pkg/telemetry"
)

// Config is the HTTP side of the ingest service.
type Config struct {
	Addr string
	// AckTimeout bounds the wait for Kafka's acknowledgement, from when the
	// body is in. It stays below the shortest provider timeout (Shopify
	// waits about 5 s), so a slow broker yields a 503 the sender retries,
	// not a sender-side timeout — unless the body itself was slow to
	// arrive: then the sender may give up first, and its retry of an event
	// that did reach the log is a duplicate, deduplicated downstream.
	AckTimeout time.Duration
	// RetryAfter is the Retry-After sent with 503s.
	RetryAfter        time.Duration
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	// BodyIdleTimeout bounds each wait for more of a body read before its
	// signature is checked (see pacedBody).
	BodyIdleTimeout time.Duration
	// BodyMinRate is the slowest pace, in bytes per second, at which such a
	// body may arrive after its first BodyIdleTimeout (see pacedBody); 0
	// turns the check off.
	BodyMinRate    int
	IdleTimeout    time.Duration
	MaxHeaderBytes int
	// MaxBodyBytesInFlight bounds the request-body bytes all requests hold
	// in memory together (see bodyBudget); a request that would go past it
	// is answered 503 with Retry-After. It must hold the largest body a
	// source accepts (CheckSources).
	MaxBodyBytesInFlight int
	// DrainTimeout bounds graceful shutdown: in-flight requests, then the
	// producer flush.
	DrainTimeout time.Duration
	// Producers is how many Kafka clients write the raw topic (see
	// Producers); NewProducers takes it, the server does not.
	Producers int
	// MaxConns bounds the connections Serve's listener holds open at once
	// (see connLimit); past it new connections wait unserved.
	MaxConns int
}

// RegisterFlags defines the ingest flags, defaulting from INLET_INGEST_*.
func (c *Config) RegisterFlags(fs *flagenv.Set) {
	fs.String(&c.Addr, "ingest-addr", "INLET_INGEST_ADDR", "127.0.0.1:8080", "ingest HTTP listen address")
	fs.Duration(&c.AckTimeout, "ack-timeout", "INLET_ACK_TIMEOUT", 4*time.Second, "longest wait for Kafka's acknowledgement before answering 503")
	fs.Duration(&c.RetryAfter, "retry-after", "INLET_RETRY_AFTER", 5*time.Second, "Retry-After sent with 503 answers")
	fs.Duration(&c.ReadHeaderTimeout, "read-header-timeout", "INLET_READ_HEADER_TIMEOUT", 5*time.Second, "HTTP read-header timeout")
	fs.Duration(&c.ReadTimeout, "read-timeout", "INLET_READ_TIMEOUT", 30*time.Second, "HTTP read timeout (whole request, including large batches)")
	fs.Duration(&c.BodyIdleTimeout, "body-idle-timeout", "INLET_BODY_IDLE_TIMEOUT", 5*time.Second, "longest pause in a body read before its signature is checked (a webhook's, a signed batch's): a stalled one is cut with 408, freeing its share of -max-body-bytes-in-flight")
	fs.Int(&c.BodyMinRate, "body-min-rate", "INLET_BODY_MIN_RATE", 1024, "slowest pace in bytes per second of a body read before its signature is checked, after its first -body-idle-timeout: one that falls a whole -body-idle-timeout behind it is cut with 408, freeing its share of -max-body-bytes-in-flight; 0 turns the check off")
	fs.Duration(&c.IdleTimeout, "idle-timeout", "INLET_IDLE_TIMEOUT", 120*time.Second, "HTTP keep-alive idle timeout")
	fs.Int(&c.MaxHeaderBytes, "max-header-bytes", "INLET_MAX_HEADER_BYTES", 64<<10, "largest request header block")
	fs.Int(&c.MaxBodyBytesInFlight, "max-body-bytes-in-flight", "INLET_MAX_BODY_BYTES_IN_FLIGHT", 512<<20, "request-body bytes held in memory by all requests together, from the first byte read until Kafka answers; a request past it gets 503 with Retry-After. At least every source's max_body and signed batch.max_body")
	fs.Duration(&c.DrainTimeout, "drain-timeout", "INLET_DRAIN_TIMEOUT", 20*time.Second, "graceful shutdown bound")
	fs.Int(&c.MaxConns, "max-conns", "INLET_MAX_CONNS", 10000, "open connections on the ingest listener at once, idle keep-alive ones included (about 20 KiB each); past it new connections wait unserved until one closes. Not the admin listener's")
	fs.Int(&c.Producers, "producers", "INLET_INGEST_PRODUCERS", 2, "Kafka producer clients (each is handed the webhooks that arrived during its previous round together); best when it divides the raw topic's partition count")
}

// Validate reports settings that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if c.AckTimeout <= 0 {
		errs = append(errs, errors.New("ack-timeout must be positive"))
	}
	if c.ReadHeaderTimeout <= 0 || c.ReadTimeout <= 0 || c.BodyIdleTimeout <= 0 {
		errs = append(errs, errors.New("read timeouts must be positive"))
	}
	// A drain deadline already passed cut in-flight requests and skipped
	// the producer's flush; a negative Retry-After is no answer a sender
	// reads.
	if c.DrainTimeout <= 0 {
		errs = append(errs, errors.New("drain-timeout must be positive"))
	}
	if c.RetryAfter <= 0 {
		errs = append(errs, errors.New("retry-after must be positive"))
	}
	if c.BodyMinRate < 0 {
		errs = append(errs, errors.New("body-min-rate must be 0 (no minimum) or positive"))
	}
	if c.IdleTimeout < 0 {
		errs = append(errs, errors.New("idle-timeout must be 0 (the read timeout) or positive"))
	}
	if c.MaxHeaderBytes < 4096 {
		errs = append(errs, errors.New("max-header-bytes must be at least 4096"))
	}
	// No "0 means unbounded": that is the OOM this bound is for, and a
	// large value says the same explicitly.
	if c.MaxBodyBytesInFlight <= 0 {
		errs = append(errs, errors.New("max-body-bytes-in-flight must be positive"))
	}
	// As for the body budget, no "0 means unbounded": the descriptors and
	// memory of a flood of idle connections are what it bounds.
	if c.MaxConns < 1 {
		errs = append(errs, errors.New("max-conns must be at least 1"))
	}
	if c.Producers < 1 || c.Producers > maxProducers {
		errs = append(errs, fmt.Errorf("producers must be between 1 and %d", maxProducers))
	}
	return errors.Join(errs...)
}

// maxProducers bounds -producers: each client holds its own connections
// and buffers, and past a few they only shrink the batches.
const maxProducers = 16

// DefaultConfig is Config with the built-in flag defaults, for tests and
// embedding; the environment is not read (see flagenv.Defaults).
func DefaultConfig() Config {
	var c Config
	c.RegisterFlags(flagenv.Defaults("defaults"))
	return c
}

// Server is the ingest HTTP service.
type Server struct {
	cfg     Config
	sources *source.File
	codec   *envelope.Codec
	topic   string
	w       *writer
	// deadlines bound each webhook's wait for the acknowledgement.
	deadlines *deadlines
	// bodies bounds the request bodies held in memory.
	bodies *bodyBudget
	// unacked: one webhook Kafka did not acknowledge logged at warn per
	// unackedEvery, the others at debug.
	unacked warnEvery
	// diagnosis looks at the raw topic's metadata when that warning is
	// logged at warn, and logs what it found (see diagnoser).
	diagnosis *diagnoser
	kafka     Producers
	sr        *sr.Client
	log       *slog.Logger
	now       func() time.Time

	// badSignature: per source, one signature (or batch token) failure
	// logged at warn per signatureEvery, the others at debug. Filled in
	// New for every configured source, only read after.
	badSignature map[string]*warnEvery

	metrics    *Metrics
	tracer     trace.Tracer
	noopTracer bool // tracer is trace/noop's: see startSpan
	// serverSpan are the span start options, built once: the variadic
	// slice escaped, an allocation per request.
	serverSpan []trace.SpanStartOption
	propagator propagation.TextMapPropagator

	draining atomic.Bool
	ready    atomic.Bool
	// unready says what the last probe found unreachable, for /readyz.
	unready  atomic.Pointer[string]
	inflight sync.WaitGroup
	// mu orders Serve and Shutdown: a Shutdown that runs first must make
	// a later Serve return at once, not serve for good.
	mu       sync.Mutex
	srv      *http.Server
	stop     chan struct{}
	bg       sync.WaitGroup
	shutOnce sync.Once
	shutErr  error
}

// Deps are what the server writes to.
type Deps struct {
	Sources *source.File
	Codec   *envelope.Codec
	// RawTopic is where envelopes go.
	RawTopic string
	// Kafka writes the raw topic (see NewProducers).
	Kafka Producers
	// SR is probed by /readyz.
	SR  *sr.Client
	Log *slog.Logger
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// Telemetry provides metrics and traces (optional: none without).
	Telemetry *telemetry.Telemetry
	// MaxEventTypes bounds event-type label values per source (default 100).
	MaxEventTypes int
}

// New returns a server; call Serve to start it.
func New(cfg Config, d Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Sources == nil || d.Codec == nil || len(d.Kafka) == 0 || slices.Contains(d.Kafka, nil) || d.RawTopic == "" {
		return nil, errors.New("ingest: sources, codec, kafka and raw topic are required")
	}
	if err := cfg.CheckSources(d.Sources); err != nil {
		return nil, err
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	s := &Server{
		cfg: cfg, sources: d.Sources, codec: d.Codec, topic: d.RawTopic,
		w: newWriter(d.Kafka), deadlines: newDeadlines(cfg.AckTimeout), bodies: &bodyBudget{limit: int64(cfg.MaxBodyBytesInFlight)}, kafka: d.Kafka, sr: d.SR, log: d.Log, now: d.Now,
		stop:       make(chan struct{}),
		unacked:    warnEvery{period: unackedEvery},
		tracer:     tracenoop.NewTracerProvider().Tracer(""),
		propagator: propagation.TraceContext{},
	}
	// Through the first producer client: the clients share their brokers,
	// and its admin requests do not queue behind its produces.
	s.diagnosis = newDiagnoser(kadm.NewClient(d.Kafka[0]), d.RawTopic, d.Log)
	s.badSignature = make(map[string]*warnEvery, len(d.Sources.Sources))
	for _, name := range d.Sources.Names() {
		s.badSignature[name] = &warnEvery{period: signatureEvery}
	}
	var meter metric.Meter
	if d.Telemetry != nil {
		meter, s.tracer, s.propagator = d.Telemetry.Meter, d.Telemetry.Tracer, d.Telemetry.Propagator
	}
	_, s.noopTracer = s.tracer.(tracenoop.Tracer)
	s.serverSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
	m, err := NewMetrics(meter, d.Sources.TypesLimiter(d.MaxEventTypes))
	if err != nil {
		return nil, err
	}
	s.metrics = m
	for _, name := range d.Sources.Names() {
		src, _ := d.Sources.Get(name)
		if src.Kind == source.KindNone {
			s.log.Warn("source accepts UNSIGNED deliveries (kind none): anyone who can reach ingest can write events for it", "source", name)
		}
		for _, short := range src.ShortSecrets() {
			// Taken: the secret is often the user's choice (GitHub), and
			// a working setup must not stop. Never quoted.
			s.log.Warn(fmt.Sprintf("source's signing secret is shorter than %d bytes: it can be guessed offline from one signed delivery; set a longer one at the provider and here (openssl rand -hex 32)", source.MinSecretLen),
				"source", name, "secret_env", short.Env, "bytes", short.Len)
		}
	}
	return s, nil
}

// Handler returns the HTTP routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	webhookSource := func(r *http.Request) string { return r.PathValue("source") }
	mux.HandleFunc("POST /webhooks/{source}", s.track(s.handleWebhook, drainingWebhook, webhookSource))
	mux.HandleFunc("POST /events", s.track(s.handleBatch, drainingBatch, batchSource))
	mux.HandleFunc("POST /events/{source}", s.track(s.handleBatch, drainingBatch, batchSource))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.handleReady)
	mux.HandleFunc("/", noRoute)
	return closeAfterChunked(s.pathOnly(mux))
}

// pathOnly answers a request whose target is no path as noRoute does: a
// CONNECT (authority form, ingest.example:443) and a request to "*" other
// than OPTIONS (which net/http answers itself) reach the handler, and
// ServeMux answered them plain text without the correlation id (404 "page
// not found", and 400 with no body). A path with an empty, "." or ".."
// segment is answered by uncleaned.
func (s *Server) pathOnly(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/") {
			noRoute(w, r)
			return
		}
		if clean, ok := muxpath.Uncleaned(r); ok {
			s.uncleaned(w, r, clean)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// uncleaned answers a path with an empty, "." or ".." segment
// (/webhooks//stripe, /webhooks/./stripe) with a JSON 404 naming the
// cleaned path, whatever the method. ServeMux answered it 307 to the
// cleaned path, text/html without the correlation id: a provider
// following it resends the signed body to another URL than the one
// configured, one that does not is left with an HTML page. A POST that
// cleans to a webhook or batch route is counted as an unknown source: the
// sender meant a source, and none takes it.
func (s *Server) uncleaned(w http.ResponseWriter, r *http.Request, clean string) {
	start := time.Now()
	corr := correlationID(r.Header)
	w.Header()[headerCorrelationID] = []string{corr}
	if r.Method == http.MethodPost && allowed(clean, clean) == http.MethodPost {
		s.metrics.event(r.Context(), "unknown", "", outcomeRejected, reasonUnknownSource)
		defer s.metrics.request(r.Context(), "unknown", http.StatusNotFound, start)
	}
	writeResponse(w, http.StatusNotFound, Response{CorrelationID: corr,
		Error: `no such endpoint: a path with an empty, "." or ".." segment is neither cleaned nor redirected (cleaned, it is ` + clean + ")"})
}

// closeAfterChunked closes the connection after answering a chunked
// request. net/http (go1.26) frames a request carrying both
// Transfer-Encoding: chunked and Content-Length by its chunks, drops the
// Content-Length and reads the next request from the same connection;
// RFC 9112 6.1 requires closing it, as a proxy in front that framed the
// same bytes by Content-Length sees another next request (request
// smuggling; golang/go#80942). A handler cannot tell that the
// Content-Length was there, so every chunked request's connection is
// closed: a new connection per chunked request (streamed batches), none
// for senders that send a Content-Length, as webhook providers do.
func closeAfterChunked(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TransferEncoding) > 0 {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

// noRoute answers what no route takes as every other answer is: JSON with
// the correlation id. ServeMux's own 404 and 405 are plain text without
// it, and a sender configured with a trailing slash or a GET is the
// likeliest to read the answer. A known path asked with another method is
// 405 with Allow; anything else 404, naming the routes.
func noRoute(w http.ResponseWriter, r *http.Request) {
	corr := correlationID(r.Header)
	w.Header()[headerCorrelationID] = []string{corr}
	if allow := allowed(r.URL.Path, r.URL.EscapedPath()); allow != "" {
		w.Header().Set("Allow", allow)
		writeResponse(w, http.StatusMethodNotAllowed, Response{CorrelationID: corr, Error: "method not allowed: use " + allow})
		return
	}
	writeResponse(w, http.StatusNotFound, Response{CorrelationID: corr,
		Error: "no such endpoint: webhooks are POST /webhooks/{source}, batches POST /events or /events/{source}"})
}

// allowed is the methods Handler's routes take at path, if one matches it.
// A wildcard segment is counted in the escaped path, as ServeMux counts it:
// /webhooks/a%2Fb reaches the webhook route, so its GET is a 405 too.
func allowed(path, escaped string) string {
	one := func(prefix string) bool { // prefix then one non-empty segment
		rest, ok := strings.CutPrefix(escaped, prefix)
		return ok && rest != "" && !strings.Contains(rest, "/")
	}
	switch {
	case path == "/events" || one("/events/") || one("/webhooks/"):
		return http.MethodPost
	case path == "/healthz" || path == "/readyz":
		return "GET, HEAD"
	}
	return ""
}

// track refuses new work while draining, answering with refuse and
// counting the refusal under the source sourceOf reads (a batch may name
// it by ?source= or X-Inlet-Source), and counts in-flight requests so
// that shutdown can wait for them.
func (s *Server) track(h http.HandlerFunc, refuse func(w http.ResponseWriter, corr string), sourceOf func(*http.Request) string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			// Reached by a request already read on an open connection when
			// the drain starts: the listener itself is closed by then.
			start := time.Now()
			src := metricSource(s.sources, sourceOf(r))
			s.metrics.event(r.Context(), src, "", outcomeUnavailable, reasonDraining)
			// In the latency histogram too, which the dashboard's 5xx rate
			// reads: it left these out.
			defer s.metrics.request(r.Context(), src, http.StatusServiceUnavailable, start)
			corr := correlationID(r.Header)
			w.Header()[headerCorrelationID] = []string{corr}
			s.setRetryAfter(w)
			refuse(w, corr)
			return
		}
		s.inflight.Add(1)
		defer s.inflight.Done()
		h(w, r)
	}
}

// errTextDraining answers a request refused while draining.
const errTextDraining = "shutting down"

// drainingWebhook is a webhook's 503 while draining.
func drainingWebhook(w http.ResponseWriter, corr string) {
	writeResponse(w, http.StatusServiceUnavailable, Response{CorrelationID: corr, Error: errTextDraining})
}

// drainingBatch is a batch's 503 while draining: a BatchResponse, as every
// /events answer is, its results an empty list (the batch is refused
// whole). The webhook Response had no results, and a sender looping over
// them met none.
func drainingBatch(w http.ResponseWriter, corr string) {
	writeJSON(w, http.StatusServiceUnavailable, BatchResponse{CorrelationID: corr, Results: []LineResult{}, Error: errTextDraining})
}

func (s *Server) handleReady(w http.ResponseWriter, _ *http.Request) {
	switch {
	case s.draining.Load():
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
	case !s.ready.Load():
		status := "kafka or schema registry unreachable"
		if why := s.unready.Load(); why != nil {
			status = *why
		}
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": status})
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}

// probe checks Kafka and the registry every interval until Shutdown.
func (s *Server) probe(interval time.Duration) {
	check := func() {
		ctx, cancel := context.WithTimeout(context.Background(), interval)
		defer cancel()
		// The raw topic's metadata: one request says whether Kafka
		// answers and whether it still has the topic.
		err := s.kafka.TopicExists(ctx, s.topic)
		what := "kafka unreachable"
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			// Kafka answers but the raw topic is gone (deleted, or a dev
			// cluster's data wiped): every webhook would be a 503 while
			// /readyz said ready. Topics are made at start.
			what = "raw topic " + s.topic + " missing: restart ingest to create it"
			err = fmt.Errorf("kafka has no topic %s (deleted, or the cluster's data wiped?); ingest creates its topics at start: restart it: %w", s.topic, err)
		}
		if err == nil && s.sr != nil {
			// GET /config: cheap on every registry implementation.
			if res := s.sr.Compatibility(ctx); len(res) > 0 {
				// Classified: a refusal's answer, logged below, may
				// quote the token it refused.
				err, what = registry.Classify(res[0].Err), "schema registry unreachable"
			}
		}
		s.unready.Store(&what)
		if was := s.ready.Swap(err == nil); was != (err == nil) {
			if err != nil {
				s.log.Warn("not ready", "error", err)
			} else {
				s.log.Info("ready")
			}
		}
	}
	check()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			check()
		}
	}
}

// Serve accepts connections on ln until Shutdown, at most MaxConns open
// at once. It returns nil after a graceful shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.draining.Load() {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	ln = newConnLimit(ln, s.cfg.MaxConns, s.metrics, s.log)
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.ReadTimeout + s.cfg.AckTimeout + 5*time.Second,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	srv := s.srv
	s.bg.Go(func() { s.probe(2 * time.Second) })
	s.mu.Unlock()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown drains: /readyz fails and new requests get 503 at once, in-flight
// requests finish (each bounded by the ack timeout), then the producer is
// flushed. Bounded by ctx; safe to call more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutOnce.Do(func() {
		s.mu.Lock()
		s.draining.Store(true)
		srv := s.srv
		s.mu.Unlock()
		close(s.stop)
		var errs []error
		// A diagnosis in progress is cut short now; it is waited for
		// with the probes below.
		diagnosed := make(chan error, 1)
		go func() { diagnosed <- s.diagnosis.close(ctx) }()
		if srv != nil {
			// Also correct when srv.Serve has not started yet: it then
			// returns ErrServerClosed at once.
			if err := srv.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("http shutdown: %w", err))
			}
		}
		done := make(chan struct{})
		go func() { s.inflight.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			errs = append(errs, errors.New("in-flight requests did not finish before the drain deadline"))
		}
		if err := s.w.drain(ctx); err != nil {
			errs = append(errs, fmt.Errorf("producer drain: %w", err))
		}
		if err := s.kafka.Flush(ctx); err != nil {
			errs = append(errs, fmt.Errorf("producer flush: %w", err))
		}
		// The readiness probe's Kafka ping, once sent, waits for the
		// client's own timeouts whatever its context says: a broker that
		// answers nothing held a shutdown seconds past ctx.
		bg := make(chan struct{})
		go func() { s.bg.Wait(); close(bg) }()
		select {
		case <-bg:
		case <-ctx.Done():
			errs = append(errs, errors.New("background probes still running at the drain deadline"))
		}
		if err := <-diagnosed; err != nil {
			errs = append(errs, err)
		}
		s.shutErr = errors.Join(errs...)
	})
	return s.shutErr
}

// Package telemetry sets up a process's OpenTelemetry providers: metrics
// exported in the Prometheus format on the admin listener's /metrics (and
// over OTLP when the standard OTEL_EXPORTER_OTLP_* variables are set),
// traces with the propagation OTEL_PROPAGATORS names, W3C trace context
// and baggage by default (exported over OTLP when configured), and shuts them down with the process.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/propagators/autoprop"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/inletdev/inlet/pkg/redact"
)

// Telemetry is a process's meter and tracer providers.
type Telemetry struct {
	Meter      metric.Meter
	MeterProv  *sdkmetric.MeterProvider
	Tracer     trace.Tracer
	TracerProv *sdktrace.TracerProvider
	Propagator propagation.TextMapPropagator
	registry   *prometheus.Registry
	// recording is true when spans go somewhere (an OTLP exporter or a
	// span processor); Tracer is a no-op otherwise.
	recording bool
}

// SeriesLimit is the most series one instrument keeps; past it the SDK
// folds new series into one labelled otel_metric_overflow="true", with no
// source, type or outcome, for the life of the process. Inlet's labels are
// bounded elsewhere (configured sources, a Limiter's event types per
// source, fixed outcomes and reasons), which is what keeps series few. The
// SDK's default of 2,000 was below that bound with a handful of busy
// sources (4 sources × 101 types × 6 outcomes: 2,424), and a dead-lettered event
// of a new type then counted only in the overflow series, where no alert
// rule sees it. This is a backstop against a bug, far above any
// configuration's bound; InletMetricsOverflow fires if it is ever hit.
const SeriesLimit = 100_000

// Option adds readers or span processors (tests use a ManualReader and a
// span recorder).
type Option func(*options)

type options struct {
	readers []sdkmetric.Reader
	spans   []sdktrace.SpanProcessor
	log     *slog.Logger
}

// WithLogger sends the OpenTelemetry SDK's own errors (an OTLP export
// that failed) to log, at warn, instead of the standard library's log
// package: plain text on stderr, quoting the endpoint's URL whole.
func WithLogger(log *slog.Logger) Option {
	return func(o *options) { o.log = log }
}

// WithReader adds a metric reader.
func WithReader(r sdkmetric.Reader) Option {
	return func(o *options) { o.readers = append(o.readers, r) }
}

// WithSpanProcessor adds a span processor.
func WithSpanProcessor(p sdktrace.SpanProcessor) Option {
	return func(o *options) { o.spans = append(o.spans, p) }
}

// New builds the providers for service. Prometheus metrics are always on;
// OTLP export of a signal is on when OTEL_EXPORTER_OTLP_ENDPOINT (or the
// per-signal variable) is set, unless OTEL_TRACES_EXPORTER /
// OTEL_METRICS_EXPORTER leave otlp out or OTEL_SDK_DISABLED is true
// (otlpOn), configured by the standard variables.
func New(ctx context.Context, service string, opts ...Option) (*Telemetry, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.log != nil {
		log := o.log
		secrets := exportSecrets()
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			log.Warn("telemetry export failed", "error", exportError(err, secrets))
		}))
	}
	// service is the default name: OTEL_SERVICE_NAME and
	// OTEL_RESOURCE_ATTRIBUTES win, as the manifests expect (the SDK
	// merges the environment under the resource it is given, so the name
	// given here beat the variable).
	res, err := resource.Merge(resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(service)), resource.Environment())
	if err != nil {
		return nil, fmt.Errorf("telemetry resource (OTEL_RESOURCE_ATTRIBUTES?): %w", err)
	}
	prop, err := propagator()
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	prom, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, err
	}
	mopts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(prom), sdkmetric.WithCardinalityLimit(SeriesLimit)}
	for _, r := range o.readers {
		mopts = append(mopts, sdkmetric.WithReader(r))
	}
	topts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	for _, p := range o.spans {
		topts = append(topts, sdktrace.WithSpanProcessor(p))
	}
	metricsOut, tracesOut := otlpOn("METRICS"), otlpOn("TRACES")
	if o.log != nil {
		if tracesOut {
			warnProtocol(o.log, "TRACES")
		}
		if metricsOut {
			warnProtocol(o.log, "METRICS")
		}
	}
	if metricsOut {
		exp, err := otlpmetrichttp.New(ctx)
		if err != nil {
			return nil, err
		}
		mopts = append(mopts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
	}
	if tracesOut {
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, err
		}
		topts = append(topts, sdktrace.WithBatcher(exp))
	}
	mp := sdkmetric.NewMeterProvider(mopts...)
	tp := sdktrace.NewTracerProvider(topts...)
	// With nowhere to send spans, recording them is pure cost: use a
	// no-op tracer. Trace context still flows (the propagator carries the
	// sender's traceparent through every record).
	var tracer trace.Tracer = tracenoop.NewTracerProvider().Tracer("")
	recording := len(o.spans) > 0 || tracesOut
	if recording {
		tracer = tp.Tracer("github.com/inletdev/inlet")
	}
	return &Telemetry{
		Meter: mp.Meter("github.com/inletdev/inlet"), MeterProv: mp,
		Tracer: tracer, TracerProv: tp,
		Propagator: prop,
		registry:   reg,
		recording:  recording,
	}, nil
}

// propagator is the propagator OTEL_PROPAGATORS names, as the
// OpenTelemetry specification has it: a comma-separated list of
// tracecontext, baggage, b3, b3multi, jaeger, xray and ottrace, or none;
// unset or empty, W3C trace context and baggage. It was not read, and a
// trace carried in B3 or Jaeger headers was not continued. An unknown
// name is an error, so that a misspelt value refuses the start rather
// than quietly dropping the traces it was meant to continue.
func propagator() (propagation.TextMapPropagator, error) {
	v := os.Getenv("OTEL_PROPAGATORS")
	var names []string
	for name := range strings.SplitSeq(v, ",") {
		if name = strings.TrimSpace(name); name != "" {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}), nil
	}
	p, err := autoprop.TextMapPropagator(names...)
	if err != nil {
		return nil, fmt.Errorf("OTEL_PROPAGATORS=%q: %w (known: tracecontext, baggage, b3, b3multi, jaeger, xray, ottrace, none)", v, err)
	}
	return p, nil
}

// otlpOn reports whether signal (TRACES, METRICS) is exported over OTLP:
// its endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or the per-signal
// variable), OTEL_SDK_DISABLED is not true, and OTEL_<signal>_EXPORTER,
// when set, lists otlp, as the OpenTelemetry specification defines them.
// They were ignored: with the endpoint set for traces, metrics went over
// OTLP too, every series counted twice next to the /metrics scrape, and
// OTEL_METRICS_EXPORTER=none did not stop it. /metrics is served either
// way.
func otlpOn(signal string) bool {
	if strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	if v := os.Getenv("OTEL_" + signal + "_EXPORTER"); strings.TrimSpace(v) != "" {
		otlp := false
		for e := range strings.SplitSeq(v, ",") {
			otlp = otlp || strings.TrimSpace(e) == "otlp"
		}
		if !otlp {
			return false
		}
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_"+signal+"_ENDPOINT") != ""
}

// warnProtocol says that signal is exported over OTLP/HTTP with protobuf
// whatever its OTEL_EXPORTER_OTLP_*PROTOCOL variable asks: the exporters
// read none. Set to grpc, with the endpoint on a collector's gRPC port
// (4317), every export failed with a malformed-response error that did not
// name the cause.
func warnProtocol(log *slog.Logger, signal string) {
	name := "OTEL_EXPORTER_OTLP_" + signal + "_PROTOCOL"
	v := os.Getenv(name)
	if v == "" {
		name = "OTEL_EXPORTER_OTLP_PROTOCOL"
		v = os.Getenv(name)
	}
	if v = strings.TrimSpace(v); v != "" && v != "http/protobuf" {
		log.Warn(name+"="+v+" is not supported: "+strings.ToLower(signal)+" are exported over OTLP/HTTP with protobuf (a collector's port 4318, path /v1/"+strings.ToLower(signal)+"), whatever it says; unset it and point the endpoint at the collector's OTLP/HTTP port",
			"signal", strings.ToLower(signal))
	}
}

// Handler serves /metrics in the Prometheus format (with exemplars when the
// scraper asks for OpenMetrics).
func (t *Telemetry) Handler() http.Handler {
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

// Shutdown flushes and stops the providers, bounded by ctx.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return errors.Join(t.MeterProv.Shutdown(ctx), t.TracerProv.Shutdown(ctx))
}

// exportError is err's text without the credentials of an OTLP export:
// every URL it quotes is cut to its scheme and host (an endpoint's path or
// query may hold a token, as some vendors take the key there, and the SDK
// quotes the request's URL, as a url.Error or in its own text), then
// each of secrets (exportSecrets) is blotted out. A collector refusing an
// export answers a status the exporter does not retry, and the SDK's
// error quotes its answer, which often quotes the key it refused.
func exportError(err error, secrets redact.Set) string {
	text := quotedURL.ReplaceAllStringFunc(err.Error(), func(raw string) string {
		// The punctuation after a URL in a sentence ("to <url>: 401").
		trimmed := strings.TrimRight(raw, ".,;:")
		after := raw[len(trimmed):]
		u, perr := url.Parse(trimmed)
		if perr != nil || u.Host == "" || strings.Contains(u.Path, "@") {
			// "https://user:1234/pass@host" parses as host "user:1234".
			return "(the endpoint)" + after
		}
		return u.Scheme + "://" + u.Host + after
	})
	return secrets.Apply(text)
}

// quotedURL matches a URL in an error's text, up to the quote, bracket or
// white space that ends it.
var quotedURL = regexp.MustCompile(`(?i)https?://[^\s"'<>()\\]+`)

// exportSecrets are the forms exportError blots out (redact.Forms): of
// the OTLP headers' values (OTEL_EXPORTER_OTLP_HEADERS and the per-signal
// variables), as configured and percent-decoded (the variables' values
// are URL-encoded), and of the endpoints' URLs.
func exportSecrets() redact.Set {
	var values []string
	for _, env := range []string{"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_METRICS_HEADERS"} {
		for pair := range strings.SplitSeq(os.Getenv(env), ",") {
			if _, v, ok := strings.Cut(pair, "="); ok {
				v = strings.TrimSpace(v)
				values = append(values, v)
				if dec, err := url.PathUnescape(v); err == nil {
					values = append(values, dec)
				}
			}
		}
	}
	var urls []*url.URL
	for _, env := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"} {
		if u, err := url.Parse(os.Getenv(env)); err == nil {
			urls = append(urls, u)
		}
	}
	return redact.Forms(values, urls...)
}

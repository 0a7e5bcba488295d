package telemetry

import (
	"errors"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
)

// KafkaOpts instruments a franz-go client with kotel's metrics (connects,
// request latency, bytes and records produced and fetched). Trace context
// is propagated by Inlet itself through the record carrier, so kotel's own
// tracing is left off.
func (t *Telemetry) KafkaOpts() []kgo.Opt {
	k := kotel.NewKotel(kotel.WithMeter(kotel.NewMeter(kotel.MeterProvider(t.MeterProv))))
	return []kgo.Opt{kgo.WithHooks(k.Hooks()...)}
}

// InstrumentRedis adds go-redis' OpenTelemetry metrics (pool, command
// latency) to rdb, and its tracing when spans go somewhere.
//
// The tracing hook formats every command of a pipeline into a string
// before it starts a span, whether the span records or not: with the
// processor's pipelines of a thousand commands and more that was 6% of its
// CPU, and with the history's another 7%, for spans nobody received
// (bench-processor -production). Spans leave out the commands (keys are
// natural and entity keys, values history entries: business data, not
// for a tracing backend) and the calling line (a stack walk per command).
// With spans exported the formatting cost comes back (redisotel builds the
// span name from it): that is the price of Redis spans.
func (t *Telemetry) InstrumentRedis(rdb redis.UniversalClient) error {
	err := redisotel.InstrumentMetrics(rdb, redisotel.WithMeterProvider(t.MeterProv))
	if !t.recording {
		return err
	}
	return errors.Join(err, redisotel.InstrumentTracing(rdb, redisotel.WithTracerProvider(t.TracerProv),
		redisotel.WithDBStatement(false), redisotel.WithCallerEnabled(false)))
}

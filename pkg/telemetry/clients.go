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
// latency) and tracing to rdb.
func (t *Telemetry) InstrumentRedis(rdb redis.UniversalClient) error {
	return errors.Join(
		redisotel.InstrumentMetrics(rdb, redisotel.WithMeterProvider(t.MeterProv)),
		redisotel.InstrumentTracing(rdb, redisotel.WithTracerProvider(t.TracerProv)),
	)
}

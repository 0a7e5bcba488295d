// Package processortest wires a processor's dependencies on a test stack
// (pkg/testenv), for the tests of packages built on the processor (replay,
// reconcile). The processor's own tests cannot import it: it imports the
// processor.
package processortest

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/handlers"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/processor"
	"github.com/inletdev/inlet/pkg/router"
	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/pkg/store"
	"github.com/inletdev/inlet/pkg/testenv"
)

// Stack is what a processor needs, on env: the sources with their
// declarative handlers, the topics, the envelope codec, Redis and a
// producer that writes raw records as ingest does.
type Stack struct {
	Env      *testenv.Env
	Topics   kafka.Topics
	Sources  *source.File
	Router   *router.Router
	Codec    *envelope.Codec
	Redis    *redis.Client
	Store    *store.Store
	Producer *kgo.Client
}

// New parses sourcesYAML (secrets must be set in the environment), builds
// its router as the processor does (handlers.Router: the file's entries and
// the Go handlers) and creates env's topics.
func New(t testing.TB, env *testenv.Env, sourcesYAML string) *Stack {
	t.Helper()
	sources, err := source.Parse([]byte(sourcesYAML))
	if err != nil {
		t.Fatal(err)
	}
	// The router every binary that processes builds: the file's entries
	// and the Go handlers of pkg/handlers.
	rt, err := handlers.Router(sources)
	if err != nil {
		t.Fatal(err)
	}
	topics := env.CreateTopics(t, nil)
	codec, err := envelope.NewCodec(context.Background(), env.Registry(t), topics.RawSubject())
	if err != nil {
		t.Fatal(err)
	}
	rdb := env.Redis(t)
	return &Stack{Env: env, Topics: topics, Sources: sources, Router: rt, Codec: codec, Redis: rdb,
		Store: store.New(rdb, store.KeyPrefix(env.Prefix+":")), Producer: env.Client(t, kgo.ProducerLinger(0))}
}

// Config is the processor's default configuration with the stack's group
// and timings short enough for tests.
func (s *Stack) Config() processor.Config {
	cfg := processor.DefaultConfig()
	cfg.Group = s.Env.Prefix + "-processor"
	cfg.InstanceID = s.Env.Prefix + "-main"
	cfg.BatchDeadline = 5 * time.Second
	cfg.DrainTimeout = 4 * time.Second // with the deadline, under the lease
	cfg.ClaimLease = 10 * time.Second
	cfg.TxnTimeout = 10 * time.Second
	cfg.BackoffMax = 200 * time.Millisecond
	return cfg
}

// KafkaOpts connect a client to the stack's brokers.
func (s *Stack) KafkaOpts() []kgo.Opt { return []kgo.Opt{kgo.SeedBrokers(s.Env.Brokers...)} }

// Deps are the processor's dependencies on the stack.
func (s *Stack) Deps(t testing.TB) processor.Deps {
	return processor.Deps{KafkaOpts: s.KafkaOpts(), Topics: s.Topics, Sources: s.Sources, Router: s.Router,
		Registry: s.Env.Registry(t), Codec: s.Codec, Store: s.Store}
}

// Run runs a processor until done reports true of its counts, then stops
// it; a processor error fails the test.
func (s *Stack) Run(t testing.TB, what string, done func(*processor.Counts) bool) {
	t.Helper()
	p, err := processor.New(s.Config(), s.Deps(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	testenv.Eventually(t, 60*time.Second, what, func() bool { return done(p.Counts()) })
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// Final is the number of events with a final outcome.
func Final(c *processor.Counts) int64 {
	return c.Total(processor.Processed) + c.Total(processor.Duplicate) + c.Total(processor.Stale) + c.Total(processor.Invalid) + c.Total(processor.DeadLetter)
}

var seq atomic.Int64

// StripePayment is a Stripe payment_intent event of type typ.
func StripePayment(evtID, typ, piID string, created int64) []byte {
	return fmt.Appendf(nil, `{"id":%q,"object":"event","api_version":"2024-06-20","created":%d,"type":%q,"livemode":false,"data":{"object":{"id":%q,"object":"payment_intent","status":"succeeded","amount":1200,"currency":"usd","customer":null,"metadata":{}}}}`,
		evtID, created, typ, piID)
}

// Send writes payload to the raw topic as ingest would for a webhook of src,
// with the correlation id corr-<evtID>, at the schema version src's
// configuration reads from payload (its schema_version field: Stripe's
// /api_version; v1, or the file's default, for a kind that reads none).
// A source that reads its version from a header (Shopify's
// X-Shopify-API-Version), or a test of another version, uses SendVersion.
func (s *Stack) Send(t testing.TB, src, typ, evtID string, payload []byte) *envelope.Envelope {
	t.Helper()
	source, ok := s.Sources.Get(src)
	if !ok {
		t.Fatalf("Send: no source %q in the stack's sources", src)
	}
	version, err := source.SchemaVersionOf(http.Header{}, payload)
	if err != nil {
		t.Fatalf("Send to %s: %v", src, err)
	}
	return s.SendVersion(t, src, typ, version, evtID, payload)
}

// SendVersion is Send at schema version version.
func (s *Stack) SendVersion(t testing.TB, src, typ, version, evtID string, payload []byte) *envelope.Envelope {
	t.Helper()
	e := &envelope.Envelope{
		ID: fmt.Sprintf("id-%d", seq.Add(1)), Source: src, EventType: typ, EventID: evtID,
		IdempotencyKey: envelope.IdempotencyKey(src, evtID), SchemaVersion: version,
		ReceivedAt: time.Now().UTC().Truncate(time.Microsecond), CorrelationID: "corr-" + evtID, Channel: envelope.ChannelWebhook,
		Headers: map[string]string{}, Payload: payload, ContentType: "application/json",
	}
	val, err := s.Codec.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	rec := &kgo.Record{Topic: s.Topics.Raw, Key: []byte(e.IdempotencyKey), Value: val,
		Headers: []kgo.RecordHeader{{Key: processor.HeaderCorrelationID, Value: []byte(e.CorrelationID)}}}
	if err := s.Producer.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return e
}

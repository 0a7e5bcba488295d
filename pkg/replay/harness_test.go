package replay

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/contract"
	"github.com/inletdev/inlet/pkg/declarative"
	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/processor"
	"github.com/inletdev/inlet/pkg/router"
	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/pkg/store"
	"github.com/inletdev/inlet/pkg/testenv"
	"github.com/inletdev/inlet/schemas/contracts"
)

const testSources = `
sources:
  stripe:
    kind: stripe
    secrets_env: [T_STRIPE]
    events:
      "payment_intent.*":
        contract: stripe/payment_intent
        entity_key: "stripe:pi:{/data/object/id}"
        occurred_at: /created
  other:
    kind: stripe
    secrets_env: [T_STRIPE]
    events:
      "payment_intent.*":
        contract: stripe/payment_intent
        entity_key: "other:pi:{/data/object/id}"
        occurred_at: /created
`

// harness is a processor on the embedded stack and a way to write raw
// records as ingest does.
type harness struct {
	t       *testing.T
	env     *testenv.Env
	topics  kafka.Topics
	sources *source.File
	router  *router.Router
	codec   *envelope.Codec
	rdb     *redis.Client
	store   *store.Store
	prod    *kgo.Client
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	t.Setenv("T_STRIPE", "s")
	env := testenv.Embedded(t)
	sources, err := source.Parse([]byte(testSources))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := contract.Load(contracts.FS)
	if err != nil {
		t.Fatal(err)
	}
	rt := router.New()
	if err := declarative.Register(rt, sources, reg); err != nil {
		t.Fatal(err)
	}
	topics := env.CreateTopics(t, nil)
	codec, err := envelope.NewCodec(context.Background(), env.Registry(t), topics.RawSubject())
	if err != nil {
		t.Fatal(err)
	}
	opt, err := redis.ParseURL(env.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	return &harness{t: t, env: env, topics: topics, sources: sources, router: rt, codec: codec, rdb: rdb,
		store: store.New(rdb, store.KeyPrefix(env.Prefix+":")), prod: env.Client(t, kgo.ProducerLinger(0))}
}

func (h *harness) pcfg() processor.Config {
	cfg := processor.DefaultConfig()
	cfg.Group = h.env.Prefix + "-processor"
	cfg.InstanceID = h.env.Prefix + "-main"
	cfg.BatchDeadline = 5 * time.Second
	cfg.ClaimLease = 10 * time.Second
	cfg.TxnTimeout = 10 * time.Second
	cfg.BackoffMax = 200 * time.Millisecond
	return cfg
}

func (h *harness) kopts() []kgo.Opt { return []kgo.Opt{kgo.SeedBrokers(h.env.Brokers...)} }

// process runs the ordinary processor until n outcomes, then stops it.
func (h *harness) process(n int64) {
	h.t.Helper()
	p, err := processor.New(h.pcfg(), processor.Deps{KafkaOpts: h.kopts(), Topics: h.topics, Sources: h.sources, Router: h.router,
		Registry: h.env.Registry(h.t), Codec: h.codec, Store: h.store})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	testenv.Eventually(h.t, 60*time.Second, fmt.Sprintf("%d outcomes", n), func() bool {
		c := p.Counts()
		return c.Total(processor.Processed)+c.Total(processor.Duplicate)+c.Total(processor.Stale)+c.Total(processor.Invalid)+c.Total(processor.DeadLetter) >= n
	})
	cancel()
	if err := <-done; err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) deps() Deps {
	return Deps{KafkaOpts: h.kopts(), Topics: h.topics, Sources: h.sources, Router: h.router, Registry: h.env.Registry(h.t),
		Codec: h.codec, Store: h.store, Redis: h.rdb, KeyPrefix: h.env.Prefix + ":"}
}

func (h *harness) replay(t *testing.T, id string, mode Mode, from time.Time) *Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cfg := Config{ID: id, Source: "stripe", From: from, Mode: mode, Processor: h.pcfg()}
	sum, err := Run(ctx, cfg, h.deps())
	if err != nil {
		t.Fatalf("replay %s: %v", id, err)
	}
	return sum
}

var seq atomic.Int64

// send writes a Stripe payment_intent event to the raw topic as ingest
// would.
func (h *harness) send(src, evtID, piID string, created int64) {
	h.t.Helper()
	payload := fmt.Appendf(nil, `{"id":%q,"object":"event","api_version":"2024-06-20","created":%d,"type":"payment_intent.succeeded","livemode":false,"data":{"object":{"id":%q,"object":"payment_intent","status":"succeeded","amount":1200,"currency":"usd","customer":null,"metadata":{}}}}`,
		evtID, created, piID)
	e := &envelope.Envelope{
		ID: fmt.Sprintf("id-%d", seq.Add(1)), Source: src, EventType: "payment_intent.succeeded", EventID: evtID,
		IdempotencyKey: envelope.IdempotencyKey(src, evtID), SchemaVersion: "2024-06-20",
		ReceivedAt: time.Now().UTC().Truncate(time.Microsecond), CorrelationID: "corr-" + evtID, Channel: envelope.ChannelWebhook,
		Headers: map[string]string{}, Payload: payload, ContentType: "application/json",
	}
	val, err := h.codec.Encode(e)
	if err != nil {
		h.t.Fatal(err)
	}
	rec := &kgo.Record{Topic: h.topics.Raw, Key: []byte(e.IdempotencyKey), Value: val,
		Headers: []kgo.RecordHeader{{Key: "correlation-id", Value: []byte(e.CorrelationID)}}}
	if err := h.prod.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
		h.t.Fatal(err)
	}
}

// states reads the stored state of entity keys.
func (h *harness) states(keys ...string) map[string]store.EntityState {
	h.t.Helper()
	out := map[string]store.EntityState{}
	for _, k := range keys {
		st, ok, err := h.store.Entity(context.Background(), k)
		if err != nil {
			h.t.Fatal(err)
		}
		if ok {
			out[k] = st
		}
	}
	return out
}

package replay

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/ops"
	"github.com/inletdev/inlet/pkg/processor"
	"github.com/inletdev/inlet/pkg/processor/processortest"
	"github.com/inletdev/inlet/pkg/router"
	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/pkg/store"
	"github.com/inletdev/inlet/pkg/testenv"
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
	stack   *processortest.Stack
	env     *testenv.Env
	topics  kafka.Topics
	sources *source.File
	router  *router.Router
	codec   *envelope.Codec
	rdb     *redis.Client
	store   *store.Store
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	t.Setenv("T_STRIPE", "s")
	s := processortest.New(t, testenv.Embedded(t), testSources)
	return &harness{t: t, stack: s, env: s.Env, topics: s.Topics, sources: s.Sources, router: s.Router, codec: s.Codec, rdb: s.Redis, store: s.Store}
}

func (h *harness) pcfg() processor.Config { return h.stack.Config() }

func (h *harness) kopts() []kgo.Opt { return h.stack.KafkaOpts() }

// process runs the ordinary processor until n outcomes, then stops it.
func (h *harness) process(n int64) {
	h.t.Helper()
	h.stack.Run(h.t, fmt.Sprintf("%d outcomes", n), func(c *processor.Counts) bool { return processortest.Final(c) >= n })
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

// send writes a Stripe payment_intent event to the raw topic as ingest
// would.
func (h *harness) send(src, evtID, piID string, created int64) {
	h.t.Helper()
	h.stack.Send(h.t, src, "payment_intent.succeeded", evtID, processortest.StripePayment(evtID, "payment_intent.succeeded", piID, created))
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

// pipeHook sees each pipeline (transactions too) of a Redis client:
// before it runs, to fail it (a non-nil error) instead, and after, with
// its error. Calls are one at a time (the pipeline itself runs outside).
type pipeHook struct {
	before func(cmds []redis.Cmder) error
	after  func(cmds []redis.Cmder, err error)
}

type redisHook struct {
	mu sync.Mutex
	pipeHook
}

func (*redisHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (*redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (k *redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if k.before != nil {
			k.mu.Lock()
			err := k.before(cmds)
			k.mu.Unlock()
			if err != nil {
				return err
			}
		}
		err := next(ctx, cmds)
		if k.after != nil {
			k.mu.Lock()
			k.after(cmds, err)
			k.mu.Unlock()
		}
		return err
	}
}

// hookedRedis is a client of the harness's Redis of its own, whose
// pipelines go through hk.
func (h *harness) hookedRedis(t *testing.T, hk pipeHook) *redis.Client {
	t.Helper()
	c := redis.NewClient(h.rdb.Options())
	t.Cleanup(func() { _ = c.Close() })
	c.AddHook(&redisHook{pipeHook: hk})
	return c
}

// hookedStore is the harness's store on a hookedRedis.
func (h *harness) hookedStore(t *testing.T, hk pipeHook) *store.Store {
	t.Helper()
	return store.New(h.hookedRedis(t, hk), store.KeyPrefix(h.env.Prefix+":"))
}

// pipelineOf is the first command's name of cmds past a transaction's
// MULTI ("del", "evalsha", "hset"...), and whether one of them names
// field.
func pipelineOf(cmds []redis.Cmder, field string) (name string, names bool) {
	for _, c := range cmds {
		n := c.Name()
		if n == "multi" || n == "exec" {
			continue
		}
		if name == "" {
			name = n
		}
		for _, a := range c.Args() {
			if s, ok := a.(string); ok && s == field {
				names = true
			}
		}
	}
	return name, names
}

// sendAt writes a Stripe payment_intent event of src to partition 0 of
// the raw topic, as ingest does, stamped ts (ingest stamps the time the
// request was received, taken before the produce): written in the order
// of the calls, whatever their times.
func (h *harness) sendAt(t *testing.T, cl *kgo.Client, src, evtID, piID string, ts time.Time) {
	t.Helper()
	e := &envelope.Envelope{
		ID: "id-" + evtID, Source: src, EventType: "payment_intent.succeeded", EventID: evtID,
		IdempotencyKey: envelope.IdempotencyKey(src, evtID), SchemaVersion: "2024-06-20",
		ReceivedAt: ts.UTC().Truncate(time.Microsecond), CorrelationID: "corr-" + evtID, Channel: envelope.ChannelWebhook,
		Headers: map[string]string{}, Payload: processortest.StripePayment(evtID, "payment_intent.succeeded", piID, 1700000000),
		ContentType: "application/json",
	}
	val, err := h.codec.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	rec := &kgo.Record{Topic: h.topics.Raw, Partition: 0, Key: []byte(e.IdempotencyKey), Value: val, Timestamp: ts,
		Headers: []kgo.RecordHeader{{Key: processor.HeaderCorrelationID, Value: []byte(e.CorrelationID)}}}
	if err := cl.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// sendInvalid writes stripe event evt_bad, whose payment intent has no id:
// the processor sends it to the invalid topic.
func (h *harness) sendInvalid() {
	h.t.Helper()
	h.stack.Send(h.t, "stripe", "payment_intent.succeeded", "evt_bad",
		[]byte(`{"id":"evt_bad","object":"event","api_version":"2024-06-20","created":1700000001,"type":"payment_intent.succeeded","data":{"object":{"object":"payment_intent"}}}`))
}

// requeueInvalid requeues the one stripe entry on the invalid topic, as an
// operator whose contract was fixed would.
func (h *harness) requeueInvalid() {
	h.t.Helper()
	q, err := ops.New(h.kopts(), h.topics, h.codec)
	if err != nil {
		h.t.Fatal(err)
	}
	defer q.Close()
	if res, err := q.Requeue(context.Background(), h.topics.Invalid, ops.Filter{Source: "stripe"}, "test", "contract fixed", false); err != nil || res.Count != 1 {
		h.t.Fatalf("requeue: %d entries, %v", res.Count, err)
	}
}

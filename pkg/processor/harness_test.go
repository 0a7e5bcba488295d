package processor

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/alert"
	"github.com/inletdev/inlet/pkg/contract"
	"github.com/inletdev/inlet/pkg/declarative"
	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/history"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/registry"
	"github.com/inletdev/inlet/pkg/router"
	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/pkg/store"
	"github.com/inletdev/inlet/pkg/telemetry"
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
  shop:
    kind: shopify
    secrets_env: [T_SHOP]
    dedup_window: 1h
    events:
      "orders/*":
        contract: shopify/order
        entity_key: "shopify:order:{/id}"
        natural_key: "{/id}:{/updated_at}"
        occurred_at: /updated_at
  billing:
    kind: standard-webhooks
    secrets_env: [T_BILLING]
    events:
      "*":
        contract: standardwebhooks/event
        entity_key: "billing:{/data/id}"
        natural_key: "{/type}:{/data/id}"
        occurred_at: /timestamp
`

// harness runs processors against an Env and writes envelopes the way
// ingest does.
type harness struct {
	t       *testing.T
	env     *testenv.Env
	topics  kafka.Topics
	sources *source.File
	router  *router.Router
	codec   *envelope.Codec
	rdb     *redis.Client
	prefix  string
	prod    *kgo.Client
	alerter *alert.Alerter
	tel     *telemetry.Telemetry
	hist    *history.Store
	log     *slog.Logger
	// registry and procCodec, when set, are the processors' registry
	// client and envelope codec, instead of ones straight to the Env's
	// registry; encode, when set, writes the envelopes send sends.
	registry  *registry.Client
	procCodec *envelope.Codec
	encode    func(*envelope.Envelope) ([]byte, error)
	mu        sync.Mutex
	procs     []*running
}

type running struct {
	p      *Processor
	cancel context.CancelFunc
	done   chan error
}

func newHarness(t *testing.T, env *testenv.Env) *harness {
	t.Helper()
	return newHarnessWith(t, env, testSources, nil, nil)
}

// newHarnessWith uses its own sources file, retry tiers (nil: defaults) and
// alerter.
func newHarnessWith(t *testing.T, env *testenv.Env, sourcesYAML string, tiers []time.Duration, al *alert.Alerter) *harness {
	t.Helper()
	t.Setenv("T_STRIPE", "s")
	t.Setenv("T_SHOP", "s")
	t.Setenv("T_BILLING", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	sources, err := source.Parse([]byte(sourcesYAML))
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
	topics := env.CreateTopics(t, tiers)
	codec := env.Codec(t, topics)
	rdb := env.Redis(t)
	h := &harness{t: t, env: env, topics: topics, sources: sources, router: rt, codec: codec, rdb: rdb, prefix: env.Prefix + ":", alerter: al,
		prod: env.Client(t, kgo.ProducerLinger(0), kgo.ProducerBatchMaxBytes(kafka.MaxMessageBytes))}
	t.Cleanup(h.stopAll)
	return h
}

func (h *harness) config() Config {
	cfg := DefaultConfig()
	cfg.Group = h.env.Prefix + "-processor"
	cfg.BatchDeadline = 5 * time.Second
	cfg.DrainTimeout = 4 * time.Second // with the deadline, under the lease
	cfg.ClaimLease = 10 * time.Second
	cfg.TxnTimeout = 10 * time.Second
	cfg.BackoffMax = 200 * time.Millisecond
	return cfg
}

// start runs a processor until stop (or the test's end).
func (h *harness) start(id string, mod func(*Config)) *running {
	h.t.Helper()
	return h.startHooked(id, mod, nil)
}

// startHooked is start with a crash hook installed before the processor
// runs.
func (h *harness) startHooked(id string, mod func(*Config), crash func() bool) *running {
	h.t.Helper()
	cfg := h.config()
	cfg.InstanceID = h.env.Prefix + "-" + id
	if mod != nil {
		mod(&cfg)
	}
	p, err := New(cfg, h.deps(cfg))
	if err != nil {
		h.t.Fatal(err)
	}
	p.crashBeforeCommit = crash
	return h.run(p)
}

// run runs p until stop (or the test's end), counted among the harness's
// processors.
func (h *harness) run(p *Processor) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{p: p, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- p.Run(ctx) }()
	h.mu.Lock()
	h.procs = append(h.procs, r)
	h.mu.Unlock()
	return r
}

// deps are the dependencies of a processor with cfg on the harness.
func (h *harness) deps(cfg Config) Deps {
	return Deps{
		KafkaOpts: []kgo.Opt{kgo.SeedBrokers(h.env.Brokers...)},
		Topics:    h.topics, Sources: h.sources, Router: h.router,
		Registry: h.registryClient(), Codec: cmp.Or(h.procCodec, h.codec),
		Store:     store.New(h.rdb, append([]store.Opt{store.KeyPrefix(h.prefix)}, cfg.StoreOpts()...)...),
		Log:       h.logger(),
		Alerter:   h.alerter,
		Telemetry: h.tel,
		History:   h.hist,
		// Tests read the gauges right after events settle.
		DepthEvery: 200 * time.Millisecond,
	}
}

func (h *harness) registryClient() *registry.Client {
	if h.registry != nil {
		return h.registry
	}
	return h.env.Registry(h.t)
}

func (r *running) stop(t testing.TB) {
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("processor: %v", err)
		}
		r.done <- nil // later stops see it finished
	case <-time.After(30 * time.Second):
		// Where it hangs is the only clue a CI log can keep.
		var stacks strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
		t.Errorf("processor did not stop within 30s; goroutines:\n%s", stacks.String())
	}
}

func (h *harness) stopAll() {
	h.mu.Lock()
	procs := h.procs
	h.procs = nil
	h.mu.Unlock()
	for _, r := range procs {
		r.stop(h.t)
	}
}

// total sums an outcome over every processor started.
func (h *harness) total(o Outcome) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	var n int64
	for _, r := range h.procs {
		n += r.p.Counts().Total(o)
	}
	return n
}

func (h *harness) all() int64 {
	return h.total(Processed) + h.total(Duplicate) + h.total(Stale) + h.total(Invalid) + h.total(DeadLetter)
}

func (h *harness) waitAll(n int64) {
	h.t.Helper()
	testenv.Eventually(h.t, 60*time.Second, fmt.Sprintf("%d outcomes", n), func() bool { return h.all() >= n })
}

var seq atomic.Int64

// send writes an envelope to the raw topic as ingest would.
func (h *harness) send(src, eventType, eventID, version, channel string, payload []byte) *envelope.Envelope {
	h.t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	e := &envelope.Envelope{
		ID: fmt.Sprintf("id-%d", seq.Add(1)), Source: src, EventType: eventType, EventID: eventID,
		IdempotencyKey: envelope.IdempotencyKey(src, eventID), SchemaVersion: version,
		ReceivedAt: now, CorrelationID: fmt.Sprintf("corr-%s", eventID), Channel: channel,
		Headers: map[string]string{}, Payload: payload, ContentType: "application/json",
	}
	if channel == envelope.ChannelEvents {
		var line struct {
			OccurredAt time.Time `json:"occurred_at"`
		}
		_ = json.Unmarshal(payload, &line)
		if !line.OccurredAt.IsZero() {
			e.OccurredAt = &line.OccurredAt
		}
	}
	encode := h.codec.Encode
	if h.encode != nil {
		encode = h.encode
	}
	val, err := encode(e)
	if err != nil {
		h.t.Fatal(err)
	}
	rec := &kgo.Record{Topic: h.topics.Raw, Key: []byte(e.IdempotencyKey), Value: val,
		Headers: []kgo.RecordHeader{{Key: HeaderCorrelationID, Value: []byte(e.CorrelationID)}, {Key: HeaderTraceparent, Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")}}}
	if err := h.prod.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
		h.t.Fatal(err)
	}
	return e
}

func paymentIntent(evtID, piID, status string, created int64) []byte {
	return fmt.Appendf(nil, `{"id":%q,"object":"event","api_version":"2024-06-20","created":%d,"type":"payment_intent.%s","livemode":false,"data":{"object":{"id":%q,"object":"payment_intent","status":%q,"amount":1200,"currency":"usd","customer":null,"metadata":{"order":"42"}}}}`,
		evtID, created, status, piID, status)
}

// shopOrder is an order body; v2 (API 2025-01 on) adds current_total_price.
func shopOrder(id int64, updated time.Time, status string, v2 bool) []byte {
	extra := ""
	if v2 {
		extra = `"current_total_price":"10.00",`
	}
	return fmt.Appendf(nil, `{"id":%d,"name":"#%d","email":"jon@example.com","created_at":"2025-01-01T10:00:00-05:00","updated_at":%q,"currency":"USD","total_price":"10.00",%s"financial_status":%q,"line_items":[{"id":1,"title":"Hat","quantity":1,"price":"10.00","unknown_extra":true}],"extra_top":{"a":1}}`,
		id, id, updated.Format(time.RFC3339), extra, status)
}

// decodeProcessed reads every processed record as a generic map, through
// the registry by the writer's schema ID.
func (h *harness) processed(min int) []map[string]any {
	h.t.Helper()
	return h.decoded(h.topics.Processed, min)
}

// decoded reads every record of topic (processed or state) as processed
// does.
func (h *harness) decoded(topic string, min int) []map[string]any {
	h.t.Helper()
	recs := h.env.ReadAll(h.t, topic, min, 700*time.Millisecond, 60*time.Second)
	reg := h.env.Registry(h.t)
	var out []map[string]any
	for _, r := range recs {
		id, err := reg.SchemaID(r.Value)
		if err != nil {
			h.t.Fatal(err)
		}
		schema, err := reg.WriterSchema(context.Background(), id)
		if err != nil {
			h.t.Fatal(err)
		}
		var v map[string]any
		if err := reg.Decode(context.Background(), r.Value, schema, &v); err != nil {
			h.t.Fatal(err)
		}
		v["_key"] = string(r.Key)
		for _, hd := range r.Headers {
			v["_h_"+hd.Key] = string(hd.Value)
		}
		out = append(out, v)
	}
	return out
}

func storeFor(h *harness) *store.Store { return store.New(h.rdb, store.KeyPrefix(h.prefix)) }

func (h *harness) logger() *slog.Logger {
	if h.log != nil {
		return h.log
	}
	return testLog(h.t)
}

// testLog writes the processor's log to the test log when INLET_TEST_LOG is
// set.
func testLog(t testing.TB) *slog.Logger {
	if os.Getenv("INLET_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

package reconcile

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/contract"
	"github.com/inletdev/inlet/pkg/declarative"
	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/ops"
	"github.com/inletdev/inlet/pkg/processor"
	"github.com/inletdev/inlet/pkg/retry"
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
`

// Plants every kind of gap with a real processor, then reconciles a sender
// log against it.
func TestCheck(t *testing.T) {
	t.Setenv("T_STRIPE", "s")
	env := testenv.Embedded(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
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
	// Go handlers that fail: permanently (→ DLQ) and transiently (→ the
	// 30s retry tier, where the event waits).
	_ = rt.Handle(router.Route{Source: "stripe", EventType: "charge.dlq", Version: "*"}, router.HandlerFunc(func(context.Context, *router.Event) (*router.Output, error) {
		return nil, retry.Permanent(errors.New("downstream said 400"))
	}))
	_ = rt.Handle(router.Route{Source: "stripe", EventType: "charge.retry", Version: "*"}, router.HandlerFunc(func(context.Context, *router.Event) (*router.Output, error) {
		return nil, retry.Retryable(errors.New("downstream said 503"), 0)
	}))
	topics := env.CreateTopics(t, nil)
	codec, err := envelope.NewCodec(ctx, env.Registry(t), topics.RawSubject())
	if err != nil {
		t.Fatal(err)
	}
	opt, _ := redis.ParseURL(env.RedisURL)
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	prod := env.Client(t, kgo.ProducerLinger(0))
	kopts := []kgo.Opt{kgo.SeedBrokers(env.Brokers...)}
	send := func(evtID, typ string, payload string) {
		t.Helper()
		if payload == "" {
			payload = fmt.Sprintf(`{"id":%q,"object":"event","api_version":"2024-06-20","created":1700000000,"type":%q,"livemode":false,"data":{"object":{"id":"pi_%s","object":"payment_intent","status":"succeeded","amount":1,"currency":"usd","customer":null,"metadata":{}}}}`, evtID, typ, evtID)
		}
		e := &envelope.Envelope{ID: "id-" + evtID, Source: "stripe", EventType: typ, EventID: evtID,
			IdempotencyKey: envelope.IdempotencyKey("stripe", evtID), SchemaVersion: "2024-06-20", ReceivedAt: time.Now().UTC().Truncate(time.Microsecond),
			CorrelationID: "corr-" + evtID, Channel: envelope.ChannelWebhook, Headers: map[string]string{}, Payload: []byte(payload), ContentType: "application/json"}
		val, err := codec.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		rec := &kgo.Record{Topic: topics.Raw, Key: []byte(e.IdempotencyKey), Value: val,
			Headers: []kgo.RecordHeader{{Key: retry.HeaderCorrelationID, Value: []byte(e.CorrelationID)}}}
		if err := prod.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	send("evt_ok1", "payment_intent.succeeded", "")
	send("evt_ok2", "payment_intent.succeeded", "")
	send("evt_ok2", "payment_intent.succeeded", "") // redelivery: duplicate, final
	send("evt_inv", "payment_intent.succeeded", `{"id":"evt_inv","type":"payment_intent.succeeded"}`)
	send("evt_dlq", "charge.dlq", "")
	send("evt_retry", "charge.retry", "")
	send("other:evt_x", "payment_intent.succeeded", "") // not in the sender log: ignored

	pcfg := processor.DefaultConfig()
	pcfg.Group, pcfg.InstanceID = "inlet-processor", env.Prefix+"-p"
	pcfg.BatchDeadline, pcfg.ClaimLease, pcfg.TxnTimeout, pcfg.BackoffMax = 5*time.Second, 10*time.Second, 10*time.Second, 200*time.Millisecond
	p, err := processor.New(pcfg, processor.Deps{KafkaOpts: kopts, Topics: topics, Sources: sources, Router: rt,
		Registry: env.Registry(t), Codec: codec, Store: store.New(rdb, store.KeyPrefix(env.Prefix+":"))})
	if err != nil {
		t.Fatal(err)
	}
	pctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(pctx) }()
	testenv.Eventually(t, 60*time.Second, "6 final outcomes and 1 retry", func() bool {
		c := p.Counts()
		return c.Total(processor.Processed)+c.Total(processor.Duplicate)+c.Total(processor.Invalid)+c.Total(processor.DeadLetter) >= 6 &&
			c.Total(processor.Retried) >= 1
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	send("evt_stuck", "payment_intent.succeeded", "") // the processor is down

	q, err := ops.New(kopts, topics, codec)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	at := time.Now().Add(-time.Minute)
	log := []SenderEvent{{"evt_ok1", at}, {"evt_ok2", at}, {"evt_inv", at}, {"evt_dlq", at}, {"evt_retry", at}, {"evt_stuck", at}, {"evt_never", at},
		{"evt_old", at.Add(-time.Hour)}} // before --since: not checked
	rep, err := Check(ctx, Config{Source: "stripe", Since: at.Add(-time.Second)}, Deps{KafkaOpts: kopts, Topics: topics, Queues: q}, log)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Status{"evt_never": NeverReceived, "evt_stuck": Stuck, "evt_retry": InRetry, "evt_dlq": InDLQ, "evt_inv": Invalid}
	got := map[string]Status{}
	for _, r := range rep.Events {
		got[r.ID] = r.Status
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("gaps %v, want %v", got, want)
	}
	if rep.Total != 7 || rep.Gaps != 5 || rep.Counts[Processed] != 2 {
		t.Fatalf("report %+v", rep)
	}

	t.Run("a discarded DLQ entry is resolved", func(t *testing.T) {
		if _, err := q.Discard(ctx, topics.DLQ, ops.Filter{Source: "stripe", EventType: "charge.dlq"}, "test", "refunded by hand", false); err != nil {
			t.Fatal(err)
		}
		rep, err := Check(ctx, Config{Source: "stripe", All: true}, Deps{KafkaOpts: kopts, Topics: topics, Queues: q}, log[:4])
		if err != nil {
			t.Fatal(err)
		}
		if rep.Gaps != 1 || rep.Counts[Processed] != 3 || len(rep.Events) != 4 {
			t.Fatalf("report %+v", rep)
		}
	})
}

package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/retry"
	"github.com/inletdev/inlet/pkg/testenv"
)

// TestQueueRequeueUsesTheProcessorsTiers: with other retry tiers than the
// defaults, a requeue goes to the first of them (it went to a default
// tier's topic, which such a deployment does not have).
func TestQueueRequeueUsesTheProcessorsTiers(t *testing.T) {
	env := testenv.Embedded(t)
	topics := env.CreateTopics(t, []time.Duration{5 * time.Second, time.Minute})
	codec, err := envelope.NewCodec(context.Background(), env.Registry(t), topics.RawSubject())
	if err != nil {
		t.Fatal(err)
	}
	e := &envelope.Envelope{ID: "id-q1", Source: "stripe", EventType: "payment_intent.succeeded", EventID: "evt_q1",
		IdempotencyKey: envelope.IdempotencyKey("stripe", "evt_q1"), SchemaVersion: "2024-06-20", ReceivedAt: time.Now().UTC().Truncate(time.Microsecond),
		CorrelationID: "corr-q1", Channel: envelope.ChannelWebhook, Headers: map[string]string{}, Payload: []byte(`{"id":"evt_q1"}`), ContentType: "application/json"}
	val, err := codec.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	h := retry.AppendError(nil, retry.ErrorEntry{At: time.Now().UTC(), Stage: "deliver", Error: "sink answered 503"})
	h = retry.Set(h, retry.HeaderReason, "retry budget exhausted")
	cl := env.Client(t, kgo.ProducerLinger(0))
	res := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topics.DLQ, Key: []byte(e.IdempotencyKey), Value: val, Headers: h})
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	r := res[0].Record
	id := fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset)
	flags := []string{"-kafka-brokers", strings.Join(env.Brokers, ","), "-schema-registry-url", env.RegistryURL, "-topic-prefix", env.Prefix}

	if code, err := run(append(flags, "dlq", "requeue", id, "--reason", "test", "--retry-tiers", "soon"), &bytes.Buffer{}); code != exitUsage {
		t.Fatalf("--retry-tiers soon: exit %d (%v), want %d", code, err, exitUsage)
	}
	var out bytes.Buffer
	if code, err := run(append(flags, "dlq", "requeue", id, "--reason", "sink fixed", "--retry-tiers", "5s,1m"), &out); code != exitOK {
		t.Fatalf("requeue: exit %d: %v\n%s", code, err, out.String())
	}
	got := env.ReadAll(t, topics.Retry[0], 1, 300*time.Millisecond, 10*time.Second)
	if len(got) != 1 || retry.Get(got[0].Headers, retry.HeaderAttempt) != "1" {
		t.Fatalf("%d records on %s, want the requeued one at attempt 1", len(got), topics.Retry[0])
	}
}

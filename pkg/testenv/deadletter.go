package testenv

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/retry"
)

// DeadLetter writes one entry to topics.DLQ like a processor's dead
// letter, as far as the queues read it: an envelope of source, type and
// event id (payload {"id": eventID}) encoded with codec, an error history
// holding errText, reason "retry budget exhausted" (no origin header: there
// is no raw record behind it, and no transaction). It returns the entry's
// id (topic/partition/offset).
func (e *Env) DeadLetter(t testing.TB, topics kafka.Topics, codec *envelope.Codec, source, eventType, eventID, errText string) string {
	t.Helper()
	ev := &envelope.Envelope{ID: "id-" + eventID, Source: source, EventType: eventType, EventID: eventID,
		IdempotencyKey: envelope.IdempotencyKey(source, eventID), SchemaVersion: "v1", ReceivedAt: time.Now().UTC().Truncate(time.Microsecond),
		CorrelationID: "corr-" + eventID, Channel: envelope.ChannelWebhook, Headers: map[string]string{},
		Payload: fmt.Appendf(nil, `{"id":%q}`, eventID), ContentType: "application/json"}
	val, err := codec.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	h := retry.AppendError(nil, retry.ErrorEntry{At: time.Now().UTC(), Stage: "deliver", Error: errText})
	h = retry.Set(h, retry.HeaderReason, "retry budget exhausted")
	res := e.Client(t, kgo.ProducerLinger(0)).ProduceSync(context.Background(),
		&kgo.Record{Topic: topics.DLQ, Key: []byte(ev.IdempotencyKey), Value: val, Headers: h})
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	return retry.Coordinates(res[0].Record)
}

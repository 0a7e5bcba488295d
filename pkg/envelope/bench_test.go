package envelope

import (
	"bytes"
	"testing"
	"time"
)

// benchEnvelope is a webhook's envelope with a 1 KiB body.
func benchEnvelope() *Envelope {
	occurred := time.UnixMicro(1700000000123456).UTC()
	return &Envelope{
		ID: "0190c0de-0000-7000-8000-000000000001", Source: "stripe", EventType: "payment_intent.succeeded",
		EventID: "evt_1", IdempotencyKey: IdempotencyKey("stripe", "evt_1"), SchemaVersion: "2024-06-20",
		ReceivedAt: time.UnixMicro(1700000001000000).UTC(), OccurredAt: &occurred, CorrelationID: "4bf92f3577b34da6a3ce929d0e0e4736",
		Channel: ChannelWebhook, Payload: bytes.Repeat([]byte("x"), 1024), ContentType: "application/json",
	}
}

// BenchmarkEncode1KiB is the envelope encode ingest does per webhook.
func BenchmarkEncode1KiB(b *testing.B) {
	_, codec := testCodec(b)
	e := benchEnvelope()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := codec.Encode(e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode1KiB is the envelope decode the processor does per
// record (with the bound on its headers map, see registry.checkBlocks).
func BenchmarkDecode1KiB(b *testing.B) {
	_, codec := testCodec(b)
	e := benchEnvelope()
	e.Headers = map[string]string{"User-Agent": "Stripe/1.0", "X-Request-Id": "req_1"}
	v, err := codec.Encode(e)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := codec.Decode(b.Context(), v); err != nil {
			b.Fatal(err)
		}
	}
}

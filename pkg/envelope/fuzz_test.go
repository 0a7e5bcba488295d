package envelope

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"maps"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/registry"
)

// FuzzDecode decodes arbitrary bytes as a value read off the raw topic,
// which anyone with write access may have produced. The input is framed
// with the ID of one of two registered envelope versions (the current
// one, and a later one with a field first, so decoding goes through a
// resolution), or taken as it is. Invariants:
//
//   - Decode never panics, and an error wraps ErrNotFramed,
//     ErrUnknownSchema or ErrUndecodable: the processor sends those to the
//     invalid topic (a registry outage aside);
//   - a length prefix of up to 2^63 allocates no more than a record can
//     hold (registry's decodeAPI bounds a string or bytes at
//     kafka.MaxMessageBytes), whatever the input's size;
//   - what decodes encodes again, and decodes back to the same envelope.
func FuzzDecode(f *testing.F) {
	_, codec := testCodec(f)
	ctx := context.Background()
	latest, err := Latest()
	if err != nil {
		f.Fatal(err)
	}
	later := strings.Replace(latest.Text, `"fields": [`, `"fields": [{"name": "tenant", "type": "string", "default": ""},`, 1)
	laterID, _, err := codec.reg.Register(ctx, "inlet.raw-value", later)
	if err != nil {
		f.Fatal(err)
	}
	ids := []int{codec.SchemaID(), laterID}

	occurred := time.UnixMicro(1700000000123456).UTC()
	in := &Envelope{
		ID: "0190c0de-0000-7000-8000-000000000001", Source: "stripe", EventType: "payment_intent.succeeded",
		EventID: "evt_1", IdempotencyKey: IdempotencyKey("stripe", "evt_1"), SchemaVersion: "2024-06-20",
		ReceivedAt: time.UnixMicro(1700000001000000).UTC(), OccurredAt: &occurred, CorrelationID: "c-1",
		Channel: ChannelWebhook, Headers: map[string]string{"user-agent": "Stripe/1.0", "x": ""},
		Payload: []byte("{\"id\":\"evt_1\"}\x00"), ContentType: "application/json",
	}
	good, err := codec.Encode(in)
	if err != nil {
		f.Fatal(err)
	}
	body := good[5:]
	f.Add(uint8(0), body)
	f.Add(uint8(0), body[:len(body)/2])
	f.Add(uint8(0), append(bytes.Clone(body), 0))
	f.Add(uint8(1), append([]byte{2, 'a'}, body...))
	f.Add(uint8(2), good)
	f.Add(uint8(2), []byte("{}"))
	f.Add(uint8(2), []byte{0, 0, 0, 0x7f, 0x7f, 0})
	f.Add(uint8(0), binary.AppendVarint(nil, 1<<40))
	f.Add(uint8(0), binary.AppendVarint(nil, 1<<62))
	f.Add(uint8(0), binary.AppendVarint(nil, -1<<63))
	// Every string empty, then a map block of 2^62 entries.
	f.Add(uint8(0), binary.AppendVarint(append(bytes.Repeat([]byte{0}, 7), 0, 0, 0), 1<<62))
	// A map block with a negative count, whose byte size follows.
	f.Add(uint8(0), binary.AppendVarint(binary.AppendVarint(append(bytes.Repeat([]byte{0}, 7), 0, 0, 0), -(1<<62)), 1<<62))

	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		value := b
		if i := int(which) % 3; i < len(ids) {
			value = append(binary.BigEndian.AppendUint32([]byte{0}, uint32(ids[i])), b...)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		e, err := codec.Decode(ctx, value)
		runtime.ReadMemStats(&after)
		// Up to one string or bytes read at its full claimed length, then
		// room for what the input itself holds.
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2*kafka.MaxMessageBytes+uint64(64*len(value)) {
			t.Fatalf("decoding %d bytes allocated %d", len(value), alloc)
		}
		if err != nil {
			if !errors.Is(err, registry.ErrNotFramed) && !errors.Is(err, registry.ErrUnknownSchema) && !errors.Is(err, registry.ErrUndecodable) {
				t.Fatalf("error %v wraps none of ErrNotFramed, ErrUnknownSchema, ErrUndecodable", err)
			}
			return
		}
		again, err := codec.Encode(e)
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", e, err)
		}
		e2, err := codec.Decode(ctx, again)
		if err != nil {
			t.Fatalf("re-encoded %+v does not decode: %v", e, err)
		}
		if !sameEnvelope(e, e2) {
			t.Fatalf("round trip changed the envelope:\n%+v\n%+v", e, e2)
		}
	})
}

func sameEnvelope(a, b *Envelope) bool {
	return a.ID == b.ID && a.Source == b.Source && a.EventType == b.EventType && a.EventID == b.EventID &&
		a.IdempotencyKey == b.IdempotencyKey && a.SchemaVersion == b.SchemaVersion && a.ReceivedAt.Equal(b.ReceivedAt) &&
		(a.OccurredAt == nil) == (b.OccurredAt == nil) && (a.OccurredAt == nil || a.OccurredAt.Equal(*b.OccurredAt)) &&
		a.CorrelationID == b.CorrelationID && a.Channel == b.Channel && maps.Equal(a.Headers, b.Headers) &&
		bytes.Equal(a.Payload, b.Payload) && a.ContentType == b.ContentType
}

package envelope

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/registry"
	"github.com/inletdev/inlet/pkg/registry/registrytest"
)

// TestEnvelopeVersionsStayCompatible: every published envelope version
// reads, and is read by, every other (FULL, transitively). The raw log is
// kept forever and decoded by the newest codec (backward, all the way to
// v1), and during a rolling deploy an old processor reads what a new
// ingest wrote (forward).
func TestEnvelopeVersionsStayCompatible(t *testing.T) {
	vs, err := Versions()
	if err != nil {
		t.Fatal(err)
	}
	if err := versionsCompatible(vs); err != nil {
		t.Error(err)
	}
}

// versionsCompatible checks every pair of vs under FULL rules.
func versionsCompatible(vs []Version) error {
	var errs []error
	for i := range vs {
		for j := i + 1; j < len(vs); j++ {
			if err := registry.Check(registry.Full, vs[i].Schema, vs[j].Schema); err != nil {
				errs = append(errs, fmt.Errorf("envelope v%d and v%d: %w", vs[i].N, vs[j].N, err))
			}
		}
	}
	return errors.Join(errs...)
}

// TestEnvelopeCompatibilityCheckCatchesBreakingChanges: the check above
// can fail. It compared each version with the one before under BACKWARD
// rules only, and passed a dropped field (an old processor cannot read
// the new envelope) and a chain whose last version cannot read its first.
func TestEnvelopeCompatibilityCheckCatchesBreakingChanges(t *testing.T) {
	const (
		v1      = `{"type":"record","name":"Envelope","namespace":"dev.inlet","fields":[{"name":"id","type":"string"},{"name":"payload","type":"bytes"}]}`
		added   = `{"type":"record","name":"Envelope","namespace":"dev.inlet","fields":[{"name":"id","type":"string"},{"name":"payload","type":"bytes"},{"name":"tenant","type":"string","default":""}]}`
		noDflt  = `{"type":"record","name":"Envelope","namespace":"dev.inlet","fields":[{"name":"id","type":"string"},{"name":"payload","type":"bytes"},{"name":"tenant","type":"string"}]}`
		retyped = `{"type":"record","name":"Envelope","namespace":"dev.inlet","fields":[{"name":"id","type":"long"},{"name":"payload","type":"bytes"}]}`
		dropped = `{"type":"record","name":"Envelope","namespace":"dev.inlet","fields":[{"name":"id","type":"string"}]}`
	)
	for name, tc := range map[string]struct {
		versions []string
		breaking bool
	}{
		"added field with default":      {[]string{v1, added}, false},
		"added field without default":   {[]string{v1, noDflt}, true},
		"changed type":                  {[]string{v1, retyped}, true},
		"field dropped without default": {[]string{v1, dropped}, true},
		// Each step BACKWARD, but the last cannot read the first.
		"not transitive": {[]string{v1, added, noDflt}, true},
	} {
		t.Run(name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for i, v := range tc.versions {
				fsys[fmt.Sprintf("e/v%d.avsc", i+1)] = &fstest.MapFile{Data: []byte(v)}
			}
			vs, err := versionsFrom(fsys, "e")
			if err != nil {
				t.Fatal(err)
			}
			err = versionsCompatible(vs)
			if got := errors.Is(err, registry.ErrBreakingChange); got != tc.breaking {
				t.Fatalf("breaking = %v, want %v (err %v)", got, tc.breaking, err)
			}
		})
	}
}

func TestCodecRoundTrip(t *testing.T) {
	reg, codec := testCodec(t)
	ctx := context.Background()
	occurred := time.UnixMicro(1700000000123456).UTC()
	in := &Envelope{
		ID: "0190c0de-0000-7000-8000-000000000001", Source: "stripe", EventType: "payment_intent.succeeded",
		EventID: "evt_1", IdempotencyKey: IdempotencyKey("stripe", "evt_1"), SchemaVersion: "2024-06-20",
		ReceivedAt: time.UnixMicro(1700000001000000).UTC(), OccurredAt: &occurred, CorrelationID: "c-1",
		Channel: ChannelWebhook, Headers: map[string]string{"user-agent": "Stripe/1.0"},
		Payload: []byte("{\"id\":\"evt_1\",\n \"odd\": \"\\u00e9 bytes kept\"}\x00"), ContentType: "application/json",
	}
	b, err := codec.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != 0 {
		t.Fatalf("magic byte = %d, want 0", b[0])
	}
	// A second process with a fresh client decodes by the ID in the header.
	cl2, _ := sr.NewClient(sr.URLs(reg.URL()))
	codec2, err := NewCodec(ctx, registry.New(cl2), "inlet.raw-value")
	if err != nil {
		t.Fatal(err)
	}
	out, err := codec2.Decode(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Payload, in.Payload) {
		t.Fatalf("payload changed: %q", out.Payload)
	}
	if out.IdempotencyKey != in.IdempotencyKey || !out.OccurredAt.Equal(*in.OccurredAt) || !out.ReceivedAt.Equal(in.ReceivedAt) || out.Headers["user-agent"] != "Stripe/1.0" {
		t.Fatalf("round trip mismatch: %+v", out)
	}

	t.Run("not framed", func(t *testing.T) {
		if _, err := codec2.Decode(ctx, []byte("{}")); !errors.Is(err, registry.ErrNotFramed) {
			t.Fatalf("err = %v, want ErrNotFramed", err)
		}
	})
	t.Run("unknown schema id", func(t *testing.T) {
		bad := append([]byte{0, 0, 0, 0x7f, 0x7f}, b[5:]...)
		if _, err := codec2.Decode(ctx, bad); !errors.Is(err, registry.ErrUnknownSchema) {
			t.Fatalf("err = %v, want ErrUnknownSchema", err)
		}
	})
	t.Run("truncated body", func(t *testing.T) {
		if _, err := codec2.Decode(ctx, b[:len(b)/2]); !errors.Is(err, registry.ErrUndecodable) {
			t.Fatalf("err = %v, want ErrUndecodable", err)
		}
	})
}

// TestCodecLargeValues: a body as large as a source may accept decodes
// (hamba's own default stopped bytes at 1 MiB), and a length prefix
// claiming more than a record can hold is refused without allocating it.
func TestCodecLargeValues(t *testing.T) {
	_, codec := testCodec(t)
	ctx := context.Background()
	for _, size := range []int{1<<20 + 1, kafka.MaxBodyBytes} {
		in := &Envelope{
			ID: "id-big", Source: "src", EventType: "big", EventID: "evt_big", IdempotencyKey: IdempotencyKey("src", "evt_big"),
			SchemaVersion: "v1", ReceivedAt: time.UnixMicro(1).UTC(), CorrelationID: "c", Channel: ChannelWebhook,
			Payload: bytes.Repeat([]byte("x"), size), ContentType: "application/json",
		}
		b, err := codec.Encode(in)
		if err != nil {
			t.Fatal(err)
		}
		out, err := codec.Decode(ctx, b)
		if err != nil {
			t.Fatalf("%d-byte payload: %v", size, err)
		}
		if !bytes.Equal(out.Payload, in.Payload) {
			t.Fatalf("%d-byte payload changed", size)
		}
	}
	// A real header (schema ID 1), then the id string's length: 1 TiB.
	hostile := binary.AppendVarint([]byte{0, 0, 0, 0, 1}, 1<<40)
	if _, err := codec.Decode(ctx, append(hostile, "abc"...)); !errors.Is(err, registry.ErrUndecodable) {
		t.Fatalf("err = %v, want ErrUndecodable", err)
	}
}

// TestDecodedEnvelopesStayIntact: decoders are pooled and share their string
// slab across decodes, so an envelope decoded earlier must not change when
// others (from other goroutines too) are decoded after it, and a failed
// decode must not poison the next one.
func TestDecodedEnvelopesStayIntact(t *testing.T) {
	_, codec := testCodec(t)
	ctx := context.Background()
	var err error
	const n = 400
	ins := make([]*Envelope, n)
	vals := make([][]byte, n)
	for i := range n {
		id := fmt.Sprintf("evt_%d", i)
		ins[i] = &Envelope{
			ID: fmt.Sprintf("id-%d", i), Source: "src", EventType: fmt.Sprintf("type.%d", i), EventID: id,
			IdempotencyKey: IdempotencyKey("src", id), SchemaVersion: "v1", ReceivedAt: time.UnixMicro(int64(i)).UTC(),
			CorrelationID: fmt.Sprintf("c-%d", i), Channel: ChannelWebhook, Headers: map[string]string{"h": id},
			// Short payloads: hamba carves them out of the shared slab.
			Payload: []byte(fmt.Sprintf(`{"n":%d,"pad":"%s"}`, i, strings.Repeat("x", i%300))), ContentType: "application/json",
		}
		if vals[i], err = codec.Encode(ins[i]); err != nil {
			t.Fatal(err)
		}
	}
	outs := make([]*Envelope, n)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				out, err := codec.Decode(ctx, vals[i])
				if err != nil {
					t.Errorf("decode %d: %v", i, err)
					return
				}
				outs[i] = out
				// A truncated record fails between good ones.
				if _, err := codec.Decode(ctx, vals[i][:len(vals[i])-3]); err == nil {
					t.Errorf("decode of truncated %d succeeded", i)
				}
			}
		})
	}
	wg.Wait()
	for i, out := range outs {
		if out == nil {
			continue
		}
		in := ins[i]
		if out.ID != in.ID || out.EventType != in.EventType || out.EventID != in.EventID || out.CorrelationID != in.CorrelationID ||
			out.Headers["h"] != in.EventID || !bytes.Equal(out.Payload, in.Payload) || out.ContentType != in.ContentType {
			t.Fatalf("envelope %d changed after later decodes:\n got %+v\nwant %+v", i, out, in)
		}
	}
}

// testCodec is a codec on a fresh fake registry (returned too, for a second
// client).
func testCodec(t testing.TB) (*srfake.Registry, *Codec) {
	t.Helper()
	reg := srfake.New()
	t.Cleanup(reg.Close)
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	codec, err := NewCodec(context.Background(), registry.New(cl), "inlet.raw-value")
	if err != nil {
		t.Fatal(err)
	}
	return reg, codec
}

// TestLookupCodec: the codec of a process that must not write to the
// registry finds the envelope schema ingest registered, fails with
// ErrNotRegistered before that, never writes, and decodes envelopes by
// the writer schema ID in each value, whichever version wrote them.
func TestLookupCodec(t *testing.T) {
	reg := srfake.New()
	t.Cleanup(reg.Close)
	readOnly, writes := registrytest.ReadOnly(t, reg.URL())
	client := func(url string) *registry.Client {
		cl, err := sr.NewClient(sr.URLs(url))
		if err != nil {
			t.Fatal(err)
		}
		return registry.New(cl)
	}
	ctx := context.Background()
	const subject = "inlet.raw-value"

	if _, err := LookupCodec(ctx, client(readOnly), subject); !errors.Is(err, registry.ErrNotRegistered) {
		t.Fatalf("before ingest registered it: %v; want ErrNotRegistered", err)
	}
	writer, err := NewCodec(ctx, client(reg.URL()), subject) // as ingest does at start
	if err != nil {
		t.Fatal(err)
	}
	codec, err := LookupCodec(ctx, client(readOnly), subject)
	if err != nil {
		t.Fatal(err)
	}
	if codec.SchemaID() != writer.SchemaID() {
		t.Fatalf("schema id %d, want the registered %d", codec.SchemaID(), writer.SchemaID())
	}

	in := &Envelope{ID: "id-1", Source: "stripe", EventType: "t", EventID: "evt_1", IdempotencyKey: IdempotencyKey("stripe", "evt_1"),
		SchemaVersion: "v1", ReceivedAt: time.UnixMicro(1700000000000000).UTC(), CorrelationID: "c-1", Channel: ChannelWebhook,
		Headers: map[string]string{}, Payload: []byte(`{}`), ContentType: "application/json"}
	t.Run("decodes what the registered schema wrote", func(t *testing.T) {
		b, err := writer.Encode(in)
		if err != nil {
			t.Fatal(err)
		}
		out, err := codec.Decode(ctx, b)
		if err != nil || out.EventID != "evt_1" || out.CorrelationID != "c-1" {
			t.Fatalf("decode: %+v, %v", out, err)
		}
	})
	t.Run("decodes what another registered version wrote", func(t *testing.T) {
		// A later version with a field first: decoding with the reader's
		// own layout would misread every field after it.
		latest, err := Latest()
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Replace(latest.Text, `"fields": [`, `"fields": [{"name": "tenant", "type": "string", "default": ""},`, 1)
		rc := client(reg.URL())
		id, schema, err := rc.Register(ctx, subject, text)
		if err != nil || id == writer.SchemaID() {
			t.Fatalf("register a second version: id %d, %v", id, err)
		}
		b, err := rc.Encode(nil, id, schema, map[string]any{
			"tenant": "acme", "id": in.ID, "source": in.Source, "event_type": in.EventType, "event_id": in.EventID,
			"idempotency_key": in.IdempotencyKey, "schema_version": in.SchemaVersion, "received_at": in.ReceivedAt,
			"occurred_at": nil, "correlation_id": in.CorrelationID, "channel": in.Channel, "headers": in.Headers,
			"payload": in.Payload, "content_type": in.ContentType,
		})
		if err != nil {
			t.Fatal(err)
		}
		out, err := codec.Decode(ctx, b)
		if err != nil || out.EventID != "evt_1" || out.CorrelationID != "c-1" || out.Source != "stripe" {
			t.Fatalf("decode: %+v, %v", out, err)
		}
	})
	if w := writes(); len(w) > 0 {
		t.Fatalf("the lookup codec wrote to the registry: %v", w)
	}
}

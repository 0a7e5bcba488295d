package envelope

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/registry"
	"github.com/inletdev/inlet/pkg/registry/registrytest"
	"github.com/inletdev/inlet/schemas"
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

// versionsCompatible checks every pair of vs under FULL rules, and that
// a field keeps its logical type: hamba's checker (like Avro's own) ignores
// logical types, and passed received_at turned from timestamp-micros to
// timestamp-millis, which reads every older record's time 1000 times too
// far (year 55840).
func versionsCompatible(vs []Version) error {
	var errs []error
	for i := range vs {
		for j := i + 1; j < len(vs); j++ {
			if err := registry.Check(registry.Full, vs[i].Schema, vs[j].Schema); err != nil {
				errs = append(errs, fmt.Errorf("envelope v%d and v%d: %w", vs[i].N, vs[j].N, err))
			}
			if err := sameLogicalTypes("", vs[i].Schema, vs[j].Schema); err != nil {
				errs = append(errs, fmt.Errorf("envelope v%d and v%d: %w: %w", vs[i].N, vs[j].N, registry.ErrBreakingChange, err))
			}
		}
	}
	return errors.Join(errs...)
}

// sameLogicalTypes reports where a and b, two versions of one schema, give
// the same data different logical types: fields are matched by name, union
// branches by type and name.
func sameLogicalTypes(path string, a, b avro.Schema) error {
	if la, lb := logicalOf(a), logicalOf(b); la != lb {
		return fmt.Errorf("%s: logical type {%s} in one version, {%s} in the other", cmp.Or(path, "/"), la, lb)
	}
	switch a := a.(type) {
	case *avro.RecordSchema:
		b, ok := b.(*avro.RecordSchema)
		if !ok {
			return nil
		}
		for _, fa := range a.Fields() {
			for _, fb := range b.Fields() {
				if fa.Name() == fb.Name() {
					if err := sameLogicalTypes(path+"/"+fa.Name(), fa.Type(), fb.Type()); err != nil {
						return err
					}
				}
			}
		}
	case *avro.UnionSchema:
		b, ok := b.(*avro.UnionSchema)
		if !ok {
			return nil
		}
		for _, ta := range a.Types() {
			for _, tb := range b.Types() {
				if ta.Type() == tb.Type() && schemaName(ta) == schemaName(tb) {
					if err := sameLogicalTypes(path, ta, tb); err != nil {
						return err
					}
				}
			}
		}
	case *avro.MapSchema:
		if b, ok := b.(*avro.MapSchema); ok {
			return sameLogicalTypes(path+"/*", a.Values(), b.Values())
		}
	case *avro.ArraySchema:
		if b, ok := b.(*avro.ArraySchema); ok {
			return sameLogicalTypes(path+"/[]", a.Items(), b.Items())
		}
	}
	return nil
}

func logicalOf(s avro.Schema) string {
	if l, ok := s.(avro.LogicalTypeSchema); ok && l.Logical() != nil {
		return l.Logical().String()
	}
	return ""
}

func schemaName(s avro.Schema) string {
	if n, ok := s.(avro.NamedSchema); ok {
		return n.FullName()
	}
	return ""
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
		v1t     = `{"type":"record","name":"Envelope","namespace":"dev.inlet","fields":[{"name":"at","type":{"type":"long","logicalType":"timestamp-micros"}}]}`
		v1t2    = `{"type":"record","name":"Envelope","namespace":"dev.inlet","fields":[{"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}}]}`
		v1tl    = `{"type":"record","name":"Envelope","namespace":"dev.inlet","fields":[{"name":"at","type":"long"}]}`
		v1td    = `{"type":"record","name":"Envelope","namespace":"dev.inlet","fields":[{"name":"at","doc":"when","type":{"type":"long","logicalType":"timestamp-micros"}}]}`
		v1o     = `{"type":"record","name":"Envelope","namespace":"dev.inlet","fields":[{"name":"at","type":["null",{"type":"long","logicalType":"timestamp-micros"}],"default":null}]}`
		v1o2    = `{"type":"record","name":"Envelope","namespace":"dev.inlet","fields":[{"name":"at","type":["null",{"type":"long","logicalType":"timestamp-millis"}],"default":null}]}`
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
		// FULL for hamba's checker; a time read 1000 times off.
		"logical type changed":            {[]string{v1t, v1t2}, true},
		"logical type in a union changed": {[]string{v1o, v1o2}, true},
		"logical type dropped":            {[]string{v1t, v1tl}, true},
		"doc changed":                     {[]string{v1t, v1td}, false},
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

// TestEnvelopeVersionsRoundTrip: FULL compatibility proved by real data,
// not only by the checker. For every pair of published envelope versions,
// a value written with one (registered and framed, as on the raw topic,
// which keeps every version's records forever) decodes through the
// registry with the other as reader — ingest's current code reading old
// records, and a data team's consumer pinned to an old version reading new
// ones — each field as written, or its default where the writer lacks
// it; and the current codec reads every version into an Envelope. Values
// at the edges: empty strings, maps and bytes and null unions; the
// largest body a source may take, with many headers.
func TestEnvelopeVersionsRoundTrip(t *testing.T) {
	vs, err := Versions()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range versionsRoundTrip(t, vs) {
		t.Error(p)
	}
	// The round trip sees what the checker misses: a logical type changed.
	latest := vs[len(vs)-1]
	millis := strings.Replace(latest.Text, `{"type": "long", "logicalType": "timestamp-micros"}, "doc": "When ingest`, `{"type": "long", "logicalType": "timestamp-millis"}, "doc": "When ingest`, 1)
	if millis == latest.Text {
		t.Fatal("received_at not found in the latest envelope schema")
	}
	bad, err := versionsFrom(fstest.MapFS{"e/v1.avsc": {Data: []byte(latest.Text)}, "e/v2.avsc": {Data: []byte(millis)}}, "e")
	if err != nil {
		t.Fatal(err)
	}
	if p := versionsRoundTrip(t, bad); !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, "received_at") }) {
		t.Errorf("received_at turned timestamp-millis not seen by the round trip: %q", p)
	}
}

// versionsRoundTrip writes edge values with each of vs and reads them with
// each, returning what did not read back.
func versionsRoundTrip(t *testing.T, vs []Version) []string {
	t.Helper()
	ctx := context.Background()
	fake := srfake.New()
	t.Cleanup(fake.Close)
	client := func() *registry.Client {
		cl, err := sr.NewClient(sr.URLs(fake.URL()))
		if err != nil {
			t.Fatal(err)
		}
		return registry.New(cl)
	}
	writer := client()
	ids := make([]int, len(vs))
	for i, v := range vs {
		var err error
		if ids[i], _, err = writer.Register(ctx, "inlet.raw-value", v.Text); err != nil {
			t.Fatalf("register v%d: %v", v.N, err)
		}
	}
	reader := client() // another process: writer schemas fetched by id
	codec := &Codec{reg: reader, schema: vs[len(vs)-1].Schema, id: ids[len(vs)-1]}
	var problems []string
	for i, w := range vs {
		for level := range 3 {
			in := edgeValue(t, w.Schema, level, "f").(map[string]any)
			b, err := writer.Encode(nil, ids[i], w.Schema, in)
			if err != nil {
				t.Fatalf("v%d, values %d: encode: %v", w.N, level, err)
			}
			for _, r := range vs {
				var out map[string]any
				if err := reader.Decode(ctx, b, r.Schema, &out); err != nil {
					problems = append(problems, fmt.Sprintf("written with v%d (values %d), read as v%d: %v", w.N, level, r.N, err))
					continue
				}
				for _, f := range r.Schema.(*avro.RecordSchema).Fields() {
					want, ok := in[f.Name()]
					if !ok {
						want = f.Default()
					}
					if got := out[f.Name()]; !sameValue(got, want) {
						problems = append(problems, fmt.Sprintf("written with v%d (values %d), read as v%d: %s = %.80s, want %.80s", w.N, level, r.N, f.Name(), short(got), short(want)))
					}
				}
			}
			e, err := codec.Decode(ctx, b)
			if err != nil {
				problems = append(problems, fmt.Sprintf("written with v%d (values %d), read by the current codec: %v", w.N, level, err))
				continue
			}
			for name, got := range map[string]any{"id": e.ID, "source": e.Source, "event_id": e.EventID, "idempotency_key": e.IdempotencyKey,
				"correlation_id": e.CorrelationID, "received_at": e.ReceivedAt, "payload": e.Payload} {
				if want, ok := in[name]; ok && !sameValue(got, want) {
					problems = append(problems, fmt.Sprintf("written with v%d (values %d), read by the current codec: %s differs", w.N, level, name))
				}
			}
			if len(e.Headers) != len(in["headers"].(map[string]any)) || (e.OccurredAt == nil) != (in["occurred_at"] == nil) {
				problems = append(problems, fmt.Sprintf("written with v%d (values %d), read by the current codec: %d headers, occurred_at %v", w.N, level, len(e.Headers), e.OccurredAt))
			}
		}
	}
	return problems
}

// edgeValue is a value of s at one of three levels: 0 empty strings,
// maps and bytes, null unions and the zero time; 1 ordinary; 2 the
// largest (a body as large as a source may take, many headers, the
// longest string a kept header or payload field may be).
func edgeValue(t *testing.T, s avro.Schema, level int, name string) any {
	t.Helper()
	switch s := s.(type) {
	case *avro.RecordSchema:
		m := map[string]any{}
		for _, f := range s.Fields() {
			m[f.Name()] = edgeValue(t, f.Type(), level, f.Name())
		}
		return m
	case *avro.UnionSchema:
		for _, b := range s.Types() {
			if level == 0 && b.Type() == avro.Null {
				return nil
			}
			if b.Type() != avro.Null {
				return edgeValue(t, b, level, name)
			}
		}
	case *avro.MapSchema:
		m := map[string]any{}
		for i := range [...]int{0, 1, 200}[level] {
			m[fmt.Sprintf("h-%d", i)] = edgeValue(t, s.Values(), 1, name)
		}
		if level == 2 {
			m[""] = ""
		}
		return m
	case *avro.PrimitiveSchema:
		if l := s.Logical(); l != nil && (l.Type() == avro.TimestampMicros || l.Type() == avro.TimestampMillis) {
			return [...]time.Time{time.UnixMilli(0), time.UnixMicro(1700000000123456), time.UnixMicro(-1000)}[level].UTC()
		}
		switch s.Type() {
		case avro.String:
			return [...]string{"", name + "-é", name + strings.Repeat("é\x00", 2<<10)}[level]
		case avro.Bytes:
			return [...][]byte{{}, []byte(`{"id":"evt_1"}`), bytes.Repeat([]byte{0xff, 0}, kafka.MaxBodyBytes/2)}[level]
		case avro.Long:
			return [...]int64{0, 42, math.MaxInt64}[level]
		case avro.Int:
			return [...]int32{0, 42, math.MinInt32}[level]
		case avro.Boolean:
			return level == 1
		}
	}
	t.Fatalf("edgeValue: no value for %s (%s)", name, s.Type())
	return nil
}

// short is v for a message: bytes by their length.
func short(v any) string {
	if b, ok := v.([]byte); ok {
		return fmt.Sprintf("%d bytes", len(b))
	}
	return fmt.Sprint(v)
}

// sameValue compares a decoded value with the one written: times by
// instant, bytes by content, empty maps alike.
func sameValue(got, want any) bool {
	switch w := want.(type) {
	case time.Time:
		g, ok := got.(time.Time)
		return ok && g.Equal(w)
	case []byte:
		g, ok := got.([]byte)
		return ok && bytes.Equal(g, w)
	case map[string]any:
		if g, ok := got.(map[string]any); ok && len(g) == 0 && len(w) == 0 {
			return true
		}
	}
	return reflect.DeepEqual(got, want)
}

// releasedEnvelopes pins each published envelope version's file by its
// SHA-256. The raw topic keeps every version's records forever, decoded
// by the writer schema the registry holds resolved to the newest file: an
// edit to a released file (a logical type, a default) changes how those
// records read, with no second version for the checks above to compare,
// and a new text makes a registry add a version under the subject. A new
// version is pinned here when it is added.
var releasedEnvelopes = map[int]string{
	1: "5e5f84170ab72a71df76161b54a2be74e2bd1b0a07f02307866995f35a33398c",
}

// TestReleasedEnvelopesUnchanged: a released envelope file is never edited,
// and every version file is pinned.
func TestReleasedEnvelopesUnchanged(t *testing.T) {
	if err := checkPinned(schemas.Envelope, "envelope", releasedEnvelopes); err != nil {
		t.Error(err)
	}
	// The check can fail: v1 with received_at in milliseconds, and a
	// version without a pin.
	v1, err := fs.ReadFile(schemas.Envelope, "envelope/v1.avsc")
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Replace(v1, []byte(`"timestamp-micros"}, "doc": "When ingest`), []byte(`"timestamp-millis"}, "doc": "When ingest`), 1)
	if err := checkPinned(fstest.MapFS{"e/v1.avsc": {Data: edited}}, "e", releasedEnvelopes); err == nil || bytes.Equal(edited, v1) {
		t.Errorf("an edited v1 passed: %v", err)
	}
	if err := checkPinned(fstest.MapFS{"e/v1.avsc": {Data: v1}, "e/v2.avsc": {Data: v1}}, "e", releasedEnvelopes); err == nil {
		t.Error("an unpinned v2 passed")
	}
}

// checkPinned says which version files under dir differ from their pins
// in pins, or have none.
func checkPinned(fsys fs.FS, dir string, pins map[int]string) error {
	vs, err := versionsFrom(fsys, dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, v := range vs {
		sum := sha256.Sum256([]byte(v.Text))
		switch pin, ok := pins[v.N]; {
		case !ok:
			errs = append(errs, fmt.Errorf("envelope v%d has no pin: add %d: %q to releasedEnvelopes", v.N, v.N, hex.EncodeToString(sum[:])))
		case pin != hex.EncodeToString(sum[:]):
			errs = append(errs, fmt.Errorf("envelope v%d was edited (sha256 %x, released as %s): a released version is never changed; add v%d instead", v.N, sum, pin, vs[len(vs)-1].N+1))
		}
	}
	return errors.Join(errs...)
}

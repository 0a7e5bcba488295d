package registry

import (
	"context"
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"testing"
)

// framed is value body framed for schema id.
func framed(id int, body []byte) []byte {
	return append([]byte{0, byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}, body...)
}

// TestHostileBlockCountsAreRefused: a value of a few bytes whose array or
// map count says millions or 2^46 items is refused as undecodable, read
// into any (as inletctl tail reads every topic) or into a typed value,
// without the decode allocating for the count: it allocated 256 MiB for
// 2^24 items and crashed the process for 2^46. Honest values with arrays,
// maps, nulls and nesting decode as before.
func TestHostileBlockCountsAreRefused(t *testing.T) {
	c := fakeClient(t)
	ctx := context.Background()
	const text = `{"type":"record","name":"P","namespace":"review","fields":[
		{"name":"items","type":{"type":"array","items":"string"}},
		{"name":"tags","type":{"type":"map","values":"long"}},
		{"name":"nulls","type":{"type":"array","items":"null"}},
		{"name":"kids","type":{"type":"array","items":{"type":"record","name":"K","fields":[{"name":"k","type":["null","K"]}]}}}]}`
	id, schema, err := c.Register(ctx, "p-value", text)
	if err != nil {
		t.Fatal(err)
	}
	good := map[string]any{
		"items": []any{"a", "b"},
		"tags":  map[string]any{"x": int64(1)},
		"nulls": []any{nil, nil, nil},
		"kids":  []any{map[string]any{"k": map[string]any{"review.K": map[string]any{"k": nil}}}},
	}
	b, err := c.Encode(nil, id, schema, good)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := c.Decode(ctx, b, schema, &v); err != nil {
		t.Fatalf("an honest value: %v", err)
	}
	for name, body := range map[string][]byte{
		"array of 2^24":         binary.AppendVarint(nil, 1<<24),
		"array of 2^46":         binary.AppendVarint(nil, 1<<46),
		"negative count 2^46":   binary.AppendVarint(binary.AppendVarint(nil, -(1<<46)), 8),
		"map of 2^40":           append(binary.AppendVarint(nil, 0), binary.AppendVarint(nil, 1<<40)...),
		"nulls past the bound":  append(append(binary.AppendVarint(nil, 0), 0), binary.AppendVarint(nil, maxEmptyItems+1)...),
		"array then truncated":  binary.AppendVarint(nil, 3),
		"union branch past end": append(append(append(binary.AppendVarint(nil, 0), 0, 0), binary.AppendVarint(nil, 1)...), 9),
	} {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			var v any
			err := c.Decode(ctx, framed(id, body), schema, &v)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrUndecodable) {
				t.Fatalf("%d-byte value: %v, want it undecodable", len(body), err)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
				t.Errorf("%d-byte value: decode allocated %d MiB", len(body), got>>20)
			}
			var typed struct {
				Items []string `avro:"items"`
			}
			if err := c.Decode(ctx, framed(id, body), schema, &typed); err == nil {
				t.Errorf("typed: decoded")
			}
		})
	}
	// The bound counts bytes, not a fixed number: a long honest array
	// decodes.
	long := make([]any, 100000)
	for i := range long {
		long[i] = "x"
	}
	good["items"] = long
	if b, err = c.Encode(nil, id, schema, good); err != nil {
		t.Fatal(err)
	}
	if err := c.Decode(ctx, b, schema, &v); err != nil || len(v.(map[string]any)["items"].([]any)) != len(long) {
		t.Fatalf("100,000 items: %v", err)
	}
	if err := checkBlocks(schema, b[5:len(b)-1]); err == nil || !strings.Contains(err.Error(), "ends") && !strings.Contains(err.Error(), "past") {
		t.Errorf("truncated: %v", err)
	}
}

package jsonvalid

import (
	"encoding/json"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/inletdev/inlet/pkg/kafka"
)

// nested is depth levels of [ closed again: valid JSON for encoding/json
// up to 10000 levels.
func nested(depth int) []byte {
	return []byte(strings.Repeat("[", depth) + strings.Repeat("]", depth))
}

// FuzzValid: Valid accepts exactly what encoding/json accepts, at any size,
// so which validator runs never changes an outcome (a 400 into a 202 at
// ingest, an invalid event into a processed one).
func FuzzValid(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `[1,2`, "\"\xff\"", `{"a":"\ud800"}`, `1e999`, `-0`, `01`, `{"a":1}x`, ` `, `nul`, "\"\x01\"", `{"a":[{}]}`, ``, "1.", "-", `"\u12"`, `[1,]`, `{"a" 1}`} {
		f.Add([]byte(s))
	}
	// encoding/json stops at 10000 levels; gjson does not.
	for _, d := range []int{gjsonMaxBytes / 2, 10000, 10001} {
		f.Add(nested(d))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := Valid(b), json.Valid(b); got != want {
			t.Fatalf("%.40q… (%d bytes): Valid %v, encoding/json %v", b, len(b), got, want)
		}
	})
}

// TestDeepNesting: hostile nesting, up to the largest body a source may
// accept, is judged as encoding/json judges it, within a bounded stack.
// gjson recursed per level: 64 MiB of stack for 1 MiB of "[[[…", 256 MiB
// at the largest body. Over the limit set here the runtime stops the whole
// test binary ("goroutine stack exceeds"), which is how this test fails.
func TestDeepNesting(t *testing.T) {
	defer debug.SetMaxStack(debug.SetMaxStack(16 << 20))
	for _, d := range []int{gjsonMaxBytes / 2, 10000, 10001, 20000, 1 << 19, kafka.MaxBodyBytes / 2} {
		b := nested(d)
		if got, want := Valid(b), json.Valid(b); got != want {
			t.Errorf("depth %d: Valid %v, encoding/json %v", d, got, want)
		}
	}
}

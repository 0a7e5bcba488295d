package ingest

import (
	"encoding/json"
	"testing"
)

// FuzzValidJSON: validJSON accepts exactly what encoding/json accepts, so
// switching validators never turns a 400 into a 202 or the reverse.
func FuzzValidJSON(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `[1,2`, "\"\xff\"", `{"a":"\ud800"}`, `1e999`, `-0`, `01`, `{"a":1}x`, ` `, `nul`, "\"\x01\"", `{"a":[{}]}`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("%q: validJSON %v, encoding/json %v", b, got, want)
		}
	})
}

package contract

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// rawJSONReference is the straightforward definition canonical must match:
// decode (numbers as sent) and re-encode with sorted keys.
func rawJSONReference(raw []byte) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var j any
	if err := dec.Decode(&j); err != nil {
		return "null"
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(j); err != nil {
		return "null"
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func TestCanonicalMatchesReference(t *testing.T) {
	for _, s := range []string{
		`{"b":1,"a":[1,2.50,{"z":null,"y":true}],"c":"\u00e9\/x","a":"dup"}`, `[]`, `{}`, `"x\u2028"`, ` { "k" : [ ] } `,
		`{"\u0062":1,"a":2}`, `1e5`, `{"a":"<&>"}`, `-0`, `"\ud800"`, "\"\xff\xfe\"", `{"a":{"a":{"b":1,"a":2}}}`, `[[],{},""]`,
	} {
		if got, want := canonical([]byte(s)), rawJSONReference([]byte(s)); got != want {
			t.Errorf("%s: got %s, want %s", s, got, want)
		}
	}
}

// FuzzCanonical: for any valid JSON, canonical equals the reference.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":2}`, `[1,"x",null]`, `{"a":"\u00e9","a":1}`, `"\u2029"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return
		}
		if got, want := canonical(b), rawJSONReference(b); got != want {
			t.Fatalf("%q: got %s, want %s", b, got, want)
		}
	})
}

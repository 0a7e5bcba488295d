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

// duplicateReference is the straightforward definition of canonical's dup:
// some object of raw has two members whose names encoding/json decodes
// equal.
func duplicateReference(raw []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var open []map[string]bool // per open container; nil for an array
	keyNext := false           // the next token is a member name or '}'
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		switch {
		case tok == json.Delim('{'):
			open = append(open, map[string]bool{})
			keyNext = true
			continue
		case tok == json.Delim('['):
			open = append(open, nil)
			continue
		case tok == json.Delim('}') || tok == json.Delim(']'):
			open = open[:len(open)-1]
		case keyNext:
			name := tok.(string)
			if open[len(open)-1][name] {
				return true
			}
			open[len(open)-1][name] = true
			keyNext = false
			continue
		}
		// A value ended: an object expects a name next.
		keyNext = len(open) > 0 && open[len(open)-1] != nil
	}
}

func TestCanonicalMatchesReference(t *testing.T) {
	for _, s := range []string{
		`{"b":1,"a":[1,2.50,{"z":null,"y":true}],"c":"\u00e9\/x","a":"dup"}`, `[]`, `{}`, `"x\u2028"`, ` { "k" : [ ] } `,
		`{"\u0062":1,"a":2}`, `1e5`, `{"a":"<&>"}`, `-0`, `"\ud800"`, "\"\xff\xfe\"", `{"a":{"a":{"b":1,"a":2}}}`, `[[],{},""]`,
		`{"i\u0064":1,"id":2}`, `[{"x":1},{"y":{"z":1,"z":2}}]`, "{\"\xff\":1,\"\xfe\":2}", `{"a":{"a":1},"b":{"a":1}}`,
	} {
		got, dup := canonical([]byte(s))
		if want := rawJSONReference([]byte(s)); got != want {
			t.Errorf("%s: got %s, want %s", s, got, want)
		}
		if want := duplicateReference([]byte(s)); dup != want {
			t.Errorf("%s: dup %v, want %v", s, dup, want)
		}
	}
}

// FuzzCanonical: for any valid JSON, canonical equals the reference, and
// reports a duplicate member exactly when the reference finds one.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":2}`, `[1,"x",null]`, `{"a":"\u00e9","a":1}`, `"\u2029"`, `[{"a":{"\u0061":1,"a":2}}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return
		}
		got, dup := canonical(b)
		if want := rawJSONReference(b); got != want {
			t.Fatalf("%q: got %s, want %s", b, got, want)
		}
		if want := duplicateReference(b); dup != want {
			t.Fatalf("%q: dup %v, want %v", b, dup, want)
		}
	})
}

package source

import (
	"net/http"
	"testing"
)

// TestPointerRFC6901 checks the pointer cases where a gjson path alone
// reads something else: array indexes with leading zeros, members named
// "" or like numbers, and the escapes.
func TestPointerRFC6901(t *testing.T) {
	doc := []byte(`{"a":[10,20,30],"o":{"01":"zero-one","1":"one","":"empty"},"":{"x":"under empty"},"a/b":{"m~n":"esc"},"n":null}`)
	cases := []struct {
		ptr, want string // want "" = no value
	}{
		{"/a/1", "20"},
		{"/a/0", "10"},
		{"/a/01", ""}, // RFC 6901: no leading zeros in an array index
		{"/a/00", ""},
		{"/a/-", ""}, // the element after the last: never a value
		{"/a/+1", ""},
		{"/a/3", ""},
		{"/o/01", `"zero-one"`}, // in an object "01" is just a name
		{"/o/1", `"one"`},
		{"/o/", `"empty"`},
		{"/", `{"x":"under empty"}`},
		{"//x", `"under empty"`},
		{"/a~1b/m~0n", `"esc"`},
		{"/a/1/x", ""},
		{"/n/x", ""},
		{"", ""},
		{"a", ""},
	}
	for _, c := range cases {
		p := CompilePointer(c.ptr)
		for name, r := range map[string]string{"Get": p.Get(doc).Raw, "peek": p.peek(doc).Raw} {
			if r != c.want {
				t.Errorf("%s(%q) = %q, want %q", name, c.ptr, r, c.want)
			}
		}
	}
}

// TestFieldPointerFallback: a source field reads its pointer and fallbacks
// with the same rules.
func TestFieldPointerFallback(t *testing.T) {
	f := Field{Pointer: "/items/01/id", Fallback: []string{"/items/0/id", "/o/01"}}
	f.compile()
	body := []byte(`{"items":[{"id":"a"},{"id":"b"}],"o":{"01":"z"}}`)
	if got := lookup(f, http.Header{}, body); got != "a:z" {
		t.Errorf("lookup = %q, want the fallbacks joined, %q (a leading-zero index is not item 1)", got, "a:z")
	}
}

// TestFallbackKeysDoNotCollide: fallback values are joined so that
// different values give different event ids, as a template's are.
func TestFallbackKeysDoNotCollide(t *testing.T) {
	f := Field{Fallback: []string{"/a", "/b", "/c"}}
	f.compile()
	seen := map[string]string{}
	for _, body := range []string{
		`{"a":"x:y","b":"z","c":"1"}`,
		`{"a":"x","b":"y:z","c":"1"}`,
		`{"a":"x","b":"y","c":"z:1"}`,
		`{"a":"x%3Ay","b":"z","c":"1"}`,
		`{"a":"x","b":"y%3Az","c":"1"}`,
	} {
		got := lookup(f, http.Header{}, []byte(body))
		if prev, ok := seen[got]; ok {
			t.Fatalf("%s and %s both give %q", prev, body, got)
		}
		seen[got] = body
	}
	if got := lookup(f, http.Header{}, []byte(`{"a":"acct_1","b":7,"c":"2024-06-01T12:00:00Z"}`)); got != "acct_1:7:2024-06-01T12:00:00Z" {
		t.Errorf("plain values: %q, want them joined unchanged", got)
	}
}

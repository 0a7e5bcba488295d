package source

import (
	"errors"
	"math"
	"testing"
)

// TestByteSizeBounds: a size is at least one byte and at most what an
// int64 holds; the product of number and unit wrapped around before.
func TestByteSizeBounds(t *testing.T) {
	for in, want := range map[string]ByteSize{
		"1":                   1,
		"512KiB":              512 << 10,
		"1 MB":                1e6,
		"8589934591GiB":       (1<<33 - 1) << 30,
		"9223372036854775807": math.MaxInt64,
		"9007199254740991KB":  9007199254740991e3,
	} {
		var s ByteSize
		if err := s.UnmarshalText([]byte(in)); err != nil || s != want {
			t.Errorf("%q: %d (%v), want %d", in, s, err, want)
		}
	}
	for _, in := range []string{"0", "0B", "-1", "8589934592GiB", "17179869184GiB", "9223372036854775808", "9223372036854775808B", "9223372036854776KB", "abc", "1.5MiB", ""} {
		var s ByteSize
		if err := s.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("%q: %d, want an error", in, s)
		}
	}
}

// TestValueErrorIsTyped: a value that does not parse is a *ValueError
// naming its source, setting and line, wrapping the parser's error; a
// file without sources is ErrNoSources.
func TestValueErrorIsTyped(t *testing.T) {
	_, err := Parse([]byte("sources:\n  a:\n    kind: none\n  b:\n    kind: none\n    batch:\n      max_body: 1e9\n"), WithoutSecrets())
	var ve *ValueError
	if !errors.As(err, &ve) || ve.Source != "b" || ve.Field != "batch.max_body" || ve.Line != 7 {
		t.Fatalf("%#v (%v), want source b, field batch.max_body, line 7", ve, err)
	}
	_, err = Parse([]byte("sources:\n  a:\n    kind: none\n    tolerance: 9999999999h\n"), WithoutSecrets())
	if !errors.As(err, &ve) || ve.Field != "tolerance" || errors.Unwrap(ve) == nil {
		t.Fatalf("%v: want a *ValueError for tolerance wrapping the parser's error", err)
	}
	for _, doc := range []string{"", "# none yet\n", "sources: {}\n"} {
		if _, err := Parse([]byte(doc)); !errors.Is(err, ErrNoSources) {
			t.Errorf("%q: %v, want ErrNoSources", doc, err)
		}
	}
}

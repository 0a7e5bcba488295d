package bearer

import "testing"

func TestToken(t *testing.T) {
	for header, want := range map[string]string{"Bearer abc": "abc", "bearer abc": "abc", "BEARER a b": "a b",
		// RFC 9110 11.4: credentials = auth-scheme [ 1*SP ... ].
		"Bearer  abc": "abc", "bEaReR     abc": "abc", "Bearer   a b": "a b"} {
		if got, ok := Token(header); !ok || got != want {
			t.Errorf("Token(%q) = %q, %v; want %q", header, got, ok, want)
		}
	}
	for _, header := range []string{"", "Bearer", "Bearer ", "Basic abc", "Bearerabc",
		"Bearer   ", "Bearer\tabc", "Bearer \t", "Bearer \t\t", "Bearer \tabc", "Bearer abc\t", "Bearer \r\n"} {
		if got, ok := Token(header); ok {
			t.Errorf("Token(%q) = %q: want none", header, got)
		}
	}
}

func TestMatches(t *testing.T) {
	if !Matches("s3cret", []byte("s3cret")) || Matches("s3cret", []byte("S3cret")) || Matches("s3cre", []byte("s3cret")) || Matches("", []byte("x")) {
		t.Fatal("Matches is not exact equality")
	}
}

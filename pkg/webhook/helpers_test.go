package webhook_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/webhook"
)

// sentinels lists every error Verify may return, for assertions.
var sentinels = []error{
	webhook.ErrMissingSignature,
	webhook.ErrMalformedSignature,
	webhook.ErrSignatureMismatch,
	webhook.ErrTimestampOutOfTolerance,
}

// checkErr fails t unless err is nil when want is nil, or wraps want (and
// only want among the sentinels) and is unauthorized otherwise.
func checkErr(t *testing.T, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("Verify: unexpected error %v", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("Verify: got error %v, want %v", err, want)
	}
	if !webhook.IsUnauthorized(err) {
		t.Fatalf("IsUnauthorized(%v) = false", err)
	}
	for _, s := range sentinels {
		if s != want && errors.Is(err, s) {
			t.Fatalf("Verify: error %v also wraps %v", err, s)
		}
	}
}

// checkNoLeak fails t if err's text contains any of secrets.
func checkNoLeak(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Fatalf("error %q reveals %q", err, s)
		}
	}
}

// header builds an http.Header from name/value pairs, canonicalizing names
// as net/http does for received requests.
func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// tamper returns a copy of b with its last byte changed.
func tamper(b []byte) []byte {
	c := append([]byte(nil), b...)
	if len(c) == 0 {
		return []byte{0}
	}
	c[len(c)-1] ^= 0x01
	return c
}

// signed returns the headers p.Sign sets for body at now.
func signed(t testing.TB, p webhook.Signer, body []byte, now time.Time) http.Header {
	t.Helper()
	h := http.Header{}
	if err := p.Sign(h, body, now); err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return h
}

func secrets(ss ...string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

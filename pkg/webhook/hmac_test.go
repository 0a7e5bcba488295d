package webhook_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/webhook"
)

// RFC 4231 test case 2 (key "Jefe", data "what do ya want for nothing?")
// gives the HMAC-SHA512 below; the base64 form was checked with openssl.
const (
	rfc4231Case2SHA512Hex = "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
	rfc4231Case2SHA512B64 = "Fkt6e/z4GeLjlfvnO1bgo4e9ZCIugx/WECcM1+olBVSXWL91wFqZSm0DT2X48Ob9yuqxo01Ka0tjbgcKOLznNw=="
	rfc4231Case2SHA256Hex = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
)

func newHMAC(t testing.TB, cfg webhook.HMACConfig) *webhook.HMAC {
	t.Helper()
	p, err := webhook.NewHMAC(cfg)
	if err != nil {
		t.Fatalf("NewHMAC: %v", err)
	}
	return p
}

func TestHMACVectors(t *testing.T) {
	jefe := secrets(shopifySecret)
	body := []byte(shopifyBody)
	for _, v := range []struct {
		name string
		cfg  webhook.HMACConfig
		sig  string
	}{
		{"sha256 hex default", webhook.HMACConfig{Header: "X-Signature", Secrets: jefe}, rfc4231Case2SHA256Hex},
		{"sha256 base64", webhook.HMACConfig{Header: "X-Signature", Encoding: "base64", Secrets: jefe}, shopifySignature},
		{"sha512 hex", webhook.HMACConfig{Header: "X-Signature", Algorithm: "sha512", Secrets: jefe}, rfc4231Case2SHA512Hex},
		{"sha512 base64", webhook.HMACConfig{Header: "X-Signature", Algorithm: "SHA512", Encoding: "BASE64", Secrets: jefe}, rfc4231Case2SHA512B64},
		{"sha256 hex with prefix", webhook.HMACConfig{Header: "X-Signature", Prefix: "sha256=", Secrets: jefe}, "sha256=" + rfc4231Case2SHA256Hex},
		{"GitHub settings", webhook.HMACConfig{Header: webhook.GitHubHeader, Prefix: "sha256=", Secrets: secrets(githubSecret)}, githubSignature},
	} {
		b := body
		if v.name == "GitHub settings" {
			b = []byte(githubBody)
		}
		p := newHMAC(t, v.cfg)
		t.Run("verify "+v.name, func(t *testing.T) {
			checkErr(t, p.Verify(header(v.cfg.Header, v.sig), b, time.Time{}), nil)
		})
		t.Run("sign "+v.name, func(t *testing.T) {
			if got := signed(t, p, b, time.Time{}).Get(v.cfg.Header); got != v.sig {
				t.Fatalf("Sign = %q, want %q", got, v.sig)
			}
		})
	}
}

func TestHMACVerify(t *testing.T) {
	body := []byte(shopifyBody)
	const name = "X-Inlet-Signature"
	sig := "sha512=" + rfc4231Case2SHA512Hex
	cfg := func(ss ...string) webhook.HMACConfig {
		if ss == nil {
			ss = []string{shopifySecret}
		}
		return webhook.HMACConfig{Header: name, Algorithm: "sha512", Prefix: "sha512=", Secrets: secrets(ss...)}
	}
	tests := []struct {
		name string
		cfg  webhook.HMACConfig
		h    http.Header
		body []byte
		want error
	}{
		{name: "valid", cfg: cfg(), h: header(name, sig)},
		{name: "rotation: old secret still accepted", cfg: cfg("new", shopifySecret), h: header(name, sig)},
		{name: "rotation: new secret accepted", cfg: cfg(shopifySecret, "old"), h: header(name, sig)},
		{name: "wrong secret", cfg: cfg("Jeff"), h: header(name, sig), want: webhook.ErrSignatureMismatch},
		{name: "tampered body", cfg: cfg(), h: header(name, sig), body: tamper(body), want: webhook.ErrSignatureMismatch},
		{name: "missing header", cfg: cfg(), h: header("X-Other", sig), want: webhook.ErrMissingSignature},
		{name: "empty header", cfg: cfg(), h: header(name, ""), want: webhook.ErrMissingSignature},
		{name: "garbage", cfg: cfg(), h: header(name, "garbage"), want: webhook.ErrMalformedSignature},
		{name: "missing prefix", cfg: cfg(), h: header(name, rfc4231Case2SHA512Hex), want: webhook.ErrMalformedSignature},
		{name: "sha256-sized MAC", cfg: cfg(), h: header(name, "sha512="+rfc4231Case2SHA256Hex), want: webhook.ErrMalformedSignature},
		{name: "non-hex", cfg: cfg(), h: header(name, "sha512="+strings.Repeat("x", 128)), want: webhook.ErrMalformedSignature},
		{name: "base64 where hex expected", cfg: cfg(), h: header(name, "sha512="+rfc4231Case2SHA512B64), want: webhook.ErrMalformedSignature},
		{name: "repeated header", cfg: cfg(), h: header(name, sig, name, sig), want: webhook.ErrMalformedSignature},
		{name: "huge header", cfg: cfg(), h: header(name, sig+strings.Repeat(" ", 4096)), want: webhook.ErrMalformedSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.body
			if b == nil {
				b = body
			}
			err := newHMAC(t, tt.cfg).Verify(tt.h, b, time.Now())
			checkErr(t, err, tt.want)
			checkNoLeak(t, err, shopifySecret, rfc4231Case2SHA512Hex)
		})
	}
}

func TestHMACSign(t *testing.T) {
	body := []byte(`{"invoice":"in_1"}`)
	for _, cfg := range []webhook.HMACConfig{
		{Header: "X-Sig", Secrets: secrets("k")},
		{Header: "X-Sig", Encoding: "base64", Secrets: secrets("k")},
		{Header: "X-Sig", Algorithm: "sha512", Prefix: "v1=", Secrets: secrets("k")},
		{Header: "X-Sig", Algorithm: "sha512", Encoding: "base64", Secrets: secrets("k")},
	} {
		t.Run("round trip "+cfg.Algorithm+" "+cfg.Encoding+" "+cfg.Prefix, func(t *testing.T) {
			p := newHMAC(t, cfg)
			checkErr(t, p.Verify(signed(t, p, body, time.Now()), body, time.Now()), nil)
		})
	}
	t.Run("zero value refuses", func(t *testing.T) {
		var p webhook.HMAC
		if err := p.Sign(http.Header{}, body, time.Now()); err == nil {
			t.Fatal("Sign on zero HMAC: want error")
		}
		checkErr(t, p.Verify(header("X-Sig", "00"), body, time.Now()), webhook.ErrMissingSignature)
	})
}

func TestNewHMAC(t *testing.T) {
	ok := secrets("k")
	for _, tt := range []struct {
		name string
		cfg  webhook.HMACConfig
	}{
		{"no header", webhook.HMACConfig{Secrets: ok}},
		{"invalid header name", webhook.HMACConfig{Header: "X Sig", Secrets: ok}},
		{"header name with colon", webhook.HMACConfig{Header: "X-Sig:", Secrets: ok}},
		{"unknown algorithm", webhook.HMACConfig{Header: "X-Sig", Algorithm: "md5", Secrets: ok}},
		{"unknown encoding", webhook.HMACConfig{Header: "X-Sig", Encoding: "base32", Secrets: ok}},
		{"prefix too long", webhook.HMACConfig{Header: "X-Sig", Prefix: strings.Repeat("p", 4096), Secrets: ok}},
		{"no secrets", webhook.HMACConfig{Header: "X-Sig"}},
		{"empty secret", webhook.HMACConfig{Header: "X-Sig", Secrets: [][]byte{[]byte("k"), {}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := webhook.NewHMAC(tt.cfg); err == nil {
				t.Fatal("NewHMAC: want error")
			}
		})
	}
}

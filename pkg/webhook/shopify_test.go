package webhook_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/webhook"
)

// Shopify documents the scheme (base64 HMAC-SHA256 of the raw body in
// X-Shopify-Hmac-Sha256, in its webhook docs on shopify.dev) but publishes no
// test vector, so these use published HMAC-SHA256 vectors
// in Shopify's encoding:
//   - RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?",
//     MAC 5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843;
//   - GitHub's documented vector (see github_test.go), MAC
//     757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17.
//
// The base64 forms were checked with `openssl dgst -sha256 -hmac ... -binary | base64`.
const (
	shopifySecret    = "Jefe"
	shopifyBody      = "what do ya want for nothing?"
	shopifySignature = "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="
	shopifyGitHubSig = "dXEH6g6yUJ/CESIczphLijdXC211hsIsRvQ3nIsEPhc="
)

func newShopify(t testing.TB, ss ...string) *webhook.Shopify {
	t.Helper()
	p, err := webhook.NewShopify(secrets(ss...))
	if err != nil {
		t.Fatalf("NewShopify: %v", err)
	}
	return p
}

func TestShopifyVectors(t *testing.T) {
	for _, v := range []struct{ name, secret, body, sig string }{
		{"RFC 4231 case 2", shopifySecret, shopifyBody, shopifySignature},
		{"GitHub test values", githubSecret, githubBody, shopifyGitHubSig},
	} {
		p := newShopify(t, v.secret)
		t.Run("verify "+v.name, func(t *testing.T) {
			checkErr(t, p.Verify(header(webhook.ShopifyHeader, v.sig), []byte(v.body), time.Time{}), nil)
		})
		t.Run("sign "+v.name, func(t *testing.T) {
			if got := signed(t, p, []byte(v.body), time.Time{}).Get(webhook.ShopifyHeader); got != v.sig {
				t.Fatalf("Sign = %q, want %q", got, v.sig)
			}
		})
	}
}

func TestShopifyVerify(t *testing.T) {
	body := []byte(shopifyBody)
	tests := []struct {
		name    string
		secrets []string
		h       http.Header
		body    []byte
		want    error
	}{
		{name: "valid", h: header(webhook.ShopifyHeader, shopifySignature)},
		{name: "valid, header name in any case", h: header("x-shopify-hmac-sha256", shopifySignature)},
		{name: "rotation: old secret still accepted", secrets: []string{"new", shopifySecret}, h: header(webhook.ShopifyHeader, shopifySignature)},
		{name: "rotation: new secret accepted", secrets: []string{shopifySecret, "old"}, h: header(webhook.ShopifyHeader, shopifySignature)},
		{name: "wrong secret", secrets: []string{"jefe"}, h: header(webhook.ShopifyHeader, shopifySignature), want: webhook.ErrSignatureMismatch},
		{name: "tampered body", body: tamper(body), h: header(webhook.ShopifyHeader, shopifySignature), want: webhook.ErrSignatureMismatch},
		{name: "missing header", h: header(), want: webhook.ErrMissingSignature},
		{name: "empty header", h: header(webhook.ShopifyHeader, ""), want: webhook.ErrMissingSignature},
		{name: "garbage", h: header(webhook.ShopifyHeader, "garbage"), want: webhook.ErrMalformedSignature},
		{name: "hex instead of base64", h: header(webhook.ShopifyHeader, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"), want: webhook.ErrMalformedSignature},
		{name: "unpadded base64", h: header(webhook.ShopifyHeader, strings.TrimSuffix(shopifySignature, "=")), want: webhook.ErrMalformedSignature},
		{name: "url alphabet", h: header(webhook.ShopifyHeader, strings.NewReplacer("/", "_", "+", "-").Replace(shopifyGitHubSig)), want: webhook.ErrMalformedSignature},
		{name: "non-canonical trailing bits", h: header(webhook.ShopifyHeader, shopifySignature[:42]+"N="), want: webhook.ErrMalformedSignature},
		{name: "invalid characters", h: header(webhook.ShopifyHeader, strings.Repeat("*", 43)+"="), want: webhook.ErrMalformedSignature},
		{name: "too short", h: header(webhook.ShopifyHeader, "W9zBRr9g"), want: webhook.ErrMalformedSignature},
		{name: "repeated header", h: header(webhook.ShopifyHeader, shopifySignature, webhook.ShopifyHeader, shopifySignature), want: webhook.ErrMalformedSignature},
		{name: "huge header", h: header(webhook.ShopifyHeader, strings.Repeat("A", 5000)), want: webhook.ErrMalformedSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ss := tt.secrets
			if ss == nil {
				ss = []string{shopifySecret}
			}
			b := tt.body
			if b == nil {
				b = body
			}
			err := newShopify(t, ss...).Verify(tt.h, b, time.Now())
			checkErr(t, err, tt.want)
			checkNoLeak(t, err, shopifySecret, shopifySignature)
		})
	}
}

func TestShopifySign(t *testing.T) {
	body := []byte(`{"id":820982911946154508}`)
	t.Run("round trip", func(t *testing.T) {
		p := newShopify(t, "shpss_secret")
		checkErr(t, p.Verify(signed(t, p, body, time.Now()), body, time.Now()), nil)
	})
	t.Run("uses the first secret", func(t *testing.T) {
		h := signed(t, newShopify(t, "new", "old"), body, time.Now())
		checkErr(t, newShopify(t, "old").Verify(h, body, time.Now()), webhook.ErrSignatureMismatch)
	})
	t.Run("zero value refuses", func(t *testing.T) {
		var p webhook.Shopify
		if err := p.Sign(http.Header{}, body, time.Now()); err == nil {
			t.Fatal("Sign on zero Shopify: want error")
		}
		checkErr(t, p.Verify(header(webhook.ShopifyHeader, shopifySignature), []byte(shopifyBody), time.Now()), webhook.ErrSignatureMismatch)
	})
}

func TestNewShopify(t *testing.T) {
	if _, err := webhook.NewShopify(nil); err == nil {
		t.Fatal("NewShopify(nil): want error")
	}
	if _, err := webhook.NewShopify([][]byte{[]byte("a"), nil}); err == nil {
		t.Fatal("NewShopify with an empty secret: want error")
	}
}

package webhook_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/webhook"
)

// TestShopifyUnprefixedHeader: Shopify's newer header names carry the
// signature in Shopify-Hmac-Sha256, which @shopify/shopify-api reads before
// X-Shopify-Hmac-Sha256 (testdata/interop/shopify.json, "new header
// names"). Inlet refused such deliveries as unsigned.
func TestShopifyUnprefixedHeader(t *testing.T) {
	body := []byte(shopifyBody)
	wrong := signed(t, newShopify(t, "other"), body, time.Time{}).Get(webhook.ShopifyHeader)
	if c := http.CanonicalHeaderKey(webhook.ShopifyUnprefixedHeader); c != webhook.ShopifyUnprefixedHeader {
		t.Fatalf("ShopifyUnprefixedHeader %q is not canonical (%q)", webhook.ShopifyUnprefixedHeader, c)
	}
	tests := []struct {
		name string
		h    http.Header
		want error
	}{
		{name: "unprefixed only", h: header(webhook.ShopifyUnprefixedHeader, shopifySignature)},
		{name: "unprefixed, lower-case name", h: header("shopify-hmac-sha256", shopifySignature)},
		{name: "both, unprefixed valid", h: header(webhook.ShopifyUnprefixedHeader, shopifySignature, webhook.ShopifyHeader, wrong)},
		{name: "both, unprefixed valid, prefixed garbage", h: header(webhook.ShopifyUnprefixedHeader, shopifySignature, webhook.ShopifyHeader, "garbage")},
		{name: "both, only the prefixed one valid", h: header(webhook.ShopifyUnprefixedHeader, wrong, webhook.ShopifyHeader, shopifySignature), want: webhook.ErrSignatureMismatch},
		{name: "unprefixed empty, prefixed valid", h: header(webhook.ShopifyUnprefixedHeader, "", webhook.ShopifyHeader, shopifySignature)},
		{name: "unprefixed empty only", h: header(webhook.ShopifyUnprefixedHeader, ""), want: webhook.ErrMissingSignature},
		{name: "unprefixed wrong secret", h: header(webhook.ShopifyUnprefixedHeader, wrong), want: webhook.ErrSignatureMismatch},
		{name: "unprefixed garbage", h: header(webhook.ShopifyUnprefixedHeader, "garbage", webhook.ShopifyHeader, shopifySignature), want: webhook.ErrMalformedSignature},
		{name: "unprefixed unpadded", h: header(webhook.ShopifyUnprefixedHeader, strings.TrimSuffix(shopifySignature, "=")), want: webhook.ErrMalformedSignature},
		{name: "unprefixed repeated", h: header(webhook.ShopifyUnprefixedHeader, shopifySignature, webhook.ShopifyUnprefixedHeader, shopifySignature), want: webhook.ErrMalformedSignature},
		{name: "unprefixed repeated, first empty", h: header(webhook.ShopifyUnprefixedHeader, "", webhook.ShopifyUnprefixedHeader, shopifySignature), want: webhook.ErrMalformedSignature},
		{name: "unprefixed huge", h: header(webhook.ShopifyUnprefixedHeader, shopifySignature+strings.Repeat("A", 4096)), want: webhook.ErrMalformedSignature},
		{name: "non-canonical map key is invisible", h: http.Header{"shopify-hmac-sha256": {shopifySignature}}, want: webhook.ErrMissingSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := newShopify(t, shopifySecret).Verify(tt.h, body, time.Time{})
			checkErr(t, err, tt.want)
			checkNoLeak(t, err, shopifySecret, shopifySignature)
		})
	}
	t.Run("error names the header checked", func(t *testing.T) {
		err := newShopify(t, shopifySecret).Verify(header(webhook.ShopifyUnprefixedHeader, wrong), body, time.Time{})
		if err == nil || !strings.Contains(err.Error(), " "+webhook.ShopifyUnprefixedHeader+":") {
			t.Fatalf("Verify: %v, want the error to name %s", err, webhook.ShopifyUnprefixedHeader)
		}
	})
	t.Run("Sign sets the prefixed header only", func(t *testing.T) {
		h := signed(t, newShopify(t, shopifySecret), body, time.Time{})
		if h.Get(webhook.ShopifyHeader) != shopifySignature || h.Get(webhook.ShopifyUnprefixedHeader) != "" {
			t.Fatalf("Sign set %v", h)
		}
	})
}

// FuzzShopifyHeaders fuzzes both Shopify signature headers and the body
// (the invariants of fuzz_test.go). A valid signature in
// X-Shopify-Hmac-Sha256 beside a fuzzed, non-empty Shopify-Hmac-Sha256 must
// not verify either: the unprefixed header, when present, is the one
// checked.
func FuzzShopifyHeaders(f *testing.F) {
	p, err := webhook.NewShopify(secrets(fuzzSecret))
	if err != nil {
		f.Fatal(err)
	}
	seedBody := []byte(shopifyBody)
	seed := signed(f, newShopify(f, fuzzSeedSecret), seedBody, time.Time{}).Get(webhook.ShopifyHeader)
	for _, pair := range [][2]string{
		{seed, ""},
		{"", seed},
		{seed, seed},
		{seed, "garbage"},
		{strings.TrimSuffix(seed, "="), seed},
		{strings.Repeat("=", 44), ""},
	} {
		f.Add(pair[0], pair[1], seedBody)
	}
	f.Fuzz(func(t *testing.T, unprefixed, prefixed string, body []byte) {
		h := http.Header{}
		if unprefixed != "" {
			h.Set(webhook.ShopifyUnprefixedHeader, unprefixed)
		}
		if prefixed != "" {
			h.Set(webhook.ShopifyHeader, prefixed)
		}
		checkFuzz(t, p, h, body)
		if unprefixed == "" {
			return
		}
		good := signed(t, p, body, time.Time{})
		good.Set(webhook.ShopifyUnprefixedHeader, unprefixed)
		if err := p.Verify(good, body, time.Time{}); err == nil {
			t.Fatalf("fuzzed %s %q verified beside a valid %s", webhook.ShopifyUnprefixedHeader, unprefixed, webhook.ShopifyHeader)
		}
	})
}

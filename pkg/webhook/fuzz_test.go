package webhook_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/webhook"
)

// The fuzz tests below share three invariants, checked for every input:
//
//  1. Verify never panics, whatever the header bytes.
//  2. A header the fuzzer made never verifies: Verify returns an error for
//     which IsUnauthorized is true. The verifier's secret appears nowhere in
//     the corpus; seeds that are well formed are signed with another secret,
//     so they reach the MAC comparison and still must fail.
//  3. A header Sign made for the fuzzed body always verifies.

var fuzzNow = time.Unix(1_700_000_000, 0)

const (
	fuzzSecret     = "fuzz-verifier-secret"
	fuzzSeedSecret = "fuzz-seed-secret"
)

// checkFuzz asserts invariants 2 and 3 for p.
func checkFuzz(t *testing.T, p webhook.Provider, h http.Header, body []byte) {
	t.Helper()
	err := p.Verify(h, body, fuzzNow)
	if err == nil {
		t.Fatalf("fuzzed header %q verified", h)
	}
	if !webhook.IsUnauthorized(err) {
		t.Fatalf("Verify returned %v, not an unauthorized error", err)
	}
	good := http.Header{}
	if err := p.Sign(good, body, fuzzNow); err != nil {
		t.Fatalf("Sign: %v", err)
	}
	if err := p.Verify(good, body, fuzzNow); err != nil {
		t.Fatalf("signed header %q does not verify: %v", good, err)
	}
}

// FuzzStripeHeader fuzzes the Stripe-Signature value and the body. See the
// invariants above.
func FuzzStripeHeader(f *testing.F) {
	seedBody := []byte(`{"id":"evt_1"}`)
	seed := stripeSig(f, fuzzSeedSecret, seedBody, fuzzNow)
	v1 := stripeV1(seed)
	for _, s := range []string{
		seed,
		seed + ",v0=" + strings.TrimPrefix(v1, "v1="),
		"t=1700000000," + v1 + "," + v1,
		stripeDocHeader,
		"t=1700000000",
		"t=1700000000,v1=",
		"t=,v1=00",
		"t=-1," + v1,
		"t=99999999999999999999," + v1,
		"t=1700000000,,v1=00",
		",,,,",
		"=",
		"t=1700000000,v1=" + strings.Repeat("0", 64),
		strings.Repeat("v1=00,", 20),
		"",
	} {
		f.Add(s, seedBody)
	}
	p, err := webhook.NewStripe(secrets(fuzzSecret), 0)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, value string, body []byte) {
		checkFuzz(t, p, header(webhook.StripeHeader, value), body)
	})
}

// FuzzStandardWebhooksHeader fuzzes the webhook-id, webhook-timestamp and
// webhook-signature values and the body. See the invariants above.
func FuzzStandardWebhooksHeader(f *testing.F) {
	const seedSecret = "whsec_ZnV6ei1zZWVkLXNlY3JldC0yNGJ5dGVz"
	seedBody := []byte(swBody)
	seed := swSigned(f, seedSecret, swMsgID, seedBody, fuzzNow)
	sig := seed.Get(webhook.StandardWebhooksSignatureHeader)
	ts := seed.Get(webhook.StandardWebhooksTimestampHeader)
	for _, s := range [][3]string{
		{swMsgID, ts, sig},
		{swMsgID, "1614265330", swSignature},
		{swMsgID, ts, swWrongSig + " " + sig + " v1a,AAAA"},
		{swMsgID, ts, "v1,"},
		{swMsgID, ts, ",x"},
		{"msg.1", ts, sig},
		{"", ts, sig},
		{swMsgID, "", sig},
		{swMsgID, "-1", sig},
		{swMsgID, "01", sig},
		{swMsgID, ts, strings.Repeat(swWrongSig+" ", 20)},
		{swMsgID, ts, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE"},
	} {
		f.Add(s[0], s[1], s[2], seedBody)
	}
	p, err := webhook.NewStandardWebhooks([]string{"whsec_" + "ZnV6ei12ZXJpZmllci1zZWNyZXQtMjQ="}, 0)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := http.Header{}
		for name, v := range map[string]string{
			webhook.StandardWebhooksIDHeader:        id,
			webhook.StandardWebhooksTimestampHeader: ts,
			webhook.StandardWebhooksSignatureHeader: sig,
		} {
			if v != "" {
				h.Set(name, v)
			}
		}
		checkFuzz(t, p, h, body)
	})
}

// FuzzHMACHeader fuzzes the single signature header of the HMAC family
// (GitHub, Shopify and the generic HMAC in each algorithm and encoding) and
// the body; mode picks the provider. See the invariants above.
func FuzzHMACHeader(f *testing.F) {
	ps := []webhook.Provider{}
	names := []string{}
	add := func(p webhook.Provider, name string, err error) {
		if err != nil {
			f.Fatal(err)
		}
		ps, names = append(ps, p), append(names, name)
	}
	gh, err := webhook.NewGitHub(secrets(fuzzSecret))
	add(gh, webhook.GitHubHeader, err)
	sh, err := webhook.NewShopify(secrets(fuzzSecret))
	add(sh, webhook.ShopifyHeader, err)
	for _, cfg := range []webhook.HMACConfig{
		{Header: "X-Sig", Algorithm: "sha512", Prefix: "sha512=", Secrets: secrets(fuzzSecret)},
		{Header: "X-Sig", Algorithm: "sha512", Encoding: "base64", Secrets: secrets(fuzzSecret)},
	} {
		p, err := webhook.NewHMAC(cfg)
		add(p, cfg.Header, err)
	}

	seedBody := []byte(githubBody)
	seeds := []string{
		githubSignature,
		shopifyGitHubSig,
		"sha512=" + rfc4231Case2SHA512Hex,
		rfc4231Case2SHA512B64,
		"sha256=",
		"sha256=" + strings.Repeat("G", 64),
		strings.Repeat("=", 44),
		"",
	}
	for mode := range ps {
		for _, s := range seeds {
			f.Add(uint8(mode), s, seedBody)
		}
	}
	f.Fuzz(func(t *testing.T, mode uint8, value string, body []byte) {
		i := int(mode) % len(ps)
		checkFuzz(t, ps[i], header(names[i], value), body)
	})
}

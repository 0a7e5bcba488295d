package webhook_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/inletdev/inlet/pkg/webhook"
)

// benchBody is a 1 KiB JSON-ish body, the size of a typical event.
var benchBody = append([]byte(`{"data":"`), append(bytes.Repeat([]byte("x"), 1024-11), '"', '}')...)

// benchVerify measures Verify of a valid request by p.
func benchVerify(b *testing.B, p webhook.Provider) {
	b.Helper()
	h := signed(b, p, benchBody, fuzzNow)
	if err := p.Verify(h, benchBody, fuzzNow); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(benchBody)))
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Verify(h, benchBody, fuzzNow); err != nil {
			b.Fatal(err)
		}
	}
}

// benchReject measures Verify of a forged request, the cost a flood of
// bad deliveries imposes.
func benchReject(b *testing.B, p webhook.Provider, forged http.Header) {
	b.Helper()
	b.SetBytes(int64(len(benchBody)))
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Verify(forged, benchBody, fuzzNow); err == nil {
			b.Fatal("forged request verified")
		}
	}
}

func BenchmarkStripeVerify1KiB(b *testing.B) {
	benchVerify(b, newStripe(b, 0, "whsec_bench"))
}

func BenchmarkStripeVerify1KiBTwoSecrets(b *testing.B) {
	// The newest secret is tried first; a delivery signed with the
	// previous one costs a second MAC.
	p := newStripe(b, 0, "whsec_new", "whsec_old")
	h := signed(b, newStripe(b, 0, "whsec_old"), benchBody, fuzzNow)
	b.SetBytes(int64(len(benchBody)))
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Verify(h, benchBody, fuzzNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStripeReject1KiB(b *testing.B) {
	forged := signed(b, newStripe(b, 0, "whsec_forger"), benchBody, fuzzNow)
	benchReject(b, newStripe(b, 0, "whsec_bench"), forged)
}

func BenchmarkGitHubVerify1KiB(b *testing.B) {
	benchVerify(b, newGitHub(b, "bench"))
}

func BenchmarkShopifyVerify1KiB(b *testing.B) {
	benchVerify(b, newShopify(b, "bench"))
}

func BenchmarkStandardWebhooksVerify1KiB(b *testing.B) {
	p := newStandardWebhooks(b, 0, swSecret)
	h := header(webhook.StandardWebhooksIDHeader, swMsgID)
	if err := p.Sign(h, benchBody, fuzzNow); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(benchBody)))
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Verify(h, benchBody, fuzzNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHMACSHA512Verify1KiB(b *testing.B) {
	benchVerify(b, newHMAC(b, webhook.HMACConfig{Header: "X-Sig", Algorithm: "sha512", Encoding: "base64", Secrets: secrets("bench")}))
}

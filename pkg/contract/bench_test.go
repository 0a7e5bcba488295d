package contract_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"testing"

	"github.com/inletdev/inlet/schemas/contracts"
)

// benchPayload is a shipped fixture compacted, as a provider sends it.
func benchPayload(b *testing.B, file string) []byte {
	b.Helper()
	raw, err := fs.ReadFile(contracts.FS, file)
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkReadStripePaymentIntent: a ~1.6 KiB payment_intent.succeeded
// event, validated and upcast.
func BenchmarkReadStripePaymentIntent(b *testing.B) {
	v := version(b, shipped(b), "stripe/payment_intent", "2024-06-20")
	payload := benchPayload(b, "stripe/payment_intent/fixtures/v1/payment_intent.succeeded.json")
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Read(payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadShopifyOrderUpcast: a ~9 KiB v1 order read and upcast to v2.
func BenchmarkReadShopifyOrderUpcast(b *testing.B) {
	v := version(b, shipped(b), "shopify/order", "2024-07")
	payload := benchPayload(b, "shopify/order/fixtures/v1/orders.create.2024-07.json")
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Read(payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadInvalid: the cost of building a ValidationError.
func BenchmarkReadInvalid(b *testing.B) {
	v := version(b, shipped(b), "stripe/payment_intent", "2024-06-20")
	payload := bytes.Replace(benchPayload(b, "stripe/payment_intent/fixtures/v1/payment_intent.succeeded.json"),
		[]byte(`"amount":2000`), []byte(`"amount":"2000"`), 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Read(payload); err == nil {
			b.Fatal("no error")
		}
	}
}

// BenchmarkReadGitHubPullRequest: a ~20 KiB pull_request event of which the
// contract reads a few fields.
func BenchmarkReadGitHubPullRequest(b *testing.B) {
	v := version(b, shipped(b), "github/pull_request", "v1")
	payload := benchPayload(b, "github/pull_request/fixtures/v1/pull_request.closed.merged.json")
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Read(payload); err != nil {
			b.Fatal(err)
		}
	}
}

package ingest

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/testenv"
)

const isolationSources = `
sources:
  stripe:
    kind: stripe
    secrets_env: [T_STRIPE_SECRET]
  stripe2:
    kind: stripe
    secrets_env: [T_ISO_STRIPE2]
  gh:
    kind: github
    secrets_env: [T_GH_SECRET]
  shop:
    kind: shopify
    secrets_env: [T_SHOP_SECRET]
  billing:
    kind: standard-webhooks
    secrets_env: [T_BILLING_WHSEC]
    batch: {tokens_env: [T_BILLING_TOKEN]}
  billing2:
    kind: standard-webhooks
    secrets_env: [T_ISO_BILLING2_WHSEC]
    batch: {tokens_env: [T_ISO_BILLING2_TOKEN], signed: true}
  internal:
    kind: hmac
    secrets_env: [T_INTERNAL_SECRET]
    hmac: {header: X-Signature}
  open:
    kind: none
`

// TestOneSourceCannotSendAsAnother: whoever holds one source's secret or
// batch token (or, for a kind none source, nothing) cannot get an event
// written as another source's: the source is the path's, verified with
// that source's own secret, whatever the body and headers say.
func TestOneSourceCannotSendAsAnother(t *testing.T) {
	t.Setenv("T_ISO_STRIPE2", "whsec_other_account")
	t.Setenv("T_ISO_BILLING2_WHSEC", "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldY")
	t.Setenv("T_ISO_BILLING2_TOKEN", "batch-token-2-0123456789")
	h := newHarnessSources(t, testenv.Embedded(t), isolationSources, nil)
	body := []byte(`{"id":"evt_1","type":"payment_intent.succeeded","created":1700000000,"source":"stripe","data":{"object":{"id":"pi_1"}}}`)
	signers := []string{"stripe", "stripe2", "gh", "shop", "billing", "billing2", "internal"}

	t.Run("a webhook signed for one source is refused by every other", func(t *testing.T) {
		if a := do(t, h.signed(t, "stripe", body, nil)); a.status != http.StatusAccepted {
			t.Fatalf("signed for stripe, sent to stripe: %d %s", a.status, a.raw)
		}
		for _, signer := range signers {
			for _, target := range signers {
				if target == signer {
					continue
				}
				req := h.signed(t, signer, body, nil)
				req.URL.Path = "/webhooks/" + target
				if a := do(t, req); a.status != http.StatusUnauthorized {
					t.Errorf("signed for %s, sent to %s: %d %s", signer, target, a.status, a.raw)
				}
			}
		}
	})
	t.Run("a batch token or signature opens only its own source", func(t *testing.T) {
		line := []byte(`{"id":"l1","type":"invoice.paid","data":{"id":"inv_1"}}` + "\n")
		for name, try := range map[string]struct{ path, auth, sign, hdr string }{
			"token in the path's source":      {"/events/billing2", "Bearer batch-token-1-0123456789", "", ""},
			"token, source in the query":      {"/events?source=billing2", "Bearer batch-token-1-0123456789", "", ""},
			"token, source in X-Inlet-Source": {"/events", "Bearer batch-token-1-0123456789", "", "billing2"},
			"a signature of another source":   {"/events/billing2", "", "billing", ""},
			"a webhook signature":             {"/events/billing2", "", "stripe", ""},
		} {
			header := http.Header{"Content-Type": {"application/x-ndjson"}}
			if try.auth != "" {
				header.Set("Authorization", try.auth)
			}
			if try.hdr != "" {
				header.Set("X-Inlet-Source", try.hdr)
			}
			if try.sign != "" {
				src, _ := h.sources.Get(try.sign)
				if err := src.Provider().Sign(header, line, time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			if code, br, _ := postBatchReader(t, h, try.path, header, bytes.NewReader(line)); code != http.StatusUnauthorized {
				t.Errorf("%s: %d %+v", name, code, br)
			}
		}
	})
	t.Run("the path names the source, not the body, query or headers", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, h.url+"/webhooks/open?source=stripe", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Inlet-Source", "stripe")
		if a := do(t, req); a.status != http.StatusAccepted {
			t.Fatalf("open: %d %s", a.status, a.raw)
		}
		header := http.Header{"Content-Type": {"application/x-ndjson"}, "Authorization": {"Bearer batch-token-1-0123456789"}, "X-Inlet-Source": {"billing2"}}
		line := `{"id":"evt_1","type":"invoice.paid","data":{"source":"billing2"}}` + "\n"
		if code, br, _ := postBatchReader(t, h, "/events/billing?source=billing2", header, strings.NewReader(line)); code != http.StatusOK {
			t.Fatalf("billing batch: %d %+v", code, br)
		}
		for _, e := range h.rawEnvelopes(t, 3) {
			if want := map[string]string{"stripe": "stripe:evt_1", "open": "open:evt_1", "billing": "billing:evt_1"}[e.Source]; want == "" || e.IdempotencyKey != want {
				t.Errorf("envelope of source %q, key %q", e.Source, e.IdempotencyKey)
			}
		}
	})
}

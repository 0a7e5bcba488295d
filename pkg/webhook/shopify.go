package webhook

import (
	"net/http"
	"time"
)

// ShopifyHeader is the header Shopify has always put its signature in, and
// the one Sign sets.
const ShopifyHeader = "X-Shopify-Hmac-Sha256"

// ShopifyUnprefixedHeader is the header of Shopify's newer, unprefixed
// header names (Shopify-Topic, Shopify-Webhook-Id, ...), which carries the
// same signature. Shopify's libraries read it first.
const ShopifyUnprefixedHeader = "Shopify-Hmac-Sha256"

// Shopify verifies and signs Shopify webhook deliveries: the
// X-Shopify-Hmac-Sha256 header, or Shopify-Hmac-Sha256 in the newer header
// names, holds the base64 HMAC-SHA256 of the body, keyed with the app's
// client secret (or, for webhooks created in the shop admin, the secret
// shown there). As in Shopify's own library (@shopify/shopify-api), when
// Shopify-Hmac-Sha256 is present and not empty it is the signature checked,
// and X-Shopify-Hmac-Sha256 is not consulted. Shopify signs no timestamp;
// deduplicate on the webhook id downstream.
type Shopify struct {
	mac *HMAC
}

var _ Provider = (*Shopify)(nil)

// NewShopify returns a Shopify provider for the secrets, newest first.
func NewShopify(secrets [][]byte) (*Shopify, error) {
	mac, err := newHMAC(KindShopify, HMACConfig{
		Header:    ShopifyHeader,
		Algorithm: "sha256",
		Encoding:  "base64",
		Secrets:   secrets,
	})
	if err != nil {
		return nil, err
	}
	return &Shopify{mac: mac}, nil
}

// Verify implements Verifier. now is not used.
func (s *Shopify) Verify(h http.Header, body []byte, now time.Time) error {
	if s.mac == nil {
		return failure(ErrSignatureMismatch, KindShopify, ShopifyHeader, "no secrets configured")
	}
	if vs := h[ShopifyUnprefixedHeader]; len(vs) > 1 || len(vs) == 1 && vs[0] != "" {
		return s.mac.verifyIn(h, ShopifyUnprefixedHeader, body)
	}
	return s.mac.Verify(h, body, now)
}

// Sign implements Signer: it sets X-Shopify-Hmac-Sha256 using the first
// secret. now is not used.
func (s *Shopify) Sign(h http.Header, body []byte, now time.Time) error {
	if s.mac == nil {
		return errNoSecrets
	}
	return s.mac.Sign(h, body, now)
}

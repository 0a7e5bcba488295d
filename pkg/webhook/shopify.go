package webhook

import (
	"net/http"
	"time"
)

// ShopifyHeader is the header Shopify puts its signature in.
const ShopifyHeader = "X-Shopify-Hmac-Sha256"

// Shopify verifies and signs Shopify webhook deliveries: the
// X-Shopify-Hmac-Sha256 header holds the base64 HMAC-SHA256 of the body,
// keyed with the app's client secret (or, for webhooks created in the shop
// admin, the secret shown there). Shopify signs no timestamp; deduplicate on
// X-Shopify-Webhook-Id downstream.
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

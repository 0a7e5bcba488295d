package gen

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The signatures below are written from the providers' documentation, not
// with pkg/webhook, so the tests that verify them with pkg/webhook check two
// independent implementations against each other.

func hmacSHA256(key []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// SignStripe returns the Stripe-Signature value: t=<unix>,v1=<hex HMAC-SHA256
// of "<unix>.<body>"> keyed with the whole secret text (whsec_ included).
func SignStripe(secret string, body []byte, now time.Time) string {
	ts := strconv.FormatInt(now.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(hmacSHA256([]byte(secret), []byte(ts+"."), body))
}

// SignGitHub returns the X-Hub-Signature-256 value: sha256=<hex HMAC-SHA256
// of the body>.
func SignGitHub(secret string, body []byte) string {
	return "sha256=" + hex.EncodeToString(hmacSHA256([]byte(secret), body))
}

// SignShopify returns the X-Shopify-Hmac-Sha256 value: the standard base64
// of the HMAC-SHA256 of the body.
func SignShopify(secret string, body []byte) string {
	return base64.StdEncoding.EncodeToString(hmacSHA256([]byte(secret), body))
}

// SignStandardWebhooks returns the webhook-signature value
// "v1,<base64 HMAC-SHA256 of id.ts.body>", keyed with the base64-decoded
// part of a "whsec_<base64>" secret.
func SignStandardWebhooks(secret, id string, ts int64, body []byte) (string, error) {
	key, err := StandardWebhooksKey(secret)
	if err != nil {
		return "", err
	}
	msg := id + "." + strconv.FormatInt(ts, 10) + "."
	return "v1," + base64.StdEncoding.EncodeToString(hmacSHA256(key, []byte(msg), body)), nil
}

// StandardWebhooksKey decodes a "whsec_<base64>" secret (padding optional).
func StandardWebhooksKey(secret string) ([]byte, error) {
	b64 := strings.TrimRight(strings.TrimPrefix(secret, "whsec_"), "=")
	key, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil || len(key) == 0 {
		return nil, errors.New("gen: standard-webhooks secret is not whsec_ followed by base64")
	}
	return key, nil
}

// Sign sets the signature headers of kind on h for body. webhookID is the
// Standard Webhooks message id (ignored by the other kinds). A bad signature
// is made by signing with a wrong secret.
func Sign(kind, secret string, h http.Header, body []byte, webhookID string, now time.Time) error {
	switch kind {
	case KindStripe:
		h.Set("Stripe-Signature", SignStripe(secret, body, now))
	case KindGitHub:
		h.Set("X-Hub-Signature-256", SignGitHub(secret, body))
	case KindShopify:
		h.Set("X-Shopify-Hmac-Sha256", SignShopify(secret, body))
	case KindStandardWebhooks:
		sig, err := SignStandardWebhooks(secret, webhookID, now.Unix(), body)
		if err != nil {
			return err
		}
		h.Set("Webhook-Id", webhookID)
		h.Set("Webhook-Timestamp", strconv.FormatInt(now.Unix(), 10))
		h.Set("Webhook-Signature", sig)
	default:
		return errors.New("gen: cannot sign kind " + kind)
	}
	return nil
}

package webhook

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"time"
)

// StripeHeader is the header Stripe puts its signature in.
const StripeHeader = "Stripe-Signature"

// DefaultStripeTolerance is the timestamp tolerance NewStripe uses when given
// zero, the value Stripe's own libraries use.
const DefaultStripeTolerance = 5 * time.Minute

// Stripe verifies and signs Stripe webhook deliveries.
//
// The Stripe-Signature header is a comma-separated list of key=value
// elements: exactly one t=<Unix seconds> and one or more v1=<hex
// HMAC-SHA256> computed over "<t>.<body>". Stripe sends one v1 per active
// secret while a secret is being rolled, and a v0 test signature; elements of
// any scheme other than v1 are ignored, so that a weaker scheme cannot be
// substituted. The timestamp must be within the tolerance of the receive time
// in either direction.
type Stripe struct {
	keys      keyring
	tolerance time.Duration
}

var _ Provider = (*Stripe)(nil)

// NewStripe returns a Stripe provider for the endpoint signing secrets
// (the "whsec_..." text as bytes; Stripe uses it verbatim as the HMAC key),
// newest first. A zero tolerance means DefaultStripeTolerance.
func NewStripe(secrets [][]byte, tolerance time.Duration) (*Stripe, error) {
	keys, err := newKeyring(KindStripe, sha256.New, secrets)
	if err != nil {
		return nil, err
	}
	tol, err := validTolerance(KindStripe, tolerance, DefaultStripeTolerance)
	if err != nil {
		return nil, err
	}
	return &Stripe{keys: keys, tolerance: tol}, nil
}

// Verify implements Verifier.
func (s *Stripe) Verify(h http.Header, body []byte, now time.Time) error {
	v, err := headerValue(h, KindStripe, StripeHeader)
	if err != nil {
		return err
	}
	var (
		ts    string
		unix  int64
		sums  [maxEntries][sha256.Size]byte
		cands [maxEntries][]byte
		n     int
	)
	for i := 0; ; i++ {
		if i == maxEntries {
			return failure(ErrMalformedSignature, KindStripe, StripeHeader, "more than 16 elements")
		}
		elem, rest, more := strings.Cut(v, ",")
		k, val, ok := strings.Cut(elem, "=")
		if !ok || !validEntryName(k) || val == "" {
			return failure(ErrMalformedSignature, KindStripe, StripeHeader, "element is not key=value")
		}
		switch k {
		case "t":
			if ts != "" {
				return failure(ErrMalformedSignature, KindStripe, StripeHeader, "duplicate t element")
			}
			if unix, ok = parseUnix(val); !ok {
				return failure(ErrMalformedSignature, KindStripe, StripeHeader, "t is not a Unix timestamp")
			}
			ts = val
		case "v1":
			if !decodeHex(sums[n][:], val) {
				return failure(ErrMalformedSignature, KindStripe, StripeHeader, "v1 is not a 64-digit hex string")
			}
			cands[n] = sums[n][:]
			n++
		}
		if !more {
			break
		}
		v = rest
	}
	if ts == "" {
		return failure(ErrMalformedSignature, KindStripe, StripeHeader, "no t element")
	}
	if n == 0 {
		return failure(ErrMissingSignature, KindStripe, StripeHeader, "no v1 signature")
	}
	if !s.keys.match(body, cands[:n], ts) {
		return failure(ErrSignatureMismatch, KindStripe, StripeHeader, "no v1 signature matches")
	}
	return checkTolerance(KindStripe, StripeHeader, unix, now, s.tolerance)
}

// Sign implements Signer: it sets Stripe-Signature to "t=<now>,v1=<hex>"
// using the first secret.
func (s *Stripe) Sign(h http.Header, body []byte, now time.Time) error {
	ts, err := unixSeconds(KindStripe, now)
	if err != nil {
		return err
	}
	sum, err := s.keys.sign(body, ts)
	if err != nil {
		return err
	}
	h.Set(StripeHeader, "t="+ts+",v1="+hex.EncodeToString(sum))
	return nil
}

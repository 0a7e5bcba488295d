package webhook

import "errors"

// The errors below are the only kinds of error a Verify method returns. Each
// is wrapped with a short description of what was wrong (the provider kind,
// the header name and the rule broken); the description never contains a
// secret, a computed signature or any other value that would help a forger.
// Test for them with errors.Is or IsUnauthorized, never with the error text.
var (
	// ErrMissingSignature is returned when the request carries no signature
	// to check: the signature header is absent or empty, or it holds no
	// entry in a scheme this package accepts (for example a Stripe header
	// with only a v0 test signature, or a Standard Webhooks header with only
	// v1a asymmetric signatures).
	ErrMissingSignature = errors.New("webhook: missing signature")

	// ErrMalformedSignature is returned when a signature header is present
	// but cannot be read: it is repeated, longer than 4 KiB, has more than 16
	// entries, has empty or duplicate parts, a timestamp that is not a plain
	// non-negative decimal integer, a signature that is not valid hex or
	// base64 or has the wrong length, or lacks a header the scheme signs
	// over (such as webhook-id).
	ErrMalformedSignature = errors.New("webhook: malformed signature")

	// ErrSignatureMismatch is returned when the headers are well formed but
	// no signature in them matches the body under any configured secret: a
	// wrong or rotated-out secret, a body altered in transit or re-encoded
	// before verification, or a forgery.
	ErrSignatureMismatch = errors.New("webhook: signature mismatch")

	// ErrTimestampOutOfTolerance is returned when a signature is authentic but
	// its signed timestamp is further than the tolerance from the receive
	// time, in the past (a replay or a long-delayed delivery) or in the
	// future (clock skew). The signature is checked first, so this error
	// means the sender had the secret.
	ErrTimestampOutOfTolerance = errors.New("webhook: timestamp out of tolerance")
)

// IsUnauthorized reports whether err, or any error it wraps, is one of the
// verification failures above: the request must be refused (HTTP 401) and
// nothing written.
func IsUnauthorized(err error) bool {
	return errors.Is(err, ErrMissingSignature) ||
		errors.Is(err, ErrMalformedSignature) ||
		errors.Is(err, ErrSignatureMismatch) ||
		errors.Is(err, ErrTimestampOutOfTolerance)
}

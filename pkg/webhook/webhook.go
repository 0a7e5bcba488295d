// Package webhook verifies and produces the signatures webhook providers put
// on their deliveries.
//
// Each provider has its own file and type (Stripe, GitHub, Shopify,
// StandardWebhooks, HMAC for in-house senders, and None for explicitly
// unsigned sources). Every type implements Provider: Verify checks a received
// request, Sign produces the headers the provider would send, for tests and
// sample requests. New builds a Provider from a kind name, for use by
// configuration; Kinds lists the names it knows.
//
// All providers:
//
//   - verify the raw body bytes exactly as received;
//   - accept several secrets for rotation: a signature that is valid under
//     any of them passes, and Sign uses the first;
//   - compare signatures in constant time and compute the MAC once per
//     secret, whatever the number of signatures in the header;
//   - bound the work a hostile header can cause: a header value longer than
//     4 KiB, or with more than 16 entries, is refused as malformed before any
//     MAC is computed;
//   - return only errors for which IsUnauthorized is true from Verify;
//   - are safe for concurrent use once built.
package webhook

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Verifier checks the signature a provider put on a delivery.
type Verifier interface {
	// Verify checks the signature carried in h over body, the raw bytes exactly as received.
	// now is the receive time, used for timestamp tolerance. It returns nil or an error
	// for which IsUnauthorized(err) is true.
	Verify(h http.Header, body []byte, now time.Time) error
}

// Signer produces the signature headers a provider would send.
type Signer interface {
	// Sign sets the headers a provider would send for body at time now, under
	// the first secret. Tests sign with it, and so does code holding a
	// Provider from New (services/dev's sample curl for its Shopify source,
	// loadtest/benchingest's Stripe requests). The load generator
	// (loadtest/gen) does not: it implements each scheme again from the
	// providers' documentation, so that the two check each other.
	Sign(h http.Header, body []byte, now time.Time) error
}

// Provider is implemented by every provider value in this package.
type Provider interface {
	Verifier
	Signer
}

// Kind names accepted by New.
const (
	KindStripe           = "stripe"
	KindGitHub           = "github"
	KindShopify          = "shopify"
	KindStandardWebhooks = "standard-webhooks"
	KindHMAC             = "hmac"
	KindNone             = "none"
)

// Options holds the per-kind settings New passes on. A field a kind does not
// use is ignored.
type Options struct {
	// Tolerance is the largest accepted distance between a signed timestamp
	// and the receive time, for stripe and standard-webhooks. Zero means the
	// provider's default (5 minutes for both).
	Tolerance time.Duration

	// HMAC configures the hmac kind. Its Secrets may be left empty, in which
	// case New's secrets are used; setting both is an error.
	HMAC HMACConfig
}

// New builds the Provider for kind, one of stripe, github, shopify,
// standard-webhooks, hmac or none. secrets are the raw secret bytes, newest
// first; for standard-webhooks each is the text of a "whsec_<base64>" secret.
// The none kind takes no secrets. An unknown kind is an error.
func New(kind string, secrets [][]byte, opts Options) (Provider, error) {
	switch kind {
	case KindStripe:
		return NewStripe(secrets, opts.Tolerance)
	case KindGitHub:
		return NewGitHub(secrets)
	case KindShopify:
		return NewShopify(secrets)
	case KindStandardWebhooks:
		texts := make([]string, len(secrets))
		for i, s := range secrets {
			texts[i] = string(s)
		}
		return NewStandardWebhooks(texts, opts.Tolerance)
	case KindHMAC:
		cfg := opts.HMAC
		switch {
		case len(cfg.Secrets) == 0:
			cfg.Secrets = secrets
		case len(secrets) != 0:
			return nil, errors.New("webhook: hmac: secrets given both as an argument and in Options.HMAC.Secrets")
		}
		return NewHMAC(cfg)
	case KindNone:
		if len(secrets) != 0 {
			return nil, errors.New("webhook: none: kind none takes no secrets; use a signing kind or drop the secrets")
		}
		return None(), nil
	default:
		return nil, fmt.Errorf("webhook: unknown kind %q (want one of %s)", kind, strings.Join(Kinds(), ", "))
	}
}

// Kinds are the kinds New knows, for configuration checks that build no
// provider (a process that loads the sources file without secrets).
func Kinds() []string {
	return []string{KindStripe, KindGitHub, KindShopify, KindStandardWebhooks, KindHMAC, KindNone}
}

// None returns a Provider for sources that are deliberately unsigned (kind
// none): Verify accepts every request and Sign sets nothing. Use it only where
// the network, not a signature, establishes who the sender is.
func None() Provider { return none{} }

type none struct{}

func (none) Verify(http.Header, []byte, time.Time) error { return nil }
func (none) Sign(http.Header, []byte, time.Time) error   { return nil }

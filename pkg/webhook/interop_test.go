package webhook_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/webhook"
)

// The vectors in testdata/interop were made by the providers' official
// libraries (stripe-node, @octokit/webhooks-methods, @shopify/shopify-api,
// standardwebhooks and svix, versions pinned in its package.json): each
// library signed deliveries, and then verified them, and Inlet's own
// signatures (pkg/webhook Sign, loadtest/gen, loadtest/k6/lib/sign.js), and
// recorded whether it accepted each. testdata/interop/generate.sh makes them
// again; this test needs only the committed JSON.

// interopVector is one delivery and one library's verdict on it.
type interopVector struct {
	Name             string            `json:"name"`
	Note             string            `json:"note"`
	SignedBy         string            `json:"signed_by"`
	Secrets          []string          `json:"secrets"`
	SecretsBase64    []string          `json:"secrets_base64"`
	ToleranceSeconds int               `json:"tolerance_seconds"`
	Headers          map[string]string `json:"headers"`
	Body             *string           `json:"body"`
	BodyBase64       string            `json:"body_base64"`
	BodyRepeat       *struct {
		Prefix string `json:"prefix"`
		Unit   string `json:"unit"`
		Count  int    `json:"count"`
		Suffix string `json:"suffix"`
	} `json:"body_repeat"`
	ReceivedUnixMs int64  `json:"received_unix_ms"`
	SignedUnix     *int64 `json:"signed_unix"`
	Library        string `json:"library"`
	LibraryAccepts bool   `json:"library_accepts"`
	LibraryError   string `json:"library_error"`
}

// interopSigners are the signed_by values of Inlet's own signers.
const interopInletSign = "pkg/webhook Sign"

// Deliberate differences: Inlet's verdict is the opposite of the library's
// for these vectors, for the reason given. Every other vector must get the
// library's verdict.
const (
	whyFloorsNow = "the library floors the receive time to a whole second, so it accepts up to 0.999 s " +
		"past the tolerance; Inlet compares the exact duration, and refuses"
	whyFutureBound = "stripe-node checks only that a timestamp is not too old; Inlet also refuses one more than " +
		"the tolerance in the future (clock skew, or a signature made to be replayed later), as the Stripe type's doc says"
	whyHexCase = "Inlet accepts upper-case hex: it decodes the MAC and compares bytes, so the spelling carries " +
		"no authority (forging still needs the secret); the library compares strings"
	whyStrictTimestamp = "the library reads the timestamp with parseInt (leading zeros, a sign, a fraction or " +
		"trailing text are dropped, and the number is what it signs); Inlet requires the canonical decimal " +
		"the provider sends, so that the text signed is the text checked: it refuses the header as malformed"
	whyStrictHeader = "the library skips entries it cannot read and takes the last of duplicate keys; Inlet " +
		"refuses a signature header with an empty, malformed or duplicate entry, or more than 16 entries " +
		"(the bound on work per request), none of which a provider sends"
	whyBytes = "the library decodes a body that is not UTF-8 into text, replacing each invalid byte with " +
		"U+FFFD, and signs or checks that text, so different bodies share one signature; Inlet " +
		"authenticates the bytes received, exactly as the provider's server signs them"
	whyEmptyBody = "the library refuses an empty body before looking at the signature (an argument check, " +
		"not a verification rule); Inlet authenticates the empty body like any other, and leaves whether " +
		"an empty delivery is acceptable to the ingest handler"
	whyIDDot = "Inlet refuses a webhook-id containing '.', which would make the signed content " +
		"id.timestamp.body ambiguous; Svix's msg_ ids contain none"
	whySvixHeaders = "kind standard-webhooks reads the specification's webhook-* headers, as the reference " +
		"library does; Svix's branded svix-* names are read by the svix library only"
)

func interopDeliberate() map[string]string {
	m := map[string]string{
		"stripe/received 300.5s after signing":                                   whyFloorsNow,
		"stripe/received 301s before signing":                                    whyFutureBound,
		"stripe/received an hour before signing":                                 whyFutureBound,
		"stripe/upper-case hex":                                                  whyHexCase,
		"stripe/leading zero in t":                                               whyStrictTimestamp,
		"stripe/plus sign in t":                                                  whyStrictTimestamp,
		"stripe/fraction in t":                                                   whyStrictTimestamp,
		"stripe/trailing text in t":                                              whyStrictTimestamp,
		"stripe/two t elements, last one signed":                                 whyStrictHeader,
		"stripe/valid v1 beside a malformed v1":                                  whyStrictHeader,
		"stripe/valid v1 among 16 unrelated v1":                                  whyStrictHeader,
		"stripe/empty element":                                                   whyStrictHeader,
		"stripe/invalid UTF-8 body, library signature":                           whyBytes,
		"stripe/invalid UTF-8 body, other bytes with the same library signature": whyBytes,
		"stripe/invalid UTF-8 body, MAC over the bytes":                          whyBytes,

		"github/upper-case hex": whyHexCase,
		"github/empty body":     whyEmptyBody,

		"shopify/empty body": whyEmptyBody,

		"standard-webhooks/received 300.5s after signing":                                   whyFloorsNow,
		"standard-webhooks/entries separated by two spaces":                                 whyStrictHeader,
		"standard-webhooks/valid v1 beside a malformed v1":                                  whyStrictHeader,
		"standard-webhooks/valid v1 among 16 unrelated v1":                                  whyStrictHeader,
		"standard-webhooks/leading zero in timestamp":                                       whyStrictTimestamp,
		"standard-webhooks/trailing text in timestamp":                                      whyStrictTimestamp,
		"standard-webhooks/id containing a dot":                                             whyIDDot,
		"standard-webhooks/invalid UTF-8 body, library signature":                           whyBytes,
		"standard-webhooks/invalid UTF-8 body, other bytes with the same library signature": whyBytes,
		"standard-webhooks/invalid UTF-8 body, MAC over the bytes":                          whyBytes,
		"standard-webhooks/svix: svix-* headers":                                            whySvixHeaders,
	}
	// Inlet's signers sign an empty body; octokit and shopify-api refuse to
	// check one.
	for _, kind := range []string{"github", "shopify"} {
		for _, signer := range []string{interopInletSign, "loadtest/gen Sign", "loadtest/k6/lib/sign.js"} {
			for _, secret := range []string{"dev", "non-ASCII"} {
				m["inlet/"+kind+"/"+signer+", "+secret+" secret, empty body"] = whyEmptyBody
			}
		}
	}
	return m
}

func loadInterop(t *testing.T, kind string) []interopVector {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "interop", kind+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Vectors []interopVector `json:"vectors"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s.json: %v", kind, err)
	}
	if len(doc.Vectors) == 0 {
		t.Fatalf("%s.json: no vectors", kind)
	}
	return doc.Vectors
}

func (v *interopVector) body(t *testing.T) []byte {
	t.Helper()
	switch {
	case v.Body != nil:
		return []byte(*v.Body)
	case v.BodyRepeat != nil:
		r := v.BodyRepeat
		return []byte(r.Prefix + strings.Repeat(r.Unit, r.Count) + r.Suffix)
	}
	b, err := base64.StdEncoding.DecodeString(v.BodyBase64)
	if err != nil {
		t.Fatalf("body_base64: %v", err)
	}
	return b
}

func (v *interopVector) secrets(t *testing.T) [][]byte {
	t.Helper()
	if len(v.SecretsBase64) == 0 {
		return secrets(v.Secrets...)
	}
	out := make([][]byte, len(v.SecretsBase64))
	for i, s := range v.SecretsBase64 {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("secrets_base64: %v", err)
		}
		out[i] = b
	}
	return out
}

func (v *interopVector) header() http.Header {
	h := http.Header{}
	for k, val := range v.Headers {
		h.Set(k, val)
	}
	return h
}

// TestInterop checks that Inlet accepts exactly the deliveries the
// providers' official libraries accept, apart from the documented
// deliberate differences, and that the signatures Inlet's own signers make
// are accepted by those libraries.
func TestInterop(t *testing.T) {
	deliberate := interopDeliberate()
	seen := map[string]bool{}
	for _, kind := range []string{webhook.KindStripe, webhook.KindGitHub, webhook.KindShopify, webhook.KindStandardWebhooks} {
		for _, v := range loadInterop(t, kind) {
			seen[v.Name] = true
			t.Run(v.Name, func(t *testing.T) {
				opts := webhook.Options{Tolerance: time.Duration(v.ToleranceSeconds) * time.Second}
				p, err := webhook.New(kind, v.secrets(t), opts)
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				body := v.body(t)
				err = p.Verify(v.header(), body, time.UnixMilli(v.ReceivedUnixMs))
				if err != nil && !webhook.IsUnauthorized(err) {
					t.Fatalf("Verify: %v is not an unauthorized error", err)
				}
				want, reason := v.LibraryAccepts, deliberate[v.Name]
				if reason != "" {
					want = !want
				}
				if got := err == nil; got != want {
					t.Errorf("Inlet accepts = %v (err %v), want %v: %s (signed by %s) accepts = %v %s; deliberate difference: %q",
						got, err, want, v.Library, v.SignedBy, v.LibraryAccepts, v.LibraryError, reason)
				}
				if v.SignedBy == interopInletSign {
					checkStillSigned(t, p, &v, body)
				}
			})
		}
	}
	for name := range deliberate {
		if !seen[name] {
			t.Errorf("deliberate difference for %q, which names no vector", name)
		}
	}
}

// checkStillSigned fails unless Sign, today, sets the headers the vector
// recorded: the library's verdict on them then still applies to Inlet's
// signer. When this fails after a change to a Sign method, regenerate the
// vectors (testdata/interop/generate.sh).
func checkStillSigned(t *testing.T, p webhook.Provider, v *interopVector, body []byte) {
	t.Helper()
	if v.SignedUnix == nil {
		t.Fatal("vector signed by Inlet has no signed_unix")
	}
	h := http.Header{}
	if id := v.header().Get(webhook.StandardWebhooksIDHeader); id != "" {
		h.Set(webhook.StandardWebhooksIDHeader, id)
	}
	if err := p.Sign(h, body, time.Unix(*v.SignedUnix, 0)); err != nil {
		t.Fatalf("Sign: %v", err)
	}
	want := v.header()
	for k := range h {
		if h.Get(k) != want.Get(k) {
			t.Errorf("Sign sets %s: %q, the vector recorded %q; regenerate testdata/interop", k, h.Get(k), want.Get(k))
		}
	}
	if len(h) != len(want) {
		t.Errorf("Sign sets %d headers, the vector recorded %d", len(h), len(want))
	}
}

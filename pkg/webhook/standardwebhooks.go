package webhook

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Standard Webhooks header names.
const (
	StandardWebhooksIDHeader        = "Webhook-Id"
	StandardWebhooksTimestampHeader = "Webhook-Timestamp"
	StandardWebhooksSignatureHeader = "Webhook-Signature"
)

// DefaultStandardWebhooksTolerance is the timestamp tolerance
// NewStandardWebhooks uses when given zero, as in the reference libraries.
const DefaultStandardWebhooksTolerance = 5 * time.Minute

// standardWebhooksSecretPrefix marks a serialized symmetric secret.
const standardWebhooksSecretPrefix = "whsec_"

// StandardWebhooks verifies and signs deliveries that follow the Standard
// Webhooks specification (https://www.standardwebhooks.com), symmetric
// scheme.
//
// The webhook-signature header is a space-separated list of
// "<version>,<base64 signature>" entries; v1 entries are the base64
// HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>" and entries of
// other versions (such as v1a, asymmetric) are ignored. The webhook-id must
// not contain '.', which would make the signed content ambiguous. The
// timestamp must be within the tolerance of the receive time in either
// direction.
type StandardWebhooks struct {
	keys      keyring
	tolerance time.Duration
}

var _ Provider = (*StandardWebhooks)(nil)

// NewStandardWebhooks returns a Standard Webhooks provider for secrets,
// newest first, each serialized as "whsec_<base64>" or as bare base64 (padded
// or not). A zero tolerance means DefaultStandardWebhooksTolerance.
func NewStandardWebhooks(secrets []string, tolerance time.Duration) (*StandardWebhooks, error) {
	if len(secrets) == 0 {
		return nil, fmt.Errorf("webhook: %s: no secrets configured", KindStandardWebhooks)
	}
	raw := make([][]byte, len(secrets))
	for i, s := range secrets {
		secret, problem := standardWebhooksKey(s)
		if problem != "" {
			return nil, &SecretError{Kind: KindStandardWebhooks, Index: i, Problem: problem}
		}
		raw[i] = secret
	}
	keys, err := newKeyring(KindStandardWebhooks, sha256.New, raw)
	if err != nil {
		return nil, err
	}
	tol, err := validTolerance(KindStandardWebhooks, tolerance, DefaultStandardWebhooksTolerance)
	if err != nil {
		return nil, err
	}
	return &StandardWebhooks{keys: keys, tolerance: tol}, nil
}

// standardWebhooksKey is the HMAC key a Standard Webhooks secret
// ("whsec_<base64>" or bare base64, padded or not) decodes to, or what is
// wrong with it (never quoting it).
func standardWebhooksKey(s string) ([]byte, string) {
	b64 := strings.TrimRight(strings.TrimPrefix(s, standardWebhooksSecretPrefix), "=")
	if b64 == "" {
		return nil, "is empty"
	}
	secret, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil {
		// The decoding error is not kept: it would echo part of the secret.
		return nil, "is not whsec_ followed by base64"
	}
	return secret, ""
}

// Verify implements Verifier.
func (s *StandardWebhooks) Verify(h http.Header, body []byte, now time.Time) error {
	const kind = KindStandardWebhooks
	sig, err := headerValue(h, kind, StandardWebhooksSignatureHeader)
	if err != nil {
		return err
	}
	id, err := signedHeader(h, StandardWebhooksIDHeader)
	if err != nil {
		return err
	}
	if strings.IndexByte(id, '.') >= 0 {
		return failure(ErrMalformedSignature, kind, StandardWebhooksIDHeader, "id contains '.'")
	}
	ts, err := signedHeader(h, StandardWebhooksTimestampHeader)
	if err != nil {
		return err
	}
	unix, ok := parseUnix(ts)
	if !ok {
		return failure(ErrMalformedSignature, kind, StandardWebhooksTimestampHeader, "not a Unix timestamp")
	}

	var (
		sums  [maxEntries][sha256.Size]byte
		cands [maxEntries][]byte
		n     int
	)
	for i := 0; ; i++ {
		if i == maxEntries {
			return failure(ErrMalformedSignature, kind, StandardWebhooksSignatureHeader, "more than 16 signatures")
		}
		entry, rest, more := strings.Cut(sig, " ")
		version, enc, ok := strings.Cut(entry, ",")
		if !ok || !validEntryName(version) || enc == "" {
			return failure(ErrMalformedSignature, kind, StandardWebhooksSignatureHeader, "entry is not version,signature")
		}
		if version == "v1" {
			if !decodeBase64(sums[n][:], enc) {
				return failure(ErrMalformedSignature, kind, StandardWebhooksSignatureHeader, "v1 is not a base64 HMAC-SHA256")
			}
			cands[n] = sums[n][:]
			n++
		}
		if !more {
			break
		}
		sig = rest
	}
	if n == 0 {
		return failure(ErrMissingSignature, kind, StandardWebhooksSignatureHeader, "no v1 signature")
	}
	if !s.keys.match(body, cands[:n], id, ts) {
		return failure(ErrSignatureMismatch, kind, StandardWebhooksSignatureHeader, "no v1 signature matches")
	}
	return checkTolerance(kind, StandardWebhooksTimestampHeader, unix, now, s.tolerance)
}

// signedHeader reads a header the signature covers. When the signature is
// present but such a header is absent, the request is malformed rather than
// unsigned.
func signedHeader(h http.Header, name string) (string, error) {
	v, err := headerValue(h, KindStandardWebhooks, name)
	if errors.Is(err, ErrMissingSignature) {
		return "", failure(ErrMalformedSignature, KindStandardWebhooks, name, "header absent or empty")
	}
	return v, err
}

// Sign implements Signer: it sets webhook-timestamp to now and
// webhook-signature to one v1 signature under the first secret. It keeps a
// webhook-id already in h, so a test can fix it, and otherwise sets a new
// random "msg_..." id.
func (s *StandardWebhooks) Sign(h http.Header, body []byte, now time.Time) error {
	const kind = KindStandardWebhooks
	ts, err := unixSeconds(kind, now)
	if err != nil {
		return err
	}
	id := h.Get(StandardWebhooksIDHeader)
	switch {
	case id == "":
		id = "msg_" + rand.Text()
	case strings.IndexByte(id, '.') >= 0 || len(id) > MaxHeaderBytes:
		return fmt.Errorf("webhook: %s: cannot sign: webhook-id contains '.' or is longer than 4 KiB", kind)
	}
	sum, err := s.keys.sign(body, id, ts)
	if err != nil {
		return err
	}
	h.Set(StandardWebhooksIDHeader, id)
	h.Set(StandardWebhooksTimestampHeader, ts)
	h.Set(StandardWebhooksSignatureHeader, "v1,"+base64.StdEncoding.EncodeToString(sum))
	return nil
}

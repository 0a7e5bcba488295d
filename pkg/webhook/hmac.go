package webhook

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"net/http"
	"strings"
	"time"
)

// HMACConfig configures a generic HMAC provider, for in-house senders that
// put an HMAC of the raw body in a single header.
type HMACConfig struct {
	// Header is the header carrying the signature, such as "X-Signature".
	// Required.
	Header string
	// Algorithm is the hash: "sha256" (the default when empty) or "sha512".
	Algorithm string
	// Encoding is how the MAC is written: "hex" (the default when empty,
	// either case accepted) or "base64" (standard alphabet, padded).
	Encoding string
	// Prefix, when set, must precede the encoded MAC exactly, such as
	// "sha256=". Empty by default.
	Prefix string
	// Secrets are the raw secret bytes, newest first. At least one, none
	// empty.
	Secrets [][]byte
}

// HMAC verifies and signs the header HMAC(secret, body), encoded as
// configured. GitHub and Shopify are HMAC providers with fixed settings.
type HMAC struct {
	kind   string // for errors: hmac, github or shopify
	header string // canonical header name
	prefix string
	base64 bool // base64 rather than hex
	size   int  // MAC length in bytes
	keys   keyring
}

var _ Provider = (*HMAC)(nil)

// NewHMAC returns a generic HMAC provider for cfg.
func NewHMAC(cfg HMACConfig) (*HMAC, error) {
	return newHMAC(KindHMAC, cfg)
}

func newHMAC(kind string, cfg HMACConfig) (*HMAC, error) {
	if !ValidHeaderName(cfg.Header) {
		return nil, fmt.Errorf("webhook: %s: header name %q is empty or not a valid HTTP header name", kind, cfg.Header)
	}
	var (
		newHash func() hash.Hash
		size    int
	)
	switch strings.ToLower(cfg.Algorithm) {
	case "", "sha256":
		newHash, size = sha256.New, sha256.Size
	case "sha512":
		newHash, size = sha512.New, sha512.Size
	default:
		return nil, fmt.Errorf("webhook: %s: unknown algorithm %q (want sha256 or sha512)", kind, cfg.Algorithm)
	}
	p := &HMAC{kind: kind, header: http.CanonicalHeaderKey(cfg.Header), prefix: cfg.Prefix, size: size}
	encodedLen := hex.EncodedLen(size)
	switch strings.ToLower(cfg.Encoding) {
	case "", "hex":
	case "base64":
		p.base64 = true
		encodedLen = base64.StdEncoding.EncodedLen(size)
	default:
		return nil, fmt.Errorf("webhook: %s: unknown encoding %q (want hex or base64)", kind, cfg.Encoding)
	}
	if len(p.prefix)+encodedLen > MaxHeaderBytes {
		return nil, fmt.Errorf("webhook: %s: prefix too long for a signature header of at most 4 KiB", kind)
	}
	keys, err := newKeyring(kind, newHash, cfg.Secrets)
	if err != nil {
		return nil, err
	}
	p.keys = keys
	return p, nil
}

// Verify implements Verifier.
func (p *HMAC) Verify(h http.Header, body []byte, _ time.Time) error {
	return p.verifyIn(h, p.header, body)
}

// verifyIn checks the signature carried in header name, which must be
// canonical: p.header, or another name the same provider signs under
// (Shopify's unprefixed header).
func (p *HMAC) verifyIn(h http.Header, name string, body []byte) error {
	v, err := headerValue(h, p.kind, name)
	if err != nil {
		return err
	}
	enc, ok := strings.CutPrefix(v, p.prefix)
	if !ok {
		return failure(ErrMalformedSignature, p.kind, name, "signature prefix missing")
	}
	var sum [maxMACSize]byte
	if p.base64 {
		ok = decodeBase64(sum[:p.size], enc)
	} else {
		ok = decodeHex(sum[:p.size], enc)
	}
	if !ok {
		return failure(ErrMalformedSignature, p.kind, name, "signature is not a correctly sized "+p.encoding()+" MAC")
	}
	cands := [1][]byte{sum[:p.size]}
	if !p.keys.match(body, cands[:]) {
		return failure(ErrSignatureMismatch, p.kind, name, "signature does not match")
	}
	return nil
}

// Sign implements Signer: it sets the header to the prefix and the encoded
// MAC under the first secret. now is not used.
func (p *HMAC) Sign(h http.Header, body []byte, _ time.Time) error {
	sum, err := p.keys.sign(body)
	if err != nil {
		return err
	}
	var enc string
	if p.base64 {
		enc = base64.StdEncoding.EncodeToString(sum)
	} else {
		enc = hex.EncodeToString(sum)
	}
	h.Set(p.header, p.prefix+enc)
	return nil
}

func (p *HMAC) encoding() string {
	if p.base64 {
		return "base64"
	}
	return "hex"
}

// ValidHeaderName reports whether name is a non-empty RFC 9110 token: a
// header a signature can be read from.
func ValidHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := range len(name) {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

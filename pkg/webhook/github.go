package webhook

import (
	"net/http"
	"time"
)

// GitHubHeader is the header GitHub puts its SHA-256 signature in.
const GitHubHeader = "X-Hub-Signature-256"

// GitHub verifies and signs GitHub webhook deliveries: the
// X-Hub-Signature-256 header holds "sha256=" and the lower-case hex
// HMAC-SHA256 of the body. The legacy SHA-1 X-Hub-Signature header is not
// consulted. GitHub signs no timestamp, so there is no replay window to
// check; deduplicate on X-GitHub-Delivery downstream.
type GitHub struct {
	mac *HMAC
}

var _ Provider = (*GitHub)(nil)

// NewGitHub returns a GitHub provider for the webhook secrets, newest first.
func NewGitHub(secrets [][]byte) (*GitHub, error) {
	mac, err := newHMAC(KindGitHub, HMACConfig{
		Header:    GitHubHeader,
		Algorithm: "sha256",
		Encoding:  "hex",
		Prefix:    "sha256=",
		Secrets:   secrets,
	})
	if err != nil {
		return nil, err
	}
	return &GitHub{mac: mac}, nil
}

// Verify implements Verifier. now is not used.
func (g *GitHub) Verify(h http.Header, body []byte, now time.Time) error {
	if g.mac == nil {
		return failure(ErrSignatureMismatch, KindGitHub, GitHubHeader, "no secrets configured")
	}
	return g.mac.Verify(h, body, now)
}

// Sign implements Signer: it sets X-Hub-Signature-256 using the first
// secret. now is not used.
func (g *GitHub) Sign(h http.Header, body []byte, now time.Time) error {
	if g.mac == nil {
		return errNoSecrets
	}
	return g.mac.Sign(h, body, now)
}

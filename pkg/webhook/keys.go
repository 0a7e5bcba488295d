package webhook

import (
	"bytes"
	"crypto/hmac"
	"errors"
	"fmt"
	"hash"
	"sync"
)

// KeyLen is the length in bytes of the HMAC key a provider of kind makes
// of secret: the key it decodes to for standard-webhooks, the secret's
// own bytes for the other kinds. It is -1 for a secret New refuses as
// malformed.
func KeyLen(kind string, secret []byte) int {
	if kind == KindStandardWebhooks {
		key, problem := standardWebhooksKey(string(secret))
		if problem != "" {
			return -1
		}
		return len(key)
	}
	return len(secret)
}

// keyring holds the secrets of one provider, newest first. Each secret keeps
// a pool of keyed HMAC states so that Verify allocates nothing on its hot
// path.
type keyring []*key

type key struct {
	pool sync.Pool // of *macState
}

// macState is a keyed HMAC and a scratch buffer, reused across calls.
type macState struct {
	mac hash.Hash
	buf []byte // holds the signed prefix, then the sum
}

// newKeyring copies secrets; it rejects an empty list and empty secrets.
func newKeyring(kind string, newHash func() hash.Hash, secrets [][]byte) (keyring, error) {
	if len(secrets) == 0 {
		return nil, fmt.Errorf("webhook: %s: no secrets configured", kind)
	}
	ring := make(keyring, len(secrets))
	for i, s := range secrets {
		if len(s) == 0 {
			return nil, &SecretError{Kind: kind, Index: i, Problem: "is empty"}
		}
		secret := bytes.Clone(s)
		k := &key{}
		k.pool.New = func() any { return &macState{mac: hmac.New(newHash, secret)} }
		ring[i] = k
	}
	return ring, nil
}

var errNoSecrets = errors.New("webhook: no secrets configured")

// SecretError is a secret a provider cannot use, named by its index in
// the secrets given: the caller knows where each came from.
type SecretError struct {
	Kind    string
	Index   int
	Problem string // "is empty", "is not whsec_ followed by base64"; never the secret
}

func (e *SecretError) Error() string {
	return fmt.Sprintf("webhook: %s: secrets[%d] %s", e.Kind, e.Index, e.Problem)
}

// match computes, once per secret, the MAC of the signed content (each of
// parts followed by '.', then body) and reports whether any candidate equals
// it, in constant time per comparison.
func (r keyring) match(body []byte, candidates [][]byte, parts ...string) bool {
	for _, k := range r {
		matched := false
		k.sum(body, parts, func(sum []byte) {
			for _, c := range candidates {
				if hmac.Equal(sum, c) {
					matched = true
				}
			}
		})
		if matched {
			return true
		}
	}
	return false
}

// sign returns the MAC of the signed content under the newest secret.
func (r keyring) sign(body []byte, parts ...string) ([]byte, error) {
	if len(r) == 0 {
		return nil, errNoSecrets
	}
	var out []byte
	r[0].sum(body, parts, func(sum []byte) { out = bytes.Clone(sum) })
	return out, nil
}

// sum passes the MAC of parts and body to use; the slice is only valid
// during the call.
func (k *key) sum(body []byte, parts []string, use func(sum []byte)) {
	st := k.pool.Get().(*macState)
	st.mac.Reset()
	if len(parts) > 0 {
		st.buf = st.buf[:0]
		for _, p := range parts {
			st.buf = append(st.buf, p...)
			st.buf = append(st.buf, '.')
		}
		st.mac.Write(st.buf)
	}
	st.mac.Write(body)
	st.buf = st.mac.Sum(st.buf[:0])
	use(st.buf)
	k.pool.Put(st) // buf stays small: signed prefixes come from headers capped at 4 KiB
}

// Package bearer reads bearer tokens from Authorization headers and
// compares them with configured tokens without leaking either.
package bearer

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"
)

const scheme = "Bearer "

// Token returns the token of an Authorization header in the Bearer scheme,
// whose name is case-insensitive (RFC 9110 11.1): "bearer x" is one too.
// One or more spaces separate the scheme from the token (RFC 9110 11.4,
// credentials = auth-scheme [ 1*SP ... ]): "Bearer  x" is x. An empty
// token is no token, nor is one that starts or ends with other
// whitespace (a tab instead of the space, "Bearer \t").
func Token(header string) (string, bool) {
	if len(header) <= len(scheme) || !strings.EqualFold(header[:len(scheme)], scheme) {
		return "", false
	}
	tok := strings.TrimLeft(header[len(scheme):], " ")
	if tok == "" || strings.TrimSpace(tok) != tok {
		return "", false
	}
	return tok, true
}

// Matches reports whether got is want, in constant time over SHA-256
// digests, so the comparison leaks neither content nor length.
func Matches(got string, want []byte) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256(want)
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

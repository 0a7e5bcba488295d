package webhook

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

const (
	// MaxHeaderBytes caps the length of any header value read by Verify
	// (pkg/source refuses an hmac.prefix that leaves no room for the MAC
	// under it).
	MaxHeaderBytes = 4 << 10
	// maxEntries caps the number of entries (Stripe elements, Standard
	// Webhooks signatures) a signature header may hold.
	maxEntries = 16
	// maxTimestampDigits is the most digits a non-negative int64 has.
	maxTimestampDigits = 19
	// maxUnix is the last second of the year 9999.
	maxUnix = 253402300799
)

// failure wraps sentinel with where and why verification failed. The detail
// is a fixed description: it never holds header contents or secrets.
func failure(sentinel error, kind, header, detail string) error {
	return fmt.Errorf("%w: %s %s: %s", sentinel, kind, header, detail)
}

// headerValue returns the single value of header name in h. An absent or
// empty header is ErrMissingSignature; a repeated or oversized one is
// ErrMalformedSignature.
//
// name must be canonical (every caller passes a constant or a name
// canonicalised when the provider was built): h[name] is then what
// h.Values(name) returns, without canonicalising name again on every
// request.
func headerValue(h http.Header, kind, name string) (string, error) {
	vs := h[name]
	switch {
	case len(vs) == 0 || (len(vs) == 1 && vs[0] == ""):
		return "", failure(ErrMissingSignature, kind, name, "header absent or empty")
	case len(vs) > 1:
		return "", failure(ErrMalformedSignature, kind, name, "header repeated")
	case len(vs[0]) > MaxHeaderBytes:
		return "", failure(ErrMalformedSignature, kind, name, "header longer than 4 KiB")
	}
	return vs[0], nil
}

// parseUnix parses a Unix timestamp in seconds strictly: ASCII decimal digits
// only, no sign, no leading zero (other than "0" itself), no overflow.
func parseUnix(s string) (int64, bool) {
	if s == "" || len(s) > maxTimestampDigits || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// checkTolerance reports ErrTimestampOutOfTolerance when the signed Unix
// time ts is more than tol before or after now.
func checkTolerance(kind, header string, ts int64, now time.Time, tol time.Duration) error {
	// time.Unix wraps a ts within about 62e9 s of the int64 maximum into
	// the distant past (never into the window), and the answer said such a
	// time was signed 2562047h before receipt.
	if ts > maxUnix {
		return failure(ErrTimestampOutOfTolerance, kind, header,
			fmt.Sprintf("signed after the year 9999, tolerance %s", tol))
	}
	// time.Time.Sub saturates instead of overflowing.
	skew := now.Sub(time.Unix(ts, 0))
	switch {
	case skew > tol:
		return failure(ErrTimestampOutOfTolerance, kind, header,
			fmt.Sprintf("signed %s before receipt, tolerance %s", skew.Truncate(time.Second), tol))
	case skew < -tol:
		return failure(ErrTimestampOutOfTolerance, kind, header,
			fmt.Sprintf("signed %s after receipt, tolerance %s", (-skew).Truncate(time.Second), tol))
	}
	return nil
}

// validTolerance applies def when tol is zero and rejects a negative tol.
func validTolerance(kind string, tol, def time.Duration) (time.Duration, error) {
	switch {
	case tol < 0:
		return 0, fmt.Errorf("webhook: %s: negative tolerance %s", kind, tol)
	case tol == 0:
		return def, nil
	}
	return tol, nil
}

// unixSeconds returns now as Unix seconds for Sign, refusing times the
// verifiers would refuse.
func unixSeconds(kind string, now time.Time) (string, error) {
	ts := now.Unix()
	if ts < 0 {
		return "", fmt.Errorf("webhook: %s: cannot sign at %s, before the Unix epoch", kind, now)
	}
	return strconv.FormatInt(ts, 10), nil
}

// decodeHex decodes s, in upper or lower case, into dst and reports whether s
// was exactly 2*len(dst) hex digits. It does not allocate.
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := fromHexChar(s[2*i])
		lo, ok2 := fromHexChar(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func fromHexChar(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// strictBase64 is the standard padded alphabet, refusing non-canonical
// trailing bits so that one signature has one spelling.
var strictBase64 = base64.StdEncoding.Strict()

const (
	// maxMACSize is the largest MAC this package handles (HMAC-SHA512).
	maxMACSize = 64
	// maxMACBase64 is the padded base64 length of maxMACSize bytes.
	maxMACBase64 = (maxMACSize + 2) / 3 * 4
)

// decodeBase64 decodes s, standard alphabet with padding and canonical
// trailing bits, into dst and reports whether it held exactly len(dst)
// bytes. len(dst) must not exceed maxMACSize.
func decodeBase64(dst []byte, s string) bool {
	if len(s) != strictBase64.EncodedLen(len(dst)) {
		return false
	}
	var src [maxMACBase64]byte
	var out [maxMACBase64 / 4 * 3]byte
	n, err := strictBase64.Decode(out[:], src[:copy(src[:], s)])
	if err != nil || n != len(dst) {
		return false
	}
	copy(dst, out[:n])
	return true
}

// validEntryName reports whether s is a plausible scheme or version name in
// a signature header (such as t, v1 or v1a): one to 16 ASCII letters,
// digits, '_' or '-'.
func validEntryName(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

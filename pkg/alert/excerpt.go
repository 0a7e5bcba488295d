package alert

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// secretNames are the parts of a JSON member name whose whole value (object,
// array or scalar) never leaves in an alert. A name matches when, lowercased
// and with everything but letters and digits dropped, it contains one:
// x-api-key, X_Api_Key and apiKey all contain "apikey"; card_number and a
// "card" object both contain "card".
var secretNames = []string{
	"secret", "token", "password", "passwd", "passphrase",
	"apikey", "accesskey", "privatekey", "credential", "authorization", "cookie",
	"card", "cvc", "cvv", "iban", "accountnumber",
}

// secretWords must be a whole word of the name (userSSN, ssn_last4): as a
// part, "ssn" is in businessName and address_number.
var secretWords = []string{"ssn"}

// secretName reports whether a member called name holds a secret.
func secretName(name string) bool {
	var joined strings.Builder
	var words []string
	word := []rune{}
	endWord := func() {
		if len(word) > 0 {
			words = append(words, string(word))
			word = word[:0]
		}
	}
	prevLower := false
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			endWord()
			prevLower = false
			continue
		}
		if unicode.IsUpper(r) && prevLower { // camelCase boundary
			endWord()
		}
		prevLower = unicode.IsLower(r) || unicode.IsDigit(r)
		l := unicode.ToLower(r)
		word = append(word, l)
		joined.WriteRune(l)
	}
	endWord()
	j := joined.String()
	for _, s := range secretNames {
		if strings.Contains(j, s) {
			return true
		}
	}
	for _, w := range words {
		for _, s := range secretWords {
			if w == s {
				return true
			}
		}
	}
	return false
}

// minExcerpt is the smallest bound Excerpt honours: room for a cut-short
// member and the closing brackets.
const minExcerpt = 32

// Excerpt returns payload as compact JSON of at most n bytes (n below 32
// counts as 32) with the value of every secret-looking member (see
// secretNames) replaced by "[redacted]", whole, whatever its type.
//
// The excerpt is always valid JSON. Where it was cut short, for room or
// because the payload stops being JSON there, a long string ends in "…",
// or "…" stands for the missing value, element or member ("…":"…"), and
// the open objects and arrays are closed. A payload that is not JSON at
// all becomes a string saying so and its size: it cannot be redacted.
func Excerpt(payload []byte, n int) string {
	n = max(n, minExcerpt)
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	w := excerptWriter{n: n}
	if !w.copy(dec) && w.tokens == 0 {
		return `"[not JSON: ` + strconv.Itoa(len(payload)) + ` bytes]"`
	}
	return string(w.out)
}

// ellipsis marks where an excerpt was cut.
const ellipsis = `"…"`

type excerptFrame struct {
	obj     bool
	members int // members or elements written
}

// excerptWriter copies JSON tokens to out while they fit in n, keeping
// room (reserve) to close what is open.
type excerptWriter struct {
	out      []byte
	n        int
	frames   []excerptFrame
	afterKey bool // a key is written, its value is not
	tokens   int  // read from the payload
}

// reserve is what finishing may still need: a cut-short member
// (,"…":"…"), a bracket that the next piece may open, and the closers.
func (w *excerptWriter) reserve() int { return len(`,"…":"…"`) + 1 + len(w.frames) }

func (w *excerptWriter) fits(s string) bool { return len(w.out)+len(s)+w.reserve() <= w.n }

// copy writes the redacted first JSON value of dec, reporting whether it
// was whole; when not, it finishes out so that it is valid JSON.
func (w *excerptWriter) copy(dec *json.Decoder) bool {
	for {
		tok, err := dec.Token()
		if err != nil {
			w.cut("")
			return false
		}
		w.tokens++
		var top *excerptFrame
		if len(w.frames) > 0 {
			top = &w.frames[len(w.frames)-1]
		}
		sep := ""
		if top != nil && top.members > 0 && !w.afterKey {
			sep = ","
		}
		if top != nil && top.obj && !w.afterKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				w.close()
				if len(w.frames) == 0 {
					return true
				}
				continue
			}
			key, _ := tok.(string) // the decoder allows nothing else here
			if secretName(key) {
				var skip json.RawMessage
				if err := dec.Decode(&skip); err != nil {
					w.cut("")
					return false
				}
				p := sep + quote(key) + `:"[redacted]"`
				if !w.fits(p) {
					w.cut("")
					return false
				}
				w.out = append(w.out, p...)
				top.members++
				continue
			}
			p := sep + quote(key) + ":"
			if !w.fits(p) {
				w.cut("")
				return false
			}
			w.out = append(w.out, p...)
			top.members++
			w.afterKey = true
			continue
		}
		var p string
		switch t := tok.(type) {
		case json.Delim:
			if t == ']' {
				w.close()
				if len(w.frames) == 0 {
					return true
				}
				continue
			}
			p = t.String()
		case string:
			p = quote(t)
		case json.Number:
			p = t.String()
		case bool:
			p = strconv.FormatBool(t)
		case nil:
			p = "null"
		}
		if !w.fits(sep + p) {
			last := ""
			if s, ok := tok.(string); ok {
				if q := quoteCut(s, w.n-len(w.out)-len(sep)-len(w.frames)); q != "" {
					last = sep + q
				}
			}
			w.cut(last)
			return false
		}
		w.out = append(w.out, sep+p...)
		w.afterKey = false
		if top != nil && !top.obj {
			top.members++
		}
		if d, ok := tok.(json.Delim); ok {
			w.frames = append(w.frames, excerptFrame{obj: d == '{'})
		} else if len(w.frames) == 0 {
			return true // a scalar payload
		}
	}
}

func (w *excerptWriter) close() {
	f := w.frames[len(w.frames)-1]
	w.frames = w.frames[:len(w.frames)-1]
	if f.obj {
		w.out = append(w.out, '}')
	} else {
		w.out = append(w.out, ']')
	}
	w.afterKey = false
}

// cut finishes out: last (a string cut short, or ""), or "…" in place of
// what is missing, then the closers.
func (w *excerptWriter) cut(last string) {
	switch {
	case last != "":
		w.out = append(w.out, last...)
	case w.afterKey, len(w.frames) == 0: // a value (a payload's only one) is missing
		w.out = append(w.out, ellipsis...)
	default:
		top := w.frames[len(w.frames)-1]
		if top.members > 0 {
			w.out = append(w.out, ',')
		}
		w.out = append(w.out, ellipsis...)
		if top.obj {
			w.out = append(w.out, ':')
			w.out = append(w.out, ellipsis...)
		}
	}
	for len(w.frames) > 0 {
		w.close()
	}
}

// quote is s as a JSON string; unlike json.Marshal it leaves <, > and &
// alone (the excerpt is read by people, not embedded in HTML).
func quote(s string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

// quoteCut is the longest prefix of s, ending in "…", whose JSON string
// fits in room bytes; "" when none does (then "…" stands for s).
func quoteCut(s string, room int) string {
	k := min(len(s), room)
	for k > 0 {
		for k > 0 && k < len(s) && !utf8.RuneStart(s[k]) {
			k--
		}
		q := quote(s[:k] + "…")
		if len(q) <= room {
			return q
		}
		k -= len(q) - room
	}
	return ""
}

// SecretPath reports whether the JSON pointer p (RFC 6901) passes through a
// member whose name looks secret, as Excerpt judges names: the value there
// is one Excerpt would redact, so an error quoting it must not either.
func SecretPath(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		seg = strings.ReplaceAll(strings.ReplaceAll(seg, "~1", "/"), "~0", "~")
		if seg != "" && secretName(seg) {
			return true
		}
	}
	return false
}

// Package redact finds the forms a configured credential takes when a
// server or library quotes it back (an API answering 401 often quotes the
// key it refused, a 404 page the path), and blots them out of text bound
// for error histories, logs and alerts.
package redact

import (
	"encoding/base64"
	"encoding/json"
	"html"
	"net/url"
	"slices"
	"strings"
)

// Set is the forms Forms found, longest first: a value is blotted out
// whole before a shorter one inside it.
type Set []string

// Forms lists the forms of the credentials in header values (each as
// given, the credential after an auth scheme such as "Bearer", and a Basic
// one's decoded parts) and in each URL (its user, password and their Basic
// encoding; its path, whole and each segment that is not a plain word; its
// query, whole and each value), each as it is and as a server may quote
// it: JSON-escaped (also with "\/"), URL- and HTML-escaped. A form under 4
// bytes is left: it would blot out the text. A nil URL is skipped.
func Forms(headerValues []string, urls ...*url.URL) Set {
	var values []string
	for _, v := range headerValues {
		c := credential(v)
		values = append(values, v, c)
		if scheme, _, _ := strings.Cut(v, " "); strings.EqualFold(scheme, "basic") {
			if dec, err := base64.StdEncoding.DecodeString(c); err == nil {
				user, pw, _ := strings.Cut(string(dec), ":")
				values = append(values, string(dec), user, pw)
			}
		}
	}
	for _, u := range urls {
		if u == nil {
			continue
		}
		if u.User != nil {
			// A key given as the URL's user alone (https://sk_live_…@host)
			// is sent as basic auth with an empty password.
			pw, _ := u.User.Password()
			values = append(values, u.User.Username(), pw, base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pw)))
		}
		if u.Path != "" && u.Path != "/" {
			values = append(values, u.Path, u.EscapedPath())
			// A 404 may quote the token segment alone ("unknown webhook
			// <token>"). Words (lower-case letters, - and _) are left:
			// "hooks" or "traces" blotted out of every answer would hide
			// more than they protect.
			for seg := range strings.SplitSeq(u.Path, "/") {
				if !isWord(seg) {
					values = append(values, seg) // escaped forms: below
				}
			}
		}
		if u.RawQuery != "" {
			values = append(values, u.RawQuery)
			for _, vs := range u.Query() {
				values = append(values, vs...)
			}
		}
	}
	seen := map[string]bool{}
	var forms Set
	for _, v := range values {
		j, _ := json.Marshal(v)
		js := string(j[1 : len(j)-1]) // without its quotes
		for _, f := range []string{v, js, strings.ReplaceAll(js, "/", `\/`), url.QueryEscape(v), url.PathEscape(v), html.EscapeString(v)} {
			if len(f) >= 4 && !seen[f] {
				seen[f] = true
				forms = append(forms, f)
			}
		}
	}
	slices.SortStableFunc(forms, func(a, b string) int { return len(b) - len(a) })
	return forms
}

// Apply returns text with every form in s replaced by "[redacted]".
func (s Set) Apply(text string) string {
	for _, f := range s {
		text = strings.ReplaceAll(text, f, "[redacted]")
	}
	return text
}

// Longest is the length of the longest form, 0 for none.
func (s Set) Longest() int {
	if len(s) == 0 {
		return 0
	}
	return len(s[0])
}

// isWord reports whether s is lower-case ASCII letters, '-' and '_' only:
// a path segment that names a route, not a token.
func isWord(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// credential is v without an auth scheme ("Bearer sk_…" → "sk_…").
func credential(v string) string {
	if _, c, ok := strings.Cut(v, " "); ok {
		return strings.TrimSpace(c)
	}
	return ""
}

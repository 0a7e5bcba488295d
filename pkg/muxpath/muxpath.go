// Package muxpath says which request paths net/http's ServeMux does not
// route but redirects (307) to a cleaned path, so that a service can
// answer them itself: a webhook provider or script following the
// redirect resends its request to another URL than the one it was given,
// and one that does not is left with a text/html page.
package muxpath

import (
	"net/http"
	"path"
	"strings"
)

// Clean is the path ServeMux routes p by: rooted, without empty, "." or
// ".." segments, with its trailing slash kept.
func Clean(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if strings.HasSuffix(p, "/") && np != "/" {
		np += "/"
	}
	return np
}

// Uncleaned reports whether ServeMux would redirect r to a cleaned path
// (one with an empty, "." or ".." segment: //x, /a/./b, /a/../b), and
// returns that path. Like ServeMux it reads the escaped path (/a%2F..%2Fb
// is clean) and leaves a CONNECT alone. A path that does not start with
// "/" (a CONNECT's authority, "*") is not one.
func Uncleaned(r *http.Request) (clean string, ok bool) {
	if r.Method == http.MethodConnect {
		return "", false
	}
	p := r.URL.EscapedPath()
	if !strings.HasPrefix(p, "/") {
		return "", false
	}
	clean = Clean(p)
	return clean, clean != p
}

package muxpath

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestUncleanedIsWhatServeMuxRedirects: for each path, Uncleaned says
// redirected exactly when a ServeMux with a catch-all route answers 307,
// and names the Location it redirects to.
func TestUncleanedIsWhatServeMuxRedirects(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(http.ResponseWriter, *http.Request) {})
	for _, target := range []string{
		"/", "/a", "/a/", "//a", "/a//b", "/a/./b", "/a/../b", "/a/..", "/a/.", "/..", "/a/b/",
		"/a%2F..%2Fb", "/a/%2E%2E/b", "/./", "/a/.../b",
	} {
		for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodConnect} {
			r := httptest.NewRequest(method, "http://x"+target, nil)
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, r)
			clean, ok := Uncleaned(r)
			redirected := w.Code == http.StatusTemporaryRedirect
			if ok != redirected || (ok && w.Header().Get("Location") != clean) {
				t.Errorf("%s %s: Uncleaned %q %v; ServeMux %d Location %q", method, target, clean, ok, w.Code, w.Header().Get("Location"))
			}
		}
	}
}

package admin

import (
	"net/http"
	"strings"

	"github.com/inletdev/inlet/pkg/muxpath"
)

// RefuseUncleaned returns h with the API's answer in front of it for a
// path ServeMux would redirect under /v1: one with an empty, "." or ".."
// segment (/v1//dlq, /v1/dlq/./x, /v1/dlq/a/../b, //v1/depth), and /v1
// itself. ServeMux answers those 307 text/html to the cleaned path (or
// /v1/), which neither inletctl nor a script reading .error reads, and
// which a client following redirects may resend as a GET, or to another
// entry (/v1/dlq/t/0/../5 is /v1/dlq/t/5). They are answered 404 in
// JSON instead, naming the cleaned path, whatever the method; the API
// redirects nothing. Wrap the outermost handler of a listener the API is
// mounted on (API.Register's mux, and any mux in front of it): each
// ServeMux on the way cleans the path before the next sees it. The API's
// own ServeHTTP does the same for its routes.
//
// Like ServeMux, it reads the escaped path: /v1/trace/a%2F..%2Fb is
// clean, and reaches the route with the id a/../b.
func RefuseUncleaned(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !uncleaned(w, r) {
			h.ServeHTTP(w, r)
		}
	})
}

// uncleaned answers r and reports true when its path is one
// RefuseUncleaned refuses.
func uncleaned(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.EscapedPath()
	clean, redirected := muxpath.Uncleaned(r)
	underV1 := func(s string) bool { return s == "/v1" || strings.HasPrefix(s, "/v1/") }
	switch {
	case p == "/v1" && r.Method != http.MethodConnect:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no admin API route /v1 " + routesText})
	case redirected && (underV1(clean) || underV1(p)):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no admin API route " + p +
			`: a path with an empty, "." or ".." segment is neither cleaned nor redirected (cleaned, it is ` + clean + "; ask for that if it is what you meant)"})
	default:
		return false
	}
	return true
}

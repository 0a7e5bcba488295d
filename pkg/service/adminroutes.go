package service

import (
	"net/http"
	"slices"
	"strings"

	"github.com/inletdev/inlet/pkg/muxpath"
)

// AdminRoutes returns the handler of a service's admin listener
// (ingest's, the processor's, the dev stack's): mux's routes, and for a
// request none of them takes a JSON answer {"error":"…"}, the admin
// API's shape, where ServeMux answers text/html or plain text:
//
//   - a path with an empty, "." or ".." segment (//metrics, /./healthz,
//     /a/../readyz): 404 naming the cleaned path, whatever the method.
//     ServeMux redirects it 307 to the cleaned path; it is neither
//     cleaned nor redirected.
//   - a path no route takes: 404.
//   - a route's path asked with another method (POST /metrics, DELETE
//     /healthz): 405 with Allow, as ServeMux says it (a GET route takes
//     HEAD too, answered as GET without a body).
//
// What a route takes reaches it unchanged: a Prometheus scrape of GET
// /metrics, the probes' GET or HEAD /healthz and /readyz. Where the admin
// API is mounted, wrap the result in admin.RefuseUncleaned, which
// answers /v1's paths in the API's words.
func AdminRoutes(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.EscapedPath()
		if clean, ok := muxpath.Uncleaned(r); ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no route " + p +
				` on the admin listener: a path with an empty, "." or ".." segment is neither cleaned nor redirected (cleaned, it is ` + clean + "; ask for that if it is what you meant)"})
			return
		}
		if !strings.HasPrefix(r.URL.Path, "/") {
			// A CONNECT's authority, or "*": no route is one.
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no route " + r.URL.Path + " on the admin listener"})
			return
		}
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		if allow := allowedMethods(mux, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method " + r.Method + " not allowed on " + p + ": use " + strings.Join(allow, ", ")})
			return
		}
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no route " + p + " on the admin listener"})
	})
}

// allowedMethods is the methods a route of mux takes r's path with,
// sorted as ServeMux's Allow lists them.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
		other := r.Clone(r.Context())
		other.Method = m
		if _, pattern := mux.Handler(other); pattern != "" {
			allow = append(allow, m)
		}
	}
	slices.Sort(allow)
	return allow
}

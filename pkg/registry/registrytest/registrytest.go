// Package registrytest serves a schema registry to tests as a user with
// read access only sees it.
package registrytest

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
)

// ReadOnly serves the registry at target as to a user who may only read:
// a write (registering a schema, changing config, deleting) is answered
// 403 as Confluent answers it, and recorded. POST /subjects/{subject}
// (looking a schema up) is a read; POST .../versions registers. writes
// returns what was refused so far, as "METHOD path". The server stops
// with the test.
func ReadOnly(t testing.TB, target string) (serverURL string, writes func() []string) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	var mu sync.Mutex
	var refused []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && (r.Method != http.MethodPost || strings.HasSuffix(r.URL.Path, "/versions")) {
			mu.Lock()
			refused = append(refused, r.Method+" "+r.URL.Path)
			mu.Unlock()
			w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"error_code":40301,"message":"User is denied operation Write on Subject"}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(refused)
	}
}

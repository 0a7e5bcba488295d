package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/inletdev/inlet/pkg/admin"
)

// TestAdminAuth: a read (trace) carries the read-only token when it is set
// (it carried the write token whenever that was set too), the write token
// otherwise; a write carries the write token when it is set.
func TestAdminAuth(t *testing.T) {
	for name, tc := range map[string]struct{ method, write, read, want string }{
		"a read takes the read token":      {"GET", "w", "r", "Bearer r"},
		"a read without it takes write's":  {"GET", "w", "", "Bearer w"},
		"a read with the read token alone": {"GET", "", "r", "Bearer r"},
		"a write takes the write token":    {"POST", "w", "r", "Bearer w"},
		"a write without it takes read's":  {"POST", "", "r", "Bearer r"},
		"none":                             {"GET", "", "", ""},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(admin.EnvWriteToken, tc.write)
			t.Setenv(admin.EnvReadToken, tc.read)
			req, _ := http.NewRequest(tc.method, "http://x/v1/depth", nil)
			if err := adminAuth(req); err != nil || req.Header.Get("Authorization") != tc.want {
				t.Fatalf("%q, %v; want %q", req.Header.Get("Authorization"), err, tc.want)
			}
		})
	}
}

// TestTraceAgainstAnotherListener: pointed at a listener that is not the
// admin API (ingest's admin port, say), trace says so and which address to
// use, instead of a bare "404 Not Found".
func TestTraceAgainstAnotherListener(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	code, err := run([]string{"trace", "-admin-url", srv.URL, "corr-1"}, &bytes.Buffer{})
	if code != exitError || err == nil || !strings.Contains(err.Error(), "not the admin API") || !strings.Contains(err.Error(), "9091") {
		t.Fatalf("exit %d, %v", code, err)
	}
}

// TestTraceRefusesRedirects: the admin API's client followed redirects,
// and Go keeps the Authorization header on a redirect to the same host
// (another port, or https to http), so an answer 302/307 sent the admin
// token wherever it pointed. trace now follows none: it fails naming the
// redirect's Location, and nothing is sent there.
func TestTraceRefusesRedirects(t *testing.T) {
	const token = "admin-read-token-never-to-leave"
	var mu sync.Mutex
	var leaked []string // Authorization headers the redirect's target got
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		leaked = append(leaked, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"correlation_id": "corr-1", "stages": []any{}})
	}))
	t.Cleanup(target.Close)
	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			mu.Lock()
			leaked = nil
			mu.Unlock()
			// Same host (127.0.0.1), another port: Go keeps the header.
			redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.URL+r.URL.Path, status)
			}))
			t.Cleanup(redirecting.Close)
			t.Setenv(admin.EnvReadToken, token)
			t.Setenv(admin.EnvWriteToken, "")
			code, err := run([]string{"trace", "-admin-url", redirecting.URL, "corr-1"}, &bytes.Buffer{})
			mu.Lock()
			got := leaked
			mu.Unlock()
			if len(got) > 0 {
				t.Errorf("the redirect was followed: its target got Authorization %q", got)
			}
			if code != exitError || err == nil {
				t.Fatalf("exit %d, %v; want %d and an error naming the redirect", code, err, exitError)
			}
			for _, want := range []string{redirecting.URL, "redirect", target.URL + "/v1/trace/corr-1", "-admin-url"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if strings.Contains(err.Error(), token) {
				t.Errorf("the error shows the token: %v", err)
			}
		})
	}
}

package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
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

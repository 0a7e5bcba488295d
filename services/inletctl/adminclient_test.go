package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/inletdev/inlet/pkg/admin"
)

func TestAdminAuth(t *testing.T) {
	for name, tc := range map[string]struct{ write, read, want string }{
		"write wins": {"w", "r", "Bearer w"},
		"read only":  {"", "r", "Bearer r"},
		"none":       {"", "", ""},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(admin.EnvWriteToken, tc.write)
			t.Setenv(admin.EnvReadToken, tc.read)
			req, _ := http.NewRequest("GET", "http://x/v1/depth", nil)
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

package main

import (
	"net/http"
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

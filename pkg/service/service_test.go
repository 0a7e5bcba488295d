package service

import (
	"net/http"
	"testing"
)

// TestAdminServerLimits: the admin listener is on the cluster network;
// with only a header timeout an idle keep-alive connection was held for
// good after one unauthenticated GET /healthz.
func TestAdminServerLimits(t *testing.T) {
	s := AdminServer(http.NotFoundHandler())
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.WriteTimeout <= 0 || s.IdleTimeout <= 0 {
		t.Errorf("timeouts: header %v read %v write %v idle %v; want all set", s.ReadHeaderTimeout, s.ReadTimeout, s.WriteTimeout, s.IdleTimeout)
	}
	if s.MaxHeaderBytes <= 0 || s.MaxHeaderBytes >= http.DefaultMaxHeaderBytes {
		t.Errorf("MaxHeaderBytes %d: want set, below Go's 1 MiB default", s.MaxHeaderBytes)
	}
}

package main

import (
	"encoding/json"
	"net/http"
	"sync/atomic"

	"github.com/inletdev/inlet/pkg/ingest"
)

// startProbes answers /healthz and /readyz on the admin listener from the
// moment it listens: while ingest starts (topics, the schema registry)
// /healthz is 200, the process is alive and should not be restarted, and
// /readyz is 503 saying what the start waits on. Once the ingest server
// serves, both are its own.
type startProbes struct {
	status atomic.Pointer[string]
	server atomic.Pointer[http.Handler]
}

// waiting sets what /readyz says the start waits on.
func (p *startProbes) waiting(status string) { p.status.Store(&status) }

// serving hands the probes to srv.
func (p *startProbes) serving(srv *ingest.Server) {
	h := srv.Handler()
	p.server.Store(&h)
}

func (p *startProbes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := p.server.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	if r.URL.Path == "/healthz" {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return
	}
	status := "starting"
	if s := p.status.Load(); s != nil {
		status = *s
	}
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": status})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, _ := json.Marshal(v) // a map of strings always encodes
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

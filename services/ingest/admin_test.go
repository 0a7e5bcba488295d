package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/inletdev/inlet/pkg/service"
	"github.com/inletdev/inlet/pkg/service/servicetest"
	"github.com/inletdev/inlet/pkg/telemetry"
)

// TestAdminListenerAnswers: ingest's admin listener answers as the
// processor's and the dev stack's do, while it starts and once ingest
// serves: what no route takes is JSON (a path with an empty, "." or ".."
// segment included, which net/http redirected 307 as text/html), the
// scrape and the probes as before, HEAD as GET.
func TestAdminListenerAnswers(t *testing.T) {
	tel, err := telemetry.New(context.Background(), "inlet-ingest")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	probes := &service.StartProbes{}
	probes.Waiting("waiting on Kafka")
	srv := httptest.NewServer(adminMux(tel, probes))
	t.Cleanup(srv.Close)
	t.Run("starting", func(t *testing.T) { servicetest.AdminListenerAnswers(t, srv.URL) })
	// What ingest's own handler answers /healthz and /readyz with.
	ingestProbes := http.NewServeMux()
	ingestProbes.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	ingestProbes.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":"kafka unreachable"}` + "\n"))
	})
	probes.Serve(ingestProbes)
	t.Run("serving", func(t *testing.T) { servicetest.AdminListenerAnswers(t, srv.URL) })
}

package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/inletdev/inlet/pkg/admin"
	"github.com/inletdev/inlet/pkg/service/servicetest"
	"github.com/inletdev/inlet/pkg/telemetry"
)

// TestAdminListenerAnswers: the dev stack's admin listener answers as
// ingest's and the processor's do: what no route takes is JSON (a path
// with an empty, "." or ".." segment outside /v1 included, which net/http
// redirected 307 as text/html), the scrape and probes as before.
func TestAdminListenerAnswers(t *testing.T) {
	tel, err := telemetry.New(context.Background(), "inlet-dev")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	api, _ := admin.New(admin.Tokens{Write: "w-token-0123456789"}, admin.Deps{})
	// What ingest's handler answers /healthz and /readyz with.
	probes := http.NewServeMux()
	probes.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	probes.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ready"}` + "\n"))
	})
	srv := httptest.NewServer(adminMux(probes, tel, api))
	t.Cleanup(srv.Close)
	servicetest.AdminListenerAnswers(t, srv.URL)
}

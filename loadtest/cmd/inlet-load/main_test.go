package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestNegativeBoundsAreUsageErrors guards that a negative -timeout or
// -body-limit is a usage error (exit 2) found before anything is sent.
// Before, both passed validation, and a negative -timeout made the run
// panic.
func TestNegativeBoundsAreUsageErrors(t *testing.T) {
	// Never ready: a run that gets past validation fails there instead.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	for name, flag := range map[string][]string{
		"timeout":    {"-timeout", "-1h"},
		"body limit": {"-body-limit", "-1"},
	} {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"-target", srv.URL, "-admin", "", "-kafka", ""}, flag...)
			err := run(context.Background(), args, io.Discard)
			var u usageError
			if !errors.As(err, &u) {
				t.Errorf("run %q: %v; want a usage error", args, err)
			}
		})
	}
}

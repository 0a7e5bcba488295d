package registry

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
)

const testSchema = `{"type":"record","name":"T","fields":[{"name":"a","type":"string"}]}`

// TestUnavailableOrVerdict: a registry that cannot be reached or fails is
// ErrUnavailable (wait and try again); an answer about the schema is not.
func TestUnavailableOrVerdict(t *testing.T) {
	for _, tt := range []struct {
		name        string
		status      int
		body        string
		unavailable bool
		unknown     bool // WriterSchema's ErrUnknownSchema
	}{
		{"schema not found", http.StatusNotFound, `{"error_code":40403,"message":"Schema 7 not found"}`, false, true},
		{"incompatible", http.StatusConflict, `{"error_code":409,"message":"incompatible"}`, false, true},
		// Expired or wrong credentials: nothing is known about the schema.
		{"unauthorized", http.StatusUnauthorized, `{"error_code":401,"message":"no"}`, true, false},
		{"forbidden", http.StatusForbidden, `{"error_code":40301,"message":"no"}`, true, false},
		{"bad request", http.StatusBadRequest, `{"error_code":400,"message":"bad"}`, false, true},
		{"server error", http.StatusInternalServerError, `{"error_code":50001,"message":"store error"}`, true, false},
		{"unavailable", http.StatusServiceUnavailable, ``, true, false},
		{"bad gateway from a proxy", http.StatusBadGateway, `<html>bad gateway</html>`, true, false},
		{"rate limited", http.StatusTooManyRequests, ``, true, false},
		{"request timeout", http.StatusRequestTimeout, ``, true, false},
		{"ok with a body that is not JSON", http.StatusOK, `<html>login</html>`, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			c := client(t, srv.URL)
			_, err := c.WriterSchema(context.Background(), 7)
			if err == nil || IsUnavailable(err) != tt.unavailable || errors.Is(err, ErrUnknownSchema) != tt.unknown {
				t.Errorf("WriterSchema: %v; want unavailable %v, unknown schema %v", err, tt.unavailable, tt.unknown)
			}
			_, _, err = c.Register(context.Background(), "s-value", testSchema)
			if err == nil || IsUnavailable(err) != tt.unavailable {
				t.Errorf("Register: %v; want unavailable %v", err, tt.unavailable)
			}
			var re *sr.ResponseError
			if tt.status >= 300 && !errors.As(err, &re) {
				t.Errorf("Register: %v does not carry the registry's answer", err)
			}
		})
	}
	t.Run("nothing listening", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		c := client(t, url)
		if _, err := c.WriterSchema(context.Background(), 7); !IsUnavailable(err) || errors.Is(err, ErrUnknownSchema) {
			t.Errorf("WriterSchema: %v; want ErrUnavailable only", err)
		}
		if _, _, err := c.Register(context.Background(), "s-value", testSchema); !IsUnavailable(err) {
			t.Errorf("Register: %v; want ErrUnavailable", err)
		}
	})
}

func client(t *testing.T, url string) *Client {
	t.Helper()
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	return New(cl)
}

package sink

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/retry"
)

func TestHTTPClassifiesAnswers(t *testing.T) {
	cases := []struct {
		status     int
		retryAfter string
		retryable  bool
		after      time.Duration
	}{
		{200, "", false, 0},
		{204, "", false, 0},
		{400, "", false, 0},
		{404, "", false, 0},
		{408, "", true, 0},
		{425, "", true, 0},
		{429, "7", true, 7 * time.Second},
		{500, "", true, 0},
		{503, "120", true, 2 * time.Minute},
		{503, "999999999", true, 24 * time.Hour},
		{503, "soon", true, 0},
		{507, "", true, 0},
	}
	for _, c := range cases {
		var got http.Header
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got = r.Header
			if c.retryAfter != "" {
				w.Header().Set("Retry-After", c.retryAfter)
			}
			w.WriteHeader(c.status)
		}))
		s, _ := NewHTTP(HTTPConfig{URL: srv.URL, Headers: map[string]string{"Authorization": "Bearer x"}})
		err := s.Send(context.Background(), []byte(`{}`), "application/json", "shop:1", "corr-1")
		srv.Close()
		if c.status < 300 {
			if err != nil {
				t.Errorf("%d: %v", c.status, err)
			}
			if got.Get("Idempotency-Key") != "shop:1" || got.Get("X-Correlation-ID") != "corr-1" || got.Get("Authorization") != "Bearer x" {
				t.Errorf("headers not sent: %v", got)
			}
			continue
		}
		if err == nil || retry.IsRetryable(err) != c.retryable || retry.RetryAfter(err) != c.after {
			t.Errorf("%d %q: err %v retryable %v after %v; want %v %v", c.status, c.retryAfter, err, retry.IsRetryable(err), retry.RetryAfter(err), c.retryable, c.after)
		}
	}
}

func TestHTTPNetworkErrorsAreRetryable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	s, _ := NewHTTP(HTTPConfig{URL: url, Timeout: time.Second})
	if err := s.Send(context.Background(), nil, "application/json", "k", "c"); err == nil || !retry.IsRetryable(err) {
		t.Fatalf("connection refused: %v", err)
	}
}

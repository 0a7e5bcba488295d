package sink

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"

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

// TestHTTPRedirectIsNotDelivery: a redirect is a failure to fix, never
// followed. Followed, a 302 turned the POST into a GET without its body
// (the event counted as delivered) and a 307 took the payload and the
// configured secret headers to another host.
func TestHTTPRedirectIsNotDelivery(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL+"/hook", code)
		}))
		s, err := NewHTTP(HTTPConfig{URL: srv.URL, Timeout: time.Second, Headers: map[string]string{"X-Api-Key": "s3cret"}})
		if err != nil {
			t.Fatal(err)
		}
		err = s.Send(context.Background(), []byte(`{"card":"4242"}`), "application/json", "k", "c")
		var se *StatusError
		if !errors.As(err, &se) || se.Status != code || retry.IsRetryable(err) || !strings.Contains(err.Error(), "redirect") {
			t.Errorf("%d: %v, want a permanent StatusError naming the redirect", code, err)
		}
		srv.Close()
	}
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("the redirect target was called %d times", n)
	}
}

// TestHTTPErrorsNameNoSecretURLParts: errors go to the DLQ's history and
// alerts; the URL's credentials, path and query stay out.
func TestHTTPErrorsNameNoSecretURLParts(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.Listener.Addr().String()
	srv.Close()
	s, err := NewHTTP(HTTPConfig{URL: "http://svc:hunter2@" + addr + "/hook/T0K3N?api_key=k3y", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), nil, "application/json", "k", "c")
	if err == nil {
		t.Fatal("sent to a closed port")
	}
	for _, secret := range []string{"hunter2", "T0K3N", "k3y"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error shows %q: %v", secret, err)
		}
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("error does not name the host: %v", err)
	}
	if _, err := NewHTTP(HTTPConfig{URL: "ftp://x/y"}); err == nil {
		t.Error("an ftp URL was accepted")
	}
	// A password with an unescaped slash parses as host "<user>:12" (the
	// password's start shown as the port) and path "/hunter@…"; a user
	// that is an address keeps the dial local.
	s, err = NewHTTP(HTTPConfig{URL: "http://127.0.0.1:12/hunter@" + addr + "/hook", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), nil, "application/json", "k", "c"); err == nil || strings.Contains(err.Error(), "sink http://127.0.0.1:12") || strings.Contains(err.Error(), "hunter") {
		t.Errorf("a password holding an unescaped slash: %v; want an error naming neither part", err)
	}
}

// TestHTTPErrorsQuoteNoConfiguredSecret: a sink quoting the credential it
// refused (a common 401 body) put the headers_env value into the error,
// and so into the DLQ's history, logs and alerts.
func TestHTTPErrorsQuoteNoConfiguredSecret(t *testing.T) {
	const secret = "sk_live_0123456789abcdef"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid credentials: ` + r.Header.Get("Authorization") + `","key":"` + secret + `","tenant":"` + r.Header.Get("X-Tenant") + `"}`))
	}))
	defer srv.Close()
	s, err := NewHTTP(HTTPConfig{URL: srv.URL, Timeout: time.Second, Headers: map[string]string{"Authorization": "Bearer " + secret, "X-Tenant": "acme-tenant"}})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), []byte(`{}`), "application/json", "k", "c")
	if err == nil || retry.IsRetryable(err) {
		t.Fatalf("401: %v, want a permanent error", err)
	}
	if msg := err.Error(); strings.Contains(msg, secret) || strings.Contains(msg, "acme-tenant") || !strings.Contains(msg, "invalid credentials: [redacted]") {
		t.Errorf("error %q: want every configured header value redacted, the rest kept", msg)
	}
}

// TestRetryAfterBounded: Retry-After is bounded to a day; seconds past
// what a time.Duration holds overflowed to a negative wait, taken as none.
func TestRetryAfterBounded(t *testing.T) {
	now := time.Now()
	for v, want := range map[string]time.Duration{
		"120":                  2 * time.Minute,
		"0":                    0,
		"-5":                   0,
		"86400":                24 * time.Hour,
		"90000":                24 * time.Hour,
		"9999999999":           24 * time.Hour,
		"99999999999999999999": 24 * time.Hour,
		"soon":                 0,
	} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("Retry-After %q = %v, want %v", v, got, want)
		}
	}
}

// TestNewHTTPRefusesHeadersGoWouldRefuse: a header name or value Go's
// client refuses failed every delivery as a transient error, each event
// spending its retry tiers before the DLQ; it is refused at start, the
// value never quoted.
func TestNewHTTPRefusesHeadersGoWouldRefuse(t *testing.T) {
	for _, h := range []map[string]string{
		{"Authorization": "Bearer s3cr3t-token\n"},
		{"Authorization": "Bearer s3cr3t-token\r\nX-Evil: 1"},
		{"Bad Name": "v"},
	} {
		_, err := NewHTTP(HTTPConfig{URL: "https://sink.example.com/in", Headers: h})
		if err == nil || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("headers %q: %v, want refused without the value", h, err)
		}
	}
	if _, err := NewHTTP(HTTPConfig{URL: "https://sink.example.com/in", Headers: map[string]string{"Authorization": "Bearer ok", "X-Api-Key": "k\tv"}}); err != nil {
		t.Errorf("valid headers: %v", err)
	}
	// The headers Inlet sets per event: configured, they replaced Inlet's
	// with one value for every event.
	for _, name := range []string{"Idempotency-Key", "x-correlation-id", "traceparent", "TraceState", "baggage"} {
		if _, err := NewHTTP(HTTPConfig{URL: "https://sink.example.com/in", Headers: map[string]string{name: "fixed"}}); err == nil || !strings.Contains(err.Error(), "one Inlet sets per event") {
			t.Errorf("header %s: %v, want refused as Inlet's own", name, err)
		}
	}
}

// TestSendCarriesTraceContext: a delivery made within an event's span
// sends that span's W3C traceparent, so the downstream's spans join the
// event's trace.
func TestSendCarriesTraceContext(t *testing.T) {
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	t.Cleanup(srv.Close)
	s, err := NewHTTP(HTTPConfig{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	if err := s.Send(ctx, []byte(`{}`), "application/json", "shop:1", "corr-1"); err != nil {
		t.Fatal(err)
	}
	if tp := got.Get("traceparent"); tp != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" {
		t.Fatalf("traceparent %q, want the event's span", tp)
	}
	// The sender's baggage goes on, as on the processed records.
	m, _ := baggage.NewMember("tenant", "acme")
	bag, _ := baggage.New(m)
	if err := s.Send(baggage.ContextWithBaggage(ctx, bag), []byte(`{}`), "application/json", "shop:1", "corr-1"); err != nil {
		t.Fatal(err)
	}
	if b := got.Get("baggage"); b != "tenant=acme" {
		t.Fatalf("baggage %q, want the event's", b)
	}
	if err := s.Send(context.Background(), []byte(`{}`), "application/json", "shop:1", "corr-1"); err != nil {
		t.Fatal(err)
	}
	if tp := got.Get("traceparent"); tp != "" {
		t.Fatalf("traceparent %q without a trace context, want none", tp)
	}
}

// TestHTTPTrickledAnswerDoesNotHoldTheDelivery: a sink that answers at
// once and then trickles the body (a proxy, a streaming endpoint) is
// decided by its status, not held to its timeout: with the whole timeout
// per delivery, a batch's deliveries ran out of time and went to retry
// tiers though each had been accepted.
func TestHTTPTrickledAnswerDoesNotHoldTheDelivery(t *testing.T) {
	for _, status := range []int{http.StatusOK, http.StatusServiceUnavailable} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			done := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(status)
				w.(http.Flusher).Flush()
				tick := time.NewTicker(50 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-tick.C:
						if _, err := w.Write([]byte("x")); err != nil {
							return
						}
						w.(http.Flusher).Flush()
					case <-r.Context().Done():
						return
					case <-done:
						return
					}
				}
			}))
			defer srv.Close()
			defer close(done)
			const timeout = 20 * time.Second
			s, _ := NewHTTP(HTTPConfig{URL: srv.URL, Timeout: timeout})
			start := time.Now()
			err := s.Send(context.Background(), []byte(`{}`), "application/json", "k", "c")
			took := time.Since(start)
			if status == http.StatusOK && err != nil {
				t.Fatalf("accepted delivery failed: %v", err)
			}
			if status != http.StatusOK && !retry.IsRetryable(err) {
				t.Fatalf("503: %v, want retryable", err)
			}
			if took > timeout/2 {
				t.Fatalf("the delivery took %v (sink timeout %v), though the sink answered at once", took, timeout)
			}
		})
	}
}

// TestHTTPErrorWithoutAnswerBody: a sink answering an error with an
// empty body (or only whitespace) gave "sink answered 503: ", a colon
// before nothing, in the DLQ entry, the history and the alert.
func TestHTTPErrorWithoutAnswerBody(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"", "sink answered 503"},
		{"\r\n", "sink answered 503"},
		{`{"error":"busy"}`, `sink answered 503: {"error":"busy"}`},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, tc.body)
		}))
		s, _ := NewHTTP(HTTPConfig{URL: srv.URL})
		err := s.Send(context.Background(), []byte(`{}`), "application/json", "shop:1", "corr-1")
		srv.Close()
		var se *StatusError
		if !errors.As(err, &se) || se.Error() != tc.want {
			t.Errorf("body %q: error %q, want %q", tc.body, err, tc.want)
		}
	}
}

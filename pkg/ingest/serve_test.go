package ingest

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/pkg/testenv"
)

// TestShutdownBeforeServe: a Shutdown that wins the race against Serve (a
// signal right at start-up) makes Serve return at once instead of serving
// with nobody left to stop it.
func TestShutdownBeforeServe(t *testing.T) {
	env := testenv.Embedded(t)
	setSecrets(t)
	sources, err := source.Parse([]byte(testSources))
	if err != nil {
		t.Fatal(err)
	}
	topics := env.CreateTopics(t, nil)
	codec, err := envelope.NewCodec(context.Background(), env.Registry(t), topics.RawSubject())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		srv, err := New(DefaultConfig(), Deps{Sources: sources, Codec: codec, RawTopic: topics.Raw, Kafka: Producers{env.Client(t, ProducerOpts()...)}, SR: env.Registry(t).SR()})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := srv.Shutdown(ctx); err != nil {
			t.Fatalf("shutdown %d: %v", i, err)
		}
		cancel()
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ln) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("serve after shutdown: %v", err)
			}
		case <-time.After(10 * time.Second):
			ln.Close()
			t.Fatal("Serve after Shutdown was still serving after 10s")
		}
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			c.Close()
			t.Fatal("the listener still accepts after Serve returned")
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for name, c := range map[string]struct {
		mod  func(*Config)
		want string
	}{
		"defaults":             {func(*Config) {}, ""},
		"no producer":          {func(c *Config) { c.Producers = 0 }, "producers must be between 1 and 16"},
		"too many producers":   {func(c *Config) { c.Producers = 17 }, "producers must be between 1 and 16"},
		"zero ack timeout":     {func(c *Config) { c.AckTimeout = 0 }, "ack-timeout must be positive"},
		"tiny header limit":    {func(c *Config) { c.MaxHeaderBytes = 1024 }, "max-header-bytes must be at least 4096"},
		"zero read timeout":    {func(c *Config) { c.ReadTimeout = 0 }, "read timeouts must be positive"},
		"one producer is fine": {func(c *Config) { c.Producers = 1 }, ""},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := DefaultConfig()
			c.mod(&cfg)
			err := cfg.Validate()
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("Validate: %v, want an error with %q", err, c.want)
			}
		})
	}
}

func TestNewProducersNeedsOne(t *testing.T) {
	if p, err := NewProducers(0); err == nil {
		p.Close()
		t.Fatal("NewProducers(0) made producers")
	}
}

// TestReadBodyAllocatesWhatArrives: a Content-Length is only a claim, made
// before any signature is checked; the buffer must not be sized by it.
func TestReadBodyAllocatesWhatArrives(t *testing.T) {
	req := httptest.NewRequest(http.MethodPost, "/webhooks/x", strings.NewReader(`{"id":"short"}`))
	req.ContentLength = 16 << 20 // claimed; 14 bytes follow
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, status, err := readBody(httptest.NewRecorder(), req, 32<<20)
	runtime.ReadMemStats(&after)
	if err != nil || status != 0 {
		// The real server's body reader reports the short body; this one
		// just ends.
		t.Logf("readBody: %d %v", status, err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Fatalf("readBody allocated %d bytes for a 14-byte body claiming 16 MiB", n)
	}
}

// TestDrainingAnswer: a request that reaches the handler once the drain
// has begun is answered 503 with Retry-After and its correlation id, and
// /readyz fails.
func TestDrainingAnswer(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t), nil)
	h.srv.draining.Store(true)
	defer h.srv.draining.Store(false) // the harness's own Shutdown drains for real
	req := httptest.NewRequest(http.MethodPost, "/webhooks/stripe", strings.NewReader(`{}`))
	req.Header.Set("X-Correlation-ID", "corr-drain")
	rec := httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" ||
		rec.Header().Get("X-Correlation-ID") != "corr-drain" || !strings.Contains(rec.Body.String(), `"correlation_id":"corr-drain"`) {
		t.Fatalf("draining: %d %v %s", rec.Code, rec.Header(), rec.Body.String())
	}
	rec = httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz while draining: %d", rec.Code)
	}
}

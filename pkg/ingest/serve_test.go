package ingest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"go.opentelemetry.io/otel/trace"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/pkg/telemetry/telemetrytest"
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
	codec := env.Codec(t, topics)
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
		"no body budget":       {func(c *Config) { c.MaxBodyBytesInFlight = 0 }, "max-body-bytes-in-flight must be positive"},
		// The three were accepted: a drain deadline already passed.
		"negative drain timeout": {func(c *Config) { c.DrainTimeout = -time.Second }, "drain-timeout must be positive"},
		"negative retry-after":   {func(c *Config) { c.RetryAfter = -time.Second }, "retry-after must be positive"},
		"negative idle timeout":  {func(c *Config) { c.IdleTimeout = -time.Second }, "idle-timeout must be 0"},
		"no idle timeout":        {func(c *Config) { c.IdleTimeout = 0 }, ""},
		// As for the body budget, no "0 means unbounded".
		"no connection limit":       {func(c *Config) { c.MaxConns = 0 }, "max-conns must be at least 1"},
		"negative connection limit": {func(c *Config) { c.MaxConns = -1 }, "max-conns must be at least 1"},
		"one connection is fine":    {func(c *Config) { c.MaxConns = 1 }, ""},
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
	_, err := readBody(httptest.NewRecorder(), req, req.Body, 32<<20, &reservation{})
	runtime.ReadMemStats(&after)
	if err != nil {
		// The real server's body reader reports the short body; this one
		// just ends.
		t.Logf("readBody: %v", err)
	}
	// TotalAlloc is process-wide: the bound leaves room for whatever else
	// runs meanwhile, and is still a quarter of the claim.
	if n := after.TotalAlloc - before.TotalAlloc; n > 4<<20 {
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

// TestDrainingBatchAnswer: a batch refused while draining is answered as
// every /events answer is, a BatchResponse whose results are [] (the batch
// is refused whole), with Retry-After. It got the webhook answer, without
// results, and a sender looping over them met none.
func TestDrainingBatchAnswer(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t), nil)
	h.srv.draining.Store(true)
	defer h.srv.draining.Store(false) // the harness's own Shutdown drains for real
	for _, path := range []string{"/events/billing", "/events?source=billing"} {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(`{"id":"a","type":"t","data":{}}`))
		req.Header.Set("Authorization", "Bearer batch-token-1-0123456789")
		req.Header.Set("X-Correlation-ID", "corr-drain")
		rec := httptest.NewRecorder()
		h.srv.Handler().ServeHTTP(rec, req)
		var got struct {
			CorrelationID string          `json:"correlation_id"`
			Results       json.RawMessage `json:"results"`
			Error         string          `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != http.StatusServiceUnavailable || string(got.Results) != "[]" ||
			got.CorrelationID != "corr-drain" || got.Error == "" || rec.Header().Get("Retry-After") == "" || rec.Header().Get("X-Correlation-ID") != "corr-drain" {
			t.Fatalf("%s while draining: %d %v %s; want 503, Retry-After, \"results\":[] and the correlation id", path, rec.Code, rec.Header(), rec.Body.String())
		}
	}
}

// TestRecordSizeCountsTraceHeaders: the sender's trace context goes into
// the record headers, and counts against Kafka's record limit like the
// body does: an event that would not fit is errRecordTooLarge (413), not a
// produce that fails on every retry (503).
func TestRecordSizeCountsTraceHeaders(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t), nil)
	env := &envelope.Envelope{ID: "01", Source: "keep", EventType: "blob.sent", EventID: "e1", IdempotencyKey: "keep:e1",
		SchemaVersion: "v1", ReceivedAt: time.Now().UTC().Truncate(time.Microsecond), CorrelationID: "c1", Channel: envelope.ChannelWebhook,
		Headers: map[string]string{}, ContentType: "application/json"}
	// A payload that leaves 1 KiB of the raw record limit for headers.
	size := func(n int) int {
		env.Payload = make([]byte, n)
		v, err := h.codec.Encode(env)
		if err != nil {
			t.Fatal(err)
		}
		return len(v) + len(env.IdempotencyKey)
	}
	n := 4 << 20
	n -= size(n) - (kafka.MaxRawRecordBytes - 1<<10)
	if got := size(n); got != kafka.MaxRawRecordBytes-1<<10 {
		t.Fatalf("payload sizing: %d", got)
	}
	if _, _, err := h.srv.record(context.Background(), env); err != nil {
		t.Fatalf("without a trace context: %v", err)
	}
	// 16 tracestate members of 200 bytes, ~3.3 KiB: within the bound on
	// each trace header (boundTraceHeaders), so it is written.
	var members []string
	for i := range 16 {
		members = append(members, fmt.Sprintf("k%d=%s", i, strings.Repeat("v", 200)))
	}
	ts, err := trace.ParseTraceState(strings.Join(members, ","))
	if err != nil {
		t.Fatal(err)
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled, TraceState: ts, Remote: true})
	_, _, err = h.srv.record(trace.ContextWithRemoteSpanContext(context.Background(), sc), env)
	if !errors.Is(err, errRecordTooLarge) {
		t.Fatalf("with ~3 KiB of tracestate: %v, want errRecordTooLarge", err)
	}
}

// TestSlowUploadIsNotAnsweredUnavailable: the wait for Kafka's ack is
// bounded from when the body is in, not from the request's start: a body
// slower to arrive than the ack timeout was answered 503 before Kafka was
// asked, and again on every retry, so it could never be accepted.
func TestSlowUploadIsNotAnsweredUnavailable(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t), func(c *Config) { c.AckTimeout = time.Second })
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte(`{"id":"evt_slow",`))
		time.Sleep(1500 * time.Millisecond) // the sender's slow link: the scenario itself
		_, _ = pw.Write([]byte(`"type":"blob.sent"}`))
		_ = pw.Close()
	}()
	req, err := http.NewRequest(http.MethodPost, h.url+"/webhooks/open", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if a := do(t, req); a.status != http.StatusAccepted {
		t.Fatalf("a body that took 1.5 s to arrive, ack timeout 1 s: status %d (%s), want 202", a.status, a.raw)
	}
}

func TestReadExactly(t *testing.T) {
	for _, n := range []int{0, 1, 1024, maxUpfront, maxUpfront + 1, 200 << 10, 1 << 20} {
		body := bytes.Repeat([]byte("ab"), n/2+1)[:n]
		got, err := readExactly(iotest.HalfReader(bytes.NewReader(body)), int64(n), &reservation{})
		if err != nil || !bytes.Equal(got, body) {
			t.Errorf("%d bytes: %d read, %v", n, len(got), err)
		}
		if n > 0 {
			if _, err := readExactly(bytes.NewReader(body[:n-1]), int64(n), &reservation{}); !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("%d bytes claimed, %d sent: %v, want ErrUnexpectedEOF", n, n-1, err)
			}
		}
	}
}

// BenchmarkReadExactly: what a body costs to read by size; past maxUpfront
// the buffer doubles as bytes arrive instead of being sized by the claim.
func BenchmarkReadExactly(b *testing.B) {
	for _, n := range []int{1 << 10, 200 << 10, 1 << 20} {
		body := bytes.Repeat([]byte("x"), n)
		b.Run(fmt.Sprintf("%dKiB", n>>10), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := readExactly(bytes.NewReader(body), int64(n), &reservation{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestChunkedWithContentLengthCloses: a request with both
// Transfer-Encoding: chunked and Content-Length is framed by its chunks;
// RFC 9112 6.1 requires the connection closed after its answer, so bytes
// a proxy framing by Content-Length sees differently are never read as a
// next request.
func TestChunkedWithContentLengthCloses(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t), nil)
	body := `{"id":"evt_clte","type":"blob.sent"}`
	c := dialRaw(t, h)
	if _, err := io.WriteString(c, "POST /webhooks/open HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"24\r\n"+body+"\r\n0\r\n\r\n"+openWebhook("evt_smuggled")); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || !resp.Close {
		t.Fatalf("chunked with a Content-Length: %d, Connection %q; want 202 and close", resp.StatusCode, resp.Header.Get("Connection"))
	}
	if more, err := br.ReadString('\n'); !errors.Is(err, io.EOF) || more != "" {
		t.Fatalf("the bytes after it were read as a request: %q, %v; want the connection closed", more, err)
	}
	if envs := h.rawEnvelopes(t, 1); len(envs) != 1 || envs[0].EventID != "evt_clte" {
		t.Fatalf("raw topic: %d envelopes", len(envs))
	}
}

// TestSenderGoneBeforeAnswer: a sender that hangs up once its body is sent
// but before the answer (its own timeout shorter than Kafka's ack) does not
// take its event back: the write goes on, the event lands on the raw topic
// and is counted accepted, and the sender's retry is a duplicate,
// deduplicated downstream. Nothing is lost, nothing is answered.
func TestSenderGoneBeforeAnswer(t *testing.T) {
	reader, tel := newMetered(t)
	env := testenv.Embedded(t)
	h := newHarness(t, env, nil, tel)
	// Kafka holds the produce until the sender is gone.
	free := holdProduces(t, env)
	conn := dialRaw(t, h)
	if _, err := io.WriteString(conn, openWebhook("evt_gone")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the body read", func() bool { return h.srv.bodies.used.Load() > 0 })
	conn.Close()
	free()
	if envs := h.rawEnvelopes(t, 1); len(envs) != 1 || envs[0].EventID != "evt_gone" {
		t.Fatalf("raw topic: %d envelopes, want evt_gone", len(envs))
	}
	testenv.Eventually(t, 10*time.Second, "the event counted accepted", func() bool {
		return telemetrytest.Int64s(t, reader, "inlet.ingest.requests", "source", "outcome")["open|accepted"] == 1
	})
}

// TestDrainCutsStreamedBatch: a streamed batch still being sent when the
// drain starts is answered at once for the lines read so far (207, those
// durable), its error naming the first line not read, to be sent again.
// Its handler read on until the body ended, up to -read-timeout (30 s),
// past -drain-timeout (20 s): the sender got no answer at all, and ingest
// exited 1 with the drain unfinished.
func TestDrainCutsStreamedBatch(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t), nil)
	pr, pw := io.Pipe()
	defer pw.Close() // the sender would go on streaming
	type result struct {
		status int
		br     BatchResponse
	}
	answered := make(chan result, 1)
	go func() {
		status, br, _ := postBatchReader(t, h, "/events/billing", http.Header{"Authorization": {"Bearer batch-token-1-0123456789"}}, pr)
		answered <- result{status, br}
	}()
	for _, id := range []string{"d1", "d2"} {
		if _, err := fmt.Fprintf(pw, `{"id":%q,"type":"invoice.paid","data":{"id":"inv_%s"}}`+"\n", id, id); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(h.env.Client(t))
	testenv.Eventually(t, 10*time.Second, "the streamed lines on the raw topic", func() bool {
		ends, err := adm.ListEndOffsets(context.Background(), h.topics.Raw)
		written := int64(0)
		ends.Each(func(o kadm.ListedOffset) { written += o.Offset })
		return err == nil && written == 2
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- h.srv.Shutdown(ctx) }()
	select {
	case r := <-answered:
		if r.status != http.StatusMultiStatus || r.br.Accepted != 2 || !strings.Contains(r.br.Error, "line 3 on was not read") || !strings.Contains(r.br.Error, "shutting down") {
			t.Errorf("answer %d %+v, want 207, 2 accepted and an error saying ingest is shutting down, line 3 on not read", r.status, r.br)
		}
	case <-ctx.Done():
		t.Fatal("no answer to the streamed batch within the drain")
	}
	if err := <-stopped; err != nil {
		t.Errorf("Shutdown: %v, want the drain finished", err)
	}
}

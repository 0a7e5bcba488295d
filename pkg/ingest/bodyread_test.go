package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/inletdev/inlet/pkg/telemetry"
	"github.com/inletdev/inlet/pkg/telemetry/telemetrytest"
	"github.com/inletdev/inlet/pkg/testenv"
)

// TestReadFailure: how each way a body read fails is answered, on the
// errors a real connection returns.
func TestReadFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pair := func(t *testing.T) (client *net.TCPConn, server net.Conn) {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(); s.Close() })
		return c.(*net.TCPConn), s
	}
	timeout := func(t *testing.T) error {
		_, s := pair(t)
		_ = s.SetReadDeadline(time.Now())
		_, err := s.Read(make([]byte, 1))
		return err
	}
	reset := func(t *testing.T) error {
		c, s := pair(t)
		_ = c.SetLinger(0) // Close sends a RST
		c.Close()
		_ = s.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := s.Read(make([]byte, 1))
		return err
	}
	for _, tt := range []struct {
		name   string
		err    func(*testing.T) error
		code   int
		reason string
	}{
		{"over the limit", func(*testing.T) error { return &http.MaxBytesError{Limit: 10} }, http.StatusRequestEntityTooLarge, reasonSize},
		{"read timeout", timeout, http.StatusRequestTimeout, reasonReadTimeout},
		{"cut for its pace", func(t *testing.T) error {
			return fmt.Errorf("read body: %w", &slowBodyError{why: "no byte", err: timeout(t)})
		}, http.StatusRequestTimeout, reasonSlowBody},
		{"connection reset", reset, http.StatusRequestTimeout, reasonReadError},
		{"shorter than its Content-Length", func(*testing.T) error { return io.ErrUnexpectedEOF }, http.StatusBadRequest, reasonMalformed},
		{"badly chunked", func(*testing.T) error { return errors.New("malformed chunked encoding") }, http.StatusBadRequest, reasonMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err(t)
			if code, reason := readFailure(err); code != tt.code || reason != tt.reason {
				t.Fatalf("%v: %d %s, want %d %s", err, code, reason, tt.code, tt.reason)
			}
		})
	}
}

// stalledBody sends first, then nothing until the test ends: the server's
// read timeout cuts the body there.
func stalledBody(t testing.TB, first string) io.Reader {
	pr, pw := io.Pipe()
	go func() { _, _ = io.WriteString(pw, first) }()
	t.Cleanup(func() { _ = pw.CloseWithError(errors.New("test over")) })
	return pr
}

func newMetered(t testing.TB) (*sdkmetric.ManualReader, *telemetry.Telemetry) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	tel, err := telemetry.New(context.Background(), "test", telemetry.WithReader(reader))
	if err != nil {
		t.Fatal(err)
	}
	return reader, tel
}

// noAddress fails when an answer carries the read error's own text.
func noAddress(t testing.TB, answer string) {
	t.Helper()
	for _, leak := range []string{"127.0.0.1", "tcp", "i/o timeout", "connection reset"} {
		if strings.Contains(answer, leak) {
			t.Errorf("answer carries the read error (%q): %s", leak, answer)
		}
	}
}

// A webhook body cut by the read timeout is answered 408 (retry), not 400
// (do not retry), and is not counted malformed.
func TestWebhookBodyReadTimeout(t *testing.T) {
	reader, tel := newMetered(t)
	h := newHarness(t, testenv.Embedded(t), func(c *Config) { c.ReadTimeout = time.Second }, tel)
	for _, tt := range []struct {
		name   string
		length int64 // 0: chunked
	}{{"chunked", 0}, {"content-length", 64}} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, h.url+"/webhooks/open", stalledBody(t, `{"id":"evt_slow",`))
			req.ContentLength = tt.length
			req.Header.Set("X-Event-Type", "blob.sent")
			a := do(t, req)
			if a.status != http.StatusRequestTimeout {
				t.Fatalf("status %d %s, want 408", a.status, a.raw)
			}
			// It said "Request Timeout", the status's own text.
			if want := "body not received within the read timeout; retry"; a.body.Error != want {
				t.Errorf("error %q, want %q", a.body.Error, want)
			}
			noAddress(t, string(a.raw))
		})
	}
	got := telemetrytest.Int64s(t, reader, "inlet.ingest.requests", "source", "outcome", "reason")
	if want := map[string]int64{"open|rejected|" + reasonReadTimeout: 2}; !maps.Equal(got, want) {
		t.Fatalf("requests %v, want %v", got, want)
	}
}

func batchLineFor(id string) string {
	return fmt.Sprintf(`{"id":%q,"type":"invoice.paid","data":{"id":"x"}}`+"\n", id)
}

// A streamed batch cut by the read timeout: the lines before stay
// accepted, even when their acknowledgement comes after the cut (net/http
// cancels the request's context then); the line at the cut is not
// "rejected", and the answer names it as the first line not read.
func TestBatchBodyReadTimeout(t *testing.T) {
	reader, tel := newMetered(t)
	env := testenv.Embedded(t)
	h := newHarness(t, env, func(c *Config) { c.ReadTimeout = time.Second }, tel)
	count := func() map[string]int64 {
		return telemetrytest.Int64s(t, reader, "inlet.ingest.requests", "source", "outcome", "reason")
	}
	post := func(body io.Reader) (int, BatchResponse, string) {
		req, _ := http.NewRequest(http.MethodPost, h.url+"/events/billing", body)
		req.Header.Set("Authorization", "Bearer batch-token-1-0123456789")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, BatchResponse{}, err.Error()
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var br BatchResponse
		_ = json.Unmarshal(raw, &br)
		return resp.StatusCode, br, string(raw)
	}

	t.Run("after good lines: they stay accepted, the rest is named", func(t *testing.T) {
		// Kafka holds the produces until the cut has been counted.
		free := holdProduces(t, env)
		type result struct {
			status int
			br     BatchResponse
			raw    string
		}
		answered := make(chan result, 1)
		body := stalledBody(t, batchLineFor("s1")+batchLineFor("s2"))
		go func() {
			status, br, raw := post(body)
			answered <- result{status, br, raw}
		}()
		testenv.Eventually(t, 10*time.Second, "the read timeout to be counted", func() bool {
			return count()["billing|rejected|"+reasonReadTimeout] == 1
		})
		free()
		a := <-answered
		if a.status != http.StatusMultiStatus || a.br.Accepted != 2 || a.br.Rejected != 0 || a.br.Failed != 0 || len(a.br.Results) != 2 {
			t.Fatalf("status %d %s; want 207, lines 1 and 2 accepted and nothing else", a.status, a.raw)
		}
		if !strings.Contains(a.br.Error, "line 3 on was not read") {
			t.Errorf("error %q does not name line 3 as the first not read", a.br.Error)
		}
		noAddress(t, a.raw)
		got := map[string]bool{}
		for _, e := range h.rawEnvelopes(t, 2) {
			got[e.EventID] = true
		}
		if len(got) != 2 || !got["s1"] || !got["s2"] {
			t.Fatalf("raw topic holds %v, want s1 and s2", got)
		}
	})

	t.Run("before any good line: 408", func(t *testing.T) {
		status, br, raw := post(stalledBody(t, "nope\n"))
		if status != http.StatusRequestTimeout || br.Accepted != 0 || br.Rejected != 1 || len(br.Results) != 1 {
			t.Fatalf("status %d %s; want 408 and line 1 rejected", status, raw)
		}
		if !strings.Contains(br.Error, "line 2 on was not read") {
			t.Errorf("error %q does not name line 2 as the first not read", br.Error)
		}
		noAddress(t, raw)
	})

	want := map[string]int64{
		"billing|accepted|":                     2,
		"billing|rejected|" + reasonMalformed:   1, // "nope"
		"billing|rejected|" + reasonReadTimeout: 2,
	}
	if got := count(); !maps.Equal(got, want) {
		t.Fatalf("requests %v, want %v", got, want)
	}
}

// A streamed batch whose sender resets the connection: the lines read
// before are written and accepted, and the cut is counted as a read error,
// not as a malformed line.
func TestBatchConnectionReset(t *testing.T) {
	reader, tel := newMetered(t)
	h := newHarness(t, testenv.Embedded(t), nil, tel)
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	chunk := batchLineFor("r1") + batchLineFor("r2")
	fmt.Fprintf(conn, "POST /events/billing HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer batch-token-1-0123456789\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", len(chunk), chunk)
	if envs := h.rawEnvelopes(t, 2); len(envs) != 2 {
		t.Fatalf("%d envelopes on the raw topic, want r1 and r2", len(envs))
	}
	_ = conn.(*net.TCPConn).SetLinger(0) // Close sends a RST
	conn.Close()
	want := map[string]int64{"billing|accepted|": 2, "billing|rejected|" + reasonReadError: 1}
	var got map[string]int64
	testenv.Eventually(t, 10*time.Second, "the reset to be counted", func() bool {
		got = telemetrytest.Int64s(t, reader, "inlet.ingest.requests", "source", "outcome", "reason")
		return got["billing|accepted|"] == 2 && len(got) >= 2
	})
	if !maps.Equal(got, want) {
		t.Fatalf("requests %v, want %v", got, want)
	}
}

// slowTail is a body whose last byte arrives after delay: a sender's slow
// link.
type slowTail struct {
	b     []byte
	delay time.Duration
	done  bool
}

func (s *slowTail) Read(p []byte) (int, error) {
	switch {
	case len(s.b) > 1:
		n := copy(p, s.b[:len(s.b)-1])
		s.b = s.b[n:]
		return n, nil
	case len(s.b) == 1 && !s.done:
		time.Sleep(s.delay) // the slow link: the scenario itself
		s.done = true
		p[0] = s.b[0]
		s.b = nil
		return 1, nil
	}
	return 0, io.EOF
}

// TestSignedBatchSlowBodyIsAnswered: a signed batch whose body took most
// of -read-timeout to arrive, with Kafka taking nothing, gets its 503. Its
// lines are produced only once the body is in, and its ack wait lasted
// -read-timeout plus -ack-timeout from there, so the 503 was written past
// the server's WriteTimeout (-read-timeout + -ack-timeout + 5 s), and the
// sender got no answer at all.
func TestSignedBatchSlowBodyIsAnswered(t *testing.T) {
	env := testenv.Embedded(t)
	h := newHarness(t, env, func(c *Config) {
		c.AckTimeout, c.ReadTimeout, c.BodyIdleTimeout = 500*time.Millisecond, 7*time.Second, 7*time.Second
	})
	defer kafkaDown(t, env)()
	body := []byte(`{"id":"slow1","type":"invoice.paid","data":{}}` + "\n")
	req, _ := http.NewRequest(http.MethodPost, h.url+"/events/internal", &slowTail{b: bytes.Clone(body), delay: 5500 * time.Millisecond})
	req.ContentLength = int64(len(body))
	src, _ := h.sources.Get("internal")
	if err := src.Provider().Sign(req.Header, body, time.Now()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("no answer after %v: %v; want a 503 with Retry-After", time.Since(start), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d, want 503 with Retry-After", resp.StatusCode)
	}
}

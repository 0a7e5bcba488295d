package ingest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/inletdev/inlet/pkg/flagenv"
	"github.com/inletdev/inlet/pkg/telemetry"
	"github.com/inletdev/inlet/pkg/telemetry/telemetrytest"
	"github.com/inletdev/inlet/pkg/testenv"
)

// dialRaw opens a TCP connection to the harness, closed at the end of t.
func dialRaw(t testing.TB, h *harness) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// openWebhook is a complete request to the unsigned source "open".
func openWebhook(id string) string {
	body := fmt.Sprintf(`{"id":%q,"type":"blob.sent"}`, id)
	return fmt.Sprintf("POST /webhooks/open HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// readStatus reads one answer from br within d; it returns 0 and the error
// when none came.
func readStatus(c net.Conn, br *bufio.Reader, d time.Duration) (int, error) {
	_ = c.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestMaxConns: -max-conns bounds the webhook listener's open connections.
// A connection past it waits unserved (and is counted and logged) while the
// admin listener, another server on the same handler, still answers; a
// slot freed by a closed connection, or by the idle timeout ending a
// finished request's keep-alive connection, serves the next one; and
// Shutdown ends Serve with the limit full and a connection waiting.
func TestMaxConns(t *testing.T) {
	env := testenv.Embedded(t)
	t.Run("a connection past the limit waits; the admin probes answer", func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		tel, err := telemetry.New(context.Background(), "test", telemetry.WithReader(reader))
		if err != nil {
			t.Fatal(err)
		}
		h := newHarness(t, env, func(c *Config) {
			c.MaxConns = 4
			c.ReadHeaderTimeout = time.Minute // the slow senders below must not be cut
		}, tel)
		// The admin listener is another server on the same handler, as in
		// services/ingest.
		admin := httptest.NewServer(h.srv.Handler())
		defer admin.Close()
		open := func() int64 { return telemetrytest.Int64s(t, reader, "inlet.ingest.connections.open")[""] }

		// Four senders that never finish their header block.
		var slow []net.Conn
		for range 4 {
			c := dialRaw(t, h)
			if _, err := io.WriteString(c, "POST /webhooks/open HTTP/1.1\r\nHost: x\r\n"); err != nil {
				t.Fatal(err)
			}
			slow = append(slow, c)
		}
		testenv.Eventually(t, 5*time.Second, "4 open connections", func() bool { return open() == 4 })

		// A fifth, complete request is not served while they hold the limit.
		fifth := dialRaw(t, h)
		if _, err := io.WriteString(fifth, openWebhook("evt_fifth")); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(fifth)
		if code, err := readStatus(fifth, br, 500*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("a connection past -max-conns 4 was answered: %d, %v", code, err)
		}
		if n := open(); n != 4 {
			t.Fatalf("open connections %d, want 4", n)
		}
		if got := telemetrytest.Int64s(t, reader, "inlet.ingest.connections.limit_reached")[""]; got < 1 {
			t.Fatalf("limit_reached %d, want at least 1", got)
		}
		if got := telemetrytest.Int64s(t, reader, "inlet.ingest.connections.limit")[""]; got != 4 {
			t.Fatalf("limit gauge %d, want 4", got)
		}
		resp, err := http.Get(admin.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("admin /healthz with the webhook port full: %d", resp.StatusCode)
		}

		// One slow sender goes: the fifth is served.
		slow[0].Close()
		if code, err := readStatus(fifth, br, 10*time.Second); err != nil || code != http.StatusAccepted {
			t.Fatalf("after a slot freed: %d, %v; want 202", code, err)
		}
		if envs := h.rawEnvelopes(t, 1); len(envs) != 1 || envs[0].EventID != "evt_fifth" {
			t.Fatalf("raw topic: %d envelopes", len(envs))
		}
	})

	t.Run("idle keep-alive connections give their slot back after the idle timeout", func(t *testing.T) {
		h := newHarness(t, env, func(c *Config) {
			c.MaxConns = 2
			c.IdleTimeout = 300 * time.Millisecond
		})
		for i := range 2 {
			c := dialRaw(t, h)
			if _, err := io.WriteString(c, openWebhook(fmt.Sprintf("evt_ka%d", i))); err != nil {
				t.Fatal(err)
			}
			if code, err := readStatus(c, bufio.NewReader(c), 10*time.Second); err != nil || code != http.StatusAccepted {
				t.Fatalf("keep-alive request %d: %d, %v", i, code, err)
			}
			// Left open by the client: only the idle timeout ends it.
		}
		third := dialRaw(t, h)
		if _, err := io.WriteString(third, openWebhook("evt_ka_third")); err != nil {
			t.Fatal(err)
		}
		if code, err := readStatus(third, bufio.NewReader(third), 10*time.Second); err != nil || code != http.StatusAccepted {
			t.Fatalf("a connection after two idle keep-alive ones, idle timeout 300ms: %d, %v; want 202", code, err)
		}
	})

	t.Run("shutdown with the limit full", func(t *testing.T) {
		h := newHarness(t, env, func(c *Config) {
			c.MaxConns = 2
			c.ReadHeaderTimeout = 500 * time.Millisecond
		})
		for range 3 { // two hold the limit, the third waits
			c := dialRaw(t, h)
			if _, err := io.WriteString(c, "POST /webhooks/open HTTP/1.1\r\n"); err != nil {
				t.Fatal(err)
			}
		}
		testenv.Eventually(t, 5*time.Second, "2 open connections", func() bool { return h.srv.metrics.conns.Load() == 2 })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.srv.Shutdown(ctx); err != nil {
			t.Fatalf("shutdown with the limit full: %v", err)
		}
		select {
		case err := <-h.done:
			h.done <- err // for the harness's cleanup
			if err != nil {
				t.Fatalf("Serve: %v", err)
			}
		case <-ctx.Done():
			t.Fatal("Serve did not return after Shutdown")
		}
	})

	t.Run("flag and variable", func(t *testing.T) {
		if got := DefaultConfig().MaxConns; got != 10000 {
			t.Fatalf("default %d, want 10000", got)
		}
		t.Setenv("INLET_MAX_CONNS", "77")
		var c Config
		fs := flagenv.New("t")
		c.RegisterFlags(fs)
		if err := fs.ParseFlagsOnly(nil); err != nil || c.MaxConns != 77 {
			t.Fatalf("INLET_MAX_CONNS=77: %d, %v", c.MaxConns, err)
		}
	})
}

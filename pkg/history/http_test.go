package history

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/service"
)

// silentRedis listens on 127.0.0.1, accepts connections and never
// answers: a Redis that is hung, or something else on its port.
func silentRedis(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(io.Discard, c) }) // reads, never writes
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// TestHandlerBoundsTheRedisRead: with Redis accepting connections and
// never answering, GET /v1/trace/{id} answers 503 within its bound, well
// before inletctl trace gives up (10 s), saying the history store is
// Redis and unavailable, with the error and Retry-After, never the
// password. It waited out go-redis's read timeout and retries, past 10 s,
// and then said only "history store unavailable".
func TestHandlerBoundsTheRedisRead(t *testing.T) {
	const password = "pw-s3cret-0123456789"
	ropt, err := service.ParseRedisURL("redis://:" + password + "@" + silentRedis(t) + "/0")
	if err != nil {
		t.Fatal(err)
	}
	rdb := ropt.NewClient() // as the processor's: calls honour their context's deadline
	t.Cleanup(func() { rdb.Close() })
	mux := http.NewServeMux()
	mux.Handle("GET /v1/trace/{id}", New(rdb, "t:", time.Hour).HandlerWith(nil))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *httptest.ResponseRecorder, 1)
	start := time.Now()
	go func() {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, "/v1/trace/c1", nil))
		done <- rec
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case rec := <-done:
		done <- rec // for the cleanup
		var body map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		msg, _ := body["error"].(string)
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || rec.Header().Get("Content-Type") != "application/json" ||
			!strings.Contains(msg, "history store (Redis") || !strings.Contains(msg, "unavailable") || !strings.Contains(msg, "5s") {
			t.Errorf("after %v: %d Retry-After %q %s, want 503 with Retry-After saying the history store, Redis, did not answer within 5s",
				time.Since(start).Round(time.Millisecond), rec.Code, rec.Header().Get("Retry-After"), rec.Body)
		}
		t.Logf("after %v: %s", time.Since(start).Round(time.Millisecond), rec.Body)
		if strings.Contains(rec.Body.String(), password) {
			t.Errorf("the answer holds the password: %s", rec.Body)
		}
	case <-time.After(9 * time.Second): // inletctl trace gives up after 10 s
		t.Fatal("no answer within 9 s: the history read is not bounded below inletctl trace's 10 s")
	}
}

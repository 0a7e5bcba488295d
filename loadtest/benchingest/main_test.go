package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestStripeBody(t *testing.T) {
	now := time.Now()
	for _, size := range []int{minBodySize, 1024, 4096, 65536} {
		body, err := stripeBody(7, now, size)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if len(body) != size {
			t.Errorf("size %d: got %d bytes", size, len(body))
		}
		var ev struct{ ID, Type string }
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Fatalf("size %d: not JSON: %v", size, err)
		}
		if ev.ID != "evt_000000000000000000000007" || ev.Type != "invoice.paid" {
			t.Errorf("size %d: id %q type %q", size, ev.ID, ev.Type)
		}
	}
	if _, err := stripeBody(1, now, minBodySize-1); err == nil {
		t.Error("a body below the minimum size was built")
	}
}

func TestRequests(t *testing.T) {
	signer, err := stripeVerifier()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var ids uint64
	pool, err := buildRequests("127.0.0.1:1", 1024, 8, &ids, signer, now)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.free()

	t.Run("parse, verify and carry distinct ids", func(t *testing.T) {
		ids := map[string]bool{}
		for range len(pool.raw) {
			req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(pool.take())))
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(req.Body)
			if err != nil || len(body) != 1024 {
				t.Fatalf("body: %d bytes, %v", len(body), err)
			}
			if err := signer.Verify(req.Header, body, now); err != nil {
				t.Fatalf("signature: %v", err)
			}
			var ev struct{ ID string }
			_ = json.Unmarshal(body, &ev)
			ids[ev.ID] = true
		}
		if len(ids) != len(pool.raw) {
			t.Errorf("%d distinct ids in %d requests", len(ids), len(pool.raw))
		}
	})

	t.Run("bare server answers the generator", func(t *testing.T) {
		srv, err := startBare()
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = srv.stop() }()
		p, err := buildRequests(srv.addr, 1024, 4, &ids, signer, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		defer p.free()
		c := &client{addr: srv.addr}
		defer c.close()
		for i := range 10 {
			status, err := c.do(p.take())
			if err != nil || status != http.StatusOK {
				t.Fatalf("request %d: status %d, %v", i, status, err)
			}
		}
	})
}

func TestReadResponse(t *testing.T) {
	for _, tc := range []struct {
		name, raw  string
		status     int
		keep, fail bool
	}{
		{name: "202 with body", raw: "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", status: 202, keep: true},
		{name: "closing 503", raw: "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", status: 503},
		{name: "chunked", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", fail: true},
		{name: "no length", raw: "HTTP/1.1 200 OK\r\n\r\n", fail: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			br := bufio.NewReader(strings.NewReader(tc.raw))
			status, keep, err := readResponse(br)
			if tc.fail {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil || status != tc.status || keep != tc.keep {
				t.Fatalf("status %d keep %v err %v", status, keep, err)
			}
			if br.Buffered() != 0 {
				t.Errorf("%d bytes of body left unread", br.Buffered())
			}
		})
	}
}

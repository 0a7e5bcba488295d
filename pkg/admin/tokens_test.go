package admin

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestEveryRouteNeedsItsToken enumerates the routes and asks each
// without a token, with wrong ones, and with the right one altered.
func TestEveryRouteNeedsItsToken(t *testing.T) {
	const read, write = "r-Token-123", "w-Token-456"
	var logs bytes.Buffer
	q := newFake()
	trace := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, `{}`) })
	a, err := New(Tokens{Read: read, Write: write}, Deps{Queues: q, Topics: topics, Trace: trace, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	defer srv.Close()
	body := `{"ids":["inlet.dlq/0/1"],"reason":"x","dry_run":true}`
	type route struct {
		method, path string
		write        bool
	}
	routes := []route{
		{"GET", "/v1/dlq", false}, {"GET", "/v1/invalid", false},
		{"GET", "/v1/dlq/inlet.dlq/0/1", false}, {"GET", "/v1/invalid/inlet.invalid/0/0", false},
		{"GET", "/v1/dlq?id=inlet.dlq/0/1", false}, {"GET", "/v1/invalid?id=inlet.invalid/0/0", false},
		{"GET", "/v1/depth", false}, {"GET", "/v1/trace/abc", false},
		{"HEAD", "/v1/dlq", false}, {"HEAD", "/v1/depth", false},
		{"POST", "/v1/dlq/requeue", true}, {"POST", "/v1/dlq/discard", true},
		{"POST", "/v1/invalid/requeue", true}, {"POST", "/v1/invalid/discard", true},
	}
	send := func(rt route, auth string, extra ...string) (int, http.Header, string) {
		in := body
		if strings.HasPrefix(rt.path, "/v1/invalid/") {
			in = strings.Replace(body, "inlet.dlq/0/1", "inlet.invalid/0/0", 1)
		}
		req, _ := http.NewRequest(rt.method, srv.URL+rt.path, strings.NewReader(in))
		if auth != "" {
			req.Header["Authorization"] = []string{auth}
		}
		for i := 0; i+1 < len(extra); i += 2 {
			req.Header.Set(extra[i], extra[i+1])
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	bad := []string{"", "Bearer", "Bearer ", "Basic " + write, write, "Bearer " + strings.ToUpper(write), "Bearer " + strings.ToLower(read),
		"Bearer \t" + write, "Bearer " + write + "x", "Bearer " + write[:len(write)-1], "Bearer " + write + " " + write,
		"Bearer " + read + "," + write, "Token " + write, "Bearer\t" + write}
	for _, rt := range routes {
		for _, auth := range bad {
			if code, h, b := send(rt, auth); code != http.StatusUnauthorized || h.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("%s %s with Authorization %q: %d %s", rt.method, rt.path, auth, code, b)
			}
		}
		// Nor does anything but the Authorization header carry it.
		u := route{rt.method, rt.path + "?access_token=" + write, rt.write}
		if strings.Contains(rt.path, "?") {
			u.path = rt.path + "&access_token=" + write
		}
		if code, _, _ := send(u, "", "Cookie", "token="+write, "X-Api-Key", write); code != http.StatusUnauthorized {
			t.Errorf("%s %s with the token in the query, a cookie or X-Api-Key: %d", rt.method, u.path, code)
		}
		readCode, _, _ := send(rt, "Bearer "+read)
		writeCode, _, _ := send(rt, "bearer "+write+" ") // trailing white space is the header's, not the token's
		switch {
		case rt.write && (readCode != http.StatusForbidden || writeCode != http.StatusOK):
			t.Errorf("%s %s: read token %d (want 403), write token %d (want 200)", rt.method, rt.path, readCode, writeCode)
		case !rt.write && (readCode != http.StatusOK || writeCode != http.StatusOK):
			t.Errorf("%s %s: read token %d, write token %d (want 200)", rt.method, rt.path, readCode, writeCode)
		}
	}
	t.Run("no decision by GET or by a cross-origin browser", func(t *testing.T) {
		for _, p := range []string{"/v1/dlq/requeue", "/v1/dlq/discard", "/v1/invalid/requeue", "/v1/invalid/discard"} {
			// GET with the write token: the id route, which decides nothing.
			code, _, b := send(route{"GET", p + "?ids=inlet.dlq/0/1&reason=x", false}, "Bearer "+write)
			if code == http.StatusOK {
				t.Errorf("GET %s: %d %s", p, code, b)
			}
			// A browser's preflight for a request with Authorization: no
			// CORS header allows it.
			code, h, _ := send(route{"OPTIONS", p, true}, "", "Origin", "https://evil.example", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization")
			if h.Get("Access-Control-Allow-Origin") != "" || h.Get("Access-Control-Allow-Headers") != "" || code == http.StatusOK || code == http.StatusNoContent {
				t.Errorf("OPTIONS %s: %d %v", p, code, h)
			}
			// A form post (no preflight) cannot carry the token.
			code, _, _ = send(route{"POST", p, true}, "", "Content-Type", "application/x-www-form-urlencoded", "Origin", "https://evil.example")
			if code != http.StatusUnauthorized {
				t.Errorf("form POST %s: %d", p, code)
			}
		}
		q.mu.Lock()
		defer q.mu.Unlock()
		for _, c := range q.calls {
			if !strings.HasSuffix(c, "(admin-token:write)") && c != "requeue by admin-token:write" && c != "discard by admin-token:write" {
				t.Errorf("decision by %q", c)
			}
		}
	})
	t.Run("the tokens are never echoed or logged", func(t *testing.T) {
		for _, rt := range routes {
			for _, auth := range []string{"Bearer " + write, "Bearer " + read, "Bearer " + write + "x"} {
				_, h, b := send(rt, auth, HeaderOperator, "alice")
				for _, tok := range []string{read, write} {
					if strings.Contains(b, tok) || strings.Contains(strings.Join(h.Values("WWW-Authenticate"), " "), tok) {
						t.Errorf("%s %s answer holds a token: %s", rt.method, rt.path, b)
					}
				}
			}
		}
		if strings.Contains(logs.String(), read) || strings.Contains(logs.String(), write) {
			t.Errorf("a token is logged: %s", logs.String())
		}
	})
}

package admin

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestNoRouteAnswersJSON: a path or method the API has no route for is
// answered as every other error is, JSON with "error" (405 with Allow);
// ServeMux's own answers were plain text, which a script reading .error
// or inletctl could not.
func TestNoRouteAnswersJSON(t *testing.T) {
	srv := newServer(t, newFake(), Tokens{Read: "r-token", Write: "w-token"})
	for _, c := range []struct {
		method, path string
		code         int
		allow        string
	}{
		{"DELETE", "/v1/dlq", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"OPTIONS", "/v1/depth", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"TRACE", "/v1/invalid/inlet.invalid/0/0", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"PUT", "/v1/trace/abc", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"TRACE", "/v1/dlq/requeue", http.StatusMethodNotAllowed, "GET, HEAD, POST"},
		{"POST", "/v1/depth", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"GET", "/v1/nope", http.StatusNotFound, ""},
		{"GET", "/v1/queues", http.StatusNotFound, ""},
		{"POST", "/v1/dlq/requeue-all", http.StatusMethodNotAllowed, "GET, HEAD"}, // an id, to GET
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer w-token")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var m map[string]any
		var msg string
		if err := json.Unmarshal(b, &m); err == nil {
			msg, _ = m["error"].(string)
		}
		if resp.StatusCode != c.code || resp.Header.Get("Allow") != c.allow || resp.Header.Get("Content-Type") != "application/json" || msg == "" {
			t.Errorf("%s %s: %d Allow %q %s %q, want %d Allow %q with a JSON error", c.method, c.path, resp.StatusCode, resp.Header.Get("Allow"),
				resp.Header.Get("Content-Type"), b, c.code, c.allow)
		}
	}
}

// TestUncleanedPathIsJSON: a /v1/ path with an empty, "." or ".." segment
// is answered 404 in JSON, naming the cleaned path, with every method.
// ServeMux answered it 307 text/html to the cleaned path: a script
// following it could resend a POST elsewhere, and nothing read .error.
func TestUncleanedPathIsJSON(t *testing.T) {
	srv := newServer(t, newFake(), Tokens{Read: "r-token", Write: "w-token"})
	noFollow := srv.Client()
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, c := range []struct{ method, path, cleaned string }{
		{"GET", "/v1//dlq", "/v1/dlq"},
		{"GET", "/v1/dlq/./x", "/v1/dlq/x"},
		{"GET", "/v1/dlq/a/../b", "/v1/dlq/b"},
		{"GET", "/v1/./depth?x=1", "/v1/depth"},
		{"GET", "/v1/trace//abc", "/v1/trace/abc"},
		{"POST", "/v1//dlq/requeue", "/v1/dlq/requeue"},
		{"POST", "/v1/invalid/discard/.", "/v1/invalid/discard"},
		{"DELETE", "/v1/nope/..", "/v1"},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(`{"ids":["inlet.dlq/0/1"],"reason":"r"}`))
		req.Header.Set("Authorization", "Bearer w-token")
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		msg, _ := m["error"].(string)
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Location") != "" || resp.Header.Get("Content-Type") != "application/json" ||
			!strings.Contains(msg, c.path[:strings.IndexByte(c.path+"?", '?')]) || !strings.Contains(msg, c.cleaned) {
			t.Errorf("%s %s: %d Location %q %s %q, want 404 JSON naming the path and %s, no redirect", c.method, c.path, resp.StatusCode,
				resp.Header.Get("Location"), resp.Header.Get("Content-Type"), b, c.cleaned)
		}
	}
}

// TestGroupTakesNoPage: ?group=true with limit= or after= is a 400 naming
// them: the groups are one answer, not pages, and a script paging them
// got the same answer every time.
func TestGroupTakesNoPage(t *testing.T) {
	srv := newServer(t, newFake(), Tokens{Read: "r-token"})
	for _, q := range []string{"group=true&limit=1", "group=true&after=1", "limit=2&group=TRUE&after=1"} {
		code, m, _ := call(t, srv, "GET", "/v1/dlq?"+q, "r-token", "")
		msg, _ := m["error"].(string)
		if code != http.StatusBadRequest || !strings.Contains(msg, "group") || !(strings.Contains(msg, "limit") || strings.Contains(msg, "after")) {
			t.Errorf("?%s: %d %v, want 400 naming group and limit or after", q, code, m)
		}
	}
	if code, m, _ := call(t, srv, "GET", "/v1/dlq?group=false&limit=1", "r-token", ""); code != http.StatusOK || len(m["entries"].([]any)) != 1 {
		t.Errorf("?group=false&limit=1: %d %v, want a page of 1", code, m)
	}
}

// TestEveryRouteRefusesUnknownQuery: depth, one entry, a decision and a
// trace refuse a query parameter as the listing does (400, the same
// words), where they ignored it: ?source=github on depth counted the
// whole queue, and a requeue's ?dry_run=true decided for real.
func TestEveryRouteRefusesUnknownQuery(t *testing.T) {
	q := newFake()
	srv := newServer(t, q, Tokens{Write: "w-token"})
	for _, c := range []struct{ method, path, body, says string }{
		{"GET", "/v1/depth?source=github", "", `unknown query parameter "source" (known: none)`},
		{"GET", "/v1/dlq/inlet.dlq/0/1?payload=false", "", `unknown query parameter "payload" (known: none)`},
		{"GET", "/v1/invalid/inlet.invalid/0/0?x", "", `unknown query parameter "x" (known: none)`},
		{"GET", "/v1/depth?a=50%", "", "bad query: "},
		{"GET", "/v1/trace/abc?event=1", "", `unknown query parameter "event" (known: none)`},
		{"POST", "/v1/dlq/requeue?dry_run=true", `{"ids":["inlet.dlq/0/1"],"reason":"r"}`, `unknown query parameter "dry_run" (known: none)`},
		{"POST", "/v1/invalid/discard?dry_run=true", `{"ids":["inlet.invalid/0/0"],"reason":"r"}`, `unknown query parameter "dry_run" (known: none)`},
		{"GET", "/v1/dlq?nope=1", "", `unknown query parameter "nope" (known: id, source,`},
	} {
		code, m, _ := call(t, srv, c.method, c.path, "w-token", c.body)
		if msg, _ := m["error"].(string); code != http.StatusBadRequest || !strings.Contains(msg, c.says) {
			t.Errorf("%s %s: %d %v, want 400 saying %q", c.method, c.path, code, m, c.says)
		}
	}
	if len(q.calls) != 0 {
		t.Errorf("decisions made: %v, want none", q.calls)
	}
	for _, p := range []string{"/v1/depth", "/v1/dlq/inlet.dlq/0/1", "/v1/trace/abc", "/v1/depth?"} {
		if code, m, _ := call(t, srv, "GET", p, "w-token", ""); code != http.StatusOK {
			t.Errorf("GET %s: %d %v, want 200", p, code, m)
		}
	}
}

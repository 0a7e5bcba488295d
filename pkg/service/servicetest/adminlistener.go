package servicetest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// AdminListenerAnswers checks the answers every admin listener (ingest's,
// the processor's, the dev stack's, served at base, http://host:port)
// gives alike: GET /metrics in Prometheus's text format, GET /healthz
// 200 {"status":"ok"}, HEAD /healthz and /readyz as GET without a body;
// and what no route takes as JSON with "error", never a redirect nor
// net/http's plain text: 404 for a path with an empty, "." or ".."
// segment (whatever the method) and for a path no route takes, 405 with
// Allow: GET, HEAD for /metrics, /healthz and /readyz asked with another
// method. /readyz's own status is the service's: HEAD must only match GET.
func AdminListenerAnswers(t *testing.T, base string) {
	t.Helper()
	noRedirect := &http.Client{
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	do := func(t *testing.T, method, path string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := noRedirect.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	jsonError := func(t *testing.T, method, path string, code int) *http.Response {
		t.Helper()
		res, body := do(t, method, path)
		var v map[string]any
		err := json.Unmarshal([]byte(body), &v)
		msg, _ := v["error"].(string)
		if res.StatusCode != code || res.Header.Get("Location") != "" || res.Header.Get("Content-Type") != "application/json" || err != nil || msg == "" {
			t.Errorf("%s %s: %d %q Location %q %q, want %d application/json with an error", method, path,
				res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Location"), body, code)
		}
		return res
	}
	t.Run("uncleaned paths", func(t *testing.T) {
		for _, p := range []string{"//metrics", "/./metrics", "/a/../metrics", "//healthz", "/./readyz", "/x/../readyz"} {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				jsonError(t, method, p, http.StatusNotFound)
			}
		}
	})
	t.Run("unknown paths", func(t *testing.T) {
		for _, p := range []string{"/nope", "/metrics/", "/healthz/x", "/"} {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				jsonError(t, method, p, http.StatusNotFound)
			}
		}
	})
	t.Run("wrong methods", func(t *testing.T) {
		for _, c := range []struct{ method, path string }{
			{http.MethodPost, "/metrics"}, {http.MethodDelete, "/healthz"}, {http.MethodPut, "/readyz"}, {http.MethodPost, "/healthz"},
		} {
			res := jsonError(t, c.method, c.path, http.StatusMethodNotAllowed)
			if allow := res.Header.Get("Allow"); allow != "GET, HEAD" {
				t.Errorf("%s %s: Allow %q, want GET, HEAD", c.method, c.path, allow)
			}
		}
	})
	t.Run("scrape and probes", func(t *testing.T) {
		res, body := do(t, http.MethodGet, "/metrics")
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") || !strings.Contains(body, "# TYPE") {
			t.Errorf("GET /metrics: %d %q, want 200 in Prometheus's text format", res.StatusCode, res.Header.Get("Content-Type"))
		}
		res, body = do(t, http.MethodGet, "/healthz")
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" || strings.TrimSpace(body) != `{"status":"ok"}` {
			t.Errorf("GET /healthz: %d %q %q, want 200 application/json {\"status\":\"ok\"}", res.StatusCode, res.Header.Get("Content-Type"), body)
		}
		for _, p := range []string{"/healthz", "/readyz"} {
			get, _ := do(t, http.MethodGet, p)
			head, body := do(t, http.MethodHead, p)
			if head.StatusCode != get.StatusCode || head.Header.Get("Content-Type") != get.Header.Get("Content-Type") || body != "" {
				t.Errorf("HEAD %s: %d %q body %q; GET: %d %q", p, head.StatusCode, head.Header.Get("Content-Type"), body, get.StatusCode, get.Header.Get("Content-Type"))
			}
		}
	})
}

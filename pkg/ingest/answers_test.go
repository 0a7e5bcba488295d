package ingest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/telemetry/telemetrytest"
	"github.com/inletdev/inlet/pkg/testenv"
	"github.com/inletdev/inlet/pkg/testenv/syncbuf"
)

// TestBatchLineRejectionsSayWhat: a rejected line's error names the field
// that failed (it said "id, type and schema_version: …" for any of the
// three), and a line that is JSON but no object says what it is (it said
// "not a JSON object: field  has the wrong type (array)").
func TestBatchLineRejectionsSayWhat(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t), nil)
	long := strings.Repeat("t", 300)
	for _, tt := range []struct {
		line       string
		prefix     string // the error starts with it
		contains   string
		exactError bool // prefix is the whole error
	}{
		{`{"id":"ord-\u001b[2J","type":"invoice.paid","data":{}}`, "id: ", "control character (U+001B)", false},
		{`{"id":"ord-1","type":"` + long + `","data":{}}`, "type: ", "longer than 256 bytes", false},
		{`{"id":"ord-1","type":"invoice.paid","schema_version":"v\u007f","data":{}}`, "schema_version: ", "control character (U+007F)", false},
		{`{"id":"ord-\ud800","type":"invoice.paid","data":{}}`, "id: ", "surrogate", false},
		{`[1,2]`, "line is a JSON array, not an object", "", true},
		{`"ord-1"`, "line is a JSON string, not an object", "", true},
		{`5`, "line is a JSON number, not an object", "", true},
		{`null`, "line is JSON null, not an object", "", true},
		{`{"id":5,"type":"invoice.paid","data":{}}`, "id is a JSON number; want a string", "", true},
		{`{"id":"ord-1",`, "not valid JSON: syntax error at byte", "", false},
		// encoding/json alone took the last duplicate and any case.
		{`{"id":"ord-1","type":"invoice.paid","data":{},"TYPE":"customer.deleted"}`, `field "TYPE": field names are lower case (type)`, "", true},
		{`{"Id":"ord-1","Type":"invoice.paid","Data":{}}`, `field "Id": field names are lower case (id)`, "", true},
		{`{"id":"ord-1","type":"invoice.paid","id":"ord-2","data":{}}`, "id appears twice; name each field once", "", true},
		{`{"id":"ord-1","type":"invoice.paid","data":{},"d\u0061ta":{}}`, "data appears twice; name each field once", "", true},
	} {
		status, br, _ := postBatch(t, h, "/events/billing", "Bearer batch-token-1-0123456789", []byte(tt.line), "")
		if status != http.StatusBadRequest || len(br.Results) != 1 || br.Results[0].Status != LineRejected {
			t.Errorf("%s: status %d %+v, want 400 and the line rejected", tt.line, status, br)
			continue
		}
		got := br.Results[0].Error
		switch {
		case tt.exactError && got != tt.prefix:
			t.Errorf("%s: error %q, want %q", tt.line, got, tt.prefix)
		case !strings.HasPrefix(got, tt.prefix) || !strings.Contains(got, tt.contains):
			t.Errorf("%s: error %q, want it to start with %q and say %q", tt.line, got, tt.prefix, tt.contains)
		}
	}
	// Only the line's own members are held to that: the payload is the
	// sender's, duplicates and all.
	line := `{"id":"ord-9","type":"invoice.paid","data":{"id":1,"id":2,"TYPE":"x","timestamp":3}}`
	if status, br, _ := postBatch(t, h, "/events/billing", "Bearer batch-token-1-0123456789", []byte(line), ""); status != http.StatusOK || br.Accepted != 1 {
		t.Errorf("%s: status %d %+v, want 200 and the line accepted", line, status, br)
	}
	// A member the line does not have is refused, named (cut to 64
	// bytes): "timestamp" for occurred_at lost the event's time.
	longName := strings.Repeat("x", 100)
	for _, tt := range []struct{ line, want string }{
		{`{"id":"ord-9","type":"invoice.paid","timestamp":"2025-01-01T00:00:00Z","data":{}}`, `unknown field "timestamp": a line has id, type, occurred_at, schema_version, correlation_id, data; the event's own fields go in data`},
		{`{"id":"ord-9","type":"invoice.paid","data":{},"` + longName + `":1}`, `unknown field "` + longName[:64] + `…"`},
	} {
		status, br, _ := postBatch(t, h, "/events/billing", "Bearer batch-token-1-0123456789", []byte(tt.line), "")
		if status != http.StatusBadRequest || len(br.Results) != 1 || !strings.HasPrefix(br.Results[0].Error, tt.want) {
			t.Errorf("%.80s: status %d %+v, want 400 and %q", tt.line, status, br, tt.want)
		}
	}
}

// TestWebhookMetadataErrorsNameTheField: "metadata value longer than 256
// bytes" did not say which value.
func TestWebhookMetadataErrorsNameTheField(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t), nil)
	for _, tt := range []struct {
		name   string
		req    *http.Request
		prefix string
		says   string
	}{
		{"event type too long", h.signed(t, "stripe", []byte(`{"id":"evt_long","type":"`+strings.Repeat("x", 300)+`"}`), nil), "event_type: ", "longer than 256 bytes"},
		{"event id with a control character", h.signed(t, "gh", []byte(`{"zen":"x"}`), map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": "d\tx"}), "event_id: ", "control character (U+0009)"},
		{"event id not UTF-8", h.signed(t, "stripe", []byte("{\"id\":\"evt_\xfe\",\"type\":\"x\"}"), nil), "event_id: ", "UTF-8"},
		{"schema version too long", h.signed(t, "stripe", []byte(`{"id":"evt_v","type":"x","api_version":"`+strings.Repeat("v", 257)+`"}`), nil), "schema_version: ", "longer than 256 bytes"},
	} {
		a := do(t, tt.req)
		if a.status != http.StatusBadRequest || !strings.HasPrefix(a.body.Error, tt.prefix) || !strings.Contains(a.body.Error, tt.says) {
			t.Errorf("%s: %d %s, want 400 and an error starting %q saying %q", tt.name, a.status, a.raw, tt.prefix, tt.says)
		}
	}
}

// TestBodyReadAnswersSayWhy: a body that could not be read was answered
// with the status's own text ("Bad Request", "Request Entity Too Large"),
// and a batch over batch.max_body by its Content-Length without the limit,
// where one found over it while streaming named it.
func TestBodyReadAnswersSayWhy(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t), nil)
	bearer := http.Header{"Authorization": {"Bearer batch-token-1-0123456789"}}
	for _, tt := range []struct {
		name   string
		run    func(t *testing.T) rawAnswer
		status int
		want   string // the answer's error starts with it
	}{
		{"webhook over max_body by its Content-Length", func(t *testing.T) rawAnswer {
			// Sent whole: net/http reads a small body's rest after the
			// answer, to keep the connection.
			return post(t, h, "/webhooks/stripe", bytes.Repeat([]byte("x"), 4097), false, nil)
		}, http.StatusRequestEntityTooLarge, "body over this source's limit of 4096 bytes"},
		{"chunked webhook over max_body", func(t *testing.T) rawAnswer {
			return post(t, h, "/webhooks/stripe", bytes.Repeat([]byte("x"), 5000), true, nil)
		}, http.StatusRequestEntityTooLarge, "body over this source's limit of 4096 bytes"},
		{"webhook short of its Content-Length", func(t *testing.T) rawAnswer {
			r := startRequest(t, h, "/webhooks/stripe", 2000, nil)
			r.send([]byte(`{"id":"evt_cut","type":"x"}`))
			r.end()
			return r.wait()
		}, http.StatusBadRequest, "body ended before its Content-Length (2000 bytes)"},
		{"webhook badly chunked", func(t *testing.T) rawAnswer {
			r := startRequest(t, h, "/webhooks/stripe", -1, nil)
			_, _ = r.conn.Write([]byte("zz\r\n{}\r\n"))
			return r.wait()
		}, http.StatusBadRequest, "body ended early or was badly chunked"},
		{"batch over batch.max_body by its Content-Length", func(t *testing.T) rawAnswer {
			return startRequest(t, h, "/events/billing", 4<<20+1, bearer).wait()
		}, http.StatusRequestEntityTooLarge, "batch over the size limit (4194304 bytes)"},
		{"signed batch short of its Content-Length", func(t *testing.T) rawAnswer {
			r := startRequest(t, h, "/events/internal", 2000, nil)
			r.send([]byte(batchLineFor("cut")))
			r.end()
			return r.wait()
		}, http.StatusBadRequest, "body ended before its Content-Length (2000 bytes)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.run(t)
			var v struct {
				Error         string `json:"error"`
				CorrelationID string `json:"correlation_id"`
			}
			if err := json.Unmarshal(a.body, &v); err != nil || a.status != tt.status || !strings.HasPrefix(v.Error, tt.want) || v.CorrelationID == "" {
				t.Fatalf("%d %s, want %d and an error starting %q", a.status, a.body, tt.status, tt.want)
			}
			noAddress(t, string(a.body))
		})
	}
}

// TestBatchRejectionsLogged: the batch's log line had only the counts; why
// lines were rejected was in the producer's answer alone. It now carries
// the first few rejections (line and reason), never a line's content.
func TestBatchRejectionsLogged(t *testing.T) {
	var logs syncbuf.Buffer
	h := newHarnessDeps(t, testenv.Embedded(t), testSources, nil, func(d *Deps) {
		d.Log = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	const secret = "PAYLOAD-SECRET"
	lines := []string{
		`{"id":"l1","type":"invoice.paid","data":{"card":"` + secret + `"}}`,
		`{"id":"l2-` + secret + `","type":"invoice.paid"}`, // no data
		`{"id":"` + secret + `",`,                          // truncated
		`[1,"` + secret + `"]`,
		`{"id":"l4\u001b` + secret + `","type":"t","data":{}}`,
		`{"id":"l5","type":"t","occurred_at":"` + secret + `","data":{}}`,
		`{"id":"l6","type":"` + secret + `\u0007","data":{}}`, // the sixth rejection: beyond the sample
	}
	status, br, _ := postBatch(t, h, "/events/billing", "Bearer batch-token-1-0123456789", []byte(strings.Join(lines, "\n")), "")
	if status != http.StatusMultiStatus || br.Accepted != 1 || br.Rejected != 6 {
		t.Fatalf("status %d %+v", status, br)
	}
	var entry struct {
		Msg        string `json:"msg"`
		Rejected   int    `json:"rejected"`
		Rejections []struct {
			Line  int    `json:"line"`
			Error string `json:"error"`
		} `json:"rejections"`
	}
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `"msg":"batch"`) {
			if err := json.Unmarshal([]byte(l), &entry); err != nil {
				t.Fatalf("log line %s: %v", l, err)
			}
		}
	}
	if entry.Msg != "batch" || entry.Rejected != 6 {
		t.Fatalf("no batch log line with 6 rejected lines in:\n%s", logs.String())
	}
	want := map[int]string{}
	for _, r := range br.Results {
		if r.Status == LineRejected && len(want) < 5 {
			want[r.Line] = r.Error
		}
	}
	got := map[int]string{}
	for _, r := range entry.Rejections {
		got[r.Line] = r.Error
	}
	if len(want) != 5 || !maps.Equal(got, want) {
		t.Errorf("logged rejections %v, want the first 5 as answered: %v", got, want)
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("the log holds line content:\n%s", logs.String())
	}
}

// TestBatchEveryAnswerCounted: an empty batch (400) was not counted in
// inlet_ingest_requests_total, and a batch for a known source without the
// events endpoint was counted as an unknown source.
func TestBatchEveryAnswerCounted(t *testing.T) {
	reader, tel := newMetered(t)
	h := newHarness(t, testenv.Embedded(t), nil, tel)
	for _, tt := range []struct {
		path   string
		body   string
		status int
		error  string
	}{
		{"/events/billing", "", http.StatusBadRequest, "empty batch"},
		{"/events/billing", "\n\r\n  \n", http.StatusBadRequest, "empty batch"},
		{"/events/stripe", batchLineFor("e1"), http.StatusNotFound, "batches are not enabled for this source"},
		{"/events/nope", batchLineFor("e2"), http.StatusNotFound, "unknown source"},
	} {
		status, br, hdr := postBatch(t, h, tt.path, "Bearer batch-token-1-0123456789", []byte(tt.body), "")
		if status != tt.status || br.Error != tt.error || br.CorrelationID == "" || hdr.Get("X-Correlation-ID") != br.CorrelationID {
			t.Errorf("%s %q: %d %+v, want %d %q with the correlation id", tt.path, tt.body, status, br, tt.status, tt.error)
		}
	}
	got := telemetrytest.Int64s(t, reader, "inlet.ingest.requests", "source", "outcome", "reason")
	want := map[string]int64{
		"billing|rejected|" + reasonMalformed:     2,
		"stripe|rejected|batch_disabled":          1,
		"unknown|rejected|" + reasonUnknownSource: 1,
	}
	if !maps.Equal(got, want) {
		t.Fatalf("requests %v, want %v", got, want)
	}
}

// TestNoRouteAnswersLikeTheRest: a path no route takes, or a route's path
// with another method, is answered in JSON with the correlation id (and
// Allow for a 405), as every other answer is; ServeMux's own answers were
// plain text without it. Nothing is written.
func TestNoRouteAnswersLikeTheRest(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t), nil)
	for _, tt := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{http.MethodGet, "/webhooks/shop", http.StatusMethodNotAllowed, "POST"},
		{http.MethodPut, "/events/billing", http.StatusMethodNotAllowed, "POST"},
		{http.MethodGet, "/events", http.StatusMethodNotAllowed, "POST"},
		{http.MethodPost, "/healthz", http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodPost, "/webhooks/shop/", http.StatusNotFound, ""},
		{http.MethodPost, "/webhooks", http.StatusNotFound, ""},
		{http.MethodPost, "/events/billing/x", http.StatusNotFound, ""},
		{http.MethodPost, "/WEBHOOKS/shop", http.StatusNotFound, ""},
		{http.MethodGet, "/", http.StatusNotFound, ""},
		// POST reaches the route, the escaped slash in the source name.
		{http.MethodGet, "/webhooks/a%2Fb", http.StatusMethodNotAllowed, "POST"},
		{http.MethodGet, "/events/a%2Fb", http.StatusMethodNotAllowed, "POST"},
	} {
		req, err := http.NewRequest(tt.method, h.url+tt.path, strings.NewReader(`{"id":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Correlation-ID", "route-check")
		a := do(t, req)
		if a.status != tt.status || a.header.Get("Allow") != tt.allow {
			t.Errorf("%s %s: %d, Allow %q; want %d, Allow %q", tt.method, tt.path, a.status, a.header.Get("Allow"), tt.status, tt.allow)
		}
		if a.header.Get("X-Correlation-ID") != "route-check" || a.body.CorrelationID != "route-check" || a.body.Error == "" {
			t.Errorf("%s %s: header %q, body %s; want the correlation id and an error in JSON", tt.method, tt.path, a.header.Get("X-Correlation-ID"), a.raw)
		}
	}
	// The routes themselves still answer as before.
	if a := do(t, h.signed(t, "nosuch", []byte(`{}`), nil)); a.status != http.StatusNotFound || a.body.Error != "unknown source" {
		t.Errorf("unknown source: %d %s", a.status, a.raw)
	}
	if recs := h.env.ReadAll(t, h.topics.Raw, 0, 300*time.Millisecond, 10*time.Second); len(recs) != 0 {
		t.Errorf("%d records on the raw topic, want none", len(recs))
	}
}

// TestNoPathAnswersLikeTheRest: a request whose target is no path, a
// CONNECT (authority form) or a request to "*" other than OPTIONS, reaches
// Inlet's handler, and ServeMux answered it plain text without the
// correlation id (404 "page not found", 400 with no body). It is a JSON
// 404 as any other path no route takes.
func TestNoPathAnswersLikeTheRest(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t), nil)
	for _, line := range []string{"CONNECT ingest.example:443 HTTP/1.1", "POST * HTTP/1.1", "GET * HTTP/1.1"} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "%s\r\nHost: x\r\nX-Correlation-ID: route-check\r\nContent-Length: 0\r\n\r\n", line)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		conn.Close()
		var r Response
		_ = json.Unmarshal(raw, &r)
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("X-Correlation-ID") != "route-check" || r.CorrelationID != "route-check" || r.Error == "" {
			t.Errorf("%s: %d %v %q; want a JSON 404 with the correlation id", line, resp.StatusCode, resp.Header, raw)
		}
	}
}

// TestBatchRefusalsListNoResults: a batch refused whole answers an empty
// results list, not null, which a sender looping over it would meet.
func TestBatchRefusalsListNoResults(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t), nil)
	for _, tt := range []struct {
		path, auth, body string
		status           int
	}{
		{"/events/billing", "Bearer wrong", `{"id":"a","type":"t","data":{}}`, http.StatusUnauthorized},
		{"/events/nosuch", "Bearer batch-token-1-0123456789", `{"id":"a","type":"t","data":{}}`, http.StatusNotFound},
		{"/events/billing", "Bearer batch-token-1-0123456789", "\n\n", http.StatusBadRequest},
	} {
		req, err := http.NewRequest(http.MethodPost, h.url+tt.path, strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", tt.auth)
		a := do(t, req)
		var got struct {
			Results json.RawMessage `json:"results"`
		}
		if err := json.Unmarshal(a.raw, &got); err != nil || a.status != tt.status || string(got.Results) != "[]" {
			t.Errorf("%s %q: %d %s; want %d with \"results\":[]", tt.path, tt.body, a.status, a.raw, tt.status)
		}
	}
}

// TestWebhookContentEncodingRefused: a compressed webhook is refused 415
// before its body is read. JSON sent gzipped was answered "body is not
// valid JSON", and a source with json: false stored the compressed bytes
// with nothing saying how to read them.
func TestWebhookContentEncodingRefused(t *testing.T) {
	const wantErr = "Content-Encoding not supported: send the body uncompressed"
	h := newHarness(t, testenv.Embedded(t), nil)
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	_, _ = zw.Write([]byte(`{"id":"z1","type":"t"}`))
	_ = zw.Close()
	for i, coding := range []string{"gzip", "identity, GZIP", "dcz", "aes128gcm", "Pack200-Gzip"} {
		req, _ := http.NewRequest(http.MethodPost, h.url+"/webhooks/open", bytes.NewReader(zb.Bytes()))
		if i == 1 { // a signed source too
			req = h.signed(t, "internal", zb.Bytes(), nil)
		}
		req.Header.Set("Content-Encoding", coding)
		a := do(t, req)
		if a.status != http.StatusUnsupportedMediaType || a.header.Get("Accept-Encoding") != "identity" || a.body.Error != wantErr {
			t.Errorf("%s: %d Accept-Encoding %q %s; want 415, identity, %q", req.URL.Path, a.status, a.header.Get("Accept-Encoding"), a.raw, wantErr)
		}
	}
	if recs := h.env.ReadAll(t, h.topics.Raw, 0, 300*time.Millisecond, 10*time.Second); len(recs) != 0 {
		t.Errorf("%d records on the raw topic, want none", len(recs))
	}
	// A value that compresses nothing is not refused: identity, or a
	// charset sent in the wrong header by an in-house sender.
	for _, ce := range []string{"Identity", "utf-8"} {
		plain, _ := http.NewRequest(http.MethodPost, h.url+"/webhooks/open", strings.NewReader(`{"id":"z-`+ce+`","type":"t"}`))
		plain.Header.Set("Content-Encoding", ce)
		if a := do(t, plain); a.status != http.StatusAccepted {
			t.Errorf("Content-Encoding: %s: %d %s, want 202", ce, a.status, a.raw)
		}
	}
}

// TestWebhookFormEncodedSaysSo: a JSON source sent a form-encoded body (the
// content type GitHub's API gives a webhook unless told json) is told to
// switch to JSON; "body is not valid JSON" left the operator looking at a
// body GitHub shows as JSON.
func TestWebhookFormEncodedSaysSo(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t), nil)
	body := []byte("payload=%7B%22zen%22%3A%22x%22%7D")
	req := h.signed(t, "gh", body, map[string]string{"X-GitHub-Event": "ping", "X-GitHub-Delivery": "form-1"})
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	a := do(t, req)
	if want := "body is form-encoded, not JSON: send application/json (GitHub: the webhook's Content type)"; a.status != http.StatusBadRequest || a.body.Error != want {
		t.Errorf("%d %s; want 400 %q", a.status, a.raw, want)
	}
}

// TestUncleanedPathAnswersLikeTheRest: a path with an empty, "." or ".."
// segment (/webhooks//shop, /events/./billing) was answered by ServeMux
// with a 307 to the cleaned path, text/html without the correlation id:
// a sender following it re-POSTs the signed body to another URL than the
// one configured, and one that does not is left with an HTML page. It is
// a JSON 404 with the correlation id, whatever the method, naming the
// cleaned path; one that cleans to a webhook or batch route is counted as
// an unknown source. Nothing is written.
func TestUncleanedPathAnswersLikeTheRest(t *testing.T) {
	reader, tel := newMetered(t)
	h := newHarness(t, testenv.Embedded(t), nil, tel)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	routes := 0
	for _, tt := range []struct {
		method, path, clean string
		route               bool // cleans to a webhook or batch route
	}{
		{http.MethodPost, "/webhooks//shop", "/webhooks/shop", true},
		{http.MethodPost, "/webhooks/./shop", "/webhooks/shop", true},
		{http.MethodPost, "/webhooks/x/../shop", "/webhooks/shop", true},
		{http.MethodPost, "//webhooks/shop", "/webhooks/shop", true},
		{http.MethodPost, "/events//billing", "/events/billing", true},
		{http.MethodPost, "/events/.", "/events", true},
		{http.MethodGet, "/webhooks//shop", "/webhooks/shop", false},
		{http.MethodGet, "//healthz", "/healthz", false},
		{http.MethodPost, "/a/../", "/", false},
	} {
		body := []byte(`{"id":"evt_uncleaned","type":"orders/create"}`)
		req := h.signed(t, "shop", body, map[string]string{"X-Correlation-ID": "route-check"})
		req.Method = tt.method
		u, err := url.Parse(h.url + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		req.URL = u
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var r Response
		_ = json.Unmarshal(raw, &r)
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Location") != "" ||
			resp.Header.Get("X-Correlation-ID") != "route-check" || r.CorrelationID != "route-check" ||
			!strings.Contains(r.Error, tt.clean) {
			t.Errorf("%s %s: %d Location %q %q; want a JSON 404 with the correlation id naming %s",
				tt.method, tt.path, resp.StatusCode, resp.Header.Get("Location"), raw, tt.clean)
		}
		if tt.route {
			routes++
		}
	}
	got := telemetrytest.Int64s(t, reader, "inlet.ingest.requests", "source", "outcome", "reason")
	if want := map[string]int64{"unknown|rejected|" + reasonUnknownSource: int64(routes)}; !maps.Equal(got, want) {
		t.Errorf("requests %v, want %v", got, want)
	}
	if recs := h.env.ReadAll(t, h.topics.Raw, 0, 300*time.Millisecond, 10*time.Second); len(recs) != 0 {
		t.Errorf("%d records on the raw topic, want none", len(recs))
	}
}

package ingest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/telemetry/telemetrytest"
	"github.com/inletdev/inlet/pkg/testenv"
)

// postBatch posts body as NDJSON to path, with auth as its Authorization
// when set, signed for the source sign when set.
func postBatch(t testing.TB, h *harness, path, auth string, body []byte, sign string) (int, BatchResponse, http.Header) {
	t.Helper()
	header := http.Header{}
	header.Set("Content-Type", "application/x-ndjson")
	if auth != "" {
		header.Set("Authorization", auth)
	}
	if sign != "" {
		src, _ := h.sources.Get(sign)
		if err := src.Provider().Sign(header, body, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	return postBatchReader(t, h, path, header, bytes.NewReader(body))
}

// postBatchReader posts body to path with exactly the headers header. The
// request has a Content-Length when http.NewRequest knows body's length
// (a *bytes.Reader does; wrap it in io.MultiReader to send it chunked).
func postBatchReader(t testing.TB, h *harness, path string, header http.Header, body io.Reader) (int, BatchResponse, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.url+path, body)
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var br BatchResponse
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &br); err != nil {
		t.Fatalf("answer is not JSON: %s", raw)
	}
	return resp.StatusCode, br, resp.Header
}

func TestBatchEndpoint(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t), nil)
	good := func(id string) string {
		return fmt.Sprintf(`{"id":%q,"type":"invoice.paid","occurred_at":"2025-01-01T00:00:00Z","data":{"id":"inv_%s"}}`, id, id)
	}

	t.Run("good and bad lines: bad ones reported, good ones durable", func(t *testing.T) {
		long := `{"id":"big","type":"x","data":"` + strings.Repeat("x", 2<<20) + `"}`
		body := strings.Join([]string{
			good("b1"),
			`{"id":"b2","type":"invoice.paid"`,  // truncated JSON
			``,                                  // blank: skipped
			`{"type":"invoice.paid","data":{}}`, // no id
			good("b3") + "\r",                   // CRLF
			`{"id":"b4","type":"t","occurred_at":"yesterday","data":{}}`,
			`[1,2,3]`,
			long, // over the source's max_body (1 MiB)
			good("b5"),
			" \t",          // blank: skipped
			"\u00a0\u2028", // Unicode spaces: not JSON, not blank
		}, "\n")
		status, br, _ := postBatch(t, h, "/events/billing", "Bearer batch-token-1-0123456789", []byte(body), "")
		if status != http.StatusMultiStatus || br.Accepted != 3 || br.Rejected != 6 || br.Failed != 0 {
			t.Fatalf("status %d, %+v", status, br)
		}
		want := map[int]string{1: LineAccepted, 2: LineRejected, 4: LineRejected, 5: LineAccepted, 6: LineRejected, 7: LineRejected, 8: LineRejected, 9: LineAccepted, 11: LineRejected}
		for _, r := range br.Results {
			if want[r.Line] != r.Status {
				t.Errorf("line %d: %s (%s), want %s", r.Line, r.Status, r.Error, want[r.Line])
			}
			if r.Status == LineRejected && r.Error == "" {
				t.Errorf("line %d rejected without a reason", r.Line)
			}
		}
		envs := h.rawEnvelopes(t, 3)
		got := map[string]bool{}
		for _, e := range envs {
			got[e.EventID] = true
			if e.Channel != "events" || e.Source != "billing" || e.OccurredAt == nil {
				t.Errorf("envelope %+v", e)
			}
			if e.EventID == "b3" && bytes.HasSuffix(e.Payload, []byte("\r")) {
				t.Errorf("line ending kept in payload")
			}
		}
		if len(envs) != 3 || !got["b1"] || !got["b3"] || !got["b5"] {
			t.Fatalf("raw topic holds %v", got)
		}
	})

	t.Run("line correlation ids stay traceable under the longest request id", func(t *testing.T) {
		// A line without its own id gets the request's with "-<line>":
		// past maxCorrelationLen, inletctl trace and the admin API refused it.
		corr := strings.Repeat("c", maxCorrelationLen)
		header := http.Header{}
		header.Set("Content-Type", "application/x-ndjson")
		header.Set("Authorization", "Bearer batch-token-1-0123456789")
		header.Set("X-Correlation-ID", corr)
		body := []byte(good("c1") + "\n" + good("c2"))
		if status, br, _ := postBatchReader(t, h, "/events/billing", header, bytes.NewReader(body)); status != 200 || br.Accepted != 2 {
			t.Fatalf("status %d, %+v", status, br)
		}
		ids := map[string]string{}
		for _, e := range h.rawEnvelopes(t, 2) { // acknowledged: on the log with any earlier ones
			if e.EventID == "c1" || e.EventID == "c2" {
				ids[e.EventID] = e.CorrelationID
			}
		}
		if len(ids) != 2 || ids["c1"] == ids["c2"] {
			t.Fatalf("line correlation ids %q, want two distinct", ids)
		}
		for id, c := range ids {
			if !validCorrelationID(c) || !strings.HasPrefix(c, corr[:100]) {
				t.Errorf("%s: correlation id %q (%d bytes): want a valid id starting with the request's", id, c, len(c))
			}
		}
	})

	t.Run("authentication", func(t *testing.T) {
		body := []byte(good("a1"))
		for name, auth := range map[string]string{"none": "", "wrong token": "Bearer nope", "basic": "Basic YTpi"} {
			if status, _, _ := postBatch(t, h, "/events/billing", auth, body, ""); status != 401 {
				t.Errorf("%s: status %d, want 401", name, status)
			}
		}
		if status, _, _ := postBatch(t, h, "/events/stripe", "Bearer batch-token-1-0123456789", body, ""); status != 404 {
			t.Errorf("source without a batch endpoint: status %d, want 404", status)
		}
		if status, br, _ := postBatch(t, h, "/events/billing", "bearer batch-token-1-0123456789", body, ""); status != 200 || br.Accepted != 1 {
			t.Errorf("lower-case scheme: status %d %+v", status, br)
		}
		// RFC 9110 11.4: one or more spaces after the scheme.
		if status, br, _ := postBatch(t, h, "/events/billing", "Bearer   batch-token-1-0123456789", body, ""); status != 200 || br.Accepted != 1 {
			t.Errorf("spaces after the scheme: status %d %+v", status, br)
		}
		if status, br, _ := postBatch(t, h, "/events?source=billing", "Bearer batch-token-1-0123456789", body, ""); status != 200 || br.Accepted != 1 {
			t.Errorf("?source= form: status %d %+v", status, br)
		}
	})

	t.Run("signed batch is verified over the whole body", func(t *testing.T) {
		body := []byte(good("s1") + "\n" + good("s2") + "\n")
		if status, br, _ := postBatch(t, h, "/events/internal", "", body, "internal"); status != 200 || br.Accepted != 2 {
			t.Fatalf("signed: status %d %+v", status, br)
		}
		req, _ := http.NewRequest(http.MethodPost, h.url+"/events/internal", bytes.NewReader(body))
		src, _ := h.sources.Get("internal")
		_ = src.Provider().Sign(req.Header, []byte(good("other")), time.Now())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("signature over another body: status %d, want 401", resp.StatusCode)
		}
	})

	t.Run("limits", func(t *testing.T) {
		var lines []string
		for i := range 7 {
			lines = append(lines, good(fmt.Sprintf("m%d", i)))
		}
		status, br, _ := postBatch(t, h, "/events/billing", "Bearer batch-token-1-0123456789", []byte(strings.Join(lines, "\n")), "")
		if status != http.StatusMultiStatus || br.Accepted != 5 || br.Rejected != 0 || !strings.Contains(br.Error, "line 6 on was not read") {
			t.Fatalf("max_lines 5: status %d %+v", status, br)
		}
		if status, br, _ := postBatch(t, h, "/events/billing", "Bearer batch-token-1-0123456789", nil, ""); status != 400 || br.Error != "empty batch" {
			t.Fatalf("empty: status %d %+v", status, br)
		}
		if status, _, _ := postBatch(t, h, "/events/billing", "Bearer batch-token-1-0123456789", []byte("nope\nnope"), ""); status != 400 {
			t.Fatalf("all bad: status %d", status)
		}
		// A stream of bad lines stops being read after max_lines of them:
		// the answer lists each, and 2 MiB of them made it 176 MiB.
		status, br, _ = postBatch(t, h, "/events/billing", "Bearer batch-token-1-0123456789", bytes.Repeat([]byte("x\n"), 10000), "")
		if status != 207 || len(br.Results) != 6 || !strings.Contains(br.Error, "more than 5 rejected lines: line 7 on") {
			t.Fatalf("10000 bad lines: status %d, %d results, error %q; want 207 (the unread lines may be good), 5+1 rejected and the stop at line 7", status, len(br.Results), br.Error)
		}
	})

	t.Run("a streamed body over max_body is cut where it gets there", func(t *testing.T) {
		post := func(body []byte) (int, BatchResponse) {
			t.Helper()
			// No Content-Length: the limit is met while reading.
			status, br, _ := postBatchReader(t, h, "/events/billing", http.Header{"Authorization": {"Bearer batch-token-1-0123456789"}}, io.MultiReader(bytes.NewReader(body)))
			return status, br
		}
		blanks := bytes.Repeat([]byte("\n"), 4<<20+1) // over billing's 4 MiB batch max_body
		body := append([]byte(good("c1")+"\n"+good("c2")+"\n"), blanks...)
		status, br := post(append(body, good("c3")...))
		if status != http.StatusMultiStatus || br.Accepted != 2 || br.Rejected != 0 || !strings.Contains(br.Error, "over the size limit") {
			t.Fatalf("good lines then over the limit: status %d accepted %d rejected %d error %q; want 207, 2, 0 and the cut named", status, br.Accepted, br.Rejected, br.Error)
		}
		status, br = post(append(blanks, good("c4")...))
		if status != http.StatusRequestEntityTooLarge || br.Accepted != 0 || !strings.Contains(br.Error, "over the size limit") {
			t.Fatalf("over the limit before any good line: status %d %+v; want 413", status, br.Error)
		}
	})

	t.Run("lines that are not UTF-8 are rejected, not folded into one id", func(t *testing.T) {
		body := strings.Join([]string{
			"{\"id\":\"ord-\xff\",\"type\":\"invoice.paid\",\"data\":{}}",
			"{\"id\":\"ord-\xfe\",\"type\":\"invoice.paid\",\"data\":{}}",
			"{\"id\":\"ord-3\",\"type\":\"invoice.\xff\",\"data\":{}}",
			good("u1"),
		}, "\n")
		status, br, _ := postBatch(t, h, "/events/billing", "Bearer batch-token-1-0123456789", []byte(body), "")
		if status != http.StatusMultiStatus || br.Accepted != 1 || br.Rejected != 3 {
			t.Fatalf("status %d, %+v", status, br)
		}
		for _, r := range br.Results[:3] {
			if !strings.Contains(r.Error, "UTF-8") {
				t.Errorf("line %d: %q, want it to say UTF-8", r.Line, r.Error)
			}
		}
	})
}

// FuzzLineReader: whatever the input and line limit, the reader never
// panics, never returns a line longer than the limit, and the lines it
// returns (plus skipped overlong ones) reassemble the input.
func FuzzLineReader(f *testing.F) {
	f.Add([]byte("a\nb\r\n\nc"), 4)
	f.Add([]byte(strings.Repeat("x", 100)+"\nshort\n"), 10)
	f.Add([]byte{}, 1)
	f.Add([]byte("\n\n\n"), 0)
	f.Fuzz(func(t *testing.T, in []byte, max int) {
		if max < 0 || max > 1<<16 {
			return
		}
		lr := newLineReader(bytes.NewReader(in), max)
		var rebuilt [][]byte
		for {
			line, err := lr.next()
			if err == io.EOF {
				break
			}
			if err == errLineTooLong {
				rebuilt = append(rebuilt, nil)
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(line) > max {
				t.Fatalf("line of %d bytes over limit %d", len(line), max)
			}
			rebuilt = append(rebuilt, bytes.Clone(line))
		}
		parts := bytes.Split(in, []byte("\n"))
		if len(parts) > 0 && len(parts[len(parts)-1]) == 0 {
			parts = parts[:len(parts)-1]
		}
		if len(parts) != len(rebuilt) {
			t.Fatalf("%d lines, want %d", len(rebuilt), len(parts))
		}
		for i, p := range parts {
			if rebuilt[i] != nil && !bytes.Equal(rebuilt[i], bytes.TrimSuffix(p, []byte("\r"))) {
				t.Fatalf("line %d = %q, want %q", i, rebuilt[i], p)
			}
		}
	})
}

// TestBatchEarlyStopsLeaveUnreadLinesUnanswered: when reading stops early
// (max_lines events, too many rejected lines, max_body), the first line not
// read was answered "rejected" (do not retry) and the lines after it were
// missing with no top-level error: a sender dropping rejected lines lost
// good events. Now the unread lines get no result, error names the first,
// and resending from there delivers every event exactly once.
func TestBatchEarlyStopsLeaveUnreadLinesUnanswered(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t), nil)
	good := func(id string) string {
		return fmt.Sprintf(`{"id":%q,"type":"invoice.paid","data":{"id":"inv_%s"}}`, id, id)
	}
	post := func(t *testing.T, body []byte, streamed bool) (int, BatchResponse) {
		t.Helper()
		var r io.Reader = bytes.NewReader(body)
		if streamed { // no Content-Length: max_body is met while reading
			r = io.MultiReader(r)
		}
		status, br, _ := postBatchReader(t, h, "/events/billing", http.Header{"Authorization": {"Bearer batch-token-1-0123456789"}}, r)
		return status, br
	}
	// cutAt checks that no line from cut on has a result and that error
	// names cut as the line to resend from.
	cutAt := func(t *testing.T, br BatchResponse, cut int) {
		t.Helper()
		for _, r := range br.Results {
			if r.Line >= cut {
				t.Errorf("line %d, not read, has a result: %+v", r.Line, r)
			}
		}
		if want := fmt.Sprintf("line %d on was not read", cut); !strings.Contains(br.Error, want) {
			t.Errorf("error %q, want it to say %q", br.Error, want)
		}
	}
	// resend posts the lines of body from line from on, as a sender does.
	resend := func(t *testing.T, body string, from, accepted int) {
		t.Helper()
		rest := strings.Join(strings.Split(body, "\n")[from-1:], "\n")
		if status, br := post(t, []byte(rest), false); status != http.StatusOK || br.Accepted != accepted {
			t.Fatalf("resending from line %d: status %d %+v, want 200 and %d accepted", from, status, br, accepted)
		}
	}

	t.Run("max_lines events", func(t *testing.T) {
		var lines []string
		for i := 1; i <= 8; i++ {
			lines = append(lines, good(fmt.Sprint("m", i)))
		}
		body := strings.Join(lines, "\n")
		status, br := post(t, []byte(body), false)
		if status != http.StatusMultiStatus || br.Accepted != 5 || br.Rejected != 0 {
			t.Fatalf("8 good lines, max_lines 5: status %d %+v; want 207, 5 accepted, none rejected", status, br)
		}
		cutAt(t, br, 6)
		resend(t, body, 6, 3)
	})

	t.Run("too many rejected lines, then good ones", func(t *testing.T) {
		lines := []string{good("r1")}
		for range 6 {
			lines = append(lines, `{"bad":1}`)
		}
		lines = append(lines, good("r2"), good("r3"))
		body := strings.Join(lines, "\n")
		status, br := post(t, []byte(body), false)
		if status != http.StatusMultiStatus || br.Accepted != 1 || br.Rejected != 6 {
			t.Fatalf("1 good, 6 bad, 2 good: status %d %+v; want 207, 1 accepted, 6 rejected", status, br)
		}
		cutAt(t, br, 8)
		resend(t, body, 8, 2)
	})

	t.Run("a streamed body cut at max_body", func(t *testing.T) {
		const limit = 4 << 20 // billing's batch max_body
		head := good("c1") + "\n" + good("c2") + "\n"
		body := head + strings.Repeat("\n", limit+1) + good("c3")
		status, br := post(t, []byte(body), true)
		if status != http.StatusMultiStatus || br.Accepted != 2 || br.Rejected != 0 || !strings.Contains(br.Error, "over the size limit") {
			t.Fatalf("good lines then over max_body: status %d accepted %d rejected %d error %q; want 207, 2, 0 and the cut named", status, br.Accepted, br.Rejected, br.Error)
		}
		// The first limit bytes are read: lines 1 and 2, then the blank
		// lines ending within them.
		cut := 3 + limit - len(head)
		cutAt(t, br, cut)
		resend(t, body, cut, 1)
	})

	envs := h.rawEnvelopes(t, 14)
	got := map[string]int{}
	for _, e := range envs {
		got[e.EventID]++
	}
	for _, id := range []string{"m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "r1", "r2", "r3", "c1", "c2", "c3"} {
		if got[id] != 1 {
			t.Errorf("%s is %d times on the raw topic, want once", id, got[id])
		}
	}
	if len(envs) != 14 {
		t.Errorf("%d records on the raw topic, want 14: %v", len(envs), got)
	}
}

// TestSignedBatchSignatureInAuthorization: an hmac source that signs in
// Authorization (hmac.header) takes signed batches. They were all refused
// 401 without the signature being looked at: the signed path was taken
// only when Authorization was empty. A failed token check now falls back
// to the signature, which still refuses what its secret did not sign, and
// a token still streams.
func TestSignedBatchSignatureInAuthorization(t *testing.T) {
	t.Setenv("T_AUTHZ_SECRET", "authz-secret")
	t.Setenv("T_AUTHZ_TOKEN", "authz-token-0123456789")
	h := newHarnessSources(t, testenv.Embedded(t), testSources+`
  authz:
    kind: hmac
    secrets_env: [T_AUTHZ_SECRET]
    hmac: {header: Authorization, algorithm: sha256, encoding: hex, prefix: "HMAC "}
    batch: {signed: true, tokens_env: [T_AUTHZ_TOKEN]}
`, nil)
	line := func(id string) []byte { return []byte(`{"id":"` + id + `","type":"t","data":{}}` + "\n") }
	if a := do(t, h.signed(t, "authz", []byte(`{"id":"w1","type":"t"}`), nil)); a.status != http.StatusAccepted {
		t.Fatalf("webhook: %d %s", a.status, a.raw)
	}
	if status, br, _ := postBatch(t, h, "/events/authz", "", line("az1"), "authz"); status != http.StatusOK || br.Accepted != 1 {
		t.Fatalf("signed batch with a valid signature in Authorization: %d %+v; want 200", status, br)
	}
	if status, br, _ := postBatch(t, h, "/events/authz", "Bearer authz-token-0123456789", line("az2"), ""); status != http.StatusOK || br.Accepted != 1 {
		t.Fatalf("batch with a valid token: %d %+v; want 200", status, br)
	}
	// Signed over another body: the signature does not match.
	forged := http.Header{}
	src, _ := h.sources.Get("authz")
	if err := src.Provider().Sign(forged, line("other"), time.Now()); err != nil {
		t.Fatal(err)
	}
	for what, hdr := range map[string]http.Header{
		"signature over another body": forged,
		"wrong token":                 {"Authorization": {"Bearer wrong-token"}},
		"no Authorization":            {},
	} {
		if status, br, _ := postBatchReader(t, h, "/events/authz", hdr, bytes.NewReader(line("bad"))); status != http.StatusUnauthorized || len(br.Results) != 0 {
			t.Errorf("%s: %d %+v; want 401", what, status, br)
		}
	}
	got := map[string]bool{}
	for _, e := range h.rawEnvelopes(t, 3) {
		got[e.EventID] = true
	}
	if len(got) != 3 || !got["w1"] || !got["az1"] || !got["az2"] {
		t.Fatalf("raw topic holds %v, want w1, az1 and az2", got)
	}
}

// TestBatchIDsTrimmedAsWebhooks: a batch line's id, type and schema
// version are trimmed of surrounding white space, as a webhook's are
// (source.Source.Extract): " inv_1" in a batch and inv_1 in a webhook of
// the same source were two raw keys, so one event was processed twice.
// The stored payload keeps the line as sent.
func TestBatchIDsTrimmedAsWebhooks(t *testing.T) {
	h := newHarnessSources(t, testenv.Embedded(t), testSources+`
  inhouse:
    kind: none
    batch: {tokens_env: [T_BILLING_TOKEN]}
`, nil)
	req, _ := http.NewRequest(http.MethodPost, h.url+"/webhooks/inhouse", strings.NewReader(`{"id":" inv_1 ","type":"invoice.paid"}`))
	if a := do(t, req); a.status != http.StatusAccepted || a.body.EventID != "inv_1" {
		t.Fatalf("webhook: %d %s", a.status, a.raw)
	}
	line := `{"id":" inv_1 ","type":" invoice.paid ","schema_version":" v2 ","data":{}}`
	// A tab, a control character inside a value, is trimmed as well, as
	// Extract trims before checking: the batch refused the line.
	tab := `{"id":"\tinv_2","type":"invoice.paid","data":{}}`
	status, br, _ := postBatch(t, h, "/events/inhouse", "Bearer batch-token-1-0123456789", []byte(line+"\n"+tab+"\n"), "")
	if status != http.StatusOK || len(br.Results) != 2 || br.Results[0].EventID != "inv_1" || br.Results[1].EventID != "inv_2" {
		t.Fatalf("batch: %d %+v; want 200 with event ids inv_1 and inv_2", status, br)
	}
	envs := h.rawEnvelopes(t, 3)
	if len(envs) != 3 {
		t.Fatalf("%d envelopes, want 3", len(envs))
	}
	for _, e := range envs {
		if e.EventID == "inv_2" {
			continue
		}
		if e.IdempotencyKey != "inhouse:inv_1" || e.EventID != "inv_1" || e.EventType != "invoice.paid" {
			t.Errorf("%s envelope: key %q, event id %q, type %q; want the webhook's inhouse:inv_1, inv_1, invoice.paid", e.Channel, e.IdempotencyKey, e.EventID, e.EventType)
		}
		if e.Channel == "events" && (e.SchemaVersion != "v2" || string(e.Payload) != line) {
			t.Errorf("batch envelope: schema version %q, payload %s; want v2 and the line as sent", e.SchemaVersion, e.Payload)
		}
	}
}

// TestBatchContentEncodingRefused: a gzipped batch is refused 415 before a
// byte is read, as a webhook is; it was read as lines and answered 400,
// "line is not valid UTF-8".
func TestBatchContentEncodingRefused(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t), nil)
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	_, _ = zw.Write([]byte(batchLineFor("gz-1") + batchLineFor("gz-2")))
	_ = zw.Close()
	req, _ := http.NewRequest(http.MethodPost, h.url+"/events/billing", bytes.NewReader(zb.Bytes()))
	req.Header.Set("Authorization", "Bearer batch-token-1-0123456789")
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var br BatchResponse
	_ = json.NewDecoder(resp.Body).Decode(&br)
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("gzipped batch: %d %+v; want 415", resp.StatusCode, br)
	}
	if recs := h.env.ReadAll(t, h.topics.Raw, 0, 300*time.Millisecond, 10*time.Second); len(recs) != 0 {
		t.Errorf("%d records on the raw topic, want none", len(recs))
	}
}

// TestBatchIDRepeatedWithOtherContentRefused: a later line reusing an
// earlier line's id for other content is rejected; both were accepted,
// the processor kept the first (the second a duplicate) and compaction the
// second, so one was lost either way. The same line twice stays accepted.
func TestBatchIDRepeatedWithOtherContentRefused(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t), nil)
	a := `{"id":"inv_9","type":"invoice.paid","data":{"amount":1}}`
	b := `{"id":"inv_9","type":"invoice.paid","data":{"amount":2}}`
	status, br, _ := postBatch(t, h, "/events/billing", "Bearer batch-token-1-0123456789", []byte(a+"\n"+a+"\n"+b+"\n"), "")
	if status != http.StatusMultiStatus || len(br.Results) != 3 || br.Results[0].Status != LineAccepted || br.Results[1].Status != LineAccepted ||
		br.Results[2].Status != LineRejected || !strings.Contains(br.Results[2].Error, "line 1") {
		t.Fatalf("batch: %d %+v; want lines 1 and 2 accepted, line 3 rejected naming line 1", status, br)
	}
	if envs := h.rawEnvelopes(t, 2); len(envs) != 2 {
		t.Fatalf("%d envelopes on the raw topic, want the two copies of line 1", len(envs))
	}
}

// TestBatchByteOrderMarkIgnored: a body starting with a UTF-8 byte order
// mark (NDJSON written by .NET or PowerShell) has its first line read
// without it, and stored without it; one inside the body is still no JSON.
func TestBatchByteOrderMarkIgnored(t *testing.T) {
	h := newHarnessSources(t, testenv.Embedded(t), testSources+`
  inhouse:
    kind: none
    batch: {tokens_env: [T_BILLING_TOKEN]}
`, nil)
	first := `{"id":"bom_1","type":"invoice.paid","data":{}}`
	second := `{"id":"bom_2","type":"invoice.paid","data":{}}`
	body := "\ufeff" + first + "\n\ufeff" + second + "\n"
	status, br, _ := postBatch(t, h, "/events/inhouse", "Bearer batch-token-1-0123456789", []byte(body), "")
	if status != http.StatusMultiStatus || len(br.Results) != 2 || br.Results[0].Status != LineAccepted || br.Results[0].EventID != "bom_1" || br.Results[1].Status != LineRejected {
		t.Fatalf("batch: %d %+v; want 207, line 1 accepted as bom_1, line 2 rejected", status, br)
	}
	envs := h.rawEnvelopes(t, 1)
	if len(envs) != 1 || string(envs[0].Payload) != first {
		t.Fatalf("envelopes %+v; want one holding line 1 without the mark", envs)
	}
}

// TestBatchCutAtMaxLinesIsCounted: a batch cut past batch.max_lines events
// was answered (207, or 413 with none accepted) but left nothing in
// inlet_ingest_requests_total beside its accepted lines: a sender whose
// batches were cut every time showed as all well. The cut counts once,
// rejected with reason size, as a body over batch.max_body does.
func TestBatchCutAtMaxLinesIsCounted(t *testing.T) {
	reader, tel := newMetered(t)
	h := newHarness(t, testenv.Embedded(t), nil, tel)
	var body strings.Builder
	for i := range 7 {
		body.WriteString(batchLineFor(fmt.Sprint("cut", i)))
	}
	status, br, _ := postBatchReader(t, h, "/events/billing", http.Header{"Authorization": {"Bearer batch-token-1-0123456789"}}, strings.NewReader(body.String()))
	if status != http.StatusMultiStatus || br.Accepted != 5 {
		t.Fatalf("7 lines, max_lines 5: %d %+v", status, br)
	}
	got := telemetrytest.Int64s(t, reader, "inlet.ingest.requests", "source", "outcome", "reason")
	if want := map[string]int64{"billing|accepted|": 5, "billing|rejected|" + reasonSize: 1}; !maps.Equal(got, want) {
		t.Fatalf("requests %v, want %v", got, want)
	}
}

// TestBatchLineResultNamesItsCorrelationID: each accepted line's result
// says the correlation id its event is traced under. A line whose own
// correlation_id is not taken (a space, control bytes, over 128 bytes)
// gets the request's with -<line>, as a line without one does; the answer
// did not say so, and the id the producer sent, which it would look the
// event up by, was in no log, header or history.
func TestBatchLineResultNamesItsCorrelationID(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t), nil)
	header := http.Header{}
	header.Set("Content-Type", "application/x-ndjson")
	header.Set("Authorization", "Bearer batch-token-1-0123456789")
	header.Set("X-Correlation-ID", "req-7")
	body := strings.Join([]string{
		`{"id":"k1","type":"invoice.paid","data":{"id":"inv_1"}}`,
		`{"id":"k2","type":"invoice.paid","correlation_id":"has a space","data":{"id":"inv_2"}}`,
		`{"id":"k3","type":"invoice.paid","correlation_id":"own-3","data":{"id":"inv_3"}}`,
	}, "\n")
	status, br, _ := postBatchReader(t, h, "/events/billing", header, strings.NewReader(body))
	if status != http.StatusOK || br.Accepted != 3 {
		t.Fatalf("status %d, %+v", status, br)
	}
	want := map[int]string{1: "req-7-1", 2: "req-7-2", 3: "own-3"}
	for _, r := range br.Results {
		if r.CorrelationID != want[r.Line] {
			t.Errorf("line %d: correlation id %q in its result, want %q", r.Line, r.CorrelationID, want[r.Line])
		}
	}
	stored := map[string]string{}
	for _, e := range h.rawEnvelopes(t, 3) {
		stored[e.EventID] = e.CorrelationID
	}
	if stored["k1"] != want[1] || stored["k2"] != want[2] || stored["k3"] != want[3] {
		t.Errorf("envelopes' correlation ids %v, want those of the results", stored)
	}
}

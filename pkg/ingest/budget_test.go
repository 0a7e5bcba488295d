package ingest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/pkg/telemetry/telemetrytest"
	"github.com/inletdev/inlet/pkg/testenv"
)

// budgetSources accept bodies up to the budget the tests give, so that the
// budget, not max_body, is what refuses.
const budgetSources = `
sources:
  open:
    kind: none
    max_body: %[1]d
  signed:
    kind: hmac
    secrets_env: [T_INTERNAL_SECRET]
    hmac: {header: X-Signature, algorithm: sha512, encoding: base64, prefix: "sha512="}
    max_body: %[1]d
    batch: {signed: true, max_body: %[1]d}
`

// newBudgetHarness is a server whose body budget and largest bodies are
// limit bytes.
func newBudgetHarness(t *testing.T, limit int, mod func(*Config)) (*harness, func() map[string]int64) {
	t.Helper()
	reader, tel := newMetered(t)
	h := newHarnessSources(t, testenv.Embedded(t), fmt.Sprintf(budgetSources, limit), func(c *Config) {
		c.MaxBodyBytesInFlight = limit
		if mod != nil {
			mod(c)
		}
	}, tel)
	return h, func() map[string]int64 {
		return telemetrytest.Int64s(t, reader, "inlet.ingest.requests", "source", "outcome", "reason")
	}
}

func (h *harness) bodiesHeld() int64 { return h.srv.bodies.used.Load() }

// waitHeld polls until the server holds exactly n body bytes, as
// testenv.Eventually does; on giving up it reports the bytes held then.
func (h *harness) waitHeld(t *testing.T, n int64, what string) {
	t.Helper()
	const timeout = 10 * time.Second
	deadline := time.Now().Add(timeout)
	for held := h.bodiesHeld(); held != n; held = h.bodiesHeld() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s (%d body bytes held; now %d)", timeout, what, n, held)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// jsonBody is a webhook body of exactly size bytes.
func jsonBody(id string, size int) []byte {
	head := fmt.Sprintf(`{"id":%q,"type":"blob.sent","pad":"`, id)
	return []byte(head + strings.Repeat("x", size-len(head)-2) + `"}`)
}

// rawRequest is a POST on its own connection whose body the test sends
// when it chooses, so that a request can be held open mid-body.
type rawRequest struct {
	t       *testing.T
	conn    *net.TCPConn
	chunked bool
	answer  chan rawAnswer
}

type rawAnswer struct {
	status int
	header http.Header
	body   []byte
	err    error
}

// startRequest sends the request line and headers: Content-Length
// contentLength, or chunked when it is negative.
func startRequest(t *testing.T, h *harness, path string, contentLength int, hdr http.Header) *rawRequest {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &rawRequest{t: t, conn: c.(*net.TCPConn), chunked: contentLength < 0, answer: make(chan rawAnswer, 1)}
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n", path)
	if r.chunked {
		b.WriteString("Transfer-Encoding: chunked\r\n")
	} else {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", contentLength)
	}
	for k, vs := range hdr {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatal(err)
	}
	// Read from the start: a refusal may come before the body is sent.
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			r.answer <- rawAnswer{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		r.answer <- rawAnswer{status: resp.StatusCode, header: resp.Header, body: body, err: err}
	}()
	return r
}

// send writes b (as one chunk when chunked). Write errors are left to the
// answer: the server may have answered and closed already.
func (r *rawRequest) send(b []byte) {
	if r.chunked {
		_, _ = fmt.Fprintf(r.conn, "%x\r\n%s\r\n", len(b), b)
		return
	}
	_, _ = r.conn.Write(b)
}

// end finishes a chunked body; for a Content-Length one it half-closes
// the connection, so a body left short ends there.
func (r *rawRequest) end() {
	if r.chunked {
		_, _ = io.WriteString(r.conn, "0\r\n\r\n")
		return
	}
	_ = r.conn.CloseWrite()
}

func (r *rawRequest) wait() rawAnswer {
	r.t.Helper()
	select {
	case a := <-r.answer:
		if a.err != nil {
			r.t.Fatalf("no answer: %v", a.err)
		}
		return a
	case <-time.After(20 * time.Second):
		r.t.Fatal("no answer within 20 s")
		return rawAnswer{}
	}
}

// post sends a whole request and waits for its answer.
func post(t *testing.T, h *harness, path string, body []byte, chunked bool, hdr http.Header) rawAnswer {
	t.Helper()
	n := len(body)
	if chunked {
		n = -1
	}
	r := startRequest(t, h, path, n, hdr)
	r.send(body)
	if chunked {
		r.end()
	}
	return r.wait()
}

// signedHeader signs body for src the way its provider does.
func signedHeader(t *testing.T, h *harness, src string, body []byte) http.Header {
	t.Helper()
	s, _ := h.sources.Get(src)
	hdr := http.Header{"X-Event-Type": {"blob.sent"}}
	if err := s.Provider().Sign(hdr, body, time.Now()); err != nil {
		t.Fatal(err)
	}
	return hdr
}

func wantRefused(t *testing.T, what string, a rawAnswer) {
	t.Helper()
	if a.status != http.StatusServiceUnavailable {
		t.Fatalf("%s: status %d %s, want 503", what, a.status, a.body)
	}
	if got := a.header.Get("Retry-After"); got != "3" {
		t.Errorf("%s: Retry-After %q, want 3", what, got)
	}
	var v struct {
		Error         string `json:"error"`
		CorrelationID string `json:"correlation_id"`
	}
	if err := json.Unmarshal(a.body, &v); err != nil || v.Error != errTextMemory || v.CorrelationID == "" {
		t.Errorf("%s: answer %s, want JSON with error %q and the correlation id", what, a.body, errTextMemory)
	}
}

func wantStatus(t *testing.T, what string, a rawAnswer, code int) {
	t.Helper()
	if a.status != code {
		t.Fatalf("%s: status %d %s, want %d", what, a.status, a.body, code)
	}
}

// TestBodyBudget: while requests hold the budget, others whose bodies do
// not fit are refused 503 with Retry-After (webhooks with a Content-Length
// or chunked, signed batches), small ones still go through, and once the
// held requests finish the refused ones succeed.
func TestBodyBudget(t *testing.T) {
	const limit = 128 << 10
	h, count := newBudgetHarness(t, limit, nil)

	// Two webhooks of 60 KiB each, sent but for their last byte (their
	// buffers grown to the whole body, reserved), hold 120 KiB, sending
	// the rest only when the test says.
	var held []*rawRequest
	var heldBodies [][]byte
	for i := range 2 {
		body := jsonBody(fmt.Sprintf("held-%d", i), 60<<10)
		r := startRequest(t, h, "/webhooks/open", len(body), nil)
		r.send(body[:len(body)-1])
		held, heldBodies = append(held, r), append(heldBodies, body)
	}
	h.waitHeld(t, 120<<10, "the two held webhooks to reserve their bodies")

	cl := jsonBody("cl", 16<<10)         // 120 + 16 KiB
	chunked := jsonBody("chunk", 10<<10) // its buffer grows 512 B, 2 KiB, 8 KiB, then 32 KiB: no room left
	batch := []byte(batchLineFor("b1") + batchLineFor("b2") + strings.Repeat(" ", 16<<10) + "\n")
	wantRefused(t, "webhook with Content-Length", post(t, h, "/webhooks/open", cl, false, nil))
	wantRefused(t, "chunked webhook", post(t, h, "/webhooks/open", chunked, true, nil))
	wantRefused(t, "signed batch", post(t, h, "/events/signed", batch, false, signedHeader(t, h, "signed", batch)))
	small := []byte(`{"id":"small","type":"blob.sent"}`) // within the first 512 bytes
	wantStatus(t, "small chunked webhook while the budget is held", post(t, h, "/webhooks/open", small, true, nil), http.StatusAccepted)
	// Each releases what it reserved just after its answer.
	h.waitHeld(t, 120<<10, "only the held webhooks to hold bodies after the refusals")

	for i, r := range held {
		r.send(heldBodies[i][len(heldBodies[i])-1:])
		wantStatus(t, fmt.Sprintf("held webhook %d", i), r.wait(), http.StatusAccepted)
	}
	h.waitHeld(t, 0, "the held webhooks to release their bodies")

	wantStatus(t, "webhook with Content-Length, again", post(t, h, "/webhooks/open", cl, false, nil), http.StatusAccepted)
	wantStatus(t, "chunked webhook, again", post(t, h, "/webhooks/open", chunked, true, nil), http.StatusAccepted)
	wantStatus(t, "signed batch, again", post(t, h, "/events/signed", batch, false, signedHeader(t, h, "signed", batch)), http.StatusOK)
	h.waitHeld(t, 0, "every body to be released")

	want := map[string]int64{
		"open|accepted|":                     5, // the held two, the small one, the two refused ones again
		"open|unavailable|" + reasonMemory:   2,
		"signed|accepted|":                   2, // the batch's lines
		"signed|unavailable|" + reasonMemory: 1,
	}
	if got := count(); !maps.Equal(got, want) {
		t.Fatalf("requests %v, want %v", got, want)
	}
}

// TestBodyBudgetReleased: the budget comes back to zero after every way a
// request ends: over max_body, a bad signature, a read timeout, a short
// body.
func TestBodyBudgetReleased(t *testing.T) {
	const limit = 128 << 10
	h, _ := newBudgetHarness(t, limit, func(c *Config) { c.ReadTimeout = time.Second })
	body := jsonBody("r", 60<<10)
	badSig := http.Header{"X-Signature": {"sha512=AAAA"}, "X-Event-Type": {"blob.sent"}}
	for _, tt := range []struct {
		name string
		code int
		run  func(t *testing.T) rawAnswer
	}{
		{"413 by Content-Length", http.StatusRequestEntityTooLarge, func(t *testing.T) rawAnswer {
			// Refused before a byte is read; net/http then reads the
			// rest, to keep the connection.
			return post(t, h, "/webhooks/open", jsonBody("big", limit+1), false, nil)
		}},
		{"413 chunked, once read past max_body", http.StatusRequestEntityTooLarge, func(t *testing.T) rawAnswer {
			return post(t, h, "/webhooks/open", jsonBody("big", limit+1), true, nil)
		}},
		{"401 webhook", http.StatusUnauthorized, func(t *testing.T) rawAnswer {
			return post(t, h, "/webhooks/signed", body, false, badSig)
		}},
		{"401 signed batch", http.StatusUnauthorized, func(t *testing.T) rawAnswer {
			return post(t, h, "/events/signed", []byte(batchLineFor("x")), false, badSig)
		}},
		{"408 read timeout", http.StatusRequestTimeout, func(t *testing.T) rawAnswer {
			r := startRequest(t, h, "/webhooks/open", len(body), nil)
			r.send(body[:1<<10])
			return r.wait()
		}},
		{"408 read timeout, chunked", http.StatusRequestTimeout, func(t *testing.T) rawAnswer {
			r := startRequest(t, h, "/webhooks/open", -1, nil)
			r.send(body[:10<<10])
			return r.wait()
		}},
		{"400 body short of its Content-Length", http.StatusBadRequest, func(t *testing.T) rawAnswer {
			r := startRequest(t, h, "/webhooks/open", len(body), nil)
			r.send(body[:1<<10])
			r.end()
			return r.wait()
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantStatus(t, tt.name, tt.run(t), tt.code)
			h.waitHeld(t, 0, "the body to be released")
		})
	}
}

// TestBodyBudgetClaims: a Content-Length is a claim, made before any
// signature is checked. Claims adding up to twice the budget are not
// reserved: each reserves what its buffer holds (maxUpfront until more
// arrives), and others still fit. A body that arrives for real reserves as
// its buffer grows, and is refused where it no longer fits.
func TestBodyBudgetClaims(t *testing.T) {
	const limit = 256 << 10
	h, _ := newBudgetHarness(t, limit, nil)
	var claims []*rawRequest
	for range 2 {
		r := startRequest(t, h, "/webhooks/open", limit, nil)
		r.send([]byte(`{"id":"claim",`))
		claims = append(claims, r)
	}
	h.waitHeld(t, 2*maxUpfront, "each claim to reserve its first buffer only")

	wantStatus(t, "a 32 KiB webhook beside the claims", post(t, h, "/webhooks/open", jsonBody("beside", 32<<10), false, nil), http.StatusAccepted)
	h.waitHeld(t, 2*maxUpfront, "the 32 KiB webhook to release its body")
	// The claims' first buffers held: a whole 256 KiB body grows its
	// buffer fourfold until, at 256 KiB, it would pass the bound.
	full := jsonBody("full", limit)
	wantRefused(t, "a whole body past what is left", post(t, h, "/webhooks/open", full, false, nil))
	h.waitHeld(t, 2*maxUpfront, "the refused body's first buffer to be released")

	for _, r := range claims {
		r.end() // short of the claim: 400
		wantStatus(t, "a claim cut short", r.wait(), http.StatusBadRequest)
	}
	h.waitHeld(t, 0, "the claims to release their buffers")
	wantStatus(t, "the whole body, again", post(t, h, "/webhooks/open", full, false, nil), http.StatusAccepted)
	h.waitHeld(t, 0, "the whole body to be released")
}

// TestBodyBudgetChecksSources: a source whose bodies could never fit in the
// budget is refused at start, not answered 503 forever.
func TestBodyBudgetChecksSources(t *testing.T) {
	setSecrets(t)
	for _, tt := range []struct {
		name, yaml, want string
	}{
		{"signed batch over the budget", "sources:\n  s:\n    kind: hmac\n    secrets_env: [T_INTERNAL_SECRET]\n    hmac: {header: X-Sig}\n    max_body: 1KiB\n    batch: {signed: true, max_body: 2MiB}\n", `source "s": batch.max_body`},
		{"webhook over the budget", "sources:\n  s:\n    kind: none\n    max_body: 2MiB\n", `source "s": max_body`},
		{"streamed batch over the budget is fine", "sources:\n  s:\n    kind: none\n    max_body: 1KiB\n    batch: {tokens_env: [T_BILLING_TOKEN], max_body: 2MiB}\n", ""},
		{"at the budget", "sources:\n  s:\n    kind: hmac\n    secrets_env: [T_INTERNAL_SECRET]\n    hmac: {header: X-Sig}\n    max_body: 1MiB\n    batch: {signed: true, max_body: 1MiB}\n", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sources, err := source.Parse([]byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			cfg := DefaultConfig()
			cfg.MaxBodyBytesInFlight = 1 << 20
			err = cfg.CheckSources(sources)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("CheckSources: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("CheckSources: %v, want an error with %q", err, tt.want)
			}
		})
	}
	// The defaults hold the largest sizes a sources file may set.
	cfg := DefaultConfig()
	if int64(cfg.MaxBodyBytesInFlight) < source.MaxBatchBody {
		t.Fatalf("default budget %d is under the largest batch.max_body %d", cfg.MaxBodyBytesInFlight, source.MaxBatchBody)
	}
}

// TestReadAll: a chunked body is read up to exactly its limit, one byte
// more is a MaxBytesError, and what is reserved is the buffer's capacity.
func TestReadAll(t *testing.T) {
	const limit = 100 << 10 // not a power of four: the last step is capped
	for _, n := range []int{0, 1, 511, 512, 513, 40 << 10, limit - 1, limit, limit + 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			body := bytes.Repeat([]byte("ab"), n/2+1)[:n]
			r := http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(iotest.HalfReader(bytes.NewReader(body))), limit)
			res := reservation{b: &bodyBudget{limit: limit}}
			got, err := readAll(r, limit, &res)
			if n > limit {
				var tooBig *http.MaxBytesError
				if !errors.As(err, &tooBig) {
					t.Fatalf("%d bytes over a %d limit: %v, want a MaxBytesError", n, limit, err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("%d bytes: %d read, %v", n, len(got), err)
			}
			if res.n != int64(cap(got)) || res.b.used.Load() != res.n {
				t.Fatalf("%d bytes: %d reserved (budget %d) for a buffer of %d", n, res.n, res.b.used.Load(), cap(got))
			}
			res.release()
			if u := res.b.used.Load(); u != 0 {
				t.Fatalf("%d left reserved after release", u)
			}
		})
	}
}

// TestBodyBudgetReleasedBeforeUnreadAnswer: a signed batch's body goes
// back to the budget once its lines are settled, not once its answer is
// written: a sender that never reads a large answer held it until the
// write timeout (35 s), refusing others' bodies meanwhile.
func TestBodyBudgetReleasedBeforeUnreadAnswer(t *testing.T) {
	h := newHarnessSources(t, testenv.Embedded(t), `
sources:
  signed:
    kind: hmac
    secrets_env: [T_INTERNAL_SECRET]
    hmac: {header: X-Signature, algorithm: sha512, encoding: base64, prefix: "sha512="}
    batch: {signed: true, max_lines: 50000, max_body: 8MiB}
`, nil)
	// Half the lines accepted, half rejected (a longer result): an answer
	// of about 8 MB, more than the sockets between hold.
	const good = 25000
	var body bytes.Buffer
	for i := range good {
		fmt.Fprintf(&body, `{"id":"nr%05d","type":"t","data":{}}`+"\n", i)
		fmt.Fprintf(&body, `{"id":"bad%05d","type":"t","data":{},"%s":1}`+"\n", i, strings.Repeat("z", 64))
	}
	// A small receive window, so the answer's write blocks at once.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) }); err != nil {
			return err
		}
		return serr
	}}
	c, err := d.DialContext(context.Background(), "tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var req bytes.Buffer
	fmt.Fprintf(&req, "POST /events/signed HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: %d\r\n", body.Len())
	for k, vs := range signedHeader(t, h, "signed", body.Bytes()) {
		fmt.Fprintf(&req, "%s: %s\r\n", k, vs[0])
	}
	req.WriteString("\r\n")
	req.Write(body.Bytes())
	if _, err := c.Write(req.Bytes()); err != nil {
		t.Fatal(err)
	}
	h.env.ReadAll(t, h.topics.Raw, good, 200*time.Millisecond, 30*time.Second)
	h.waitHeld(t, 0, "the batch body released with its answer unread")
}

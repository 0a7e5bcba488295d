package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/inletdev/inlet/pkg/telemetry/telemetrytest"
	"github.com/inletdev/inlet/pkg/testenv"
	"github.com/inletdev/inlet/pkg/testenv/syncbuf"
)

type receiver struct {
	mu   sync.Mutex
	msgs []map[string]any
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var m map[string]any
	_ = json.NewDecoder(req.Body).Decode(&m)
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
}

func (r *receiver) got() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]any(nil), r.msgs...)
}

func TestBurstOfTheSameFailureIsOneMessage(t *testing.T) {
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	a := New(Config{WebhookURL: srv.URL, Window: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	for i := range 50 {
		a.Notify(Alert{Kind: KindDLQ, Source: "shop", EventType: "orders/updated", Reason: "retry budget exhausted", EventID: "e" + string(rune('a'+i%26)), Runbook: "https://runbooks/dlq", History: json.RawMessage(`[{"stage":"deliver","error":"503"}]`)})
	}
	a.Notify(Alert{Kind: KindInvalid, Source: "shop", EventType: "orders/updated", Reason: "validation"})
	// Sent, not received: a send that the receiver has but whose answer
	// the alerter has not read yet is cut short by cancel and sent again
	// at shutdown (at least once, by design).
	testenv.Eventually(t, 5*time.Second, "both messages", func() bool { return a.Sent() >= 2 })
	cancel()
	<-done
	msgs := rcv.got()
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want 2 (one per kind): %v", len(msgs), msgs)
	}
	for _, m := range msgs {
		if m["kind"] == KindDLQ && (m["count"].(float64) != 50 || m["runbook"] != "https://runbooks/dlq" || m["error_history"] == nil) {
			t.Errorf("dlq message: %v", m)
		}
	}
}

// TestNotifyNeverBlocks: with nothing sending, Notify still returns; past
// maxPending groups an alert starting a new one is dropped, one alike to a
// pending group is folded into it.
func TestNotifyNeverBlocks(t *testing.T) {
	a := New(Config{WebhookURL: "http://127.0.0.1:1"}) // Run not started: pending fills
	start := time.Now()
	for i := range 5000 {
		a.Notify(Alert{Kind: KindDLQ, Source: fmt.Sprint("s", i)})
		a.Notify(Alert{Kind: KindInvalid})
	}
	if time.Since(start) > time.Second {
		t.Fatal("Notify blocked")
	}
	if a.Dropped() != 5000+1-maxPending {
		t.Fatalf("dropped %d, want %d", a.Dropped(), 5000+1-maxPending)
	}
	if g := a.pending[groupKey{kind: KindInvalid}]; g == nil || g.count != 5000 {
		t.Fatalf("alike alerts folded: %+v, want a group of 5000", g)
	}
}

func TestExcerptRedactsAndBounds(t *testing.T) {
	p := []byte(`{"id":"o1","api_key":"sk_live_123","card_number":4242424242424242,"nested":{"Password":"hunter2"},"note":"` + strings.Repeat("x", 1000) + `"}`)
	e := Excerpt(p, 200)
	for _, leak := range []string{"sk_live_123", "4242424242424242", "hunter2"} {
		if strings.Contains(e, leak) {
			t.Errorf("excerpt leaks %s: %s", leak, e)
		}
	}
	if len(e) > 204 || !strings.Contains(e, `"id":"o1"`) {
		t.Errorf("excerpt %q", e)
	}
}

func TestSlackFormat(t *testing.T) {
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	a := New(Config{WebhookURL: srv.URL, Format: "slack", Window: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	a.Notify(Alert{Kind: KindDLQ, Source: "stripe", EventType: "invoice.paid", Reason: "permanent error", Runbook: "https://rb"})
	cancel()
	<-done
	msgs := rcv.got()
	if len(msgs) != 1 || !strings.Contains(msgs[0]["text"].(string), "https://rb") {
		t.Fatalf("slack body: %v", msgs)
	}
}

// TestFateIsCounted: inlet.alerts counts alerts (not messages) the webhook
// took, those it refused, and those over the per-minute cap.
func TestFateIsCounted(t *testing.T) {
	rcv := &receiver{}
	var down atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			w.WriteHeader(http.StatusForbidden) // refused: not sent again
			return
		}
		rcv.ServeHTTP(w, r)
	}))
	defer srv.Close()
	reader := sdkmetric.NewManualReader()
	a := New(Config{WebhookURL: srv.URL, Window: 20 * time.Millisecond, MaxPerMinute: 2})
	if err := a.Instrument(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)).Meter("test")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for range 3 {
		a.Notify(Alert{Kind: KindDLQ, Source: "shop", EventType: "orders/updated", Reason: "budget"})
	}
	testenv.Eventually(t, 5*time.Second, "the first message", func() bool { return len(rcv.got()) == 1 })
	down.Store(true)
	for range 2 {
		a.Notify(Alert{Kind: KindInvalid, Source: "shop", EventType: "orders/updated", Reason: "contract"})
	}
	testenv.Eventually(t, 5*time.Second, "the refused message", func() bool { return a.Failed() == 2 })
	a.Notify(Alert{Kind: KindDLQ, Source: "stripe", EventType: "invoice.paid", Reason: "budget"})
	testenv.Eventually(t, 5*time.Second, "the alert over the cap", func() bool { return a.Dropped() == 1 })
	got := telemetrytest.Int64s(t, reader, "inlet.alerts", "outcome")
	if len(got) != 3 || got["sent"] != 3 || got["failed"] != 2 || got["dropped"] != 1 {
		t.Fatalf("inlet.alerts = %v, want sent 3, failed 2, dropped 1", got)
	}
}

// TestRedirectIsNotFollowed: a webhook answering a redirect (an http to
// https move, a renamed path) has not taken the alert: it is counted
// failed and logged saying to update the URL, and nothing is sent where
// the redirect points. Followed, a 301 turned the POST into a GET without
// the alert, and the 200 to it counted the alert sent.
func TestRedirectIsNotFollowed(t *testing.T) {
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			var followed atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/old" {
					http.Redirect(w, r, "/new", code)
					return
				}
				followed.Add(1)
			}))
			defer srv.Close()
			logs := &syncbuf.Buffer{}
			a := New(Config{WebhookURL: srv.URL + "/old", Window: 20 * time.Millisecond, Log: slog.New(slog.NewTextHandler(logs, nil))})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { a.Run(ctx); close(done) }()
			a.Notify(Alert{Kind: KindDLQ, Source: "shop", EventType: "orders/updated", Reason: "budget"})
			testenv.Eventually(t, 5*time.Second, "the alert's fate", func() bool { return a.Sent()+a.Failed() >= 1 })
			cancel()
			<-done
			if a.Sent() != 0 || a.Failed() != 1 || followed.Load() != 0 {
				t.Fatalf("sent %d, failed %d, %d requests where the redirect points; want failed 1, nothing followed", a.Sent(), a.Failed(), followed.Load())
			}
			if !strings.Contains(logs.String(), "a redirect, which Inlet does not follow") {
				t.Errorf("the log does not say why:\n%s", logs.String())
			}
		})
	}
}

// TestResentUntilTaken: a message the webhook failed to take for a reason
// that may pass (here 503, then a dropped connection) is sent again and
// counted once, as sent; one it refused (400) is not sent again. The final
// flush at shutdown is bounded even when the webhook hangs.
func TestResentUntilTaken(t *testing.T) {
	var calls atomic.Int32
	rcv := &receiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1:
			w.WriteHeader(http.StatusServiceUnavailable)
		case 2:
			hj, _ := w.(http.Hijacker)
			conn, _, _ := hj.Hijack()
			conn.Close()
		default:
			rcv.ServeHTTP(w, r)
		}
	}))
	defer srv.Close()
	a := New(Config{WebhookURL: srv.URL, Window: 20 * time.Millisecond})
	a.resend = []time.Duration{10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	for range 4 {
		a.Notify(Alert{Kind: KindDLQ, Source: "shop", EventType: "orders/updated", Reason: "budget"})
	}
	testenv.Eventually(t, 5*time.Second, "a message taken", func() bool { return len(rcv.got()) > 0 })
	cancel()
	<-done
	if msgs := rcv.got(); len(msgs) != 1 || msgs[0]["count"].(float64) != 4 {
		t.Fatalf("messages taken %v, want one with count 4", msgs)
	}
	if a.Sent() != 1 || a.delivered.Load() != 4 || a.Failed() != 0 || calls.Load() != 3 {
		t.Fatalf("sent %d (%d alerts), failed %d, %d calls; want 1 (4), 0, 3", a.Sent(), a.delivered.Load(), a.Failed(), calls.Load())
	}

	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusBadRequest)
	}))
	defer refusing.Close()
	calls.Store(0)
	a = New(Config{WebhookURL: refusing.URL, Window: 20 * time.Millisecond})
	a.resend = []time.Duration{time.Millisecond}
	ctx, cancel = context.WithCancel(context.Background())
	done = make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	a.Notify(Alert{Kind: KindDLQ, Source: "shop"})
	testenv.Eventually(t, 5*time.Second, "the refusal counted", func() bool { return a.Failed() > 0 })
	cancel()
	<-done
	if a.Failed() != 1 || calls.Load() != 1 {
		t.Fatalf("refused: failed %d after %d calls, want 1 after 1", a.Failed(), calls.Load())
	}
}

// TestShutdownIsBounded: at shutdown, messages for a webhook that does not
// answer are given up within the shutdown budget, not 10 s each.
func TestShutdownIsBounded(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)
	a := New(Config{WebhookURL: hang.URL, Window: time.Hour})
	a.shutdown = 300 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	for i := range 5 {
		a.Notify(Alert{Kind: KindDLQ, Source: fmt.Sprint("s", i)}) // five groups, five messages
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second): // unbounded, it took 5 × 10 s
		t.Fatal("Run still flushing 5s after shutdown began")
	}
	if a.Failed() != 5 {
		t.Fatalf("failed %d, want 5", a.Failed())
	}
}

// TestShutdownCutsARegularFlushShort: a SIGTERM that comes while a regular
// flush waits on a hanging webhook does not wait for every due message
// (it took 10 s each).
func TestShutdownCutsARegularFlushShort(t *testing.T) {
	arrived := make(chan struct{}, 10)
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)
	a := New(Config{WebhookURL: hang.URL, Window: 20 * time.Millisecond})
	a.shutdown = 300 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	for i := range 4 {
		a.Notify(Alert{Kind: KindDLQ, Source: fmt.Sprint("s", i)})
	}
	received(t, arrived, "the regular flush to send") // the regular flush is sending
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run still flushing 5s after shutdown began")
	}
	if a.Failed() != 4 {
		t.Fatalf("failed %d, want 4", a.Failed())
	}
}

// TestShutdownMidFlushLosesNothing: alerts whose send a SIGTERM cut short
// go out in the final flush: the cut does not use up a try or the
// per-minute cap (it dropped all three here, or counted the last try of a
// resent one as failed).
func TestShutdownMidFlushLosesNothing(t *testing.T) {
	rcv := &receiver{}
	var slow atomic.Bool
	slow.Store(true)
	first := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slow.Load() {
			first <- struct{}{}
			select { // the first send hangs until cut short
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		rcv.ServeHTTP(w, r)
	}))
	defer srv.Close()
	defer close(release)
	a := New(Config{WebhookURL: srv.URL, Window: 20 * time.Millisecond, MaxPerMinute: 3})
	a.resend = []time.Duration{} // no resend left: a counted try would be the last
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	for i := range 3 {
		a.Notify(Alert{Kind: KindDLQ, Source: fmt.Sprint("s", i)})
	}
	received(t, first, "the first send")
	slow.Store(false)
	cancel()
	<-done
	if len(rcv.got()) != 3 || a.Failed() != 0 || a.Dropped() != 0 {
		t.Fatalf("%d messages taken, %d failed, %d dropped; want 3, 0, 0", len(rcv.got()), a.Failed(), a.Dropped())
	}
}

// unusedAddr is a 127.0.0.1 address nothing listens on: connections to it
// are refused.
func unusedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestWebhookURLStaysOutOfLogsAndErrors: the webhook URL is often a
// credential (a Slack URL's path is its token). A failed send's error and
// log lines name it by scheme and host only; net/http's *url.Error put the
// whole URL in both.
func TestWebhookURLStaysOutOfLogsAndErrors(t *testing.T) {
	secrets := []string{"PATHSECRET", "QUERYSECRET", "USERSECRET", "PASSSECRET", "T0001"}
	hookURL := func(hostport string) string {
		return "http://USERSECRET:PASSSECRET@" + hostport + "/services/T0001/B0002/PATHSECRET?token=QUERYSECRET"
	}
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // then the server sees the client go
		<-r.Context().Done()               // never answers: the send times out
	}))
	defer hang.Close()
	hangAddr := strings.TrimPrefix(hang.URL, "http://")
	refused := unusedAddr(t)
	for _, tc := range []struct {
		name, addr string
		is         error
	}{
		{"connection refused", refused, syscall.ECONNREFUSED},
		{"timeout", hangAddr, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &syncbuf.Buffer{}
			a := New(Config{WebhookURL: hookURL(tc.addr), Window: 10 * time.Millisecond, Log: slog.New(slog.NewTextHandler(logs, nil))})
			a.timeout = 100 * time.Millisecond
			a.resend = []time.Duration{10 * time.Millisecond} // one warning, then the error

			_, err := a.send(context.Background(), Message{Alert: Alert{Kind: KindDLQ}})
			if err == nil || !errors.Is(err, tc.is) {
				t.Fatalf("send: %v, want an error that is %v", err, tc.is)
			}

			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { a.Run(ctx); close(done) }()
			a.Notify(Alert{Kind: KindDLQ, Source: "shop"})
			testenv.Eventually(t, 5*time.Second, "the failure counted", func() bool { return a.Failed() > 0 })
			cancel()
			<-done
			out := logs.String()
			if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "level=ERROR") {
				t.Fatalf("want a warning and an error logged, got:\n%s", out)
			}
			for _, text := range []string{err.Error(), out} {
				for _, s := range secrets {
					if strings.Contains(text, s) {
						t.Errorf("%q leaks %s", text, s)
					}
				}
				if !strings.Contains(text, "http://"+tc.addr+"/…") {
					t.Errorf("%q does not name the webhook http://%s/…", text, tc.addr)
				}
			}
		})
	}
	t.Run("unparsable URL", func(t *testing.T) {
		a := New(Config{WebhookURL: "https://hooks.slack.com/services/T0001/B0002/PATHSECRET\x7f"})
		_, err := a.send(context.Background(), Message{})
		if err == nil {
			t.Fatal("send to an unparsable URL succeeded")
		}
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				t.Errorf("%q leaks %s", err, s)
			}
		}
	})
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://hooks.slack.com/services/T0/B0/SECRET": "https://hooks.slack.com/…",
		"https://u:p@example.com:8443/x?token=SECRET#f": "https://example.com:8443/…",
		"http://127.0.0.1:1":                            "http://127.0.0.1:1/…",
		"hooks.slack.com/services/T0/B0/SECRET":         "(unparsable URL)",
		// Host "u:12": the password's start would show as the port.
		"https://u:12/SECRET@example.com/x": "https://(host not shown: @ in the URL's path)/…",
		"":                                  "",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSlackTextEscapesEventData: event data is plain text in Slack. An
// event type "<!channel> <https://evil.example|Fix it here>" pinged the
// channel with a link; a payload holding ``` broke out of the code block.
func TestSlackTextEscapesEventData(t *testing.T) {
	m := Message{Alert: Alert{Kind: KindInvalid, Source: "open", EventType: "<!channel> <https://evil.example/login|Fix it here>",
		EventID: "e`1", Reason: "no handler", Error: "a & b", Excerpt: "{\"x\":\"```<!here>\"}"}, Count: 1}
	text := slackText(m)
	for _, bad := range []string{"<!channel>", "<!here>", "<https://", "e`1", "a & b"} {
		if strings.Contains(text, bad) {
			t.Errorf("slack text holds %q unescaped:\n%s", bad, text)
		}
	}
	if strings.Count(text, "```") != 2 {
		t.Errorf("the excerpt's code block is not closed where it should be:\n%s", text)
	}
	if !strings.Contains(text, "&lt;!channel&gt;") || !strings.Contains(text, "a &amp; b") {
		t.Errorf("escaped forms missing:\n%s", text)
	}
}

// TestSlackTextCarriesTheErrorHistory: a Slack alert shows the failures
// before the last, newest first five, each cut and escaped; it showed only
// the last, so a 401 that turned into 503s read as five 503s.
func TestSlackTextCarriesTheErrorHistory(t *testing.T) {
	var hist []map[string]any
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, e := range []string{"sink answered 401: first", "sink answered 503: 2nd", "sink answered 503: 3rd", "4th",
		"5th <!here>", "6th " + strings.Repeat("x", 500), "7th, the last"} {
		hist = append(hist, map[string]any{"at": at.Add(time.Duration(i) * time.Minute), "stage": "deliver", "error": e})
	}
	raw, _ := json.Marshal(hist)
	m := Message{Alert: Alert{Kind: KindDLQ, Source: "shop", EventType: "orders/updated", Reason: "retry budget exhausted",
		Error: "7th, the last", History: raw, Runbook: "https://rb"}, Count: 1}
	text := slackText(m)
	for _, want := range []string{"(1 older not shown)", "• 2026-01-01T00:01:00Z deliver: sink answered 503: 2nd\n", "5th &lt;!here&gt;", "6th xxx"} {
		if !strings.Contains(text, want) {
			t.Errorf("slack text lacks %q:\n%s", want, text)
		}
	}
	for _, bad := range []string{"first", "<!here>", strings.Repeat("x", 200), "00:06:00Z"} {
		if strings.Contains(text, bad) {
			t.Errorf("slack text holds %q:\n%s", bad, text)
		}
	}
	// One failure, or a history that is not one: the reason line says it all.
	for _, h := range []string{`[{"at":"2026-01-01T00:00:00Z","stage":"deliver","error":"only"}]`, `{}`, ``} {
		m.History = json.RawMessage(h)
		if text := slackText(m); strings.Contains(text, "before that") {
			t.Errorf("history %q rendered:\n%s", h, text)
		}
	}
}

// received waits for ch, failing the test after 5s instead of hanging it.
func received[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// TestStormAgainstASlowWebhookIsFolded: alike alerts that arrive while a
// send is in flight are folded into their group, not dropped. Grouping
// happened only between sends, so with each send held up, 1,976 of 3,001
// alike alerts overflowed the 1024-slot queue: "+N more" was too low and
// InletAlertsNotDelivered fired although the webhook was healthy.
func TestStormAgainstASlowWebhookIsFolded(t *testing.T) {
	rcv := &receiver{}
	arrived := make(chan struct{}, 10)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		_ = json.NewDecoder(r.Body).Decode(&m) // then the server sees the client go
		arrived <- struct{}{}
		select { // each send is held until the test lets it through
		case <-release:
			rcv.mu.Lock()
			rcv.msgs = append(rcv.msgs, m)
			rcv.mu.Unlock()
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	a := New(Config{WebhookURL: srv.URL, Window: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	storm := Alert{Kind: KindDLQ, Source: "shop", EventType: "orders/updated", Reason: "retry budget exhausted"}
	a.Notify(storm)
	received(t, arrived, "the first send") // in flight until released
	const more = 3000
	for range more {
		a.Notify(storm)
	}
	if a.Dropped() != 0 {
		t.Fatalf("dropped %d alike alerts during a send, want 0", a.Dropped())
	}
	release <- struct{}{}
	received(t, arrived, "the second send")
	release <- struct{}{}
	testenv.Eventually(t, 5*time.Second, "both messages taken", func() bool { return a.Sent() == 2 })
	msgs := rcv.got()
	if len(msgs) != 2 || msgs[0]["count"].(float64) != 1 || msgs[1]["count"].(float64) != more {
		t.Fatalf("messages taken %v, want two with counts 1 and %d", msgs, more)
	}
	if a.Sent() != 2 || a.delivered.Load() != 1+more || a.Dropped() != 0 || a.Failed() != 0 {
		t.Fatalf("sent %d (%d alerts), dropped %d, failed %d; want 2 (%d), 0, 0", a.Sent(), a.delivered.Load(), a.Dropped(), a.Failed(), 1+more)
	}
}

// TestSlackTextLeavesOutWhatIsEmpty: an alert for a source without a
// runbook printed an empty "*runbook* " line, and one without an error
// text a reason ending in a colon before nothing.
func TestSlackTextLeavesOutWhatIsEmpty(t *testing.T) {
	m := Message{Alert: Alert{Kind: KindDLQ, Source: "shop", EventType: "orders/updated", EventID: "e1", Reason: "retry budget exhausted", Excerpt: `{"id":1}`}, Count: 1}
	text := slackText(m)
	if strings.Contains(text, "*runbook*") || !strings.Contains(text, "*reason* retry budget exhausted\n") {
		t.Errorf("without a runbook or an error:\n%s", text)
	}
	m.Runbook, m.Error = "https://rb", "sink answered 503"
	text = slackText(m)
	if !strings.Contains(text, "\n*runbook* https://rb\n") || !strings.Contains(text, "*reason* retry budget exhausted: sink answered 503\n") {
		t.Errorf("with a runbook and an error:\n%s", text)
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.TrimRight(line, " ") != line || strings.HasSuffix(line, ":") {
			t.Errorf("line %q ends in a space or a colon:\n%s", line, text)
		}
	}
	// An undecodable record: no event id, correlation id or excerpt.
	text = slackText(Message{Alert: Alert{Kind: KindInvalid, Source: "unknown", EventType: "unknown", Reason: "undecodable", Error: "bad magic byte"}, Count: 1})
	if strings.Contains(text, "``") || strings.Contains(text, "*event*") || strings.Contains(text, "*correlation*") || strings.HasSuffix(text, "\n") {
		t.Errorf("an undecodable record's alert shows empty fields:\n%s", text)
	}
}

// TestSlackTextKeepsEventDataOnItsLine: a value from the event stays on
// its line of the message. A contract's error names the path of the value
// it refuses, and a map's keys are the sender's: the payload
// {"metadata":{"x\n*runbook* evil.example/rb\n":1}} added a runbook line of
// the sender's before the real one, in an alert on-call acts on.
func TestSlackTextKeepsEventDataOnItsLine(t *testing.T) {
	forged := "\n*runbook* https://evil.example/rb\r\n:white_check_mark: *resolved, ignore*\u2028"
	hist, _ := json.Marshal([]map[string]any{
		{"at": time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), "stage": "validate", "error": "before" + forged},
		{"at": time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC), "stage": "validate", "error": "last"},
	})
	m := Message{Alert: Alert{Kind: KindInvalid, Source: "shop", EventType: "orders/updated", Reason: "validation",
		Error:   "contract shop/order v1: invalid payload: /metadata/x" + forged + ": expected string, got number 1",
		History: hist, Runbook: "https://runbooks.example/invalid", Excerpt: `{"id":"1"}`}, Count: 1}
	text := slackText(m)
	clean := m
	clean.Error, clean.History = "e", nil
	if got, want := strings.Count(text, "\n"), strings.Count(slackText(clean), "\n")+2; got != want { // +2: the history's header and its one line
		t.Errorf("slack text has %d lines, want %d: event data broke lines:\n%s", got+1, want+1, text)
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "*runbook* https://evil") || strings.HasPrefix(line, ":white_check_mark:") {
			t.Errorf("a line of the sender's: %q\nin:\n%s", line, text)
		}
	}
	if m.EventType = "orders/\u202eetadpu"; strings.ContainsRune(slackText(m), '\u202e') {
		t.Errorf("a right-to-left override in the event type is not escaped")
	}
	if !strings.Contains(text, `/metadata/x\n*runbook*`) {
		t.Errorf("the line break is not shown escaped:\n%s", text)
	}
}

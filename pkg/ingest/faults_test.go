package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/testenv"
	"github.com/inletdev/inlet/pkg/testenv/syncbuf"
)

// Kafka refusing or not answering produces must turn into 503 + Retry-After,
// never 2xx, and every event answered 2xx must be on the log afterwards.
func TestKafkaUnavailableAnswers503AndLosesNothing(t *testing.T) {
	env := testenv.Embedded(t)
	h := newHarness(t, env, func(c *Config) { c.AckTimeout = 700 * time.Millisecond })
	down := kafkaSwitch(env)

	accepted := map[string]bool{}
	send := func(id string) answer {
		a := do(t, h.signed(t, "stripe", stripeEvent(id), nil))
		if a.status == http.StatusAccepted {
			accepted[id] = true
		}
		return a
	}
	for i := range 3 {
		send(fmt.Sprintf("evt_before_%d", i))
	}
	down.Store(true)
	for i := range 4 {
		a := send(fmt.Sprintf("evt_down_%d", i))
		if a.status != http.StatusServiceUnavailable {
			t.Fatalf("while Kafka is down: status %d, want 503 (%s)", a.status, a.raw)
		}
		if a.header.Get("Retry-After") != "3" {
			t.Fatalf("Retry-After = %q, want 3", a.header.Get("Retry-After"))
		}
	}
	down.Store(false)
	testenv.Eventually(t, 15*time.Second, "ingest to accept again after Kafka returns", func() bool {
		return send(fmt.Sprintf("evt_after_%d", time.Now().UnixNano())).status == http.StatusAccepted
	})
	onLog := map[string]bool{}
	for _, e := range h.rawEnvelopes(t, len(accepted)) {
		onLog[e.EventID] = true
	}
	for id := range accepted {
		if !onLog[id] {
			t.Errorf("%s was answered 2xx but is not on the raw topic", id)
		}
	}
}

// Events accepted before the stack stops are on the raw topic, and still
// decode, after it starts again on the same data directory.
func TestAcceptedEventsSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	env := testenv.EmbeddedAt(t, dir)
	h := newHarness(t, env, nil)
	const n = 20
	for i := range n {
		if a := do(t, h.signed(t, "stripe", stripeEvent(fmt.Sprintf("evt_%d", i)), nil)); a.status != 202 {
			t.Fatalf("status %d", a.status)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	env.Stack.Close()

	env2 := testenv.EmbeddedAt(t, dir)
	env2.Prefix = env.Prefix
	codec, err := envelope.NewCodec(ctx, env2.Registry(t), h.topics.RawSubject())
	if err != nil {
		t.Fatal(err)
	}
	if codec.SchemaID() != h.codec.SchemaID() {
		t.Fatalf("schema id changed across restart: %d → %d", h.codec.SchemaID(), codec.SchemaID())
	}
	recs := env2.ReadAll(t, h.topics.Raw, n, 300*time.Millisecond, 20*time.Second)
	seen := map[string]bool{}
	for _, r := range recs {
		e, err := codec.Decode(ctx, r.Value)
		if err != nil {
			t.Fatalf("after restart: %v", err)
		}
		seen[e.EventID] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct events after restart, want %d", len(seen), n)
	}
}

// Draining: readyz fails and new requests get 503 while an in-flight
// request still completes with its 2xx.
func TestShutdownDrains(t *testing.T) {
	env := testenv.Embedded(t)
	h := newHarness(t, env, nil)
	testenv.Eventually(t, 10*time.Second, "readyz to pass", func() bool {
		resp, err := http.Get(h.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	// Hold produce requests so one webhook is in flight during shutdown.
	release := make(chan struct{})
	held := make(chan struct{}, 1)
	c := env.Stack.Kafka
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		select {
		case held <- struct{}{}:
		default:
		}
		<-release
		return nil, nil, false
	})
	inflight := make(chan answer, 1)
	go func() { inflight <- do(t, h.signed(t, "stripe", stripeEvent("evt_inflight"), nil)) }()
	<-held

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- h.srv.Shutdown(ctx)
	}()
	testenv.Eventually(t, 5*time.Second, "the server to start draining", h.srv.draining.Load)
	rec := httpRecorder()
	h.srv.Handler().ServeHTTP(rec, h.signed(t, "stripe", stripeEvent("evt_late"), nil))
	if rec.Code != 503 {
		t.Fatalf("new request while draining: %d, want 503", rec.Code)
	}
	rec = httpRecorder()
	h.srv.Handler().ServeHTTP(rec, mustGet(t, h.url+"/readyz"))
	if rec.Code != 503 {
		t.Fatalf("readyz while draining: %d, want 503", rec.Code)
	}
	close(release)
	if a := <-inflight; a.status != 202 {
		t.Fatalf("in-flight request: %d, want 202", a.status)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
}

// /readyz names what its probe found unreachable: the registry here, with
// Kafka answering (it said "kafka or schema registry unreachable" when
// only one was).
func TestReadyzNamesWhatIsUnreachable(t *testing.T) {
	cl, err := sr.NewClient(sr.URLs("http://127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	h := newHarnessDeps(t, testenv.Embedded(t), testSources, nil, func(d *Deps) { d.SR = cl })
	testenv.Eventually(t, 10*time.Second, "readyz to say the registry is unreachable", func() bool {
		code, status := readyz(h.url)
		return code == http.StatusServiceUnavailable && status == "schema registry unreachable"
	})
}

// readyz is the status code and status of url's /readyz (0 and "" when it
// did not answer JSON).
func readyz(url string) (int, string) {
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	var body map[string]string
	if json.NewDecoder(resp.Body).Decode(&body) != nil {
		return 0, ""
	}
	return resp.StatusCode, body["status"]
}

// holdProduces makes env's broker hold every produce request until free is
// called (or the test ends).
func holdProduces(t *testing.T, env *testenv.Env) (free func()) {
	release := make(chan struct{})
	var once sync.Once
	free = func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	c := env.Stack.Kafka
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		<-release
		return nil, nil, false
	})
	return free
}

// kafkaSwitch makes every produce request to env's broker fail while the
// returned switch is on (it starts off).
func kafkaSwitch(env *testenv.Env) *atomic.Bool {
	down := new(atomic.Bool)
	c := env.Stack.Kafka
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if down.Load() {
			return nil, errors.New("injected: broker unavailable"), true
		}
		return nil, nil, false
	})
	return down
}

// kafkaDown makes every produce request fail until the returned func is
// called.
func kafkaDown(t *testing.T, env *testenv.Env) (up func()) {
	t.Helper()
	down := kafkaSwitch(env)
	down.Store(true)
	return func() { down.Store(false) }
}

// TestBatchAckDeadlineStartsWhenBodyIsIn: a batch whose body is in at once
// gets its 503 within about -ack-timeout while Kafka takes nothing, as a
// webhook does (Config.AckTimeout: "from when the body is in"). Its wait
// was bounded by the context it produced under, of -read-timeout plus
// -ack-timeout from the request's start: 34 s by default, 6.7 s here.
func TestBatchAckDeadlineStartsWhenBodyIsIn(t *testing.T) {
	env := testenv.Embedded(t)
	const ack = 700 * time.Millisecond
	h := newHarness(t, env, func(c *Config) { c.AckTimeout = ack; c.ReadTimeout = 6 * time.Second })
	defer kafkaDown(t, env)()
	start := time.Now()
	status, br, hdr := postBatch(t, h, "/events/billing", "Bearer batch-token-1-0123456789",
		[]byte(`{"id":"dl1","type":"invoice.paid","data":{}}`+"\n"), "")
	took := time.Since(start)
	if status != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || br.Failed != 1 || len(br.Results) != 1 || br.Results[0].Status != LineFailed {
		t.Fatalf("status %d %+v; want 503 with Retry-After and line 1 failed", status, br)
	}
	if took > ack+3*time.Second {
		t.Fatalf("503 after %v for a body read at once; want it within about the ack timeout (%v)", took, ack)
	}
}

// TestBatchLineGivenUpIsNotWrittenLater: a batch line answered failed once
// the ack wait ends is not written afterwards while that can still be
// prevented: here it waits in its lane behind a round Kafka holds, and the
// lane drops it (as a webhook's) because its produce context ended with
// the wait, before the answer is written. Before, the batch was answered
// only when its produce context, of -read-timeout plus -ack-timeout, ended,
// not within the ack timeout; and a produce context outliving the answer
// would have the line answered failed, then written once Kafka let go.
func TestBatchLineGivenUpIsNotWrittenLater(t *testing.T) {
	env := testenv.Embedded(t)
	const ack = 700 * time.Millisecond
	// One client, so one lane, whose rounds wait for their acks.
	h := newHarness(t, env, func(c *Config) { c.AckTimeout = ack; c.Producers = 1 })
	l := h.srv.w.lanes[0]
	l.mu.Lock() // ordered before the lane's goroutine, which starts under it
	l.patience = time.Hour
	l.mu.Unlock()
	// Kafka holds the first produce request: the round of the webhook
	// below, with the lane's next round queued behind it.
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	c := env.Stack.Kafka
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.DropControl()
		close(held)
		c.SleepControl(func() { <-release })
		return nil, nil, false
	})
	first := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, h.url+"/webhooks/open", strings.NewReader(`{"id":"first","type":"t"}`))
		first <- do(t, req)
	}()
	<-held

	type batchAnswer struct {
		status int
		br     BatchResponse
	}
	answered := make(chan batchAnswer, 1)
	go func() {
		status, br, _ := postBatch(t, h, "/events/billing", "Bearer batch-token-1-0123456789",
			[]byte(`{"id":"late1","type":"invoice.paid","data":{}}`+"\n"), "")
		answered <- batchAnswer{status, br}
	}()
	var a batchAnswer
	select {
	case a = <-answered:
	case <-time.After(ack + 3*time.Second):
		t.Fatalf("batch not answered within about the ack timeout (%v) while its line waited for Kafka", ack)
	}
	if a.status != http.StatusServiceUnavailable || a.br.Failed != 1 {
		t.Fatalf("status %d %+v; want 503 with line 1 failed", a.status, a.br)
	}
	free()
	if w := <-first; w.status != http.StatusServiceUnavailable && w.status != http.StatusAccepted {
		t.Fatalf("held webhook: %d %s", w.status, w.raw)
	}
	testenv.Eventually(t, 10*time.Second, "the lane to finish its rounds", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return !l.busy
	})
	// The held webhook's record was sent before its wait ended: it lands,
	// and shows Kafka writes again.
	for _, e := range h.rawEnvelopes(t, 1) {
		if e.EventID == "late1" {
			t.Fatalf("line answered failed was written after its answer (envelope %s)", e.ID)
		}
	}
}

// TestReadinessProbeLogQuotesNoRegistryCredential: a registry (or a proxy
// in front of it) that starts refusing the credential (a token revoked or
// rotated) and quotes it in its answer put the token in ingest's "not
// ready" log line: the probe logged the registry client's error, whose
// text is the answer, as it was.
func TestReadinessProbeLogQuotesNoRegistryCredential(t *testing.T) {
	const token = "CANARY-srtoken-7f3a"
	var refuse atomic.Bool
	registry := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if !refuse.Load() {
			_, _ = w.Write([]byte(`{"compatibilityLevel":"BACKWARD"}`))
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error_code":401,"message":"invalid credentials: ` + r.Header.Get("Authorization") + `"}`))
	}))
	t.Cleanup(registry.Close)
	cl, err := sr.NewClient(sr.URLs(registry.URL), sr.BearerToken(token))
	if err != nil {
		t.Fatal(err)
	}
	var logs syncbuf.Buffer
	h := newHarnessDeps(t, testenv.Embedded(t), testSources, nil, func(d *Deps) {
		d.SR = cl
		d.Log = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	testenv.Eventually(t, 10*time.Second, "ingest to be ready", h.srv.ready.Load)
	refuse.Store(true)
	testenv.Eventually(t, 10*time.Second, `the probe to log "not ready"`, func() bool {
		return strings.Contains(logs.String(), `"not ready"`)
	})
	if out := logs.String(); strings.Contains(out, token) || !strings.Contains(out, "HTTP 401") {
		t.Errorf("want the refusal logged by its status, without the registry's answer:\n%s", out)
	}
}

// TestReadyzSaysTheRawTopicIsMissing: with the raw topic deleted (a dev
// cluster's data wiped, a topic removed by hand) Kafka still answers, and
// /readyz said ready while every webhook was answered 503; it now says the
// topic is missing and how to get it back.
func TestReadyzSaysTheRawTopicIsMissing(t *testing.T) {
	env := testenv.Embedded(t)
	h := newHarness(t, env, nil)
	resps, err := kadm.NewClient(env.Client(t)).DeleteTopics(context.Background(), h.topics.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := resps.Error(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "readyz to say the raw topic is missing", func() bool {
		code, status := readyz(h.url)
		return code == http.StatusServiceUnavailable && strings.Contains(status, h.topics.Raw+" missing")
	})
}

// TestRawTopicMadeAgainIsWrittenTo: a raw topic deleted and made again (by
// a processor's start, another ingest's, or by hand) is written to without
// a restart, after at most a webhook answered 503. (A plain franz-go
// client writing with ProduceSync, tried beside this, kept the old topic
// id and failed every record UNKNOWN_TOPIC_ID for as long as it was
// watched; ingest's writes recover. This guards that.)
func TestRawTopicMadeAgainIsWrittenTo(t *testing.T) {
	env := testenv.Embedded(t)
	h := newHarness(t, env, func(c *Config) { c.AckTimeout = 4 * time.Second })
	send := func(id string) int {
		return do(t, h.signed(t, "stripe", []byte(`{"id":"`+id+`","type":"invoice.paid","created":1700000000}`), nil)).status
	}
	if code := send("evt_before"); code != http.StatusAccepted && code != http.StatusOK {
		t.Fatalf("before: %d", code)
	}
	adm := kadm.NewClient(env.Client(t))
	ctx := context.Background()
	if _, err := adm.DeleteTopics(ctx, h.topics.Raw); err != nil {
		t.Fatal(err)
	}
	// Made again at once, as a restart that finds it missing does.
	if err := kafka.EnsureTopics(ctx, adm, 3, -1, h.topics.Specs()); err != nil {
		t.Fatal(err)
	}
	n := 0
	testenv.Eventually(t, 20*time.Second, "a webhook accepted on the raw topic made again", func() bool {
		n++
		code := send(fmt.Sprintf("evt_after_%d", n))
		return code == http.StatusAccepted || code == http.StatusOK
	})
	if code, status := readyz(h.url); code != http.StatusOK {
		t.Fatalf("readyz %d %s", code, status)
	}
}

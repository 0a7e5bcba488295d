package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/testenv"
)

// Kafka refusing or not answering produces must turn into 503 + Retry-After,
// never 2xx, and every event answered 2xx must be on the log afterwards.
func TestKafkaUnavailableAnswers503AndLosesNothing(t *testing.T) {
	env := testenv.Embedded(t)
	h := newHarness(t, env, func(c *Config) { c.AckTimeout = 700 * time.Millisecond })
	var down atomic.Bool
	c := env.Stack.Kafka
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if down.Load() {
			return nil, errors.New("injected: broker unavailable"), true
		}
		return nil, nil, false
	})

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
		resp, err := http.Get(h.url + "/readyz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var body map[string]string
		if json.NewDecoder(resp.Body).Decode(&body) != nil {
			return false
		}
		return resp.StatusCode == http.StatusServiceUnavailable && body["status"] == "schema registry unreachable"
	})
}

package processor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/registry"
	"github.com/inletdev/inlet/pkg/router"
	"github.com/inletdev/inlet/pkg/store"
	"github.com/inletdev/inlet/pkg/testenv"
	"github.com/inletdev/inlet/pkg/testenv/syncbuf"
)

// bufLog is a processor log, debug and up, as JSON lines in buf.
func bufLog(buf *syncbuf.Buffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// linesWith are buf's JSON lines whose msg is msg.
func linesWith(t *testing.T, buf *syncbuf.Buffer, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range buf.Lines() {
		if m := jsonLine(t, l); m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// linesAt are buf's JSON lines at level.
func linesAt(t *testing.T, buf *syncbuf.Buffer, level string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range buf.Lines() {
		if m := jsonLine(t, l); m["level"] == level {
			out = append(out, m)
		}
	}
	return out
}

// TestOneResumeLinePerOutage: an outage that outlasts its batch (the wait
// gives up at the deadline, the next batch waits again) and is waited out
// by two workers at once ends in one info line, whose "waited" counts from
// the outage's first failure. Waiting lists the outage while a wait is in
// progress, from that first failure, and not once it is over.
func TestOneResumeLinePerOutage(t *testing.T) {
	var buf syncbuf.Buffer
	p := &Processor{log: bufLog(&buf), cfg: Config{BackoffMax: 10 * time.Millisecond, BatchDeadline: time.Second}}
	ctx := context.Background()
	down := errors.New("connection refused")
	begun := time.Now()
	var listed []Wait
	err := p.waitOut(ctx, ctx, time.Now().Add(100*time.Millisecond), waitRedis, func() (bool, error) {
		listed = p.Waiting()
		return true, down
	})
	if !errors.Is(err, down) || errors.Is(err, errStopping) || !strings.Contains(err.Error(), "past the batch deadline") {
		t.Fatalf("first batch: %v, want the outage past the deadline", err)
	}
	if len(listed) != 1 || listed[0].On != "redis" || listed[0].Since.Before(begun) || !strings.HasPrefix(listed[0].String(), "redis since 20") {
		t.Fatalf("Waiting during the wait: %v, want redis since its first failure", listed)
	}
	if w := p.Waiting(); len(w) != 0 {
		t.Fatalf("Waiting between batches: %v, want none (no wait in progress)", w)
	}
	// The next batches, on two workers: the outage goes on, then ends.
	var wg sync.WaitGroup
	var mu sync.Mutex
	tries := 0
	for range 2 {
		wg.Go(func() {
			err := p.waitOut(ctx, ctx, time.Now().Add(time.Minute), waitRedis, func() (bool, error) {
				mu.Lock()
				defer mu.Unlock()
				if tries++; tries < 6 {
					return true, down
				}
				return false, nil
			})
			if err != nil {
				t.Errorf("second batch: %v", err)
			}
		})
	}
	wg.Wait()
	ends := linesWith(t, &buf, "redis available again; resuming")
	if len(ends) != 1 {
		t.Fatalf("%d end lines, want 1 for the one outage:\n%s", len(ends), buf.String())
	}
	waited, err := time.ParseDuration(ends[0]["waited"].(string))
	if err != nil || waited < 100*time.Millisecond || ends[0]["level"] != "INFO" {
		t.Fatalf("end line %v: want info, waited from the first batch's first failure (>= 100ms)", ends[0])
	}
	if w := p.Waiting(); len(w) != 0 {
		t.Fatalf("Waiting after the outage: %v, want none", w)
	}
	// A success with no outage logs nothing.
	if err := p.waitOut(ctx, ctx, time.Now().Add(time.Minute), waitRedis, func() (bool, error) { return false, nil }); err != nil {
		t.Fatal(err)
	}
	if ends := linesWith(t, &buf, "redis available again; resuming"); len(ends) != 1 {
		t.Fatalf("%d end lines after a plain success, want still 1", len(ends))
	}
}

// TestClaimWaitEnds: claim's wait for Redis (the "redis unavailable;
// waiting" lines) ends in one "redis available again" line when Redis
// comes back.
func TestClaimWaitEnds(t *testing.T) {
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr(), MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { rdb.Close() })
	var buf syncbuf.Buffer
	p := &Processor{cfg: DefaultConfig(), d: Deps{Store: store.New(rdb, store.ClaimLease(time.Minute))}, log: bufLog(&buf)}
	p.cfg.BackoffMax = 20 * time.Millisecond
	m.Close()
	items := []*item{{rec: &kgo.Record{Topic: "raw", Offset: 1}, out: &router.Output{EntityKey: "e1"}, dedup: "dedup:s:1", lock: "lock:e1"}}
	ctx := context.Background()
	done := make(chan error, 1)
	var held []string
	go func() {
		var err error
		held, _, err = p.claim(ctx, ctx, items, store.NewToken(), time.Now().Add(time.Minute), nil, nil)
		done <- err
	}()
	testenv.Eventually(t, 10*time.Second, "claim waiting for Redis", func() bool {
		return len(linesWith(t, &buf, "redis unavailable; waiting")) >= 3
	})
	if w := p.Waiting(); len(w) != 1 || w[0].On != "redis" {
		t.Fatalf("Waiting while claim waits: %v, want redis", w)
	}
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil || len(held) != 2 {
		t.Fatalf("claim: %v, %v", held, err)
	}
	if ends := linesWith(t, &buf, "redis available again; resuming"); len(ends) != 1 {
		t.Fatalf("%d end lines, want 1:\n%s", len(ends), buf.String())
	}
}

// TestGivingUpSaysWhy: a wait given up because the processor is stopping
// says so (errStopping), not that the batch deadline passed, and names
// what it waited for: Redis down, or claims another member holds.
func TestGivingUpSaysWhy(t *testing.T) {
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr(), MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { rdb.Close() })
	st := store.New(rdb, store.ClaimLease(time.Minute))
	p := &Processor{cfg: DefaultConfig(), d: Deps{Store: st}, log: slog.New(slog.DiscardHandler)}
	p.cfg.BackoffMax = 10 * time.Millisecond
	ctx := context.Background()
	stopped, stop := context.WithCancel(ctx)
	stop()
	items := func() []*item {
		return []*item{{rec: &kgo.Record{Topic: "raw", Offset: 1}, out: &router.Output{EntityKey: "e1"}, dedup: "dedup:s:1", lock: "lock:e1"}}
	}
	far := time.Now().Add(time.Minute)

	// Claims held by another member.
	if _, err := st.ClaimBatch(ctx, []string{"lock:e1"}, store.NewToken()); err != nil {
		t.Fatal(err)
	}
	_, _, err := p.claim(ctx, stopped, items(), store.NewToken(), far, nil, nil)
	if !errors.Is(err, errStopping) || !strings.Contains(err.Error(), "1 claims or entity locks held by another member") || strings.Contains(err.Error(), "deadline") {
		t.Fatalf("stopping with a lock held elsewhere: %v", err)
	}
	_, _, err = p.claim(ctx, ctx, items(), store.NewToken(), time.Now(), nil, nil)
	if errors.Is(err, errStopping) || !strings.Contains(err.Error(), "batch deadline") || !strings.Contains(err.Error(), "held by another member") {
		t.Fatalf("past the deadline with a lock held elsewhere: %v", err)
	}

	// Redis down.
	m.Close()
	_, _, err = p.claim(ctx, stopped, items(), store.NewToken(), far, nil, nil)
	if !errors.Is(err, errStopping) || !store.IsUnavailable(err) || !strings.Contains(err.Error(), "while waiting for redis unavailable") || strings.Contains(err.Error(), "deadline") {
		t.Fatalf("stopping with Redis down: %v", err)
	}
	_, _, err = p.claim(ctx, ctx, items(), store.NewToken(), time.Now(), nil, nil)
	if errors.Is(err, errStopping) || !strings.Contains(err.Error(), "batch deadline") || !strings.Contains(err.Error(), "redis unavailable") {
		t.Fatalf("past the deadline with Redis down: %v", err)
	}
	err = p.waitOut(ctx, stopped, far, waitRedis, func() (bool, error) { return true, store.ErrUnavailable })
	if !errors.Is(err, errStopping) || !errors.Is(err, store.ErrUnavailable) || strings.Contains(err.Error(), "deadline") {
		t.Fatalf("waitOut stopping: %v", err)
	}
}

// TestReleaseWhileStoppingWarnsOnce: claims that cannot be released because
// Redis is down while the processor stops are one warning for the whole
// processor, saying they expire after the claim lease, not an error per
// batch; the release is bounded by the batch's context (the drain budget),
// not 10 s of its own.
func TestReleaseWhileStoppingWarnsOnce(t *testing.T) {
	m := miniredis.RunT(t)
	addr := m.Addr()
	m.Close()
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { rdb.Close() })
	var buf syncbuf.Buffer
	p := &Processor{cfg: DefaultConfig(), d: Deps{Store: store.New(rdb, store.ClaimLease(time.Minute))}, log: bufLog(&buf)}
	p.cfg.BackoffMax = 20 * time.Millisecond
	stopped, stop := context.WithCancel(context.Background())
	stop()
	start := time.Now()
	var wg sync.WaitGroup
	for range 2 { // two workers' batches
		wg.Go(func() {
			bctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			p.release(bctx, stopped, []string{"dedup:s:1", "lock:e1"}, store.NewToken())
		})
	}
	wg.Wait()
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the releases took %v, want them bounded by the batch's context (300ms)", took)
	}
	if errs := linesAt(t, &buf, "ERROR"); len(errs) != 0 {
		t.Fatalf("error lines %v, want none:\n%s", errs, buf.String())
	}
	warns := linesAt(t, &buf, "WARN")
	if len(warns) != 1 {
		t.Fatalf("%d warnings, want 1:\n%s", len(warns), buf.String())
	}
	w := warns[0]
	if msg := w["msg"].(string); !strings.Contains(msg, "stopping") || !strings.Contains(msg, "redis unavailable") || !strings.Contains(msg, "expire within the claim lease") || w["claim_lease"] != "1m0s" {
		t.Fatalf("warning %v: want it to say the claims expire after their lease (1m0s)", w)
	}
}

// TestRegistryOutageEndsOnEvidence: a record decoded is no sign the registry
// answers (its writer schema may be cached); a record decoded whose schema
// id could not be fetched during the outage is, and so is a registration.
func TestRegistryOutageEndsOnEvidence(t *testing.T) {
	var buf syncbuf.Buffer
	p := &Processor{log: bufLog(&buf), cfg: Config{BackoffMax: time.Millisecond, BatchDeadline: time.Second}, d: Deps{Registry: registry.New(nil)}}
	framed := func(id int) *kgo.Record {
		b := []byte{0, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(b[1:], uint32(id))
		return &kgo.Record{Value: append(b, 2, 'x')}
	}
	ctx := context.Background()
	// A batch waits for schema 7, and gives up.
	waiting := &item{rec: framed(7), wait: registry.ErrUnavailable}
	err := p.waitOut(ctx, ctx, time.Now(), waitRegistry, func() (bool, error) {
		p.noteDecoded(waiting)
		return true, waiting.wait
	})
	if !errors.Is(err, registry.ErrUnavailable) {
		t.Fatal(err)
	}
	// Another batch decodes schema 5 (cached) and succeeds at once: no end.
	p.noteDecoded(&item{rec: framed(5)})
	if err := p.waitOut(ctx, ctx, time.Now(), waitRegistry, func() (bool, error) { return false, nil }); err != nil {
		t.Fatal(err)
	}
	if ends := linesWith(t, &buf, "schema registry available again; resuming"); len(ends) != 0 {
		t.Fatalf("outage ended by a cached decode:\n%s", buf.String())
	}
	// Schema 7 decodes: the registry answered.
	p.noteDecoded(&item{rec: framed(7)})
	if ends := linesWith(t, &buf, "schema registry available again; resuming"); len(ends) != 1 {
		t.Fatalf("%d end lines after schema 7 decoded, want 1:\n%s", len(ends), buf.String())
	}
}

// A call cut short by our own context (or refused before anything was
// sent) heard nothing from Redis: it does not end the outage. Only a real
// answer does, and logs the one end line then.
func TestOwnErrorsDoNotEndAnOutage(t *testing.T) {
	var buf syncbuf.Buffer
	p := &Processor{log: bufLog(&buf), cfg: Config{BackoffMax: 10 * time.Millisecond, BatchDeadline: time.Second}}
	ctx := context.Background()
	down := errors.New("connection refused")
	for _, own := range []error{fmt.Errorf("claim: %w", context.DeadlineExceeded), context.Canceled, fmt.Errorf("%w: empty entity key", store.ErrInvalidArgument)} {
		tries := 0
		err := p.waitOut(ctx, ctx, time.Now().Add(time.Minute), waitRedis, func() (bool, error) {
			if tries++; tries < 3 {
				return true, down
			}
			return false, own
		})
		if !errors.Is(err, own) && err.Error() != own.Error() {
			t.Fatalf("%v: waitOut returned %v", own, err)
		}
		if n := len(linesWith(t, &buf, "redis available again; resuming")); n != 0 {
			t.Fatalf("after %v: %d end lines, want none (Redis never answered)", own, n)
		}
	}
	if err := p.waitOut(ctx, ctx, time.Now().Add(time.Minute), waitRedis, func() (bool, error) { return false, nil }); err != nil {
		t.Fatal(err)
	}
	if n := len(linesWith(t, &buf, "redis available again; resuming")); n != 1 {
		t.Fatalf("%d end lines after Redis answered, want 1", n)
	}
}

// An outage nobody waits on any more and nothing failed in for a while
// ended unseen (a registry whose schemas are all cached is never asked):
// the next failure starts a new one, not one "since" long before it.
func TestStaleOutageIsNotResumed(t *testing.T) {
	var ws waits
	o := ws.failed(waitRegistry, nil)
	ws.done(o)
	first := o.since
	// Its last failure long ago.
	ws.mu.Lock()
	o.last = time.Now().Add(-2 * staleOutage)
	ws.mu.Unlock()
	o2 := ws.failed(waitRegistry, nil)
	defer ws.done(o2)
	if o2 == o || !o2.since.After(first) {
		t.Fatalf("a failure after a stale outage joined it (since %v, first %v)", o2.since, first)
	}
	if w := ws.list(); len(w) != 1 || !w[0].Since.Equal(o2.since) {
		t.Fatalf("waiting on %v, want the new outage only", w)
	}
	// A recent one, nobody waiting, is joined: the next batch's wait.
	o3 := ws.failed(waitRedis, nil)
	ws.done(o3)
	if o4 := ws.failed(waitRedis, nil); o4 != o3 {
		t.Fatal("a failure right after an outage's batch gave up started a new outage")
	} else {
		ws.done(o4)
	}
}

// TestConfirmWaitsSayingSo: a confirm or release that finds Redis down
// logs "redis unavailable; waiting" each try, as a claim does (a drill saw
// a 20 s outage during confirms with no line until "available again"); a
// release while stopping does not (one warning says it, see
// TestReleaseWhileStoppingWarnsOnce).
func TestConfirmWaitsSayingSo(t *testing.T) {
	for _, warn := range []bool{true, false} {
		var buf syncbuf.Buffer
		p := &Processor{cfg: DefaultConfig(), log: bufLog(&buf)}
		p.cfg.BackoffMax = time.Millisecond
		fails := 0
		down, err := p.retryRedis(context.Background(), warn, func() error {
			if fails < 3 {
				fails++
				return fmt.Errorf("%w: dial tcp: connection refused", store.ErrUnavailable)
			}
			return nil
		})
		if err != nil || !down {
			t.Fatalf("warn %v: %v, down %v", warn, err, down)
		}
		want := 0
		if warn {
			want = 3
		}
		if n := len(linesWith(t, &buf, "redis unavailable; waiting")); n != want {
			t.Errorf("warn %v: %d waiting lines, want %d:\n%s", warn, n, want, buf.String())
		}
	}
}

// TestMissingTopicIsShown: a raw topic deleted under a running processor
// (or a cluster's data wiped) left it idle and silent, /readyz listing
// nothing, as franz-go waits for a consumed topic to appear. Waiting now
// names the topic from the next check, with one error line, until it is
// back; then the processor consumes it again (franz-go keeps a consumed
// topic's first id: a new session learns the new one).
func TestMissingTopicIsShown(t *testing.T) {
	env := testenv.Embedded(t)
	h := newHarness(t, env)
	var logs syncbuf.Buffer
	h.log = bufLog(&logs)
	r := h.start("a", nil)
	h.send("stripe", "payment_intent.succeeded", "evt_m0", "2024-06-20", envelope.ChannelWebhook, paymentIntent("evt_m0", "pi_m", "succeeded", 1700000000))
	h.waitAll(1)
	if w := r.p.Waiting(); len(w) != 0 {
		t.Fatalf("Waiting with every topic there: %v", w)
	}

	adm := kadm.NewClient(env.Client(t))
	ctx := context.Background()
	if _, err := adm.DeleteTopics(ctx, h.topics.Raw); err != nil {
		t.Fatal(err)
	}
	want := "kafka topic " + h.topics.Raw + " missing"
	testenv.Eventually(t, 10*time.Second, "Waiting to name the missing raw topic", func() bool {
		w := r.p.Waiting()
		return len(w) == 1 && w[0].On == want
	})
	gone := "kafka has no topic " + h.topics.Raw + ", which this processor consumes (deleted, or the cluster's data wiped?): nothing from it is processed; restart the processor to create it (ingest creates the raw topic too)"
	testenv.Eventually(t, 10*time.Second, "one error line", func() bool { return len(linesWith(t, &logs, gone)) == 1 })
	since := r.p.Waiting()[0].Since
	// Later checks keep the first time it was seen and log nothing more.
	checked := r.p.missing.checks.Load()
	testenv.Eventually(t, 10*time.Second, "two later checks", func() bool { return r.p.missing.checks.Load() >= checked+2 })
	if w := r.p.Waiting(); len(w) != 1 || !w[0].Since.Equal(since) {
		t.Fatalf("Waiting after a later check: %v, want since %v", w, since)
	}
	if n := len(linesWith(t, &logs, gone)); n != 1 {
		t.Fatalf("%d error lines after later checks, want 1", n)
	}

	if err := kafka.EnsureTopics(ctx, adm, 3, -1, h.topics.Specs()); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "Waiting empty once the topic is back", func() bool { return len(r.p.Waiting()) == 0 })
	if n := len(linesWith(t, &logs, "topic "+h.topics.Raw+" is back; consuming it again")); n != 1 {
		t.Fatalf("%d lines saying the topic is back, want 1", n)
	}
	// A new producer: the harness's knows the deleted topic's id.
	h.prod = env.Client(t, kgo.ProducerLinger(0))
	h.send("stripe", "payment_intent.succeeded", "evt_m1", "2024-06-20", envelope.ChannelWebhook, paymentIntent("evt_m1", "pi_m1", "succeeded", 1700000001))
	h.waitAll(2)
	// Each worker found the topic's id unknown: they fetched it without a
	// wait, a line each time (2.8 million lines in a minute), and never
	// consumed the topic made again. One line per partition a minute now,
	// and a new session each once the topic is back.
	if n := len(linesWith(t, &logs, "fetch error")); n > 3*2 {
		t.Errorf("%d fetch error lines, want one per partition at most", n)
	}
	if n := len(linesWith(t, &logs, "topic "+h.topics.Raw+" was deleted and made again; opening a new session to consume the new one")); n == 0 || n > 2 {
		t.Errorf("%d lines for new sessions, want one per worker that held the topic", n)
	}
}

// TestStopSaysItLeavesTheGroup: leaving the group can wait for a
// rebalance in progress up to a dead member's session timeout, and a
// stopping processor logged nothing meanwhile (28–42 s on a real broker
// after another instance was killed). It says so, and how long it took.
func TestStopSaysItLeavesTheGroup(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t))
	var logs syncbuf.Buffer
	h.log = bufLog(&logs)
	r := h.start("a", nil)
	h.send("stripe", "payment_intent.succeeded", "evt_lg", "2024-06-20", envelope.ChannelWebhook, paymentIntent("evt_lg", "pi_lg", "succeeded", 1700000000))
	h.waitAll(1)
	r.stop(t)
	if n := len(linesWith(t, &logs, "batches finished; leaving the consumer group (a rebalance in progress holds this up to a dead member's session timeout)")); n != 1 {
		t.Errorf("%d lines saying it leaves the group, want 1", n)
	}
	left := linesWith(t, &logs, "left the consumer group")
	if len(left) != 1 || left[0]["took"] == nil {
		t.Errorf("lines saying it left: %v, want one with took", left)
	}
}

package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/registry"
	"github.com/inletdev/inlet/pkg/retry"
	"github.com/inletdev/inlet/pkg/testenv"
	"github.com/inletdev/inlet/pkg/testenv/syncbuf"
)

func TestProcessorResilience(t *testing.T) { resilienceSuite(t, testenv.Embedded) }

func TestIntegrationProcessorResilience(t *testing.T) {
	testenv.Real(t)
	resilienceSuite(t, testenv.Real)
}

// eventIDs counts processed records per source event id.
func eventIDs(h *harness, min int) map[string]int {
	ids := map[string]int{}
	for _, p := range h.processed(min) {
		ids[p["event_id"].(string)]++
	}
	return ids
}

func resilienceSuite(t *testing.T, newEnv func(testing.TB) *testenv.Env) {
	registryOutageSuite(t, newEnv)
	t.Run("a processor that dies before committing loses nothing and doubles nothing", func(t *testing.T) {
		h := newHarness(t, newEnv(t))
		const n = 30
		for i := range n {
			id := fmt.Sprintf("evt_c%d", i)
			h.send("stripe", "payment_intent.succeeded", id, "2024-06-20", envelope.ChannelWebhook, paymentIntent(id, fmt.Sprintf("pi_%d", i), "succeeded", int64(1700000000+i)))
		}
		// The first commit of any of its workers crashes the process.
		var crashed atomic.Bool
		a := h.startHooked("crashy", nil, func() bool { crashed.Store(true); return true })
		testenv.Eventually(t, 30*time.Second, "the first processor to crash", crashed.Load)
		if err := <-a.done; !errors.Is(err, errCrashed) {
			t.Fatalf("crashed processor returned %v", err)
		}
		a.done <- nil
		if got := a.p.Counts().Total(Processed); got != 0 {
			t.Fatalf("crashed processor counted %d committed outcomes", got)
		}
		h.start("b", nil)
		h.waitAll(n)
		ids := eventIDs(h, n)
		for i := range n {
			if c := ids[fmt.Sprintf("evt_c%d", i)]; c != 1 {
				t.Errorf("evt_c%d has %d outputs, want 1", i, c)
			}
		}
		if len(ids) != n {
			t.Errorf("%d distinct outputs, want %d", len(ids), n)
		}
	})

	t.Run("records that come back at the offsets their done keys name are processed again, by any instance", func(t *testing.T) {
		// What a commit Kafka acknowledged and then lost leaves behind
		// (KAFKA-5202): the events' keys done in Redis, the group's
		// offsets back before them. Rewinding the group's offsets makes
		// the same state for an instance that never saw the commit.
		h := newHarness(t, newEnv(t))
		const n = 12
		for i := range n {
			id := fmt.Sprintf("evt_l%d", i)
			h.send("stripe", "payment_intent.succeeded", id, "2024-06-20", envelope.ChannelWebhook, paymentIntent(id, fmt.Sprintf("pi_l%d", i), "succeeded", int64(1700000000+i)))
		}
		a := h.start("a", nil)
		h.waitAll(n)
		a.stop(t)
		if got := a.p.Counts().Total(Processed); got != n {
			t.Fatalf("first instance processed %d of %d", got, n)
		}
		ctx := context.Background()
		adm := kadm.NewClient(h.env.Client(t))
		ends, err := adm.ListEndOffsets(ctx, h.topics.Raw)
		if err != nil {
			t.Fatal(err)
		}
		rewind := kadm.Offsets{}
		ends.Each(func(o kadm.ListedOffset) {
			rewind.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: 0, LeaderEpoch: -1})
		})
		committed, err := adm.CommitOffsets(ctx, h.config().Group, rewind)
		if err == nil {
			err = committed.Error()
		}
		if err != nil {
			t.Fatalf("rewinding the group: %v", err)
		}
		// A true duplicate, at an offset of its own, stays one.
		h.send("stripe", "payment_intent.succeeded", "evt_l3", "2024-06-20", envelope.ChannelWebhook, paymentIntent("evt_l3", "pi_l3", "succeeded", 1700000003))
		b := h.start("b", nil)
		testenv.Eventually(t, 60*time.Second, "the second instance to settle every record", func() bool {
			c := b.p.Counts()
			return c.Total(Processed)+c.Total(Duplicate)+c.Total(Stale) >= n+1
		})
		c := b.p.Counts()
		if c.Total(Processed) != n || c.Total(Duplicate) != 1 || c.Total(Stale) != 0 {
			t.Fatalf("second instance: processed %d, duplicate %d, stale %d; want %d processed again and the one true duplicate",
				c.Total(Processed), c.Total(Duplicate), c.Total(Stale), n)
		}
	})

	t.Run("one instance's workers share the partitions and account for every input once", func(t *testing.T) {
		h := newHarness(t, newEnv(t))
		r := h.start("multi", func(c *Config) { c.BatchSize = 5; c.Workers = 3 })
		if len(r.p.workers) != 3 {
			t.Fatalf("%d workers, want 3", len(r.p.workers))
		}
		const n = 90
		for i := range n {
			id := fmt.Sprintf("evt_w%d", i)
			h.send("stripe", "payment_intent.succeeded", id, "2024-06-20", envelope.ChannelWebhook, paymentIntent(id, fmt.Sprintf("pi_%d", i%30), "succeeded", int64(1700000000+i)))
		}
		h.waitAll(n)
		// Each worker is a member of the group, with partitions of its own.
		groups, err := kadm.NewClient(r.p.workers[0].sess.Client()).DescribeGroups(context.Background(), h.config().Group)
		if err != nil {
			t.Fatal(err)
		}
		g := groups[h.config().Group]
		if len(g.Members) != 3 {
			t.Fatalf("group has %d members, want 3", len(g.Members))
		}
		for _, m := range g.Members {
			if a, _ := m.Assigned.AsConsumer(); a == nil || len(a.Topics) == 0 {
				t.Errorf("member %s has no partitions", m.MemberID)
			}
		}
		ids := eventIDs(h, int(h.total(Processed)))
		for id, c := range ids {
			if c != 1 {
				t.Errorf("%s has %d outputs", id, c)
			}
		}
		if int64(len(ids)) != h.total(Processed) || h.all() != n {
			t.Fatalf("%d distinct outputs, %d processed, %d outcomes for %d inputs", len(ids), h.total(Processed), h.all(), n)
		}
	})

	t.Run("partitions lost between batches cost no aborted batch", func(t *testing.T) {
		h := newHarness(t, newEnv(t))
		logs := &syncbuf.Buffer{} // a's
		h.log = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		one := func(c *Config) { c.Workers = 1 }
		a := h.start("a", one)
		h.log = nil
		h.send("stripe", "payment_intent.succeeded", "evt_l0", "2024-06-20", envelope.ChannelWebhook, paymentIntent("evt_l0", "pi_l0", "succeeded", 1700000000))
		h.waitAll(1)
		// b joins while a is idle: a gives up partitions outside any
		// transaction, which franz-go's session would hold against a's
		// next commit, and then rejoins to let b have them, which would
		// abort a commit overlapping it. The events are sent at once.
		h.start("b", one)
		testenv.Eventually(t, 30*time.Second, "a to lose partitions", a.p.workers[0].revoked.Load)
		const n = 40
		for i := 1; i <= n; i++ {
			id := fmt.Sprintf("evt_l%d", i)
			h.send("stripe", "payment_intent.succeeded", id, "2024-06-20", envelope.ChannelWebhook, paymentIntent(id, fmt.Sprintf("pi_l%d", i), "succeeded", int64(1700000000+i)))
		}
		h.waitAll(n + 1)
		if a.p.Counts().Total(Processed) == 0 {
			t.Fatal("a processed nothing after the rebalance: the test proves nothing")
		}
		for _, l := range logs.Lines() {
			if strings.Contains(l, "transaction aborted") {
				t.Fatalf("a batch was aborted after the rebalance: %s", l)
			}
		}
		if ids := eventIDs(h, n+1); len(ids) != n+1 {
			t.Fatalf("%d distinct outputs, want %d", len(ids), n+1)
		}
	})

	t.Run("three instances with one leaving and one joining account for every input once", func(t *testing.T) {
		h := newHarness(t, newEnv(t))
		small := func(c *Config) { c.BatchSize = 5 }
		h.start("1", small)
		leaving := h.start("2", small)
		h.start("3", small)
		const n = 120
		inputs := 0
		for i := range n {
			id := fmt.Sprintf("evt_g%d", i)
			h.send("stripe", "payment_intent.succeeded", id, "2024-06-20", envelope.ChannelWebhook, paymentIntent(id, fmt.Sprintf("pi_%d", i%40), "succeeded", int64(1700000000+i)))
			inputs++
			if i == n/3 {
				leaving.stop(t)
			}
			if i == 2*n/3 {
				h.start("4", small)
			}
		}
		h.waitAll(int64(inputs))
		if all := h.all(); all != int64(inputs) {
			t.Fatalf("outcomes %d, inputs %d", all, inputs)
		}
		ids := eventIDs(h, int(h.total(Processed)))
		var outputs int64
		for id, c := range ids {
			if c != 1 {
				t.Errorf("%s has %d outputs", id, c)
			}
			outputs += int64(c)
		}
		if outputs != h.total(Processed) {
			t.Errorf("%d outputs on the topic, %d counted processed", outputs, h.total(Processed))
		}
	})
}

// Redis going away pauses processing (nothing skipped, nothing committed
// past it); it resumes when Redis is back. Embedded only: it restarts the
// in-process Redis.
//
// The wait is shown by Waiting while it lasts, and its end is one line
// however many batches it held back: the deadline (1 s here) abandons the
// first batch and the next ones wait on.
func TestRedisOutagePausesAndResumes(t *testing.T) {
	env := testenv.Embedded(t)
	h := newHarness(t, env)
	var logs syncbuf.Buffer
	h.log = bufLog(&logs)
	r := h.start("a", func(c *Config) { c.BatchDeadline = time.Second })
	h.send("stripe", "payment_intent.succeeded", "evt_r0", "2024-06-20", envelope.ChannelWebhook, paymentIntent("evt_r0", "pi_r", "succeeded", 1700000000))
	h.waitAll(1)
	env.Stack.Miniredis.Close()
	for i := 1; i <= 5; i++ {
		id := fmt.Sprintf("evt_r%d", i)
		h.send("stripe", "payment_intent.succeeded", id, "2024-06-20", envelope.ChannelWebhook, paymentIntent(id, fmt.Sprintf("pi_r%d", i), "succeeded", int64(1700000000+i)))
	}
	// While Redis is down nothing completes: once the processor has
	// polled the records and abandoned their batch on Redis, no outcome
	// has been added.
	testenv.Eventually(t, 10*time.Second, "a batch abandoned at its deadline", func() bool {
		return len(linesWith(t, &logs, "batch abandoned before writing; it will be redelivered")) > 0
	})
	if got := h.all(); got != 1 {
		t.Fatalf("%d outcomes while Redis was down, want 1", got)
	}
	testenv.Eventually(t, 10*time.Second, "Waiting to show the wait for Redis", func() bool {
		w := r.p.Waiting()
		return len(w) == 1 && w[0].On == "redis"
	})
	if err := env.Stack.Miniredis.Restart(); err != nil {
		t.Fatal(err)
	}
	h.waitAll(6)
	if ids := eventIDs(h, 6); len(ids) != 6 {
		t.Fatalf("%d distinct outputs after Redis came back, want 6", len(ids))
	}
	if ends := linesWith(t, &logs, "redis available again; resuming"); len(ends) != 1 {
		t.Fatalf("%d lines saying Redis is back, want 1:\n%s", len(ends), logs.String())
	}
	if w := r.p.Waiting(); len(w) != 0 {
		t.Fatalf("Waiting after Redis came back: %v", w)
	}
}

// TestShutdownDuringRedisOutage: stopped while a batch waits for Redis, the
// processor says the batch was abandoned because
// it is stopping, and the claims it could not release are one warning that
// they expire after their lease, not errors.
func TestShutdownDuringRedisOutage(t *testing.T) {
	env := testenv.Embedded(t)
	h := newHarness(t, env)
	var logs syncbuf.Buffer
	h.log = bufLog(&logs)
	// A client that gives up on a dead server at once: go-redis's default
	// dial retries take seconds per try, past this test's deadline.
	h.rdb = redis.NewClient(&redis.Options{Addr: env.Stack.Miniredis.Addr(), DialerRetries: 1, MaxRetries: -1})
	t.Cleanup(func() { h.rdb.Close() })
	r := h.start("a", func(c *Config) {
		// The batch's context, which bounds the release once stopping,
		// ends 4 s after it starts: the test does not wait the release's
		// 10 s.
		c.BatchDeadline, c.DrainTimeout = 3*time.Second, time.Second
	})
	h.send("stripe", "payment_intent.succeeded", "evt_sr0", "2024-06-20", envelope.ChannelWebhook, paymentIntent("evt_sr0", "pi_sr0", "succeeded", 1700000000))
	h.waitAll(1)
	env.Stack.Miniredis.Close()
	h.send("stripe", "payment_intent.succeeded", "evt_sr1", "2024-06-20", envelope.ChannelWebhook, paymentIntent("evt_sr1", "pi_sr1", "succeeded", 1700000001))
	testenv.Eventually(t, 10*time.Second, "the batch to wait for Redis", func() bool {
		return len(linesWith(t, &logs, "redis unavailable; waiting")) > 0
	})
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the harness's own stop
	case <-time.After(30 * time.Second):
		t.Fatal("the processor did not stop")
	}
	if n := len(linesWith(t, &logs, "batch abandoned before writing; it will be redelivered")); n != 0 {
		t.Errorf("%d lines blame the batch deadline:\n%s", n, logs.String())
	}
	stopping := linesWith(t, &logs, "batch abandoned before writing because the processor is stopping; it will be redelivered")
	if len(stopping) != 1 || !strings.Contains(stopping[0]["error"].(string), "the processor is stopping while waiting for redis unavailable") {
		t.Fatalf("abandon lines %v, want one saying the processor is stopping while Redis is down:\n%s", stopping, logs.String())
	}
	if errs := linesAt(t, &logs, "ERROR"); len(errs) != 0 {
		t.Errorf("error lines: %v", errs)
	}
	var released int
	for _, w := range linesAt(t, &logs, "WARN") {
		if strings.Contains(w["msg"].(string), "expire within the claim lease") {
			released++
		}
	}
	if released != 1 {
		t.Errorf("%d warnings about unreleased claims, want 1:\n%s", released, logs.String())
	}
}

// TestConfirmOutlastsTheBatchContext: Redis goes away as a batch commits
// and comes back after the batch's context has ended. The confirm must
// wait for it (its claim's lease still runs) rather than give up with the
// context: a claim left unconfirmed let the event's next delivery through
// once its lease ran out.
func TestConfirmOutlastsTheBatchContext(t *testing.T) {
	env := testenv.Embedded(t)
	h := newHarness(t, env)
	const batchContext = time.Second // the deadline plus the drain timeout
	stopped := make(chan struct{})
	var once sync.Once
	h.startHooked("a", func(c *Config) {
		c.BatchDeadline, c.DrainTimeout, c.ClaimLease = batchContext, 0, 8*time.Second
	}, func() bool {
		once.Do(func() { env.Stack.Miniredis.Close(); close(stopped) })
		return false
	})
	pi := paymentIntent("evt_cf", "pi_cf", "succeeded", 1700000000)
	h.send("stripe", "payment_intent.succeeded", "evt_cf", "2024-06-20", envelope.ChannelWebhook, pi)
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("the batch never reached its commit")
	}
	// What is awaited here is the batch's context running out, a time.
	<-time.After(batchContext + 500*time.Millisecond)
	if got := h.all(); got != 0 {
		t.Fatalf("%d outcomes settled while Redis was down, want 0 (the confirm gave up)", got)
	}
	if err := env.Stack.Miniredis.Restart(); err != nil {
		t.Fatal(err)
	}
	h.waitAll(1)
	h.send("stripe", "payment_intent.succeeded", "evt_cf", "2024-06-20", envelope.ChannelWebhook, pi)
	h.waitAll(2)
	if p, d := h.total(Processed), h.total(Duplicate); p != 1 || d != 1 {
		t.Fatalf("processed %d, duplicate %d; want 1 and 1", p, d)
	}
}

// TestShutdownBoundsTheConfirm: stopping while a committed batch waits for
// Redis to confirm its claims gives up at the drain budget (the batch's
// context), not the claims' lease: the process would outlive its grace
// period and be killed.
func TestShutdownBoundsTheConfirm(t *testing.T) {
	env := testenv.Embedded(t)
	h := newHarness(t, env)
	stopped := make(chan struct{})
	var once sync.Once
	r := h.startHooked("a", func(c *Config) {
		c.BatchDeadline, c.DrainTimeout, c.ClaimLease = time.Second, time.Second, 2*time.Minute
	}, func() bool {
		once.Do(func() { env.Stack.Miniredis.Close(); close(stopped) })
		return false
	})
	h.send("stripe", "payment_intent.succeeded", "evt_sd", "2024-06-20", envelope.ChannelWebhook, paymentIntent("evt_sd", "pi_sd", "succeeded", 1700000000))
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("the batch never reached its commit")
	}
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the harness's own stop
	case <-time.After(30 * time.Second):
		t.Fatal("the processor did not stop within 30 s of its signal; the confirm waits for the 2 min lease")
	}
}

// registryProxy stands between the processors and the Env's schema
// registry: while down it answers 503, and while refusing it answers
// every schema registration 409, as a registry does for an incompatible
// schema. newRegistryProxy gives the harness's processors a registry client
// and an envelope codec of their own through it.
type registryProxy struct {
	down, refusing atomic.Bool
	refused        atomic.Int64 // requests answered 503 or 409
}

func newRegistryProxy(t *testing.T, h *harness) *registryProxy {
	t.Helper()
	target, err := url.Parse(h.env.RegistryURL)
	if err != nil {
		t.Fatal(err)
	}
	rp := &registryProxy{}
	fwd := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case rp.down.Load():
			rp.refused.Add(1)
			http.Error(w, `{"error_code":50301,"message":"unavailable"}`, http.StatusServiceUnavailable)
		case rp.refusing.Load() && r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/subjects/"):
			rp.refused.Add(1)
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"error_code":409,"message":"Schema being registered is incompatible with an earlier schema"}`))
		default:
			fwd.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	cl, err := sr.NewClient(sr.URLs(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	h.registry = registry.New(cl)
	if h.procCodec, err = envelope.NewCodec(context.Background(), h.registry, h.topics.RawSubject()); err != nil {
		t.Fatal(err)
	}
	return rp
}

// newerEnvelopes makes send write envelopes with a schema the processors'
// codec has not seen: the latest envelope plus an optional field, as a
// newer ingest would write, registered through the Env's registry. Their
// codec must fetch it by ID to decode them.
func newerEnvelopes(t *testing.T, h *harness) {
	t.Helper()
	latest, err := envelope.Latest()
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal([]byte(latest.Text), &schema); err != nil {
		t.Fatal(err)
	}
	schema["fields"] = append(schema["fields"].([]any), map[string]any{"name": "test_extra", "type": []any{"null", "string"}, "default": nil})
	text, err := json.Marshal(schema)
	if err != nil {
		t.Fatal(err)
	}
	reg := h.env.Registry(t)
	id, parsed, err := reg.Register(context.Background(), h.topics.RawSubject(), string(text))
	if err != nil {
		t.Fatal(err)
	}
	if id == h.procCodec.SchemaID() {
		t.Fatalf("the newer envelope schema got the processors' id %d", id)
	}
	h.encode = func(e *envelope.Envelope) ([]byte, error) { return reg.Encode(nil, id, parsed, e) }
}

func registryOutageSuite(t *testing.T, newEnv func(testing.TB) *testenv.Env) {
	t.Run("a registry outage holds events back instead of making them invalid", func(t *testing.T) {
		h := newHarness(t, newEnv(t))
		rp := newRegistryProxy(t, h)
		newerEnvelopes(t, h)
		h.start("a", nil)
		rp.down.Store(true)
		const n = 3
		for i := range n {
			id := fmt.Sprintf("evt_sr%d", i)
			h.send("stripe", "payment_intent.succeeded", id, "2024-06-20", envelope.ChannelWebhook, paymentIntent(id, fmt.Sprintf("pi_sr%d", i), "succeeded", int64(1700000000+i)))
		}
		// Each record's writer schema asked for, refused, and asked for
		// again twice after a backoff: the records were polled and are
		// being held, not settled.
		testenv.Eventually(t, 30*time.Second, "the processor to ask the registry for each record three times", func() bool { return rp.refused.Load() >= 3*n })
		if got := h.all(); got != 0 {
			t.Fatalf("%d outcomes (invalid %d) while the registry was down, want 0", got, h.total(Invalid))
		}
		rp.down.Store(false)
		h.waitAll(n)
		if p, i := h.total(Processed), h.total(Invalid); p != n || i != 0 {
			t.Fatalf("processed %d invalid %d after the registry came back, want %d and 0", p, i, n)
		}
		if ids := eventIDs(h, n); len(ids) != n {
			t.Fatalf("%d distinct outputs, want %d", len(ids), n)
		}
	})

	t.Run("a processed schema the registry refuses sends the event to the DLQ", func(t *testing.T) {
		h := newHarness(t, newEnv(t))
		rp := newRegistryProxy(t, h)
		rp.refusing.Store(true)
		h.start("a", nil)
		h.send("stripe", "payment_intent.succeeded", "evt_sr_refused", "2024-06-20", envelope.ChannelWebhook, paymentIntent("evt_sr_refused", "pi_sr_refused", "succeeded", 1700000000))
		h.waitAll(1)
		if d := h.total(DeadLetter); d != 1 {
			t.Fatalf("dead letters %d (processed %d, invalid %d), want 1", d, h.total(Processed), h.total(Invalid))
		}
		dlq := h.env.ReadAll(t, h.topics.DLQ, 1, 300*time.Millisecond, 10*time.Second)
		if len(dlq) != 1 || !strings.Contains(retry.Get(dlq[0].Headers, retry.HeaderErrors), "incompatible with an earlier schema") {
			t.Fatalf("%d DLQ records, want 1 whose errors carry the registry's answer", len(dlq))
		}
		// Once the registry takes the schema, the requeued event would
		// go through: the claim was released, not confirmed.
		rp.refusing.Store(false)
		h.send("stripe", "payment_intent.succeeded", "evt_sr_refused", "2024-06-20", envelope.ChannelWebhook, paymentIntent("evt_sr_refused", "pi_sr_refused", "succeeded", 1700000000))
		h.waitAll(2)
		if p := h.total(Processed); p != 1 {
			t.Fatalf("processed %d after the registry took the schema, want 1", p)
		}
	})
}

// TestWorkersFenceWhatWasLeftOpen: a transaction left open under a
// worker's transactional id (a crashed process with the same instance id,
// a session that could not abort) is aborted when the worker starts and
// when it renews its session, not when its minute-long timeout runs out.
// Before, a starting worker's first fence was its first transaction's
// Begin, after a poll: with nothing to process the transaction stayed
// open, and its pending offsets would have held that poll.
func TestWorkersFenceWhatWasLeftOpen(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t))
	ctx := context.Background()
	adm := kadm.NewClient(h.env.Client(t))
	open := func() bool {
		ends, err1 := adm.ListEndOffsets(ctx, h.topics.Processed)
		stable, err2 := adm.ListCommittedOffsets(ctx, h.topics.Processed)
		if err1 != nil || err2 != nil {
			return true
		}
		behind := false
		ends.Each(func(e kadm.ListedOffset) {
			if s, ok := stable.Lookup(e.Topic, e.Partition); !ok || s.Offset < e.Offset {
				behind = true
			}
		})
		return behind
	}
	// leaveOpen opens a transaction under txnID and leaves it, as a
	// process that died would.
	leaveOpen := func(t *testing.T, txnID string) {
		t.Helper()
		cl := h.env.Client(t, kgo.TransactionalID(txnID), kgo.TransactionTimeout(time.Minute))
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: h.topics.Processed, Value: []byte("left open")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if !open() {
			t.Fatal("the transaction is not open")
		}
	}
	cfg := h.config()
	cfg.TxnTimeout = time.Minute

	t.Run("at start", func(t *testing.T) {
		leaveOpen(t, "inlet-processor-"+h.env.Prefix+"-start")
		h.start("start", func(c *Config) { c.TxnTimeout = time.Minute })
		testenv.Eventually(t, 15*time.Second, "the open transaction to be aborted", func() bool { return !open() })
	})
	t.Run("when a session is renewed", func(t *testing.T) {
		c := cfg
		c.InstanceID = h.env.Prefix + "-renew"
		p, err := New(c, h.deps(c))
		if err != nil {
			t.Fatal(err)
		}
		w := p.workers[0]
		t.Cleanup(w.close)
		leaveOpen(t, "inlet-processor-"+c.InstanceID)
		if err := w.renewSession(ctx, errors.New("test: session failed")); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 15*time.Second, "the open transaction to be aborted", func() bool { return !open() })
	})
}

// unansweredCommit runs instance "a" of a processor over n events
// (evt_<tag>0…, one entity each) while kfake holds its first commit, and
// what that client sends after it, until the renewed session's fence
// arrives: the answers go to a client that gave up on them. landed: the
// fence waits until the held requests are carried out, so the commit
// lands; else the fence goes first (the woken commit waits for the
// cluster's next turn) and aborts the transaction, and the commit finds
// itself fenced. For loading after the fence, the group coordinator
// answers the settle's stable offset reads COORDINATOR_LOAD_IN_PROGRESS
// (as after a failover); the members' own reads are answered. It returns
// once every event has an outcome; afterFence, if any, runs once the
// renewed session has fenced the held commit, before that wait.
func unansweredCommit(t *testing.T, tag string, n int, landed bool, loading time.Duration, afterFence func(*harness)) *harness {
	t.Helper()
	env := testenv.Embedded(t)
	c := env.Stack.Kafka
	h := newHarness(t, env)
	var loadingUntil atomic.Int64 // unix nanoseconds
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetFetch}, Group: h.config().Group, Err: kerr.CoordinatorLoadInProgress, Count: -1,
		When: func(req kmsg.Request) bool {
			if time.Now().UnixNano() > loadingUntil.Load() {
				return false
			}
			for _, g := range req.(*kmsg.OffsetFetchRequest).Groups {
				if g.MemberID != nil && *g.MemberID != "" {
					return false // a member's own read
				}
			}
			return true
		}})
	prefix := "inlet-processor-" + h.env.Prefix + "-a" // each worker's id starts so
	var (
		mu       sync.Mutex
		heldID   string // the transactional id whose commit is held
		heldN    int    // its EndTxn requests held (the commit, then any abort)
		released = make(chan struct{})
	)
	endTxns := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.EndTxn}, Observe: true, Count: -1})
	t.Cleanup(endTxns.Remove)
	c.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.EndTxnRequest)
		mu.Lock()
		hold := false
		select {
		case <-released:
		default:
			if heldID == "" && r.Commit && strings.HasPrefix(r.TransactionalID, prefix) {
				heldID = r.TransactionalID
			}
			hold = heldID != "" && r.TransactionalID == heldID
		}
		if hold {
			heldN++
		}
		mu.Unlock()
		if hold {
			c.SleepControl(func() { <-released })
		}
		return nil, nil, false
	})
	c.ControlKey(int16(kmsg.InitProducerID), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.InitProducerIDRequest)
		mu.Lock()
		fence := heldID != "" && r.TransactionalID != nil && *r.TransactionalID == heldID
		held := heldN
		mu.Unlock()
		if !fence {
			return nil, nil, false
		}
		c.DropControl()
		before := endTxns.Hits()
		close(released)
		if landed {
			c.SleepControl(func() { _ = endTxns.Wait(context.Background(), before+held) })
		}
		loadingUntil.Store(time.Now().Add(loading).UnixNano())
		return nil, nil, false
	})
	for i := range n {
		id := fmt.Sprintf("evt_%s%d", tag, i)
		h.send("stripe", "payment_intent.succeeded", id, "2024-06-20", envelope.ChannelWebhook, paymentIntent(id, fmt.Sprintf("pi_%s%d", tag, i), "succeeded", int64(1700000000+i)))
	}
	// A transaction that outlived its timeout would be aborted by the
	// broker: this one waits for the session's renewal.
	h.start("a", func(c *Config) {
		c.BatchDeadline, c.DrainTimeout, c.ClaimLease, c.TxnTimeout = time.Second, time.Second, time.Minute, time.Minute
	})
	if afterFence != nil {
		testenv.Eventually(t, 30*time.Second, "the held commit fenced", func() bool {
			select {
			case <-released:
				return true
			default:
				return false
			}
		})
		afterFence(h)
	}
	h.waitAll(int64(n))
	mu.Lock()
	held := heldID != ""
	mu.Unlock()
	if !held {
		t.Fatal("no commit was held: the test did not test anything")
	}
	return h
}

// TestUnansweredCommitSettledPastTheBatchDeadline: the commit landed, and
// the coordinator answers the settle's offset reads "loading" for 3 s,
// three batch deadlines: the settle waits while the batch's claims hold,
// and the events are counted once with one output each. It gave up after
// one batch deadline, and they were never counted nor confirmed.
func TestUnansweredCommitSettledPastTheBatchDeadline(t *testing.T) {
	const n = 3
	h := unansweredCommit(t, "ld", n, true, 3*time.Second, nil)
	if ids := eventIDs(h, n); len(ids) != n {
		t.Fatalf("%d distinct outputs, want %d", len(ids), n)
	}
	if p := h.total(Processed); p != n {
		t.Fatalf("processed %d, want %d", p, n)
	}
}

// TestUnansweredCommitSettledAfterAnotherMemberCommittedPast: the commit
// landed, and while the coordinator answers the settle "loading" the other
// worker (which took the partitions when the session was renewed)
// processes later events and commits past the batch. The batch's keys are
// still its own marks, so it landed: every event is counted once. It was
// left "unknown", its events never counted.
func TestUnansweredCommitSettledAfterAnotherMemberCommittedPast(t *testing.T) {
	const n, later = 3, 12
	h := unansweredCommit(t, "cp", n, true, 5*time.Second, func(h *harness) {
		for i := range later {
			id := fmt.Sprintf("evt_cpl%d", i)
			h.send("stripe", "payment_intent.succeeded", id, "2024-06-20", envelope.ChannelWebhook, paymentIntent(id, fmt.Sprintf("pi_cpl%d", i), "succeeded", int64(1700000100+i)))
		}
		// Processed (and committed) by the other worker while the
		// settle waits.
		testenv.Eventually(h.t, 30*time.Second, "the later events processed", func() bool { return h.total(Processed) >= later })
	})
	h.waitAll(n + later)
	if p := h.total(Processed); p != n+later {
		t.Fatalf("processed %d, want %d", p, n+later)
	}
	if ids := eventIDs(h, n+later); len(ids) != n+later {
		t.Fatalf("%d distinct outputs, want %d", len(ids), n+later)
	}
}

// TestUnansweredCommitIsSettled: a commit the broker carried out but whose
// answer the processor never got (it gave up waiting) is settled as
// committed once the session is renewed: the events are counted once,
// have one output each, and their claims are confirmed, so a later
// duplicate is one. Treated as aborted, they were never counted and their
// released claims let the duplicate through.
func TestUnansweredCommitIsSettled(t *testing.T) {
	const n = 3
	h := unansweredCommit(t, "u", n, true, 0, nil)
	if ids := eventIDs(h, n); len(ids) != n {
		t.Fatalf("%d distinct outputs, want %d", len(ids), n)
	}
	h.send("stripe", "payment_intent.succeeded", "evt_u0", "2024-06-20", envelope.ChannelWebhook, paymentIntent("evt_u0", "pi_u0", "succeeded", 1700000000))
	h.waitAll(n + 1)
	if p, d := h.total(Processed), h.total(Duplicate); p != n || d != 1 {
		t.Fatalf("processed %d, duplicate %d; want %d and 1", p, d, n)
	}
}

// TestRetryDueAtIsBoundedByItsTier: a retry record stamped due ten minutes
// ahead (its writer's clock fast: another processor, an operator's
// requeue) is processed after its tier's delay, not ten minutes on: it
// held its partition, and every retry behind it, that long.
func TestRetryDueAtIsBoundedByItsTier(t *testing.T) {
	h := newHarnessWith(t, testenv.Embedded(t), testSources, []time.Duration{time.Second}, nil)
	h.start("a", nil)
	rec, err := h.rawRecord("evt_fast", paymentIntent("evt_fast", "pi_fast", "succeeded", 1700000000))
	if err != nil {
		t.Fatal(err)
	}
	rec.Topic = h.topics.Retry[0]
	rec.Headers = retry.Set(rec.Headers, retry.HeaderAttempt, "1")
	rec.Headers = retry.Set(rec.Headers, retry.HeaderDueAt, strconv.FormatInt(time.Now().Add(10*time.Minute).UnixMilli(), 10))
	rec.Headers = retry.Set(rec.Headers, retry.HeaderOrigin, h.topics.Raw+"/0/0")
	if err := h.prod.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "the retry to be processed after its 1 s tier", func() bool { return h.total(Processed) == 1 })
}

// TestRetryBurstFromAFastClockDrainsInOneTier: retries stamped due a
// minute ahead, all on one partition, are processed a tier after the
// processor first fetched them. Bounded only once each became the head,
// they came one per tier delay (eight 1 s tiers here; on the 15 min tier,
// one record every 15 min).
func TestRetryBurstFromAFastClockDrainsInOneTier(t *testing.T) {
	const n = 8
	h := newHarnessWith(t, testenv.Embedded(t), testSources, []time.Duration{time.Second}, nil)
	due := strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10)
	var recs []*kgo.Record
	for i := range n {
		id := fmt.Sprintf("evt_burst%d", i)
		rec, err := h.rawRecord(id, paymentIntent(id, "pi_"+id, "succeeded", int64(1700000000+i)))
		if err != nil {
			t.Fatal(err)
		}
		rec.Topic, rec.Key = h.topics.Retry[0], []byte("burst") // one partition
		rec.Headers = retry.Set(rec.Headers, retry.HeaderAttempt, "2")
		rec.Headers = retry.Set(rec.Headers, retry.HeaderDueAt, due)
		rec.Headers = retry.Set(rec.Headers, retry.HeaderOrigin, h.topics.Raw+"/0/"+strconv.Itoa(i))
		recs = append(recs, rec)
	}
	if err := h.prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	h.start("a", func(c *Config) { c.Workers = 1 })
	testenv.Eventually(t, 30*time.Second, "the burst to be processed", func() bool { return h.total(Processed) == n })
	if took := time.Since(start); took > n/2*time.Second {
		t.Fatalf("%d retries of a 1 s tier took %v, want them together about a second after the first fetch", n, took)
	}
}

// TestUnansweredCommitThatDidNotLand: a commit whose answer never comes
// and that the renewed session's fence aborts is settled as aborted: the
// claims are released and the redelivered batch gives each event one
// output, counted once.
func TestUnansweredCommitThatDidNotLand(t *testing.T) {
	const n = 3
	h := unansweredCommit(t, "na", n, false, 0, nil)
	if p := h.total(Processed); p != n {
		t.Fatalf("processed %d, want %d", p, n)
	}
	ids := eventIDs(h, n)
	for i := range n {
		if got := ids[fmt.Sprintf("evt_na%d", i)]; got != 1 {
			t.Errorf("evt_na%d has %d outputs, want 1", i, got)
		}
	}
}

// TestRenewingASessionSaysKafkaIsAway: while a failed session waits for
// Kafka to answer before it is renewed, each try logs "kafka unavailable;
// waiting" (a drill's processors waited on a restarting broker without a
// line), and the answer ends the outage.
func TestRenewingASessionSaysKafkaIsAway(t *testing.T) {
	env := testenv.Embedded(t)
	h := newHarness(t, env)
	var buf syncbuf.Buffer
	h.log = bufLog(&buf)
	c := h.config()
	c.InstanceID = h.env.Prefix + "-away"
	p, err := New(c, h.deps(c))
	if err != nil {
		t.Fatal(err)
	}
	w := p.workers[0]
	t.Cleanup(w.close)
	// The broker refuses pings (Metadata requests) by closing the
	// connection, until the worker says it waits (at most 5 times).
	var refused atomic.Int32
	env.Stack.Kafka.ControlKey(int16(kmsg.Metadata), func(kmsg.Request) (kmsg.Response, error, bool) {
		if strings.Contains(buf.String(), "kafka unavailable; waiting") || refused.Load() >= 5 {
			return nil, nil, false
		}
		refused.Add(1)
		env.Stack.Kafka.KeepControl()
		return nil, errors.New("test: broker away"), true
	})
	if err := w.renewSession(context.Background(), errors.New("test: session failed")); err != nil {
		t.Fatal(err)
	}
	if n := len(linesWith(t, &buf, "kafka unavailable; waiting")); n == 0 {
		t.Fatalf("no waiting line while the broker refused %d pings:\n%s", refused.Load(), buf.String())
	}
	if n := len(linesWith(t, &buf, "kafka available again; resuming")); n != 1 {
		t.Fatalf("%d resuming lines, want 1:\n%s", n, buf.String())
	}
}

// TestRefusedClaimIsNotRetriedHot: a claim Redis refuses for good (a key
// of the wrong type under Inlet's prefix) abandoned its batch at once, and
// the batch was polled again at once: a hot loop, a warning each time.
// It now backs off as for an outage.
func TestRefusedClaimIsNotRetriedHot(t *testing.T) {
	env := testenv.Embedded(t)
	h := newHarness(t, env)
	var logs syncbuf.Buffer
	h.log = bufLog(&logs)
	h.start("a", func(c *Config) { c.Workers = 1 })
	h.send("stripe", "payment_intent.succeeded", "evt_w1", "2024-06-20", envelope.ChannelWebhook, paymentIntent("evt_w1", "pi_w1", "succeeded", 1700000000))
	h.waitAll(1)
	// The key evt_w1 was claimed under, for evt_w2: a list, not a string.
	var key string
	for _, k := range env.Stack.Miniredis.Keys() {
		if strings.HasSuffix(k, "evt_w1") {
			key = strings.TrimSuffix(k, "evt_w1") + "evt_w2"
		}
	}
	if key == "" {
		t.Fatalf("no Redis key names evt_w1: %v", env.Stack.Miniredis.Keys())
	}
	if _, err := env.Stack.Miniredis.Push(key, "not Inlet's"); err != nil {
		t.Fatal(err)
	}
	h.send("stripe", "payment_intent.succeeded", "evt_w2", "2024-06-20", envelope.ChannelWebhook, paymentIntent("evt_w2", "pi_w2", "succeeded", 1700000001))
	testenv.Eventually(t, 10*time.Second, "the batch abandoned on the refused claim", func() bool {
		return len(linesWith(t, &logs, "batch abandoned before writing; it will be redelivered")) > 0
	})
	first := len(linesWith(t, &logs, "batch abandoned before writing; it will be redelivered"))
	// Backing off from 50 ms to the 5 s cap, 2 s holds about 5 more
	// abandons; polled again at once, hundreds.
	deadline := time.Now().Add(2 * time.Second)
	testenv.Eventually(t, 5*time.Second, "2 s to pass", func() bool { return time.Now().After(deadline) })
	if n := len(linesWith(t, &logs, "batch abandoned before writing; it will be redelivered")) - first; n > 20 {
		t.Fatalf("%d abandons of the same batch in 2 s: it is retried hot", n)
	}
	if got := h.total(Processed); got != 1 {
		t.Fatalf("processed %d, want only evt_w1", got)
	}
}

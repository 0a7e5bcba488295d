package processor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/router"
	"github.com/inletdev/inlet/pkg/store"
	"github.com/inletdev/inlet/pkg/testenv"
	"github.com/inletdev/inlet/pkg/testenv/syncbuf"
)

// failAfter lets a pipeline run, then reports an error: Redis applied the
// commands but the answer was lost, as when a connection drops mid-reply.
type failAfter struct{ on bool }

func (f *failAfter) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (f *failAfter) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (f *failAfter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if f.on {
			return errors.New("reply lost")
		}
		return err
	}
}

// TestClaimReturnsWhatItMayHoldOnError: a claim round that fails after
// Redis took its keys returns them, so the abandoned batch releases them;
// they blocked the redelivered batch (a new token) until their lease ran
// out.
func TestClaimReturnsWhatItMayHoldOnError(t *testing.T) {
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr(), MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	hook := &failAfter{on: true}
	rdb.AddHook(hook)
	st := store.New(rdb, store.ClaimLease(time.Minute))
	p := &Processor{cfg: DefaultConfig(), d: Deps{Store: st}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	items := []*item{
		{rec: &kgo.Record{Topic: "raw", Offset: 1}, out: &router.Output{EntityKey: "e1"}, dedup: "dedup:s:1", lock: "lock:e1"},
		{rec: &kgo.Record{Topic: "raw", Offset: 2}, out: &router.Output{EntityKey: "e2"}, dedup: "dedup:s:2", lock: "lock:e2"},
	}
	ctx := context.Background()
	token := store.NewToken()
	held, _, err := p.claim(ctx, ctx, items, token, time.Now().Add(time.Second), nil, nil)
	if err == nil {
		t.Fatal("claim succeeded through a lost reply")
	}
	if len(held) != 4 {
		t.Fatalf("claim returned %v, want the 4 keys it may hold", held)
	}
	hook.on = false
	p.release(ctx, ctx, held, token)
	res, err := st.ClaimBatch(ctx, []string{"dedup:s:1", "lock:e1", "dedup:s:2", "lock:e2"}, store.NewToken())
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r != store.ClaimAcquired {
			t.Fatalf("key %d is %v after the release, want it free for the redelivery", i, r)
		}
	}
}

// TestClaimWaitLetsTheGroupRebalance guards that a batch waiting for
// claims another member holds (here a dead member's entity lock) gives way
// to a rebalance: it held the whole group's rebalance up to the batch
// deadline, so a member joining or leaving stalled every member for 30 s.
func TestClaimWaitLetsTheGroupRebalance(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t))
	mod := func(c *Config) {
		c.Workers, c.BatchDeadline, c.DrainTimeout, c.ClaimLease, c.TxnTimeout = 1, 30*time.Second, 4*time.Second, 60*time.Second, 60*time.Second
	}
	st := store.New(h.rdb, store.KeyPrefix(h.prefix), store.ClaimLease(time.Minute))
	dead := store.NewToken()
	if _, err := st.ClaimBatch(context.Background(), []string{"lock:stripe:pi:pi_held"}, dead); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.ReleaseBatch(context.Background(), []string{"lock:stripe:pi:pi_held"}, dead) })
	prod := h.env.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	put := func(id, pi string, part int32) {
		r, err := h.rawRecord(id, paymentIntent(id, pi, "succeeded", 1700000000))
		if err != nil {
			t.Fatal(err)
		}
		r.Partition = part
		if err := prod.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	put("evt_held", "pi_held", 0)
	a := h.start("a", mod)
	testenv.Eventually(t, 10*time.Second, "a to join the group", func() bool { return a.p.workers[0].syncedGen.Load() > 0 })
	for i := range 5 {
		put(fmt.Sprintf("evt_free1_%d", i), fmt.Sprintf("pi_free1_%d", i), 1)
		put(fmt.Sprintf("evt_free2_%d", i), fmt.Sprintf("pi_free2_%d", i), 2)
	}
	h.start("b", mod)
	// Well before the batch deadline: the waiting batch gave way, and the
	// member without partition 0 processes its partition.
	testenv.Eventually(t, 15*time.Second, "events on other partitions to be processed while the lock is held", func() bool {
		return h.total(Processed) >= 5
	})
	if n := h.total(Processed) + h.total(Duplicate) + h.total(Retried) + h.total(DeadLetter); n > 10 {
		t.Errorf("%d outcomes for 10 free events", n)
	}
}

// TestCrashedWorkersLocksFreeTheirEntitiesSoon: a worker that dies holding
// an entity's lock held up that entity's events on every partition until
// the claim lease ended (measured at the defaults: 63–66 s before every
// partition flowed again). Locks now take their own short lease, renewed
// by a live batch: another partition's event of the entity waits about
// -lock-lease, while the dead batch's own events still wait for their
// dedup claims (-claim-lease), which must outlive a commit.
func TestCrashedWorkersLocksFreeTheirEntitiesSoon(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t))
	mod := func(c *Config) {
		c.Workers, c.ClaimLease, c.TxnTimeout, c.LockLease = 1, 20*time.Second, 20*time.Second, time.Second
	}
	prod := h.env.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	put := func(id string, part int32) {
		r, err := h.rawRecord(id, paymentIntent(id, "pi_shared", "processing", 1700000000))
		if err != nil {
			t.Fatal(err)
		}
		r.Partition = part
		if err := prod.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	put("evt_dead", 0)
	var crashed atomic.Bool
	a := h.startHooked("dies", func(c *Config) { mod(c) }, func() bool { crashed.Store(true); return true })
	testenv.Eventually(t, 30*time.Second, "the first processor to crash holding the entity's lock", crashed.Load)
	if err := <-a.done; !errors.Is(err, errCrashed) {
		t.Fatalf("crashed processor returned %v", err)
	}
	a.done <- nil
	crashedAt := time.Now()
	lock := h.prefix + "dedup:lock:stripe:pi:pi_shared"
	if pttl := h.rdb.PTTL(context.Background(), lock).Val(); pttl > time.Second {
		t.Errorf("the dead worker's entity lock lives %v more, want at most -lock-lease (1s)", pttl)
	}
	put("evt_live", 2)
	// One partition per worker: the dead batch's partition waits for its
	// dedup claim, the others only for the lock.
	h.start("b", func(c *Config) { mod(c); c.Workers = 3 })
	testenv.Eventually(t, 10*time.Second, "the entity's event on another partition to be processed", func() bool {
		return eventIDs(h, 0)["evt_live"] == 1
	})
	if since := time.Since(crashedAt); since >= 20*time.Second {
		t.Fatalf("processed %v after the crash: not before the claim lease", since)
	}
	// Nothing lost: the dead batch's event has its outcome too. It shares
	// the entity and the business time with evt_live, which was received
	// after it: decided first, it is processed again and evt_live then
	// applies over it; decided after evt_live, it is stale (of equal
	// times the later received wins). Either way one outcome each, and the
	// entity ends at evt_live.
	h.waitAll(2)
	p, st := h.total(Processed), h.total(Stale)
	if p+st != 2 || p < 1 {
		t.Fatalf("processed %d stale %d, want evt_live processed and evt_dead processed or stale", p, st)
	}
	if ids := eventIDs(h, int(p)); ids["evt_live"] != 1 || ids["evt_dead"] != int(p)-1 {
		t.Errorf("outputs per event %v, want evt_live's and, unless it was stale, evt_dead's", ids)
	}
	ent, ok, err := storeFor(h).Entity(context.Background(), "stripe:pi:pi_shared")
	if err != nil || !ok || ent.EventID != "evt_live" {
		t.Errorf("entity holds %q (%v, %v), want evt_live", ent.EventID, ok, err)
	}
}

// TestBatchThatDecompressesTooLargeStopsOnlyItsPartition: a zstd batch a
// few KiB on the wire that decompresses to 68 MiB (no Inlet producer
// writes one) took that much heap per fetch, up to franz-go's 1 GiB
// default, and again after every restart. It now stops its partition with
// an error naming where it is and where to skip to; the other partitions
// go on.
func TestBatchThatDecompressesTooLargeStopsOnlyItsPartition(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t))
	var logs syncbuf.Buffer
	h.log = bufLog(&logs)
	bomb := h.env.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(time.Second),
		kgo.ProducerBatchCompression(kgo.ZstdCompression()), kgo.ProducerBatchMaxBytes(96<<20), kgo.MaxBufferedBytes(256<<20))
	zeros := make([]byte, 4<<20)
	var recs []*kgo.Record
	for range 17 {
		recs = append(recs, &kgo.Record{Topic: h.topics.Raw, Partition: 0, Value: zeros})
	}
	if err := bomb.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	good, err := h.rawRecord("evt_beside", paymentIntent("evt_beside", "pi_beside", "succeeded", 1700000000))
	if err != nil {
		t.Fatal(err)
	}
	good.Partition = 1
	if err := bomb.ProduceSync(context.Background(), good).FirstErr(); err != nil {
		t.Fatal(err)
	}
	h.start("a", func(c *Config) { c.Workers = 1 })
	msg := "a record batch decompresses to more than any Inlet producer writes; this partition is stopped at it until the group is moved past it (docs/runbooks/processor-lag.md)"
	testenv.Eventually(t, 20*time.Second, "the error naming the batch", func() bool { return len(linesWith(t, &logs, msg)) > 0 })
	line := linesWith(t, &logs, msg)[0]
	if got := fmt.Sprint(line["level"], " ", line["partition"], " ", line["offset"], " ", line["skip_to"]); got != "ERROR 0 0 17" {
		t.Errorf("log line %v: want an error naming partition 0, offset 0, skip_to 17", line)
	}
	testenv.Eventually(t, 20*time.Second, "the event on another partition to be processed", func() bool {
		return eventIDs(h, 0)["evt_beside"] == 1
	})
}

// TestTombstonesOnTheRawTopicAreNoEvents: a tombstone written to the
// compacted raw topic (an erasure of a payload, by another producer) went
// to the invalid topic as undecodable and raised the invalid alert. It is
// skipped, said once per batch, and its offset committed with the rest.
func TestTombstonesOnTheRawTopicAreNoEvents(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t))
	var logs syncbuf.Buffer
	h.log = bufLog(&logs)
	prod := h.env.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ev, err := h.rawRecord("evt_after_erasure", paymentIntent("evt_after_erasure", "pi_e", "succeeded", 1700000000))
	if err != nil {
		t.Fatal(err)
	}
	tomb := &kgo.Record{Topic: h.topics.Raw, Partition: 0, Key: []byte("stripe:evt_erased")}
	ev.Partition = 0
	if err := prod.ProduceSync(context.Background(), tomb, ev).FirstErr(); err != nil {
		t.Fatal(err)
	}
	r := h.start("a", nil)
	h.waitAll(1)
	if n := h.total(Invalid); n != 0 {
		t.Fatalf("%d invalid outcomes, want the tombstone skipped", n)
	}
	lines := linesWith(t, &logs, "tombstones on the raw topic skipped: deletions of their keys by another producer, not events")
	if len(lines) != 1 || fmt.Sprint(lines[0]["count"]) != "1" || lines[0]["first"] != h.topics.Raw+"/0/0" {
		t.Fatalf("log lines %v, want one naming %s/0/0", lines, h.topics.Raw)
	}
	// Committed: a new member starts after it.
	r.stop(t)
	h.start("b", nil)
	h.send("stripe", "payment_intent.succeeded", "evt_later", "2024-06-20", "webhook", paymentIntent("evt_later", "pi_l", "succeeded", 1700000001))
	h.waitAll(2)
	if n := h.total(Invalid); n != 0 {
		t.Fatalf("%d invalid outcomes after a restart, want the tombstone's offset committed", n)
	}
}

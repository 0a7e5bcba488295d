package processor

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/history"
	"github.com/inletdev/inlet/pkg/store"
	"github.com/inletdev/inlet/pkg/testenv"
	"github.com/inletdev/inlet/pkg/testenv/redisha"
)

// The processor on highly available Redis: Redis Cluster (keys spread over
// three masters) and Sentinel (a failover while events flow). Kafka and
// the registry are the embedded ones; only Redis is real.

// startOn runs a processor of h whose store and history are on rdb rather
// than the Env's Redis, until stop (or the test's end).
func (h *harness) startOn(rdb redis.UniversalClient, id string, opts ...store.Opt) *running {
	h.t.Helper()
	cfg := h.config()
	cfg.InstanceID = h.env.Prefix + "-" + id
	d := h.deps(cfg)
	d.Store = store.New(rdb, append([]store.Opt{store.KeyPrefix(h.prefix), store.ClaimLease(cfg.ClaimLease), store.LockLease(cfg.LockLease)}, opts...)...)
	d.History = history.New(rdb, h.prefix, time.Hour)
	p, err := New(cfg, d)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.run(p)
}

// invoice is a billing event of invoice id at business time at.
func invoice(typ, id string, at time.Time) []byte {
	return fmt.Appendf(nil, `{"type":%q,"timestamp":%q,"data":{"id":%q}}`, typ, at.Format(time.RFC3339), id)
}

// sendInvoice sends invoice.paid of inv_<n> as delivery msg (a new
// delivery id each time: a redelivery by a sender, deduplicated by the
// natural key).
func (h *harness) sendInvoice(msg string, n int, at time.Time) {
	h.t.Helper()
	h.send("billing", "invoice.paid", msg, "v1", envelope.ChannelWebhook, invoice("invoice.paid", fmt.Sprintf("inv_%d", n), at))
}

// checkOutputs fails t unless the processed topic holds exactly want
// records, none for the same delivery twice.
func (h *harness) checkOutputs(want int) {
	h.t.Helper()
	out := h.processed(want)
	seen := map[string]bool{}
	for _, r := range out {
		c, _ := r["_h_"+HeaderCorrelationID].(string)
		if seen[c] {
			h.t.Errorf("two outputs for %s", c)
		}
		seen[c] = true
	}
	if len(out) != want {
		h.t.Fatalf("%d processed records, want %d", len(out), want)
	}
}

func (h *harness) wantCounts(processed, duplicate, stale int64) {
	h.t.Helper()
	h.waitAll(processed + duplicate + stale)
	if p, d, s := h.total(Processed), h.total(Duplicate), h.total(Stale); p != processed || d != duplicate || s != stale {
		h.t.Fatalf("processed %d duplicate %d stale %d, want %d, %d and %d", p, d, s, processed, duplicate, stale)
	}
}

// TestRedisClusterProcessing: on a Redis Cluster of three masters events
// are processed once, redeliveries dropped as duplicates, older updates
// stale, the newest state kept, and the history readable, with the keys
// on every master.
func TestRedisClusterProcessing(t *testing.T) {
	cluster := redisha.StartCluster(t)
	rdb := cluster.Client(t)
	h := newHarness(t, testenv.Embedded(t))
	h.startOn(rdb, "a")
	base := time.Date(2025, 1, 10, 12, 0, 0, 0, time.UTC)
	const n = 30
	for i := range n {
		h.sendInvoice(fmt.Sprintf("msg_%d", i), i, base)
	}
	h.wantCounts(n, 0, 0)
	// Redelivered (new delivery ids, same natural keys): all duplicates.
	for i := range n {
		h.sendInvoice(fmt.Sprintf("msg_again_%d", i), i, base)
	}
	h.wantCounts(n, n, 0)
	// Newest wins: a later update applies, an older one is stale.
	h.send("billing", "invoice.updated", "msg_newer", "v1", envelope.ChannelWebhook, invoice("invoice.updated", "inv_1", base.Add(time.Hour)))
	h.wantCounts(n+1, n, 0)
	h.send("billing", "invoice.voided", "msg_older", "v1", envelope.ChannelWebhook, invoice("invoice.voided", "inv_1", base.Add(-time.Hour)))
	h.wantCounts(n+1, n, 1)
	h.checkOutputs(n + 1)

	ctx := context.Background()
	st := store.New(rdb, store.KeyPrefix(h.prefix))
	if e, ok, err := st.Entity(ctx, "billing:inv_1"); err != nil || !ok || e.EventID != "msg_newer" {
		t.Fatalf("entity %+v %v %v, want msg_newer's", e, ok, err)
	}
	hist, err := history.New(rdb, h.prefix, time.Hour).Read(ctx, "corr-msg_again_3")
	if err != nil || len(hist.Entries) == 0 || hist.Entries[len(hist.Entries)-1].Outcome != string(Duplicate) {
		t.Fatalf("history %+v, %v; want the duplicate's", hist, err)
	}
	// The keys are spread over the masters (no hash tags): the batches'
	// pipelines and script calls crossed slots and nodes.
	var mu sync.Mutex
	masters := 0
	err = rdb.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		keys, _, err := c.Scan(ctx, 0, h.prefix+"*", 1000).Result()
		mu.Lock()
		defer mu.Unlock()
		if len(keys) > 0 {
			masters++
		}
		return err
	})
	if err != nil || masters != len(cluster.Addrs) {
		t.Fatalf("keys on %d masters of %d (%v), want every one", masters, len(cluster.Addrs), err)
	}
}

// TestRedisSentinelFailover: through Sentinel the processor follows a
// failover made while events flow, waiting out the switch as it waits out
// any Redis outage, and goes on with the new master: no event is lost,
// redeliveries of the events processed before the failover are all
// duplicates, and what comes after is written to the new master.
//
// The servers run with min-replicas-to-write 1, as the operator's guide
// asks of Sentinel: go-redis's failover client keeps using pooled
// connections to the old master for seconds after the switch, and without
// it the old master (until the sentinel makes it a replica) takes dedup
// keys that are then lost, so their events' redeliveries were processed
// again (measured: 13 to 28 of about 80 events sent during the failover).
// With it the old master refuses writes (NOREPLICAS, which the processor
// waits out) from the moment its replica is promoted, and the new one
// until the old one replicates from it. Redis replicates asynchronously,
// so the write in flight at the promotion can still be lost: what was
// processed twice is logged, not failed on. With -redis-wait-replicas 1
// (store.WaitReplicas) nothing may be processed twice: no batch commits
// before its done keys and entity states are on the replica.
func TestRedisSentinelFailover(t *testing.T) {
	t.Run("asynchronous", func(t *testing.T) { testSentinelFailover(t, false) })
	t.Run("waiting for the replica", func(t *testing.T) { testSentinelFailover(t, true) })
}

func testSentinelFailover(t *testing.T, wait bool) {
	sentinel := redisha.StartSentinel(t, "--min-replicas-to-write", "1", "--min-replicas-max-lag", "10")
	rdb := sentinel.Client(t)
	h := newHarness(t, testenv.Embedded(t))
	var opts []store.Opt
	if wait {
		opts = append(opts, store.WaitReplicas(1, 500*time.Millisecond))
	}
	h.startOn(rdb, "a", opts...)
	base := time.Date(2025, 1, 10, 12, 0, 0, 0, time.UTC)
	ctx := context.Background()
	const before = 20
	for i := range before {
		h.sendInvoice(fmt.Sprintf("msg_%d", i), i, base)
	}
	h.wantCounts(before, 0, 0)
	// On the replica before the failover: what the new master will have.
	if n, err := rdb.Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT: %d replicas, %v", n, err)
	}

	// Events keep coming while the sentinel fails the master over.
	stop := make(chan struct{})
	sent := make(chan int)
	go func() {
		i := before
		defer func() { sent <- i - before }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			h.sendInvoice(fmt.Sprintf("msg_%d", i), i, base)
			i++
			time.Sleep(10 * time.Millisecond) // a steady trickle, not a flood
		}
	}()
	oldMaster := sentinel.MasterAddr(t)
	newMaster, took := sentinel.Failover(t)
	close(stop)
	during := <-sent
	t.Logf("failover %s -> %s took %v; %d events sent meanwhile", oldMaster, newMaster, took, during)

	after := time.Now()
	h.sendInvoice("msg_after", 1000, base)
	h.waitAll(before + int64(during) + 1)
	t.Logf("the first event sent after the failover was processed %v later", time.Since(after))
	// Every event so far delivered again, and an older update.
	total := before + during
	for i := range total {
		h.sendInvoice(fmt.Sprintf("msg_again_%d", i), i, base)
	}
	h.send("billing", "invoice.voided", "msg_older", "v1", envelope.ChannelWebhook, invoice("invoice.voided", "inv_1", base.Add(-time.Hour)))
	deliveries := 2*int64(total) + 2
	h.waitAll(deliveries)
	if s, p, d := h.total(Stale), h.total(Processed), h.total(Duplicate); s != 1 || p+d+s != deliveries {
		t.Fatalf("processed %d duplicate %d stale %d of %d deliveries, want 1 stale and nothing else", p, d, s, deliveries)
	}

	outputs := map[string]int{} // by delivery
	for _, r := range h.processed(int(h.total(Processed))) {
		c, _ := r["_h_"+HeaderCorrelationID].(string)
		outputs[strings.TrimPrefix(c, "corr-")]++
	}
	var doubled []int
	for i := range total {
		if outputs[fmt.Sprintf("msg_%d", i)] != 1 {
			t.Errorf("event %d: %d outputs of its first delivery, want 1 (lost or written twice)", i, outputs[fmt.Sprintf("msg_%d", i)])
		}
		if outputs[fmt.Sprintf("msg_again_%d", i)] > 0 {
			doubled = append(doubled, i)
		}
	}
	if len(doubled) > 0 && doubled[0] < before {
		t.Fatalf("redeliveries of events processed before the failover were processed again: %v", doubled)
	}
	if wait && len(doubled) > 0 {
		t.Fatalf("waiting for the replica, redeliveries of %d events sent during the failover were processed again: %v", len(doubled), doubled)
	}
	t.Logf("lost 0; processed twice: %d of the %d events sent during the failover %v", len(doubled), during, doubled)
	if outputs["msg_after"] != 1 {
		t.Fatal("the event sent after the failover was not processed once")
	}
	if got := sentinel.MasterAddr(t); got != newMaster {
		t.Fatalf("the master is %s, want %s", got, newMaster)
	}
	master := redis.NewClient(&redis.Options{Addr: newMaster})
	defer master.Close()
	if n := master.Exists(ctx, h.prefix+"entity:billing:inv_1000").Val(); n != 1 {
		t.Fatal("the entity of the event after the failover is not on the new master")
	}
}

// TestRedisReplicaWaitHoldsTheCommit: with -redis-wait-replicas 1, while
// the replica acknowledges nothing (DEBUG SLEEP stalls it) no event is
// committed as processed (a duplicate of one the replica has may be: it
// writes nothing), and once it answers again the events waiting are
// processed, each once.
func TestRedisReplicaWaitHoldsTheCommit(t *testing.T) {
	sentinel := redisha.StartSentinel(t, "--enable-debug-command", "local")
	master := redis.NewClient(&redis.Options{Addr: sentinel.Nodes[0]})
	defer master.Close()
	replica := redis.NewClient(&redis.Options{Addr: sentinel.Nodes[1]})
	defer replica.Close()
	h := newHarness(t, testenv.Embedded(t))
	h.startOn(master, "a", store.WaitReplicas(1, 200*time.Millisecond))
	base := time.Date(2025, 1, 10, 12, 0, 0, 0, time.UTC)
	h.sendInvoice("msg_0", 0, base)
	h.wantCounts(1, 0, 0)

	slept := make(chan error, 1)
	go func() { slept <- replica.Do(context.Background(), "DEBUG", "SLEEP", "4").Err() }()
	testenv.Eventually(t, 5*time.Second, "the replica to stall", func() bool {
		probe := redis.NewClient(&redis.Options{Addr: sentinel.Nodes[1], MaxRetries: -1, ReadTimeout: 50 * time.Millisecond})
		defer probe.Close()
		return probe.Ping(context.Background()).Err() != nil
	})
	h.sendInvoice("msg_1", 1, base)
	h.sendInvoice("msg_0_again", 0, base)
	// Watched for as long as the replica stalls: no processed event may
	// commit.
	for stalled := true; stalled; {
		select {
		case err := <-slept:
			if err != nil {
				t.Fatalf("DEBUG SLEEP: %v", err)
			}
			stalled = false
		case <-time.After(20 * time.Millisecond):
		}
		if n := h.total(Processed); n > 1 && stalled {
			t.Fatalf("%d events committed as processed while the replica acknowledged nothing, want 1", n)
		}
	}
	h.wantCounts(2, 1, 0)
	h.checkOutputs(2)
}

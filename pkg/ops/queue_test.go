package ops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/retry"
	"github.com/inletdev/inlet/pkg/testenv"
)

// testConcurrentDecisionsActOnce: two operators deciding the same entry at
// the same time (a requeue from the CLI, a discard from the API) cannot
// both act: exactly one decision is audited, and the event is requeued
// only if that one was the requeue.
func testConcurrentDecisionsActOnce(t *testing.T, newEnv func(testing.TB) *testenv.Env) {
	env := newEnv(t)
	ctx := context.Background()
	tp := env.CreateTopics(t, nil)
	codec := env.Codec(t, tp)
	env.DeadLetter(t, tp, codec, "shop", "orders/updated", "wh-1", "sink answered 503")
	operator := func() *Queues {
		q, err := New([]kgo.Opt{kgo.SeedBrokers(env.Brokers...)}, tp, codec)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(q.Close)
		testenv.Eventually(t, 20*time.Second, "the entry to be listed", func() bool {
			es, err := q.List(ctx, tp.DLQ, Filter{Unresolved: true})
			return err == nil && len(es) == 1
		})
		return q
	}
	alice, bob := operator(), operator()
	var wg sync.WaitGroup
	var requeued, discarded Decided
	var rerr, derr error
	wg.Go(func() {
		requeued, rerr = alice.Requeue(ctx, tp.DLQ, Filter{Source: "shop"}, "alice", "sink fixed", false)
	})
	wg.Go(func() {
		discarded, derr = bob.Discard(ctx, tp.DLQ, Filter{Source: "shop"}, "bob", "order cancelled", false)
	})
	wg.Wait()
	t.Logf("requeue: %d entries, %v; discard: %d entries, %v", requeued.Count, rerr, discarded.Count, derr)
	actedR, actedD := rerr == nil && requeued.Count == 1, derr == nil && discarded.Count == 1
	if actedR == actedD {
		t.Fatalf("requeue acted %v, discard acted %v: want exactly one", actedR, actedD)
	}
	// The other found the entry decided (no entries), or was fenced and
	// says so, or (Apache Kafka 4.4, transactions v2) had its commit
	// answered UNKNOWN_SERVER_ERROR: the broker's coordinator meets the
	// EndTxn while the other's InitProducerID is fencing the epoch
	// ("IllegalStateException: Preparing transaction state transition to
	// ONGOING while it already a pending state PREPARE_EPOCH_FENCE" in its
	// log), so the client cannot know and says so (kafka.ErrUnconfirmed).
	// The audit below shows it did not land.
	for _, err := range []error{rerr, derr} {
		if err != nil && !strings.Contains(err.Error(), "another decision started meanwhile") && !errors.Is(err, kafka.ErrUnconfirmed) {
			t.Errorf("the refused decision's error does not say why: %v", err)
		}
	}
	audit := env.ReadAll(t, tp.Audit, 1, 500*time.Millisecond, 10*time.Second)
	if len(audit) != 1 {
		t.Fatalf("%d audit records, want 1", len(audit))
	}
	want := 0
	if actedR {
		want = 1
	}
	if got := env.ReadAll(t, tp.Retry[0], want, 500*time.Millisecond, 10*time.Second); len(got) != want {
		t.Fatalf("%d records requeued, want %d", len(got), want)
	}
}

// testDepthCountsUnresolved: Depth (which streams and decodes nothing)
// agrees with listing the unresolved entries.
func testDepthCountsUnresolved(t *testing.T, newEnv func(testing.TB) *testenv.Env) {
	_, tp, q := deadLettered(t, newEnv, 3)
	ctx := context.Background()
	es, err := q.List(ctx, tp.DLQ, Filter{})
	if err != nil || len(es) != 3 {
		t.Fatalf("list: %d, %v", len(es), err)
	}
	if _, err := q.Discard(ctx, tp.DLQ, Filter{IDs: []string{es[1].ID}}, "test", "cancelled", false); err != nil {
		t.Fatal(err)
	}
	unresolved, err := q.List(ctx, tp.DLQ, Filter{Unresolved: true})
	if err != nil {
		t.Fatal(err)
	}
	n, err := q.Depth(ctx, tp.DLQ)
	if err != nil || n != 2 || n != len(unresolved) {
		t.Fatalf("depth %d (%v), %d unresolved listed; want 2 and 2", n, err, len(unresolved))
	}
}

// testPagesWalkTheQueueOnce: following Next from the first page visits
// every matching entry exactly once, in log order, each page within its
// limit and every page counting the same total; groups count the same
// entries. Page keeps at most twice its limit while reading, so 23 entries
// in pages of 4 exercise the cut several times.
func testPagesWalkTheQueueOnce(t *testing.T, newEnv func(testing.TB) *testenv.Env) {
	env := newEnv(t)
	ctx := context.Background()
	tp := env.CreateTopics(t, nil)
	codec := env.Codec(t, tp)
	for i := range 24 {
		src, msg := "shop", "sink answered 503"
		if i%3 == 0 {
			src, msg = "stripe", "sink answered 400"
		}
		env.DeadLetter(t, tp, codec, src, "orders/updated", fmt.Sprintf("wh-%02d", i), msg)
	}
	q, err := New([]kgo.Opt{kgo.SeedBrokers(env.Brokers...)}, tp, codec)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	all, err := q.List(ctx, tp.DLQ, Filter{})
	if err != nil || len(all) != 24 {
		t.Fatalf("list: %d, %v", len(all), err)
	}
	if _, err := q.Discard(ctx, tp.DLQ, Filter{IDs: []string{all[5].ID}}, "test", "cancelled", false); err != nil {
		t.Fatal(err)
	}
	f := Filter{Unresolved: true}
	seen := map[string]bool{}
	var walked []*Entry
	cursor, pages := "", 0
	for {
		l, err := q.Page(ctx, tp.DLQ, f, cursor, 4)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if l.Total != 23 || len(l.Entries) > 4 || (l.Next != "" && len(l.Entries) != 4) {
			t.Fatalf("page %d: total %d, %d entries, next %q", pages, l.Total, len(l.Entries), l.Next)
		}
		for _, e := range l.Entries {
			if seen[e.ID] || e.Decision != nil {
				t.Fatalf("page %d: %s seen before or decided (%v)", pages, e.ID, e.Decision)
			}
			seen[e.ID] = true
			walked = append(walked, e)
		}
		if l.Next == "" {
			break
		}
		if pages > 10 {
			t.Fatal("more pages than entries")
		}
		cursor = l.Next
	}
	if len(walked) != 23 || pages != 6 {
		t.Fatalf("walked %d entries in %d pages, want 23 in 6", len(walked), pages)
	}
	for i := 1; i < len(walked); i++ {
		if position(walked[i]).before(position(walked[i-1])) {
			t.Fatalf("%s listed after %s but comes before it in log order", walked[i].ID, walked[i-1].ID)
		}
	}
	groups, n, err := q.Groups(ctx, tp.DLQ, f)
	if err != nil || n != 23 || len(groups) != 2 || groups[0].Count+groups[1].Count != 23 {
		t.Fatalf("groups %+v, %d counted, %v", groups, n, err)
	}
	for _, bad := range []string{"x", "1", "1_2_3", "a_1", "1_b", "-1_2", "1_-3", "99999999999_2", "_"} {
		if _, err := q.Page(ctx, tp.DLQ, f, bad, 4); !errors.Is(err, ErrBadPage) {
			t.Errorf("cursor %q: %v, want ErrBadPage", bad, err)
		}
	}
	if _, err := q.Page(ctx, tp.DLQ, f, "", -1); !errors.Is(err, ErrBadPage) {
		t.Errorf("limit -1: %v, want ErrBadPage", err)
	}
}

// testDecisionsCommitAsTheyGo: a decision over more entries than a chunk
// commits chunk by chunk; one stopped midway (here a concurrent decision
// takes the queue's transactional id) keeps what it committed, says how
// much, and running it again decides the rest, each entry once.
func testDecisionsCommitAsTheyGo(t *testing.T, newEnv func(testing.TB) *testenv.Env) {
	env, tp, q := deadLettered(t, newEnv, 9)
	ctx := context.Background()
	defer func(c int, a time.Duration) { decideChunk, decideAge, afterCommit = c, a, nil }(decideChunk, decideAge)
	decideChunk = 2
	commits := 0
	afterCommit = func() {
		if commits++; commits == 2 {
			// Another operator's decision starts: it takes the id.
			other, err := kgo.NewClient(kgo.SeedBrokers(env.Brokers...), kgo.TransactionalID(TxnID(tp)))
			if err != nil {
				t.Error(err)
				return
			}
			defer other.Close()
			if _, _, err := other.ProducerID(ctx); err != nil {
				t.Error(err)
			}
		}
	}
	first, err := q.Requeue(ctx, tp.DLQ, Filter{Source: "shop"}, "alice", "sink fixed", false)
	if err == nil || !strings.Contains(err.Error(), "4 entries were decided before it and stand") || first.Count != 4 || len(first.Entries) != 4 {
		t.Fatalf("first run: %d decided (%d shown), %v; want 4 and an error saying so", first.Count, len(first.Entries), err)
	}
	afterCommit = nil
	decideAge = 0 // and a transaction per entry: the age bound
	second, err := q.Requeue(ctx, tp.DLQ, Filter{Source: "shop"}, "alice", "sink fixed", false)
	if errors.Is(err, kerr.OutOfOrderSequenceNumber) {
		// kfake on a loaded machine (CI) has refused a record of a
		// transaction begun right after the last one's commit. The
		// decision then keeps what it committed and says to run it again,
		// as an operator would: the rest is decided, each entry once.
		t.Logf("second run refused a record (%v); running it again", err)
		more, merr := q.Requeue(ctx, tp.DLQ, Filter{Source: "shop"}, "alice", "sink fixed", false)
		second.Count, second.Entries, err = second.Count+more.Count, append(second.Entries, more.Entries...), merr
	}
	if err != nil || second.Count != 5 {
		t.Fatalf("second run: %d decided, %v; want the other 5", second.Count, err)
	}
	seen := map[string]bool{}
	for _, e := range append(first.Entries, second.Entries...) {
		if seen[e.ID] || e.Payload != nil {
			t.Fatalf("%s decided twice, or kept its payload", e.ID)
		}
		seen[e.ID] = true
	}
	if got := env.ReadAll(t, tp.Retry[0], 9, 500*time.Millisecond, 10*time.Second); len(got) != 9 {
		t.Fatalf("%d records requeued, want 9", len(got))
	}
	if n, err := q.Depth(ctx, tp.DLQ); err != nil || n != 0 {
		t.Fatalf("depth %d (%v), want 0", n, err)
	}
	page, err := q.Page(ctx, tp.DLQ, Filter{}, "", 3)
	if err != nil || len(page.Entries) != 3 || page.Entries[0].Payload != nil {
		t.Fatalf("page: %d entries (%v), payload kept: %v", len(page.Entries), err, len(page.Entries) > 0 && page.Entries[0].Payload != nil)
	}
	if all, err := q.List(ctx, tp.DLQ, Filter{}); err != nil || len(all) != 9 || all[0].Payload == nil {
		t.Fatalf("list: %d entries (%v), want 9 with payloads", len(all), err)
	}
}

// testACommitTheClientAbortedIsWrittenAgain: a chunk whose commit the
// Kafka client turned into an abort (franz-go 1.22.3 did, see
// kafka.ErrClientAborted) is written again in a new transaction, and the
// decision goes on: each entry requeued once. Before, the decision stopped
// there and blamed another operator's. Aborted every time, it stops after
// a few tries and says what happened, nothing written.
func testACommitTheClientAbortedIsWrittenAgain(t *testing.T, newEnv func(testing.TB) *testenv.Env) {
	env, tp, q := deadLettered(t, newEnv, 5)
	ctx := context.Background()
	defer func(c, b int) {
		decideChunk, decideBytes, commitChunk, afterCommit = c, b, (*kafka.Chunks).Commit, nil
	}(decideChunk, decideBytes)
	decideChunk = 2
	aborts, abortsLeft := 0, 0
	commitChunk = func(c *kafka.Chunks, ctx context.Context) error {
		if c.Len() == 0 || abortsLeft == 0 {
			return c.Commit(ctx)
		}
		// What franz-go did: the transaction ends as an abort.
		abortsLeft--
		aborts++
		if err := c.Abort(ctx); err != nil {
			return err
		}
		return fmt.Errorf("%w (the test's)", kafka.ErrClientAborted)
	}

	abortsLeft = 100
	res, err := q.Requeue(ctx, tp.DLQ, Filter{Source: "shop"}, "alice", "sink fixed", false)
	if !errors.Is(err, kafka.ErrClientAborted) || !strings.Contains(err.Error(), "aborted a commit 4 times") || res.Count != 0 || aborts != 4 {
		t.Fatalf("every commit aborted: %d decided, %d aborts, %v; want none decided after 4 aborts, and an error saying so", res.Count, aborts, err)
	}
	if n, err := q.Depth(ctx, tp.DLQ); err != nil || n != 5 {
		t.Fatalf("depth after the failed requeue: %d (%v), want 5", n, err)
	}

	// Chunks bounded by bytes this time: an entry each.
	decideChunk, decideBytes = 100, 1
	commits := 0
	afterCommit = func() { commits++ }
	aborts, abortsLeft = 0, 2 // the first chunk's commit, twice
	res, err = q.Requeue(ctx, tp.DLQ, Filter{Source: "shop"}, "alice", "sink fixed", false)
	if err != nil || res.Count != 5 || aborts != 2 || commits != 5 {
		t.Fatalf("requeue with a chunk aborted twice: %d decided in %d commits, %d aborts, %v; want 5 in 5 after 2 aborts", res.Count, commits, aborts, err)
	}
	got := env.ReadAll(t, tp.Retry[0], 5, 500*time.Millisecond, 10*time.Second)
	ids := map[string]bool{}
	for _, r := range got {
		ids[string(r.Key)] = true
	}
	if len(got) != 5 || len(ids) != 5 {
		t.Fatalf("%d records requeued under %d keys, want 5 and 5 (each entry once)", len(got), len(ids))
	}
	if n, err := q.Depth(ctx, tp.DLQ); err != nil || n != 0 {
		t.Fatalf("depth %d (%v), want 0", n, err)
	}
}

// testARetriedDecisionSeesTheFirst: while another decision (here on the
// invalid queue) holds a transaction open on the audit topic, a requeue
// fences it, and the same requeue run again finds everything decided. With
// a transactional id per queue, the open transaction hid the first
// requeue's decisions from the second (read_committed stops at it), and
// the entries were requeued twice.
func testARetriedDecisionSeesTheFirst(t *testing.T, newEnv func(testing.TB) *testenv.Env) {
	env, tp, q := deadLettered(t, newEnv, 3)
	ctx := context.Background()
	other, err := kgo.NewClient(kgo.SeedBrokers(env.Brokers...), kgo.TransactionalID(TxnID(tp)))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	id := tp.Invalid + "/0/0"
	if err := other.ProduceSync(ctx, &kgo.Record{Topic: tp.Audit, Key: []byte(id), Value: []byte(`{"id":"` + id + `","action":"discard"}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	first, err := q.Requeue(ctx, tp.DLQ, Filter{Source: "shop"}, "alice", "sink fixed", false)
	if err != nil || first.Count != 3 {
		t.Fatalf("first: %d, %v", first.Count, err)
	}
	second, err := q.Requeue(ctx, tp.DLQ, Filter{Source: "shop"}, "alice", "sink fixed", false)
	if err != nil || second.Count != 0 {
		t.Fatalf("second: %d, %v; want nothing left to decide", second.Count, err)
	}
	if got := env.ReadAll(t, tp.Retry[0], 3, 500*time.Millisecond, 10*time.Second); len(got) != 3 {
		t.Fatalf("%d records requeued for 3 entries", len(got))
	}
}

type cancelAtEndTxn struct {
	once   sync.Once
	cancel func()
}

func (h *cancelAtEndTxn) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == 26 && err == nil { // EndTxn is on the wire
		h.once.Do(h.cancel)
	}
}

// testAnUnconfirmedCommitIsNotCalledNothing: when the caller's deadline
// lands while the commit is on its way, the broker may commit: the error
// says the last entries may have been decided (it said nothing was done).
func testAnUnconfirmedCommitIsNotCalledNothing(t *testing.T, newEnv func(testing.TB) *testenv.Env) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, tp, q := deadLettered(t, newEnv, 3, kgo.WithHooks(&cancelAtEndTxn{cancel: cancel}))
	res, err := q.Requeue(ctx, tp.DLQ, Filter{Source: "shop"}, "alice", "sink fixed", false)
	if err == nil || !strings.Contains(err.Error(), "the last 3 may have been too") || res.Count != 0 {
		t.Fatalf("count %d, %v; want an error saying the last 3 may be decided", res.Count, err)
	}
}

// deadLettered is a stack (newEnv) whose DLQ holds n entries of source
// shop (event ids wh-0 …), and Queues over it (opts added), closed at
// cleanup.
func deadLettered(t *testing.T, newEnv func(testing.TB) *testenv.Env, n int, opts ...kgo.Opt) (*testenv.Env, kafka.Topics, *Queues) {
	t.Helper()
	env := newEnv(t)
	tp := env.CreateTopics(t, nil)
	codec := env.Codec(t, tp)
	for i := range n {
		env.DeadLetter(t, tp, codec, "shop", "orders/updated", fmt.Sprintf("wh-%d", i), "sink answered 503")
	}
	q, err := New(append([]kgo.Opt{kgo.SeedBrokers(env.Brokers...)}, opts...), tp, codec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	return env, tp, q
}

// The tests that need a cluster run on the embedded stack (TestOps) and on
// real Kafka and Redis (TestIntegrationOps): transactions, fencing, topic
// ids and record deletion are where kfake and Kafka could differ.
var clusterTests = []struct {
	name string
	f    func(*testing.T, func(testing.TB) *testenv.Env)
}{
	{"concurrent decisions act once", testConcurrentDecisionsActOnce},
	{"depth counts unresolved", testDepthCountsUnresolved},
	{"pages walk the queue once", testPagesWalkTheQueueOnce},
	{"decisions commit as they go", testDecisionsCommitAsTheyGo},
	{"a retried decision sees the first", testARetriedDecisionSeesTheFirst},
	{"a commit the client aborted is written again", testACommitTheClientAbortedIsWrittenAgain},
	{"an unconfirmed commit is not called nothing", testAnUnconfirmedCommitIsNotCalledNothing},
	{"tracker agrees with a full read", testTrackerAgreesWithAFullRead},
}

func TestOps(t *testing.T) {
	for _, c := range clusterTests {
		t.Run(c.name, func(t *testing.T) { c.f(t, testenv.Embedded) })
	}
}

func TestIntegrationOps(t *testing.T) {
	testenv.Real(t)
	for _, c := range clusterTests {
		t.Run(c.name, func(t *testing.T) { c.f(t, testenv.Real) })
	}
}

// withoutEvent writes to tp's DLQ, on partition p, an entry of source shop
// as the processor writes one too large for a copy with its failure
// headers: no value, inlet-value-omitted, its origin the raw record at
// offset originOffset. It returns the entry's id.
func withoutEvent(t *testing.T, env *testenv.Env, tp kafka.Topics, p int32, originOffset int) string {
	t.Helper()
	h := retry.AppendError(nil, retry.ErrorEntry{At: time.Now().UTC(), Stage: "deliver", Error: "sink answered 503"})
	h = retry.Set(h, retry.HeaderSource, "shop")
	h = retry.Set(h, retry.HeaderEventType, "orders/updated")
	h = retry.Set(h, retry.HeaderOrigin, fmt.Sprintf("%s/0/%d", tp.Raw, originOffset))
	h = retry.Set(h, retry.HeaderValueOmitted, "too large")
	cl := env.Client(t, kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	res := cl.ProduceSync(context.Background(), &kgo.Record{Topic: tp.DLQ, Partition: p, Key: []byte("shop:big"), Headers: h})
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	return retry.Coordinates(res[0].Record)
}

// TestRequeueRefusesACopyWithoutItsEvent: a dead letter too large for a
// copy with its failure headers is written without its value; requeued,
// it would come back as an undecodable event. Named alone, requeue (and
// its dry run) says where the event is instead, also when its id is given
// twice (that answered success, 0 requeued); discard works as for any
// entry.
func TestRequeueRefusesACopyWithoutItsEvent(t *testing.T) {
	env, tp, q := deadLettered(t, testenv.Embedded, 0)
	id := withoutEvent(t, env, tp, 0, 42)
	ctx := context.Background()
	for _, ids := range [][]string{{id}, {id, id}} {
		for _, dry := range []bool{true, false} {
			d, err := q.Requeue(ctx, tp.DLQ, Filter{IDs: ids}, "op", "sink fixed", dry)
			if !errors.Is(err, ErrNoEvent) || !strings.Contains(err.Error(), "holds no copy") || !strings.Contains(err.Error(), tp.Raw+"/0/42") {
				t.Fatalf("requeue %q (dry run %v): %+v, %v; want a refusal naming the raw record", ids, dry, d, err)
			}
		}
	}
	d, err := q.Discard(ctx, tp.DLQ, Filter{IDs: []string{id}}, "op", "replayed from the raw topic", false)
	if err != nil || d.Count != 1 || d.Skipped != 0 {
		t.Fatalf("discard: %+v, %v", d, err)
	}
}

// TestRequeueSkipsEntriesWithoutTheirEvent: a requeue by filter over
// [normal, without its event, normal] (one partition, in that order)
// requeues both normal entries and skips the other, reporting it with its
// origin and leaving it unresolved; its dry run reports the same. One such
// entry stopped the whole requeue there.
func TestRequeueSkipsEntriesWithoutTheirEvent(t *testing.T) {
	env, tp, q := deadLettered(t, testenv.Embedded, 0)
	codec := env.Codec(t, tp)
	first := env.DeadLetter(t, tp, codec, "shop", "orders/updated", "wh-0", "sink answered 503")
	_, p, _, _ := retry.ParseCoordinates(first)
	omitted := withoutEvent(t, env, tp, p, 42)
	// An event id whose record the default partitioner puts on p too.
	hash := kgo.StickyKeyPartitioner(nil).ForTopic(tp.DLQ)
	eid := ""
	for i := 1; eid == ""; i++ {
		if c := fmt.Sprintf("wh-%d", i); hash.Partition(&kgo.Record{Key: []byte(envelope.IdempotencyKey("shop", c))}, 3) == int(p) {
			eid = c
		}
	}
	last := env.DeadLetter(t, tp, codec, "shop", "orders/updated", eid, "sink answered 503")
	if _, lp, _, _ := retry.ParseCoordinates(last); lp != p {
		t.Fatalf("%s, %s and %s: want one partition", first, omitted, last)
	}
	ctx := context.Background()
	wantSkip := []Skip{{ID: omitted, Origin: tp.Raw + "/0/42", Reason: ReasonNoEvent}}
	check := func(name string, d Decided, err error) {
		t.Helper()
		if err != nil || d.Count != 2 || len(d.Entries) != 2 || d.Entries[0].ID != first || d.Entries[1].ID != last {
			t.Fatalf("%s: %d decided (%d shown), %v; want %s and %s", name, d.Count, len(d.Entries), err, first, last)
		}
		if d.Skipped != 1 || !slices.Equal(d.SkippedEntries, wantSkip) {
			t.Fatalf("%s: skipped %d %+v, want %+v", name, d.Skipped, d.SkippedEntries, wantSkip)
		}
	}
	f := Filter{Source: "shop"}
	dry, err := q.Requeue(ctx, tp.DLQ, f, "alice", "sink fixed", true)
	check("dry run", dry, err)
	if n, err := q.Depth(ctx, tp.DLQ); err != nil || n != 3 {
		t.Fatalf("depth after the dry run: %d (%v), want 3", n, err)
	}
	res, err := q.Requeue(ctx, tp.DLQ, f, "alice", "sink fixed", false)
	check("requeue", res, err)
	if got := env.ReadAll(t, tp.Retry[0], 2, 500*time.Millisecond, 10*time.Second); len(got) != 2 {
		t.Fatalf("%d records requeued, want 2", len(got))
	}
	if audit := env.ReadAll(t, tp.Audit, 2, 500*time.Millisecond, 10*time.Second); len(audit) != 2 {
		t.Fatalf("%d audit records, want 2 (none for the skipped entry)", len(audit))
	}
	left, err := q.List(ctx, tp.DLQ, Filter{Unresolved: true})
	if err != nil || len(left) != 1 || left[0].ID != omitted {
		t.Fatalf("unresolved after the requeue: %d entries (%v), want %s alone", len(left), err, omitted)
	}
	// Run again: nothing left to requeue, the skipped entry still reported.
	again, err := q.Requeue(ctx, tp.DLQ, f, "alice", "sink fixed", false)
	if err != nil || again.Count != 0 || again.Skipped != 1 {
		t.Fatalf("again: %d decided, %d skipped, %v; want 0 and 1", again.Count, again.Skipped, err)
	}
}

// TestDecisionsShowTheFirstEntries: a decision, and its dry run, count
// every entry decided and return the first maxShown, in log order.
func TestDecisionsShowTheFirstEntries(t *testing.T) {
	defer func(n int) { maxShown = n }(maxShown)
	maxShown = 3
	_, tp, q := deadLettered(t, testenv.Embedded, 4)
	ctx := context.Background()
	for _, dry := range []bool{true, false} {
		d, err := q.Discard(ctx, tp.DLQ, Filter{}, "op", "test", dry)
		if err != nil || d.Count != 4 || len(d.Entries) != 3 {
			t.Fatalf("dry run %v: count %d, %d entries (%v); want 4 and the first 3", dry, d.Count, len(d.Entries), err)
		}
	}
}

// TestDecisionsByIDSayWhatTheyDidNotDecide: a decision naming ids lists
// those it found no entry to decide by, each once and why, and its dry run
// the same: an id of the other queue or a mistyped offset is not on the
// queue, a decided entry is already decided (with that decision), an entry
// the filter's other fields leave out does not match; with none of the
// ids on the queue, or every one already decided, it fails saying so.
// Each answered success, having decided nothing. A decision by filter
// matching nothing still succeeds.
func TestDecisionsByIDSayWhatTheyDidNotDecide(t *testing.T) {
	env, tp, q := deadLettered(t, testenv.Embedded, 2)
	ctx := context.Background()
	es, err := q.List(ctx, tp.DLQ, Filter{})
	if err != nil || len(es) != 2 {
		t.Fatalf("list: %d, %v", len(es), err)
	}
	a, b := es[0].ID, es[1].ID
	typo := a[:strings.LastIndexByte(a, '/')+1] + "999" // an id ls would print, naming nothing
	for _, dry := range []bool{true, false} {
		d, err := q.Discard(ctx, tp.Invalid, Filter{IDs: []string{a}}, "op", "cancelled", dry)
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "is an entry of "+tp.DLQ) || d.Count != 0 ||
			!slices.Equal(d.Unmatched, []Miss{{ID: a, Reason: ReasonNotFound}}) {
			t.Fatalf("discard of a DLQ entry on %s (dry run %v): %+v, %v; want ErrNotFound naming its queue", tp.Invalid, dry, d, err)
		}
		d, err = q.Discard(ctx, tp.DLQ, Filter{IDs: []string{a, typo, a}}, "op", "cancelled", dry)
		if err != nil || d.Count != 1 || d.Entries[0].ID != a || d.Undecided() != 1 ||
			!slices.Equal(d.Unmatched, []Miss{{ID: typo, Reason: ReasonNotFound}}) {
			t.Fatalf("discard [real, typo, real] (dry run %v): %+v, %v; want %s decided and %s unmatched", dry, d, err, a, typo)
		}
	}
	for _, dry := range []bool{true, false} {
		d, err := q.Requeue(ctx, tp.DLQ, Filter{IDs: []string{a, a}}, "op", "sink fixed", dry)
		if !errors.Is(err, ErrDecided) || !strings.Contains(err.Error(), "discard by op") || d.Count != 0 || len(d.Unmatched) != 1 ||
			d.Unmatched[0].Reason != ReasonDecided || d.Unmatched[0].Decision == nil || d.Unmatched[0].Decision.Action != "discard" {
			t.Fatalf("requeue of a discarded entry (dry run %v): %+v, %v; want ErrDecided with the discard", dry, d, err)
		}
		d, err = q.Requeue(ctx, tp.DLQ, Filter{IDs: []string{typo, b, a}, Source: "stripe"}, "op", "sink fixed", dry)
		want := []string{typo + " " + ReasonNotFound, b + " " + ReasonFiltered, a + " " + ReasonDecided}
		var got []string
		for _, m := range d.Unmatched {
			got = append(got, m.ID+" "+m.Reason)
		}
		if err != nil || d.Count != 0 || !slices.Equal(got, want) {
			t.Fatalf("requeue of [typo, other source, decided] (dry run %v): %+v, %v; want %q", dry, d, err, want)
		}
	}
	if got := env.ReadAll(t, tp.Audit, 1, 500*time.Millisecond, 10*time.Second); len(got) != 1 {
		t.Fatalf("%d audit records, want 1 (the one discard)", len(got))
	}
	d, err := q.Discard(ctx, tp.DLQ, Filter{Source: "nobody"}, "op", "cancelled", false)
	if err != nil || d.Count != 0 || d.Unmatched != nil {
		t.Fatalf("discard by a filter matching nothing: %+v, %v; want nothing and no error", d, err)
	}
	// Many ids (a request body holds tens of thousands): b is decided, the
	// others listed, in the order named.
	ids := make([]string, 0, 40001)
	for i := range 40000 {
		ids = append(ids, fmt.Sprintf("%s/7/%d", tp.DLQ, i))
	}
	ids = append(ids, b)
	d, err = q.Discard(ctx, tp.DLQ, Filter{IDs: ids}, "op", "cancelled", true)
	if err != nil || d.Count != 1 || len(d.Unmatched) != 40000 || d.Unmatched[0].ID != ids[0] || d.Unmatched[39999].ID != ids[39999] {
		t.Fatalf("discard of 40,001 ids: count %d, %d unmatched, %v", d.Count, len(d.Unmatched), err)
	}
}

// TestRequeueByIDSkipsAndListsAlike: a requeue naming an entry without its
// event and a mistyped id skips the first (as for several ids) and lists
// the second as unmatched; both count as undecided.
func TestRequeueByIDSkipsAndListsAlike(t *testing.T) {
	env, tp, q := deadLettered(t, testenv.Embedded, 0)
	omitted := withoutEvent(t, env, tp, 0, 42)
	missing := omitted[:strings.LastIndexByte(omitted, '/')+1] + "999" // an id ls would print, naming nothing
	ctx := context.Background()
	for _, dry := range []bool{true, false} {
		d, err := q.Requeue(ctx, tp.DLQ, Filter{IDs: []string{omitted, missing}}, "op", "sink fixed", dry)
		if err != nil || d.Count != 0 || d.Skipped != 1 || d.SkippedEntries[0].ID != omitted || d.Undecided() != 2 ||
			!slices.Equal(d.Unmatched, []Miss{{ID: missing, Reason: ReasonNotFound}}) {
			t.Fatalf("dry run %v: %+v, %v", dry, d, err)
		}
	}
}

// TestCheckIDs: only topic/partition/offset ids with a topic and no
// negative number pass; the error names the bad ones, quoted.
func TestCheckIDs(t *testing.T) {
	if err := CheckIDs([]string{"inlet.dlq/0/1", "a-b_C.d/2/30"}); err != nil {
		t.Fatalf("good ids refused: %v", err)
	}
	// Ids as ls never prints them named entries that show and decisions
	// then answered "not on this queue", though they were there.
	for _, id := range []string{"inlet.dlq/0/02", "inlet.dlq/00/2", "inlet.dlq/0/+2", " inlet.dlq/0/2", "inlet.dlq/0/2 ", "a/b/2/3"} {
		if err := CheckIDs([]string{id}); !errors.Is(err, ErrBadID) {
			t.Errorf("CheckIDs(%q) = %v, want ErrBadID", id, err)
		}
	}
	err := CheckIDs([]string{"inlet.dlq/0/1", "garbage", "inlet.dlq/a/b", "inlet.dlq/0/-1", "inlet.dlq/-1/0", "/0/1", "inlet.dlq/0"})
	if !errors.Is(err, ErrBadID) {
		t.Fatalf("bad ids: %v", err)
	}
	for _, w := range []string{`"garbage"`, `"inlet.dlq/a/b"`, `"inlet.dlq/0/-1"`, `"and 1 more"`} {
		if !strings.Contains(err.Error(), strings.Trim(w, `"`)) {
			t.Errorf("%v does not name %s", err, w)
		}
	}
	if strings.Contains(err.Error(), `"inlet.dlq/0/1"`) {
		t.Errorf("%v names a good id", err)
	}
	if !(Filter{Until: time.Now()}).Selects() || (Filter{Unresolved: true}).Selects() {
		t.Error("Selects: until alone must select, unresolved alone must not")
	}
}

// TestDecisionsRequireWho: a requeue or discard (and its dry run) whose
// who is blank is refused with ErrNoWho, as one without a reason is with
// ErrNoReason, and nothing is decided: every decision is audited with who
// made it. Only the reason was checked: the entry was decided, audited as
// by nobody.
func TestDecisionsRequireWho(t *testing.T) {
	_, tp, q := deadLettered(t, testenv.Embedded, 1)
	ctx := context.Background()
	for _, who := range []string{"", " ", "\t\n"} {
		for _, dry := range []bool{true, false} {
			if d, err := q.Requeue(ctx, tp.DLQ, Filter{Source: "shop"}, who, "sink fixed", dry); !errors.Is(err, ErrNoWho) {
				t.Errorf("requeue by %q (dry run %v): %+v, %v; want ErrNoWho", who, dry, d, err)
			}
			if d, err := q.Discard(ctx, tp.DLQ, Filter{Source: "shop"}, who, "cancelled upstream", dry); !errors.Is(err, ErrNoWho) {
				t.Errorf("discard by %q (dry run %v): %+v, %v; want ErrNoWho", who, dry, d, err)
			}
		}
	}
	if n, err := q.Depth(ctx, tp.DLQ); err != nil || n != 1 {
		t.Fatalf("depth after the refusals: %d (%v), want 1", n, err)
	}
}

// TestRequeueSkipsAnEntryTooLargeToRequeue: an entry whose dead-letter
// copy just fit Kafka (an event another producer wrote near the limit) is
// over it once requeued with the retry headers and the requeue line. It
// made Kafka refuse the requeue's transaction, and with it every other
// entry's, on every run; now it is skipped and listed, as an entry without
// its event is, and refused when named alone.
func TestRequeueSkipsAnEntryTooLargeToRequeue(t *testing.T) {
	env, tp, q := deadLettered(t, testenv.Embedded, 1)
	big := nearTheLimit(t, env, tp, "wh-big", 0)
	ctx := context.Background()
	why := strings.Repeat("orders API back ", 50)
	if _, err := q.Requeue(ctx, tp.DLQ, Filter{IDs: []string{big}}, "alice", why, false); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), tp.Raw+"/0/7") {
		t.Fatalf("requeue of the large entry alone: %v; want ErrTooLarge naming the raw record", err)
	}
	d, err := q.Requeue(ctx, tp.DLQ, Filter{Source: "shop"}, "alice", why, false)
	want := []Skip{{ID: big, Origin: tp.Raw + "/0/7", Reason: ReasonTooLarge}}
	if err != nil || d.Count != 1 || d.Skipped != 1 || !slices.Equal(d.SkippedEntries, want) {
		t.Fatalf("requeue: %d decided, skipped %+v, %v; want the other entry requeued and %+v", d.Count, d.SkippedEntries, err, want)
	}
	if got := env.ReadAll(t, tp.Retry[0], 1, 500*time.Millisecond, 10*time.Second); len(got) != 1 {
		t.Fatalf("%d records requeued, want 1", len(got))
	}
}

// TestRequeueOfAnEntryNearTheLimitCutsItsHistory: an entry near Kafka's
// limit with a long error history, requeued with a long reason, is
// requeued with the history cut to the requeue line, as the processor cuts
// its own copies, rather than refused by Kafka.
func TestRequeueOfAnEntryNearTheLimitCutsItsHistory(t *testing.T) {
	env, tp, q := deadLettered(t, testenv.Embedded, 0)
	id := nearTheLimit(t, env, tp, "wh-long", 30)
	d, err := q.Requeue(context.Background(), tp.DLQ, Filter{IDs: []string{id}}, "alice", strings.Repeat("orders API back ", 50), false)
	if err != nil || d.Count != 1 {
		t.Fatalf("requeue: %d decided, %v; want it requeued", d.Count, err)
	}
	got := env.ReadAll(t, tp.Retry[0], 1, 500*time.Millisecond, 10*time.Second)
	if hist := retry.History(got[0].Headers); len(got) != 1 || len(hist) != 1 || hist[0].Stage != "requeue" || len(got[0].Value) == 0 {
		t.Fatalf("%d records requeued, history %+v; want one, with its value and the requeue line", len(got), hist)
	}
}

// nearTheLimit writes to tp's DLQ an entry of source shop, event eventID,
// whose copy is a few bytes within what Kafka takes (an event another
// producer wrote near the limit: the processor's fit lets it through), with
// an error history of entries of 1 KiB each (none: one short entry). It
// returns the entry's id.
func nearTheLimit(t *testing.T, env *testenv.Env, tp kafka.Topics, eventID string, entries int) string {
	t.Helper()
	codec := env.Codec(t, tp)
	ev := &envelope.Envelope{ID: "id-" + eventID, Source: "shop", EventType: "orders/updated", EventID: eventID,
		IdempotencyKey: envelope.IdempotencyKey("shop", eventID), SchemaVersion: "v1", ReceivedAt: time.Now().UTC().Truncate(time.Microsecond),
		CorrelationID: "corr-" + eventID, Channel: envelope.ChannelWebhook, Headers: map[string]string{}, ContentType: "application/json"}
	h := retry.AppendError(nil, retry.ErrorEntry{At: time.Now().UTC(), Stage: "deliver", Error: "sink answered 503"})
	for i := range entries {
		h = retry.AppendError(h, retry.ErrorEntry{At: time.Now().UTC(), Stage: "deliver", Error: fmt.Sprintf("sink answered 503: %d %s", i, strings.Repeat("x", 1000))})
	}
	h = retry.Set(h, retry.HeaderReason, "too large for a retry copy")
	h = retry.Set(h, retry.HeaderOrigin, tp.Raw+"/0/7")
	r := &kgo.Record{Topic: tp.DLQ, Key: []byte(ev.IdempotencyKey), Headers: h}
	for pad := 0; kafka.RecordSize(r) < kafka.MaxMessageBytes-8; pad += kafka.MaxMessageBytes - 8 - kafka.RecordSize(r) {
		ev.Payload = []byte(`{"id":"` + strings.Repeat("x", pad) + `"}`)
		val, err := codec.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		r.Value = val
	}
	cl := env.Client(t, kgo.ProducerLinger(0), kgo.ProducerBatchMaxBytes(kafka.MaxMessageBytes))
	res := cl.ProduceSync(context.Background(), r)
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	return retry.Coordinates(res[0].Record)
}

// foreignBesideADeadLetter is a DLQ holding one dead letter (good) and,
// on partition 0, records another producer could have written (kcat): a
// tombstone, plain JSON, random bytes, a Confluent-framed value whose
// schema id the registry does not have, and an envelope whose error
// history header is not JSON, whose ids it returns in that order.
func foreignBesideADeadLetter(t *testing.T) (env *testenv.Env, tp kafka.Topics, q *Queues, good []*Entry, ids []string) {
	t.Helper()
	env, tp, q = deadLettered(t, testenv.Embedded, 1)
	good, err := q.List(context.Background(), tp.DLQ, Filter{})
	if err != nil || len(good) != 1 {
		t.Fatalf("list: %d, %v", len(good), err)
	}
	envelopeValue := good[0].rec.Value
	cl := env.Client(t, kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for _, r := range []*kgo.Record{
		{Key: []byte("shop:tomb")},
		{Key: []byte("k"), Value: []byte(`{"hello":"world"}`)},
		{Value: []byte("\xff\xfe\x00\x01garbage")},
		{Value: []byte("\x00\x00\x00\x27\x0f\x02ab")},
		{Key: []byte("shop:bad-history"), Value: envelopeValue, Headers: []kgo.RecordHeader{{Key: retry.HeaderErrors, Value: []byte("not json")}}},
	} {
		r.Topic = tp.DLQ
		res := cl.ProduceSync(context.Background(), r)
		if err := res.FirstErr(); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, retry.Coordinates(res[0].Record))
	}
	return env, tp, q, good, ids
}

// TestForeignEntriesSayWhatIsWrong: records another producer wrote to the
// DLQ were listed with every field blank (the decode error dropped), so
// nothing said what they were. Each says, on one line, what is wrong; a
// value that is no envelope is kept to be shown; the dead letter beside
// them has no problem; and --error selects them (to discard them).
func TestForeignEntriesSayWhatIsWrong(t *testing.T) {
	_, tp, q, good, ids := foreignBesideADeadLetter(t)
	ctx := context.Background()
	es, err := q.List(ctx, tp.DLQ, Filter{IDs: ids})
	if err != nil || len(es) != len(ids) {
		t.Fatalf("list: %d, %v", len(es), err)
	}
	want := []string{"null", "not Confluent-framed", "not Confluent-framed", "unknown schema", "inlet-errors"}
	for i, e := range es {
		if e.ID != ids[i] || !strings.Contains(e.Problem, want[i]) || strings.Contains(e.Problem, "\n") {
			t.Errorf("%s: problem %q, want one line saying %q", e.ID, e.Problem, want[i])
		}
	}
	if string(es[1].Value) != `{"hello":"world"}` || es[4].Value != nil || es[4].EventID == "" {
		t.Errorf("values: %q (want the record's), %q (an envelope: its event, not the value)", es[1].Value, es[4].Value)
	}
	if good[0].Problem != "" {
		t.Errorf("the dead letter: problem %q", good[0].Problem)
	}
	// Selected by what is wrong, as by an error: to discard them.
	sel, err := q.List(ctx, tp.DLQ, Filter{ErrorText: "not an Inlet envelope"})
	if err != nil || len(sel) != 4 {
		t.Fatalf("--error 'not an Inlet envelope': %d, %v; want the 4 that are not", len(sel), err)
	}
}

// TestRequeueSkipsValuesThatAreNotEnvelopes: a requeue wrote such records
// to the first retry tier as events (a tombstone named alone: "1
// requeued"), for the processor to send to the invalid topic. Named alone,
// one is refused (ErrNotEnvelope, also in the dry run); by filter, they
// are skipped with their problem and the events are requeued.
func TestRequeueSkipsValuesThatAreNotEnvelopes(t *testing.T) {
	env, tp, q, _, ids := foreignBesideADeadLetter(t)
	ctx := context.Background()
	for _, dry := range []bool{true, false} {
		_, err := q.Requeue(ctx, tp.DLQ, Filter{IDs: ids[:1]}, "op", "sink fixed", dry)
		if !errors.Is(err, ErrNotEnvelope) || !strings.Contains(err.Error(), ids[0]) {
			t.Fatalf("requeue of the tombstone alone (dry run %v): %v; want ErrNotEnvelope naming it", dry, err)
		}
	}
	d, err := q.Requeue(ctx, tp.DLQ, Filter{Since: time.Now().Add(-time.Hour)}, "op", "sink fixed", false)
	if err != nil || d.Count != 2 || d.Skipped != 4 {
		t.Fatalf("requeue by filter: %d requeued, %d skipped (%+v), %v; want the dead letter and the envelope requeued, 4 skipped", d.Count, d.Skipped, d.SkippedEntries, err)
	}
	for _, s := range d.SkippedEntries {
		if !strings.Contains(s.Reason, "not an Inlet envelope") {
			t.Errorf("skipped %s: %q", s.ID, s.Reason)
		}
	}
	for _, r := range env.ReadAll(t, tp.Retry[0], 2, 500*time.Millisecond, 10*time.Second) {
		if _, err := q.codec.Decode(ctx, r.Value); err != nil {
			t.Errorf("requeued to %s: %q, not an envelope (%v)", tp.Retry[0], r.Value, err)
		}
	}
}

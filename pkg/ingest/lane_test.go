package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inletdev/inlet/pkg/testenv"
)

// laneCluster is a one-broker kfake with topic "t" (one partition) and a
// lane over a client built with ProducerOpts and extra.
func laneCluster(t *testing.T, extra ...kgo.Opt) (*kfake.Cluster, *lane) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	opts := append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, ProducerOpts()...)
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return c, newLane(cl)
}

// outcomes collects acknowledgements by record value.
type outcomes struct {
	mu  sync.Mutex
	err map[string]error
}

func newOutcomes() *outcomes { return &outcomes{err: map[string]error{}} }

func (o *outcomes) done(r *kgo.Record, err error) {
	o.mu.Lock()
	o.err[string(r.Value)] = err
	o.mu.Unlock()
}

func (o *outcomes) result(v string) (err error, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	err, ok = o.err[v]
	return err, ok
}

// wait waits for the outcome of v.
func (o *outcomes) wait(t *testing.T, v string) error {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, "outcome of "+v, func() bool { _, ok := o.result(v); return ok })
	err, _ := o.result(v)
	return err
}

func (l *lane) queued() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.queue)
}

func readValues(t *testing.T, c *kfake.Cluster, n int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records: %v", len(got), n, err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}

// While a round is unacknowledged the records that arrive are queued, not
// handed to the client, and they all go in the next round once it is
// acknowledged: that is where the batching comes from.
func TestLaneQueuesDuringARound(t *testing.T) {
	c, l := laneCluster(t)
	l.patience = time.Hour // this test holds a round on purpose
	held, release := make(chan struct{}), make(chan struct{})
	var requests atomic.Int64
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if requests.Add(1) == 1 {
			close(held)
			c.SleepControl(func() { <-release })
		}
		return nil, nil, false
	})
	o := newOutcomes()
	ctx := context.Background()
	l.produce(ctx, &kgo.Record{Topic: "t", Key: []byte("k"), Value: []byte("0")}, o.done)
	<-held
	const n = 100
	for i := 1; i <= n; i++ {
		l.produce(ctx, &kgo.Record{Topic: "t", Key: []byte("k"), Value: []byte(strconv.Itoa(i))}, o.done)
	}
	if q := l.queued(); q != n {
		t.Fatalf("%d records queued while the first round is unacknowledged, want %d", q, n)
	}
	if got := requests.Load(); got != 1 {
		t.Fatalf("%d produce requests while the first round is unacknowledged, want 1", got)
	}
	close(release)
	for i := 0; i <= n; i++ {
		if err := o.wait(t, strconv.Itoa(i)); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	// About one request per round, but the client sends the first records
	// of a round while the rest are handed over (more so under the race
	// detector): the queuing itself is checked above, here only that the
	// round was not sent record by record.
	if got := requests.Load(); got > n/2 {
		t.Errorf("%d produce requests for %d records in two rounds", got, n+1)
	}
	got := readValues(t, c, n+1)
	for i, v := range got {
		if v != strconv.Itoa(i) {
			t.Fatalf("record %d on the partition is %q: order lost (%v)", i, v, got)
		}
	}
}

// A record the client cannot deliver yet (here: its topic does not exist)
// holds back the next round only for the lane's patience: other records of
// the lane are acknowledged while it still waits.
func TestLaneStuckRecordDoesNotStallTheLane(t *testing.T) {
	_, l := laneCluster(t)
	o := newOutcomes()
	stuckCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l.produce(stuckCtx, &kgo.Record{Topic: "missing", Key: []byte("a"), Value: []byte("stuck")}, o.done)
	for i := range 20 {
		v := fmt.Sprint("ok", i)
		l.produce(context.Background(), &kgo.Record{Topic: "t", Key: []byte("b"), Value: []byte(v)}, o.done)
		if err := o.wait(t, v); err != nil {
			t.Fatalf("%s: %v", v, err)
		}
	}
	if _, ok := o.result("stuck"); ok {
		t.Fatal("the stuck record has an outcome already; the test proves nothing")
	}
	cancel()
	if err := o.wait(t, "stuck"); err == nil {
		t.Error("a record for a missing topic was acknowledged")
	}
}

// While Kafka takes nothing, the lane holds at most its byte bound; later
// records fail at once (the webhook gets its 503 now, not at its deadline),
// and the lane recovers when Kafka does.
func TestLaneBoundsItsQueue(t *testing.T) {
	// One buffered record: the stuck one fills the client, so the next
	// round's Produce blocks and the lane's queue is all there is.
	_, l := laneCluster(t, kgo.MaxBufferedRecords(1))
	l.patience = time.Millisecond
	l.maxBytes = 3 << 10
	o := newOutcomes()
	stuckCtx, cancel := context.WithCancel(context.Background())
	l.produce(stuckCtx, &kgo.Record{Topic: "missing", Value: []byte("stuck")}, o.done)
	value := func(i int) []byte { return append([]byte(fmt.Sprint(i, ":")), bytes.Repeat([]byte("x"), 1000)...) }
	// The next round's Produce blocks on the full client, its record still
	// counted against the bound.
	l.produce(stuckCtx, &kgo.Record{Topic: "t", Value: value(0)}, o.done)
	testenv.Eventually(t, 10*time.Second, "a round blocked in Produce", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.busy && len(l.queue) == 0
	})
	refused := 0
	for i := 1; i < 10; i++ {
		r := &kgo.Record{Topic: "t", Value: value(i)}
		l.produce(stuckCtx, r, o.done)
		if err, ok := o.result(string(r.Value)); ok { // decided before produce returned
			if !errors.Is(err, errLaneFull) {
				t.Fatalf("record %d failed at once with %v, want errLaneFull", i, err)
			}
			refused++
		}
	}
	// 3 KiB holds the blocked record and two more of ~1 KiB each.
	if refused != 7 {
		t.Fatalf("%d of 9 records refused at once with a 3 KiB bound and Kafka taking nothing, want 7", refused)
	}
	cancel() // their webhooks gave up: everything queued or blocked fails
	testenv.Eventually(t, 10*time.Second, "every record decided", func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		return len(o.err) == 11
	})
	if err := o.wait(t, "stuck"); err == nil {
		t.Error("the stuck record was acknowledged")
	}
	l.produce(context.Background(), &kgo.Record{Topic: "t", Value: []byte("after")}, o.done)
	if err := o.wait(t, "after"); err != nil {
		t.Fatalf("lane did not recover: %v", err)
	}
}

// A record whose webhook was already answered (its context done) is not
// written when its round comes: nobody would learn it landed.
func TestLaneSkipsGivenUpRecords(t *testing.T) {
	c, l := laneCluster(t)
	o := newOutcomes()
	// The lane reports the cause; franz-go, which would also refuse the
	// record, reports only context.Canceled.
	answered := errors.New("answered 503")
	gone, cancel := context.WithCancelCause(context.Background())
	cancel(answered)
	l.produce(gone, &kgo.Record{Topic: "t", Value: []byte("gone")}, o.done)
	if err := o.wait(t, "gone"); !errors.Is(err, answered) {
		t.Fatalf("given-up record: %v, want its context's cause", err)
	}
	l.produce(context.Background(), &kgo.Record{Topic: "t", Value: []byte("kept")}, o.done)
	if err := o.wait(t, "kept"); err != nil {
		t.Fatal(err)
	}
	if got := readValues(t, c, 1); len(got) != 1 || got[0] != "kept" {
		t.Fatalf("partition holds %q, want only \"kept\"", got)
	}
}

// Many records of one key handed over without waiting (as a streamed
// batch does) reach the partition in order, also when rounds overlap.
func TestLaneKeepsKeyOrder(t *testing.T) {
	c, l := laneCluster(t)
	l.patience = 0 // every round overlaps the next
	o := newOutcomes()
	const n = 2000
	for i := range n {
		l.produce(context.Background(), &kgo.Record{Topic: "t", Key: []byte("k"), Value: []byte(strconv.Itoa(i))}, o.done)
	}
	for i := range n {
		if err := o.wait(t, strconv.Itoa(i)); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	got := readValues(t, c, n)
	for i, v := range got {
		if v != strconv.Itoa(i) {
			t.Fatalf("record %d on the partition is %q: order lost", i, v)
		}
	}
}

// drain waits for what is queued, then refuses new records.
func TestLaneDrain(t *testing.T) {
	c, l := laneCluster(t)
	l.patience = time.Hour
	held, release := make(chan struct{}), make(chan struct{})
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.DropControl() // the first produce request only
		close(held)
		c.SleepControl(func() { <-release })
		return nil, nil, false
	})
	o := newOutcomes()
	l.produce(context.Background(), &kgo.Record{Topic: "t", Value: []byte("first")}, o.done)
	<-held
	l.produce(context.Background(), &kgo.Record{Topic: "t", Value: []byte("queued")}, o.done)
	drained := make(chan error, 1)
	go func() { drained <- l.drain(context.Background()) }()
	testenv.Eventually(t, 10*time.Second, "drain to close the lane", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.closed
	})
	l.produce(context.Background(), &kgo.Record{Topic: "t", Value: []byte("late")}, o.done)
	if err := o.wait(t, "late"); !errors.Is(err, errLaneClosed) {
		t.Fatalf("record after drain: %v, want errLaneClosed", err)
	}
	select {
	case err := <-drained:
		t.Fatalf("drain returned (%v) with a record still queued", err)
	default:
	}
	close(release)
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"first", "queued"} {
		if err := o.wait(t, v); err != nil {
			t.Fatalf("%s: %v", v, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l2 := newLane(nil)
	if err := l2.drain(ctx); err != nil {
		t.Fatalf("drain of an idle lane: %v", err)
	}
}

// Through the writer (2 clients, so 2 lanes) with rounds overlapping: many
// keys interleaved and handed over without waiting, as a streamed batch
// does; each key's records are on the log in the order handed over, and
// every record is acknowledged exactly once.
func TestWriterKeepsEachKeysOrder(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t), nil)
	w := h.srv.w
	if len(w.lanes) < 2 {
		t.Fatalf("%d lanes; the test needs rounds of two clients", len(w.lanes))
	}
	for _, l := range w.lanes {
		l.patience = 0
	}
	var calls sync.Map // value → *atomic.Int64
	var failed atomic.Int64
	done := func(r *kgo.Record, err error) {
		n, _ := calls.LoadOrStore(string(r.Value), new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		if err != nil {
			failed.Add(1)
		}
	}
	const keys, per = 12, 300
	for i := range per {
		for k := range keys {
			w.produce(context.Background(), &kgo.Record{Topic: h.topics.Raw, Key: fmt.Appendf(nil, "k%d", k), Value: fmt.Appendf(nil, "k%d:%d", k, i)}, done)
		}
	}
	testenv.Eventually(t, 20*time.Second, "every record acknowledged", func() bool {
		n := 0
		calls.Range(func(any, any) bool { n++; return true })
		return n == keys*per
	})
	calls.Range(func(v, n any) bool {
		if c := n.(*atomic.Int64).Load(); c != 1 {
			t.Errorf("record %s acknowledged %d times", v, c)
		}
		return true
	})
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d records failed", f)
	}
	next := map[string]int{}
	for _, r := range h.env.ReadAll(t, h.topics.Raw, keys*per, 200*time.Millisecond, 20*time.Second) {
		k, i, _ := strings.Cut(string(r.Value), ":")
		if want := strconv.Itoa(next[k]); i != want {
			t.Fatalf("key %s: record %s on the log where %s was next", k, i, want)
		}
		next[k]++
	}
}

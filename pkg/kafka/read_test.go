package kafka

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestReadSpanEndsAtTheEnd: a topic whose partitions end in transaction
// markers, with a transaction still open after them, is read to its last
// committed record and the read returns at once (it used to wait for a
// quiet period, and could end early on a stall); a range that cannot be
// reached is ErrIncomplete, not a silent short read.
func TestReadSpanEndsAtTheEnd(t *testing.T) {
	opts := fakeCluster(t, 2)
	ctx := context.Background()
	txn := func(id string, n int, commit bool) *kgo.Client {
		cl := beginTxn(t, opts, id, n)
		if commit {
			if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
				t.Fatal(err)
			}
		}
		return cl
	}
	txn("a", 10, true).Close()
	aborted := txn("b", 3, false)
	if err := aborted.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	aborted.Close()
	open := txn("c", 4, false) // still open while we read
	defer open.Close()

	adm := kadm.NewClient(open)
	sp, err := RangeOf(ctx, adm, "t", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	// With a quiet period of an hour, only reaching the end offsets can
	// end the read before ctx does.
	old := quietEnd
	defer func() { quietEnd = old }()
	quietEnd = time.Hour
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	n := 0
	if err := ReadSpan(rctx, opts, "t", sp, func(*kgo.Record) error { n++; return nil }); err != nil {
		t.Fatalf("%v: the read did not end at the end offsets", err)
	}
	if n != 10 {
		t.Fatalf("read %d records, want the 10 committed ones", n)
	}

	// Past the last stable offset (the open transaction) nothing comes.
	hw, err := adm.ListEndOffsets(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	far := Span{}
	hw.Each(func(o kadm.ListedOffset) { far[o.Partition] = [2]int64{0, o.Offset} })
	quietEnd = 300 * time.Millisecond
	if err := ReadSpan(ctx, opts, "t", far, func(*kgo.Record) error { return nil }); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("a range past the last stable offset: %v, want ErrIncomplete", err)
	}
}

// TestReadSpanAbortedTailPinnedByAnOpenTransaction: the last records below
// the end belong to a transaction aborted after another one opened on the
// partition, so its abort marker sits past the open one's first record and
// cannot be fetched yet. Everything committed was read: the read ends
// without error (it was ErrIncomplete until the open transaction ended).
func TestReadSpanAbortedTailPinnedByAnOpenTransaction(t *testing.T) {
	opts := fakeCluster(t, 1)
	ctx := context.Background()
	begin := func(id string, n int) *kgo.Client { return beginTxn(t, opts, id, n) }
	committed := begin("a", 2)
	if err := committed.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	committed.Close()
	aborted := begin("b", 2)
	open := begin("c", 1) // opens before b's abort marker is written
	defer open.Close()
	if err := aborted.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	aborted.Close()

	sp, err := RangeOf(ctx, kadm.NewClient(open), "t", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	old := quietEnd
	defer func() { quietEnd = old }()
	quietEnd = 300 * time.Millisecond
	n := 0
	if err := ReadSpan(ctx, opts, "t", sp, func(*kgo.Record) error { n++; return nil }); err != nil || n != 2 {
		t.Fatalf("read %d records, %v; want the 2 committed ones and no error", n, err)
	}
}

// fakeCluster is a kfake cluster with topic "t" of n partitions, stopped
// with the test; it returns the options to reach it.
func fakeCluster(t *testing.T, n int32) []kgo.Opt {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(n, "t"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
}

// beginTxn opens a transaction as id and writes n records to "t" in it.
func beginTxn(t *testing.T, opts []kgo.Opt, id string, n int) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append(opts[:len(opts):len(opts)], kgo.TransactionalID(id), kgo.DefaultProduceTopic("t"))...)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Key: fmt.Appendf(nil, "%s-%d", id, i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	return cl
}

// TestRangeOfToAfterTheEndStopsAtStableOffset: a range up to a time after
// the last record is the range to the end, bounded by the last stable
// offset. The lookup by time is read_uncommitted and fell back to the high
// watermark: with a transaction open the span reached past the stable
// offset, and ReadSpan of it (read_committed) ended in ErrIncomplete though
// every committed record was read.
func TestRangeOfToAfterTheEndStopsAtStableOffset(t *testing.T) {
	opts := fakeCluster(t, 1)
	ctx := context.Background()
	c := beginTxn(t, opts, "a", 3)
	if err := c.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	c.Close()
	open := beginTxn(t, opts, "b", 2) // still open while we read
	defer open.Close()
	adm := kadm.NewClient(open)

	whole, err := RangeOf(ctx, adm, "t", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	later, err := RangeOf(ctx, adm, "t", time.Time{}, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if whole[0] != later[0] {
		t.Errorf("RangeOf to an hour from now = %v, to the end = %v: want the same (end at the last stable offset)", later[0], whole[0])
	}
	old := quietEnd
	defer func() { quietEnd = old }()
	quietEnd = 300 * time.Millisecond
	n := 0
	if err := ReadSpan(ctx, opts, "t", later, func(*kgo.Record) error { n++; return nil }); err != nil || n != 3 {
		t.Errorf("ReadSpan up to an hour from now: %d records, %v; want the 3 committed ones and no error", n, err)
	}
}

// TestRangeOfFromBeforeTheEpoch: a from before 1970 starts at the first
// record. Its timestamp, -1 or -2 ms, is Kafka's code for the latest or
// the earliest offset: replay's --from 1970-01-01T00:00:59.999Z (less its
// minute of slack) started at the end and copied nothing.
func TestRangeOfFromBeforeTheEpoch(t *testing.T) {
	opts := fakeCluster(t, 1)
	ctx := context.Background()
	c := beginTxn(t, opts, "a", 3)
	if err := c.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	adm := kadm.NewClient(c)
	for _, ms := range []int64{-1, -2, -60_000} {
		sp, err := RangeOf(ctx, adm, "t", time.UnixMilli(ms), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if r := sp[0]; r[0] != 0 || r[1] < 3 {
			t.Errorf("RangeOf from %d ms = %+v, want [0, 3 or past]", ms, r)
		}
	}
}

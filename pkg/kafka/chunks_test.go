package kafka

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestChunks: committed chunks are readable; a chunk with a refused record
// fails its commit and, aborted, leaves nothing; the next chunk begins by
// itself.
func TestChunks(t *testing.T) {
	opts := fakeCluster(t, 1)
	ctx := context.Background()
	cl, c := txnChunks(t, opts, "chunks")
	if c.Open() || c.Age() != 0 || c.Commit(ctx) != nil || c.Abort(ctx) != nil {
		t.Fatal("a Chunks with nothing written is not idle")
	}
	write := func(n int, value string) {
		t.Helper()
		for range n {
			if err := c.Produce(ctx, &kgo.Record{Topic: "t", Value: []byte(value)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(3, "a")
	if !c.Open() || c.Len() != 3 || c.Age() <= 0 {
		t.Fatalf("open %v, len %d, age %v", c.Open(), c.Len(), c.Age())
	}
	if err := c.Commit(ctx); err != nil || c.Open() || c.Len() != 0 {
		t.Fatalf("commit: %v (open %v, len %d)", err, c.Open(), c.Len())
	}
	write(2, "b")
	// Refused by the broker: over its default max message size.
	write(1, strings.Repeat("x", 2<<20))
	if err := c.Commit(ctx); err == nil || !strings.Contains(err.Error(), "a record was refused") {
		t.Fatalf("commit with a refused record: %v", err)
	}
	if err := c.Abort(ctx); err != nil || c.Open() {
		t.Fatalf("abort: %v (open %v)", err, c.Open())
	}
	write(1, "c")
	if err := c.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got := committedValues(t, cl, opts, "t")
	if strings.Join(got, "") != "aaac" {
		t.Fatalf("read %q, want aaa then c (the aborted chunk left nothing)", got)
	}
}

// TestChunksFencedCommitIsRefused: a chunk whose transactional id another
// client took meanwhile fails its commit as refused, not as unconfirmed:
// the coordinator aborted it, so nothing of it stands.
func TestChunksFencedCommitIsRefused(t *testing.T) {
	opts := fakeCluster(t, 1)
	ctx := context.Background()
	newTxn := func() *kgo.Client {
		cl, err := kgo.NewClient(append(opts[:len(opts):len(opts)], kgo.TransactionalID("fenced"))...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	first := newTxn()
	c := NewChunks(first, opts)
	if err := c.Produce(ctx, &kgo.Record{Topic: "t", Value: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	if err := first.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := newTxn().ProducerID(ctx); err != nil {
		t.Fatal(err)
	}
	err := c.Commit(ctx)
	if err == nil || errors.Is(err, ErrUnconfirmed) || !Refused(err) {
		t.Fatalf("commit after fencing: %v; want refused, not unconfirmed", err)
	}
	_ = c.Abort(ctx)
	sp, err := RangeOf(ctx, kadm.NewClient(first), "t", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := ReadSpan(ctx, opts, "t", sp, func(*kgo.Record) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d records of the refused chunk are readable", n)
	}
}

// TestChunksCommitTurnedIntoAnAbort: a commit the client ends as an abort
// while answering nil (franz-go 1.22.3 did, see ErrClientAborted) fails as
// ErrClientAborted, refused (nothing written), not as a success.
func TestChunksCommitTurnedIntoAnAbort(t *testing.T) {
	opts := fakeCluster(t, 1)
	ctx := context.Background()
	cl, c := txnChunks(t, opts, "turned")
	write := func(value string) {
		t.Helper()
		if err := c.Produce(ctx, &kgo.Record{Topic: "t", Value: []byte(value)}); err != nil {
			t.Fatal(err)
		}
	}
	write("a")
	defer func() { commitTry = kgo.TryCommit }()
	commitTry = kgo.TryAbort
	err := c.Commit(ctx)
	if !errors.Is(err, ErrClientAborted) || !Refused(err) || errors.Is(err, ErrUnconfirmed) || c.Open() {
		t.Fatalf("commit the client aborted: %v (open %v); want ErrClientAborted, refused", err, c.Open())
	}
	// The next chunk is checked afresh: committed, it commits.
	commitTry = kgo.TryCommit
	write("b")
	if err := c.Commit(ctx); err != nil {
		t.Fatalf("commit after: %v", err)
	}
	got := committedValues(t, cl, opts, "t")
	if strings.Join(got, "") != "b" {
		t.Fatalf("read %q, want b alone", got)
	}
}

// committedValues reads topic's committed records' values, in order.
// txnChunks returns a client of opts with transactional id id, closed
// when t ends, and Chunks writing through it.
func txnChunks(t *testing.T, opts []kgo.Opt, id string) (*kgo.Client, *Chunks) {
	t.Helper()
	cl, err := kgo.NewClient(append(opts[:len(opts):len(opts)], kgo.TransactionalID(id))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl, NewChunks(cl, opts)
}

func committedValues(t *testing.T, cl *kgo.Client, opts []kgo.Opt, topic string) []string {
	t.Helper()
	ctx := context.Background()
	sp, err := RangeOf(ctx, kadm.NewClient(cl), topic, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := ReadSpan(ctx, opts, topic, sp, func(r *kgo.Record) error { got = append(got, string(r.Value)); return nil }); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestChunksRefusedRecordsSayItOnce: when every record of a chunk is
// refused (the transactional id taken by another decision, so each is
// answered INVALID_PRODUCER_EPOCH), the commit's error says so once, with
// a count: it joined every record's error, and a fenced requeue of 10,000
// entries printed 20,000 identical lines to the operator (and into the
// admin API's answer).
func TestChunksRefusedRecordsSayItOnce(t *testing.T) {
	opts := fakeCluster(t, 1)
	ctx := context.Background()
	first, c := txnChunks(t, opts, "fenced-many")
	if _, _, err := first.ProducerID(ctx); err != nil {
		t.Fatal(err)
	}
	taker, _ := txnChunks(t, opts, "fenced-many") // another decision takes the id
	if _, _, err := taker.ProducerID(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 200
	for range n {
		if err := c.Produce(ctx, &kgo.Record{Topic: "t", Value: []byte("a")}); err != nil {
			t.Fatal(err)
		}
	}
	err := c.Commit(ctx)
	if err == nil || !Refused(err) {
		t.Fatalf("commit after fencing: %v; want refused", err)
	}
	msg := err.Error()
	if lines := strings.Count(msg, "\n") + 1; lines > 1 || len(msg) > 300 {
		t.Fatalf("the error of %d refused records is %d lines, %d bytes: %.300q", n, lines, len(msg), msg)
	}
	if !strings.Contains(msg, "refused") || !strings.Contains(msg, "INVALID_PRODUCER_EPOCH") || !strings.Contains(msg, "199 more records") {
		t.Fatalf("error %q: want the refusal, its cause, and how many more records it refused", msg)
	}
	_ = c.Abort(ctx)
}

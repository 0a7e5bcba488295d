package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/ops"
	"github.com/inletdev/inlet/pkg/processor"
	"github.com/inletdev/inlet/pkg/processor/processortest"
	"github.com/inletdev/inlet/pkg/retry"
	"github.com/inletdev/inlet/pkg/store"
	"github.com/inletdev/inlet/pkg/testenv"
)

func TestReplay(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	before := time.Now().Add(-time.Second)
	h.send("other", "evt_o", "pi_o", 1700000000) // another source: never replayed
	h.send("stripe", "evt_1", "pi_1", 1700000100)
	h.send("stripe", "evt_2", "pi_1", 1700000200)
	h.send("stripe", "evt_3", "pi_2", 1700000150)
	h.send("stripe", "evt_1", "pi_1", 1700000100) // a redelivery: duplicate
	h.process(5)
	entities := []string{"stripe:pi:pi_1", "stripe:pi:pi_2"}
	clean := h.states(entities...)
	if len(clean) != 2 || clean["stripe:pi:pi_1"].EventID != "evt_2" {
		t.Fatalf("clean run state: %+v", clean)
	}

	t.Run("fill re-applies only the event whose claim and state were lost", func(t *testing.T) {
		if _, err := h.store.DeleteClaims(ctx, []string{"dedup:stripe:evt_3"}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.store.DeleteEntities(ctx, []string{"stripe:pi:pi_2"}); err != nil {
			t.Fatal(err)
		}
		sum := h.replay(t, "fill-1", Fill, before)
		if sum.Read != 4 || sum.Applied != 1 || sum.Duplicate != 3 || sum.Stale+sum.Invalid+sum.DLQ != 0 || !sum.Complete {
			t.Fatalf("summary %+v; want read 4, applied 1, duplicate 3", sum)
		}
		if got := h.states(entities...); !reflect.DeepEqual(got, clean) {
			t.Fatalf("state after fill %+v, want %+v", got, clean)
		}
		t.Run("running the same id again resumes: nothing is copied or processed twice", func(t *testing.T) {
			again := h.replay(t, "fill-1", Fill, before)
			if !again.Resumed || !again.Complete || again.Read != 4 || again.Applied != 1 || again.Duplicate != 3 {
				t.Fatalf("resumed summary %+v", again)
			}
		})
		t.Run("the same id with other parameters is refused", func(t *testing.T) {
			_, err := Run(ctx, Config{ID: "fill-1", Source: "stripe", Mode: Rebuild, Processor: h.pcfg()}, h.deps())
			if !errors.Is(err, ErrMismatch) {
				t.Fatalf("got %v", err)
			}
		})
	})

	t.Run("rebuild restores the state of a clean run after corruption", func(t *testing.T) {
		// pi_1 is set back to its older event; pi_2 to pi_1's evt_1 with a
		// wrong time, newer than any real one (as a handler bug would: fill
		// could not fix it). Both states are events of the range, which
		// rebuild deletes (a state that is not is kept: see
		// TestReplayRebuildKeepsNewerState), pi_2's although the fixed handler
		// gives evt_1 to another entity.
		if _, err := h.store.DeleteEntities(ctx, entities); err != nil {
			t.Fatal(err)
		}
		if _, err := h.store.ApplyBatch(ctx, []store.Update{
			{EntityKey: "stripe:pi:pi_1", EventTime: time.Unix(1700000100, 0), EventID: "evt_1"},
			{EntityKey: "stripe:pi:pi_2", EventTime: time.Unix(1800000000, 0), EventID: "evt_1"},
		}); err != nil {
			t.Fatal(err)
		}
		// Deleted a key at a time: keys met again (pi_1 twice, evt_1's
		// redelivery) are deleted again and counted once.
		defer func(n int) { deleteBatch = n }(deleteBatch)
		deleteBatch = 1
		sum := h.replay(t, "rebuild-1", Rebuild, time.Time{})
		if sum.Read != 4 || sum.Applied+sum.Stale != 3 || sum.Duplicate != 1 || sum.DeletedEntities != 2 || sum.DeletedClaims != 3 || sum.KeptEntities != 0 {
			t.Fatalf("summary %+v", sum)
		}
		if got := h.states(entities...); !reflect.DeepEqual(got, clean) {
			t.Fatalf("state after rebuild %+v, want the clean run's %+v", got, clean)
		}
		if got := h.states("other:pi:pi_o"); len(got) != 1 {
			t.Fatalf("another source's state was touched: %+v", got)
		}
		// Reprocessed outputs say which replay wrote them: otherwise they
		// are the originals' twins.
		var replayed int64
		for _, r := range h.env.ReadAll(t, h.topics.Processed, 1, 500*time.Millisecond, 20*time.Second) {
			if retry.Get(r.Headers, retry.HeaderReplay) == "rebuild-1" {
				replayed++
			}
		}
		if replayed != sum.Applied {
			t.Fatalf("%d processed records name replay rebuild-1; want the %d it applied", replayed, sum.Applied)
		}
	})

	t.Run("interrupted after the copy, resumed without copying again", func(t *testing.T) {
		ictx, cancel := context.WithCancel(ctx)
		d := h.deps()
		d.Progress = func(p Progress) {
			if p.Phase == "delete" {
				cancel()
			}
		}
		cfg := Config{ID: "rebuild-2", Source: "stripe", Mode: Rebuild, Processor: h.pcfg()}
		copyStart := time.Now().Truncate(time.Millisecond)
		sum, err := Run(ictx, cfg, d)
		if !errors.Is(err, context.Canceled) || sum.Complete || sum.Read != 4 {
			t.Fatalf("interrupted run: %+v, %v", sum, err)
		}
		sum = h.replay(t, "rebuild-2", Rebuild, time.Time{})
		if !sum.Resumed || !sum.Complete || sum.Read != 4 || sum.Applied+sum.Stale+sum.Duplicate != 4 {
			t.Fatalf("resumed: %+v", sum)
		}
		recs := h.env.ReadAll(t, Topic(h.topics, "rebuild-2"), 4, 500*time.Millisecond, 20*time.Second)
		if len(recs) != 4 {
			t.Fatalf("replay topic holds %d records, want 4 (copied once)", len(recs))
		}
		// The copies carry the time they were made: the replay topic's
		// retention runs by record time, and the raw records are older.
		for _, r := range recs {
			if retry.Get(r.Headers, retry.HeaderReplay) != "rebuild-2" {
				t.Fatalf("copy without its replay id: %v", r.Headers)
			}
			if r.Timestamp.Before(copyStart) {
				t.Fatalf("copy stamped %v, before the replay started (%v): retention would delete it", r.Timestamp, copyStart)
			}
		}
		if got := h.states(entities...); !reflect.DeepEqual(got, clean) {
			t.Fatalf("state %+v, want %+v", got, clean)
		}
	})
}

func TestConfig(t *testing.T) {
	for name, c := range map[string]Config{
		"no id":     {Source: "s", Mode: Fill},
		"bad id":    {ID: "a/b", Source: "s", Mode: Fill},
		"no source": {ID: "a", Mode: Fill},
		"bad mode":  {ID: "a", Source: "s", Mode: "x"},
		"from > to": {ID: "a", Source: "s", Mode: Fill, From: time.Unix(2, 0), To: time.Unix(1, 0)},
	} {
		if err := c.validate(time.Now()); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := (&Config{ID: "a", Source: "s", Mode: Fill, To: time.Now()}).Validate(); err != nil {
		t.Errorf("to now: %v", err)
	}
}

// TestReplayIDsDoNotShareTopics: no two ids Validate accepts name the
// same topic. A replay's retry topics are its topic + ".retry." + tier:
// "a.retry.30s" was accepted, and its replay topic was replay "a"'s first
// retry topic, so the two replays copied into, counted and processed each
// other's records. An id holding ".retry." is refused, saying why; the
// documented ids, other dots and DefaultID's ids are not.
func TestReplayIDsDoNotShareTopics(t *testing.T) {
	tp := kafka.TopicNames("inlet", kafka.DefaultRetryTiers)
	valid := func(id string) error {
		return (&Config{ID: id, Source: "shop", Mode: Fill, To: time.Now().Add(-time.Hour)}).Validate()
	}
	for _, tier := range tp.RetryTiers {
		id := "a.retry." + kafka.TierName(tier)
		if Topic(tp, id) != Topic(tp, "a")+".retry."+kafka.TierName(tier) {
			t.Fatalf("topic of %q: %s: the test no longer shows the clash", id, Topic(tp, id))
		}
		if err := valid(id); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), `".retry."`) || !strings.Contains(err.Error(), "retry topic") {
			t.Errorf("id %q: %v; want ErrConfig saying it holds .retry.", id, err)
		}
	}
	for _, id := range []string{"b.retry.", ".retry.x", "x.retry.y.z"} {
		if err := valid(id); !errors.Is(err, ErrConfig) {
			t.Errorf("id %q accepted", id)
		}
	}
	for _, id := range []string{"a", "fill-27th", "rebuild-shop", "dlq-0-17", "a.b", "retry", "a.retry", "a_retry_30s", "retry.30s",
		DefaultID("shop_retry_x", time.Unix(1700000000, 0), time.Time{}, Fill)} {
		if err := valid(id); err != nil {
			t.Errorf("id %q refused: %v", id, err)
		}
	}
}

// TestReplayConfigRefusesAFutureRange: a --to (or --from) later than now is
// refused. It was accepted: the replay copied what the raw topic held,
// was marked complete, and events arriving later inside its range were
// never replayed (the same id just reports its summary), while the summary
// claimed the whole range.
func TestReplayConfigRefusesAFutureRange(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name     string
		from, to time.Time
		want     []string // in the error; none: accepted
	}{
		{"to now", now.Add(-time.Minute), now, nil},
		{"open end", now.Add(-time.Minute), time.Time{}, nil},
		{"from now, open end", now, time.Time{}, nil},
		{"to in the future", now.Add(-5 * time.Second), now.Add(time.Minute),
			[]string{"--to 2026-11-29T12:01:00Z is later than now (2026-11-29T12:00:00Z)", "the raw topic holds nothing after now",
				"a replay once finished is not run again", "give a --to not later than now", "leave --to out"}},
		{"from in the future", now.Add(time.Minute), time.Time{}, []string{"--from 2026-11-29T12:01:00Z is later than now", "give a --from not later than now"}},
		{"a wholly future range", now.Add(time.Minute), now.Add(time.Hour), []string{"--from 2026-11-29T12:01:00Z", "--to 2026-11-29T13:00:00Z"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := (&Config{ID: "a", Source: "s", Mode: Fill, From: c.from, To: c.to}).validate(now)
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("got %v; want ErrConfig", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	// Run refuses it too (other callers than inletctl), before touching
	// anything.
	if _, err := Run(context.Background(), Config{ID: "a", Source: "s", Mode: Fill, To: time.Now().Add(time.Hour)}, Deps{}); !errors.Is(err, ErrConfig) ||
		!strings.Contains(err.Error(), "later than now") {
		t.Fatalf("Run with a --to in the future: %v; want ErrConfig saying it is later than now", err)
	}
	if id := DefaultID("shop", time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), time.Time{}, Rebuild); id != "shop-20250102T030405Z-open-rebuild" {
		t.Errorf("default id %q", id)
	}
}

// TestReplayFillLeavesFailureQueueEntries: fill does not replay an event
// that already has an entry on the invalid (or DLQ) topic — it made a
// second entry, undoing an operator's discard — and says how many it left;
// what it does replay names the raw record as its origin.
func TestReplayFillLeavesFailureQueueEntries(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	before := time.Now().Add(-time.Second)
	h.send("stripe", "evt_ok", "pi_ok", 1700000000)
	h.sendInvalid()
	h.process(2)
	if n := len(h.env.ReadAll(t, h.topics.Invalid, 1, 300*time.Millisecond, 10*time.Second)); n != 1 {
		t.Fatalf("%d invalid records before the replay, want 1", n)
	}
	// A gap to fill: the good event's claim and state were lost.
	if _, err := h.store.DeleteClaims(ctx, []string{"dedup:stripe:evt_ok"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.DeleteEntities(ctx, []string{"stripe:pi:pi_ok"}); err != nil {
		t.Fatal(err)
	}
	sum := h.replay(t, "fill-q", Fill, before)
	if sum.Read != 1 || sum.Applied != 1 || sum.OnFailureQueues != 1 || sum.LeftDiscarded != 0 || sum.SourceRecords != 2 || sum.Invalid != 0 || !sum.Complete {
		t.Fatalf("summary %+v; want read 1 of the source's 2, applied 1, on failure queues 1 (undecided), invalid 0", sum)
	}
	if n := len(h.env.ReadAll(t, h.topics.Invalid, 1, 300*time.Millisecond, 10*time.Second)); n != 1 {
		t.Fatalf("%d invalid records after the replay, want still 1", n)
	}
	for _, r := range h.env.ReadAll(t, h.topics.Processed, 2, 300*time.Millisecond, 10*time.Second) {
		if o := retry.Get(r.Headers, retry.HeaderOrigin); !strings.HasPrefix(o, h.topics.Raw+"/") {
			t.Errorf("processed record with inlet-origin %q, want the raw record", o)
		}
	}

	// Once requeued, the entry no longer holds its event back: a requeued
	// entry cannot be requeued again, so fill must not leave it for good.
	h.requeueInvalid()
	sum = h.replay(t, "fill-q2", Fill, before)
	if sum.Read != 2 || sum.OnFailureQueues != 0 || sum.Duplicate != 1 || sum.Invalid != 1 {
		t.Fatalf("after the requeue: %+v; want read 2 (duplicate 1, invalid again 1), none left", sum)
	}
}

// TestCopyCommitsAsItGoes: the copy commits chunk by chunk; a run stopped
// midway keeps what it copied, and the same id goes on from there, copying
// nothing twice. (One transaction for the whole range outlived its timeout
// on a large one, and every resume started it over.)
func TestCopyCommitsAsItGoes(t *testing.T) {
	h := newHarness(t)
	before := time.Now().Add(-time.Second)
	for i := range 7 {
		h.send("stripe", fmt.Sprintf("evt_c%d", i), fmt.Sprintf("pi_c%d", i), 1700000000+int64(i))
	}
	h.send("other", "evt_o", "pi_o", 1700000000) // not selected
	h.process(8)
	defer func(c int) { copyChunk, afterCommit = c, nil }(copyChunk)
	copyChunk = 2
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	commits := 0
	afterCommit = func() {
		if commits++; commits == 2 {
			cancel() // the process is stopped after its second chunk
		}
	}
	cfg := Config{ID: "chunks", Source: "stripe", From: before, Mode: Fill, Processor: h.pcfg()}
	if _, err := Run(ctx, cfg, h.deps()); err == nil || !strings.Contains(err.Error(), "4 records copied so far stay") {
		t.Fatalf("stopped run: %v; want the copy to stop after 4 records and say so", err)
	}
	// Again, stopped after one more chunk (the hook stops each run before
	// its last chunk's position is recorded: resumes scan from the chunk
	// before and skip what the replay topic shows copied).
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	afterCommit = cancel
	if _, err := Run(ctx, cfg, h.deps()); err == nil || !strings.Contains(err.Error(), "6 records copied so far stay") {
		t.Fatalf("second stopped run: %v; want 6 copied by then", err)
	}
	// Then without the recorded position (lost before Redis got it): the
	// copies themselves say where to go on.
	if err := h.rdb.HDel(context.Background(), h.env.Prefix+":replay:chunks", fCopyProgress).Err(); err != nil {
		t.Fatal(err)
	}
	afterCommit = nil
	sum := h.replay(t, "chunks", Fill, before)
	if !sum.Complete || sum.Read != 7 || sum.Scanned != 8 || sum.Duplicate != 7 || sum.Applied != 0 {
		t.Fatalf("resumed summary %+v; want 8 scanned, 7 read, all duplicates", sum)
	}
	h.wantCopiedOnce(t, "chunks", 7)
}

// TestCopyChunkTheClientAbortedIsCopiedAgain: a chunk whose commit the
// Kafka client turned into an abort (franz-go 1.22.3 did, see
// kafka.ErrClientAborted) is copied again, and the replay completes with
// every event copied once and applied; aborted every time, the replay
// stops after a few tries and says why, nothing reported complete.
func TestCopyChunkTheClientAbortedIsCopiedAgain(t *testing.T) {
	h := newHarness(t)
	before := time.Now().Add(-time.Second)
	for i := range 5 {
		h.send("stripe", fmt.Sprintf("evt_a%d", i), fmt.Sprintf("pi_a%d", i), 1700000000+int64(i))
	}
	defer func(c int) { copyChunk, commitChunk = c, (*kafka.Chunks).Commit }(copyChunk)
	copyChunk = 2
	commits, abortAt := 0, map[int]bool{}
	commitChunk = func(c *kafka.Chunks, ctx context.Context) error {
		if c.Len() == 0 {
			return c.Commit(ctx)
		}
		if commits++; !abortAt[commits] {
			return c.Commit(ctx)
		}
		// What franz-go did: the transaction ends as an abort.
		if err := c.Abort(ctx); err != nil {
			return err
		}
		return fmt.Errorf("%w (the test's)", kafka.ErrClientAborted)
	}

	for i := 1; i <= 10; i++ {
		abortAt[i] = true
	}
	cfg := Config{ID: "aborted", Source: "stripe", From: before, Mode: Fill, Processor: h.pcfg()}
	sum, err := Run(context.Background(), cfg, h.deps())
	if !errors.Is(err, kafka.ErrClientAborted) || (sum != nil && sum.Complete) || commits != kafka.ClientAbortRetries {
		t.Fatalf("every chunk aborted: %+v, %v after %d commits; want ErrClientAborted after %d, not complete", sum, err, commits, kafka.ClientAbortRetries)
	}

	commits, abortAt = 0, map[int]bool{2: true, 3: true} // the second chunk, twice
	if sum = h.replay(t, "aborted", Fill, before); !sum.Complete || sum.Read != 5 || sum.Applied != 5 {
		t.Fatalf("summary %+v; want 5 read and applied", sum)
	}
	h.wantCopiedOnce(t, "aborted", 5)
}

// wantCopiedOnce fails t unless replay id's topic holds n copies, none of
// the same raw record twice.
func (h *harness) wantCopiedOnce(t *testing.T, id string, n int) {
	t.Helper()
	copies := h.env.ReadAll(t, Topic(h.topics, id), n, 300*time.Millisecond, 10*time.Second)
	seen := map[string]bool{}
	for _, r := range copies {
		o := retry.Get(r.Headers, retry.HeaderOrigin)
		if seen[o] {
			t.Fatalf("%s copied twice", o)
		}
		seen[o] = true
	}
	if len(copies) != n {
		t.Fatalf("%d copies on the replay topic, want %d", len(copies), n)
	}
}

// TestFillCopyCommitsHeldCopiesByAge: fill holds copies back to mark them
// markBatch at a time, and commits them, with the scan position, once held
// copyAge. They waited for markBatch copies: on a source with few records
// in a long scan nothing was committed, and a stop lost the whole scan.
func TestFillCopyCommitsHeldCopiesByAge(t *testing.T) {
	h := newHarness(t)
	before := time.Now().Add(-time.Second)
	for i := range 3 {
		h.send("stripe", fmt.Sprintf("evt_a%d", i), fmt.Sprintf("pi_a%d", i), 1700000000+int64(i))
	}
	h.process(3)
	defer func(a time.Duration) { copyAge, afterCommit = a, nil }(copyAge)
	copyAge = 0 // every held copy is old enough
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	afterCommit = cancel // stopped after its first chunk
	cfg := Config{ID: "fill-age", Source: "stripe", From: before, Mode: Fill, Processor: h.pcfg()}
	if _, err := Run(ctx, cfg, h.deps()); err == nil || !strings.Contains(err.Error(), "1 records copied so far stay") {
		t.Fatalf("stopped run: %v; want the first copy committed on its own and the copy stopped after it", err)
	}
	afterCommit = nil
	sum := h.replay(t, "fill-age", Fill, before)
	if !sum.Complete || sum.Read != 3 || sum.Duplicate != 3 {
		t.Fatalf("resumed summary %+v; want 3 read, all duplicates", sum)
	}
}

// TestCopiesDeletedBeforeProcessingAreNotComplete: a replay resumed after
// retention deleted copies it had not processed fails and says so; it
// reported itself complete with those events never applied.
func TestCopiesDeletedBeforeProcessingAreNotComplete(t *testing.T) {
	h := newHarness(t)
	before := time.Now().Add(-time.Second)
	for i := range 3 {
		h.send("stripe", fmt.Sprintf("evt_x%d", i), fmt.Sprintf("pi_x%d", i), 1700000000+int64(i))
	}
	h.process(3)
	// Stopped after the copy, before anything was processed.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := h.deps()
	d.Progress = func(p Progress) {
		if p.Phase == "delete" {
			cancel()
		}
	}
	cfg := Config{ID: "expired", Source: "stripe", From: before, Mode: Rebuild, Processor: h.pcfg()}
	if _, err := Run(ctx, cfg, d); err == nil {
		t.Fatal("the stopped run did not stop")
	}
	// Retention deletes the copies.
	topic := Topic(h.topics, "expired")
	adm := kadm.NewClient(h.env.Client(t))
	ends, err := adm.ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	del := kadm.Offsets{}
	ends.Each(func(o kadm.ListedOffset) { del.AddOffset(topic, o.Partition, o.Offset, -1) })
	if res, err := adm.DeleteRecords(context.Background(), del); err != nil || res.Error() != nil {
		t.Fatalf("delete records: %v %v", err, res.Error())
	}
	_, err = Run(context.Background(), cfg, h.deps())
	if !errors.Is(err, ErrExpired) {
		t.Fatalf("resumed after the copies were deleted: %v; want ErrExpired", err)
	}
}

// TestInterruptedRebuildCountsWhatItDeleted: a rebuild stopped midway
// through deleting state reports, once resumed, every key deleted by both
// runs (the resumed run deletes the first run's keys again, removing
// nothing, and counted only its own).
func TestInterruptedRebuildCountsWhatItDeleted(t *testing.T) {
	h := newHarness(t)
	h.send("stripe", "evt_1", "pi_1", 1700000100)
	h.send("stripe", "evt_2", "pi_1", 1700000200)
	h.send("stripe", "evt_3", "pi_2", 1700000150)
	h.process(3)
	defer func(n int) { deleteBatch, afterDeleteBatch = n, nil }(deleteBatch)
	deleteBatch = 1
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	batches := 0
	afterDeleteBatch = func() {
		if batches++; batches == 2 {
			cancel()
		}
	}
	cfg := Config{ID: "rebuild-stop", Source: "stripe", Mode: Rebuild, Processor: h.pcfg()}
	if _, err := Run(ctx, cfg, h.deps()); err == nil {
		t.Fatal("the stopped rebuild did not stop")
	}
	afterDeleteBatch = nil
	sum := h.replay(t, "rebuild-stop", Rebuild, time.Time{})
	if sum.DeletedClaims != 3 || sum.DeletedEntities != 2 || !sum.Complete {
		t.Fatalf("summary %+v; want 3 claims and 2 entities deleted, as without the stop", sum)
	}
}

// TestReplayRebuildStoppedMidBatchCountsEveryDeletion: a rebuild stopped
// (Ctrl-C: its context cancelled) in the middle of a batch of deletions
// reports, once resumed, every key deleted, as an uninterrupted one does.
// The batch's next store call, or the recording of its count, failed at
// once on the cancelled context: its deletions were never counted, and the
// resumed run, deleting those keys again, removed and counted nothing
// (deleted_claims 20000 of 30000).
func TestReplayRebuildStoppedMidBatchCountsEveryDeletion(t *testing.T) {
	for _, c := range []struct {
		name string
		// stop after the store's pipeline of that kind (del: the claims;
		// eval: the entity states) of the second batch.
		after string
	}{
		{"after the batch's claims are deleted", "del"},
		{"after its entity states are deleted, before the count is recorded", "eval"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.send("stripe", "evt_1", "pi_1", 1700000100)
			h.send("stripe", "evt_2", "pi_1", 1700000200)
			h.send("stripe", "evt_3", "pi_2", 1700000150)
			h.process(3)
			defer func(n int) { deleteBatch = n }(deleteBatch)
			deleteBatch = 1 // a batch per copy
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			dels, stopped := 0, false
			d := h.deps()
			d.Store = h.hookedStore(t, pipeHook{after: func(cmds []redis.Cmder, err error) {
				if stopped || err != nil {
					return
				}
				switch name, _ := pipelineOf(cmds, ""); {
				case name == "del":
					if dels++; dels == 2 && c.after == "del" {
						stopped = true
						cancel()
					}
				case (name == "evalsha" || name == "eval") && dels == 2 && c.after == "eval":
					stopped = true
					cancel()
				}
			}})
			cfg := Config{ID: "rebuild-mid", Source: "stripe", Mode: Rebuild, Processor: h.pcfg()}
			if _, err := Run(ctx, cfg, d); !errors.Is(err, context.Canceled) {
				t.Fatalf("stopped rebuild: %v; want it stopped", err)
			}
			if !stopped {
				t.Fatal("the rebuild was not stopped where the test meant to")
			}
			sum := h.replay(t, "rebuild-mid", Rebuild, time.Time{})
			if sum.DeletedClaims != 3 || sum.DeletedEntities != 2 || !sum.Complete {
				t.Fatalf("summary %+v; want 3 claims and 2 entities deleted, as without the stop", sum)
			}
			// Exact, and not said to be a lower bound.
			if b, _ := json.Marshal(sum); strings.Contains(string(b), "deleted_at_least") {
				t.Fatalf("summary %s: exact counts said to be lower bounds", b)
			}
		})
	}
}

// stopAfterCopy runs cfg until its copy is done (rebuild: until its
// deletion starts) and stops it there.
func (h *harness) stopAfterCopy(t *testing.T, cfg Config, d Deps) *Summary {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if cfg.Mode == Rebuild {
		d.Progress = func(p Progress) {
			if p.Phase == "delete" {
				cancel()
			}
		}
	} else {
		// The last chunk committed: its count is not recorded, and the
		// next run finds the copies on the replay topic.
		defer func() { afterCommit = nil }()
		afterCommit = cancel
	}
	sum, err := Run(ctx, cfg, d)
	if err == nil || (sum != nil && sum.Complete) {
		t.Fatalf("the run was not stopped after its copy: %+v, %v", sum, err)
	}
	return sum
}

// replayed lists the keys of topic's records written by replay id (the
// replay's are committed by the time it returns).
func (h *harness) replayed(t *testing.T, topic, id string) []string {
	t.Helper()
	var keys []string
	for _, r := range h.env.ReadAll(t, topic, 1, 300*time.Millisecond, 10*time.Second) {
		if retry.Get(r.Headers, retry.HeaderReplay) == id {
			keys = append(keys, string(r.Key))
		}
	}
	return keys
}

// TestReplayRebuildKeepsNewerState: the range of a rebuild ends when it first
// ran; a newer event of one of its entities received after that and
// processed before the rebuild deletes the state (a long copy, a resume
// days later) is kept. The rebuild deleted that state and replayed the
// range, moving the entity back to its older event for good.
func TestReplayRebuildKeepsNewerState(t *testing.T) {
	h := newHarness(t)
	h.send("stripe", "evt_1", "pi_1", 1700000100)
	h.send("stripe", "evt_3", "pi_2", 1700000150)
	h.process(2)
	cfg := Config{ID: "rebuild-late", Source: "stripe", Mode: Rebuild, Processor: h.pcfg()}
	if sum := h.stopAfterCopy(t, cfg, h.deps()); sum.Read != 2 {
		t.Fatalf("first run copied %d records, want 2", sum.Read)
	}
	// After To: a newer event of pi_1, processed live.
	h.send("stripe", "evt_2", "pi_1", 1700000200)
	h.process(1)
	newer := h.states("stripe:pi:pi_1")
	if newer["stripe:pi:pi_1"].EventID != "evt_2" {
		t.Fatalf("live state %+v, want evt_2", newer)
	}

	sum := h.replay(t, "rebuild-late", Rebuild, time.Time{})
	if !sum.Complete || sum.KeptEntities != 1 || !reflect.DeepEqual(sum.KeptSample, []string{"stripe:pi:pi_1"}) || sum.DeletedEntities != 1 {
		t.Fatalf("summary %+v; want pi_1 kept (named), pi_2 deleted", sum)
	}
	if sum.Applied != 1 || sum.Stale != 1 {
		t.Fatalf("summary %+v; want evt_3 applied, evt_1 stale against the kept evt_2", sum)
	}
	if got := h.states("stripe:pi:pi_1"); !reflect.DeepEqual(got, newer) {
		t.Fatalf("pi_1 after the rebuild %+v, want the newer live state %+v", got, newer)
	}
	if got := h.states("stripe:pi:pi_2")["stripe:pi:pi_2"]; got.EventID != "evt_3" {
		t.Fatalf("pi_2 after the rebuild %+v, want evt_3 rebuilt", got)
	}
	// inlet.state's last record of pi_1 is still the live evt_2's: the
	// replay wrote none for it.
	if keys := h.replayed(t, h.topics.State, "rebuild-late"); !reflect.DeepEqual(keys, []string{"stripe:pi:pi_2"}) {
		t.Fatalf("state records written by the rebuild: %v; want pi_2's only", keys)
	}
	t.Run("a finished rebuild reports what it kept again", func(t *testing.T) {
		again := h.replay(t, "rebuild-late", Rebuild, time.Time{})
		if !again.Resumed || again.KeptEntities != 1 || !reflect.DeepEqual(again.KeptSample, sum.KeptSample) {
			t.Fatalf("summary run again %+v", again)
		}
	})
}

// TestReplayFillSkipsEventsThatAreTheirEntitysState: fill after the claims
// expired (dedup_window) or were lost: an event that is its entity's
// stored state (same id, equal time) was processed, and is a duplicate.
// Its equal time applied again and wrote a second processed record.
func TestReplayFillSkipsEventsThatAreTheirEntitysState(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	before := time.Now().Add(-time.Second)
	h.send("stripe", "evt_1", "pi_1", 1700000100)
	h.send("stripe", "evt_2", "pi_1", 1700000200)
	h.send("stripe", "evt_3", "pi_2", 1700000150)
	h.process(3)
	clean := h.states("stripe:pi:pi_1", "stripe:pi:pi_2")
	// Every claim gone; pi_2's state lost too: a gap.
	if _, err := h.store.DeleteClaims(ctx, []string{"dedup:stripe:evt_1", "dedup:stripe:evt_2", "dedup:stripe:evt_3"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.DeleteEntities(ctx, []string{"stripe:pi:pi_2"}); err != nil {
		t.Fatal(err)
	}
	sum := h.replay(t, "fill-expired", Fill, before)
	if !sum.Complete || sum.Read != 3 || sum.Applied != 1 || sum.Duplicate != 1 || sum.Stale != 1 {
		t.Fatalf("summary %+v; want evt_3 applied (the gap), evt_2 duplicate, evt_1 stale", sum)
	}
	if keys := h.replayed(t, h.topics.Processed, "fill-expired"); !reflect.DeepEqual(keys, []string{"stripe:pi:pi_2"}) {
		t.Fatalf("processed records written by the fill: %v; want pi_2's only", keys)
	}
	if got := h.states("stripe:pi:pi_1", "stripe:pi:pi_2"); !reflect.DeepEqual(got, clean) {
		t.Fatalf("state after the fill %+v, want %+v", got, clean)
	}

	t.Run("a state the replay wrote itself does not make its event a duplicate", func(t *testing.T) {
		// A replay batch that updated the state and then failed to commit
		// is redelivered: its event must apply again, as in the ordinary
		// processor, or its output is never written. Here: the copy made
		// while pi_4 had no state, then pi_4 given that event's state (as
		// the failed batch left it), then the replay resumed.
		from := time.Now().Truncate(time.Millisecond) // evt_4 only
		h.send("stripe", "evt_4", "pi_4", 1700000300)
		h.process(1)
		if _, err := h.store.DeleteClaims(ctx, []string{"dedup:stripe:evt_4"}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.store.DeleteEntities(ctx, []string{"stripe:pi:pi_4"}); err != nil {
			t.Fatal(err)
		}
		cfg := Config{ID: "fill-own", Source: "stripe", From: from, Mode: Fill, Processor: h.pcfg()}
		h.stopAfterCopy(t, cfg, h.deps())
		if _, err := h.store.ApplyBatch(ctx, []store.Update{{EntityKey: "stripe:pi:pi_4", EventTime: time.Unix(1700000300, 0), EventID: "evt_4"}}); err != nil {
			t.Fatal(err)
		}
		sum := h.replay(t, "fill-own", Fill, from)
		if !sum.Complete || sum.Applied != 1 || sum.Duplicate != 0 {
			t.Fatalf("summary %+v; want evt_4 applied", sum)
		}
		if keys := h.replayed(t, h.topics.Processed, "fill-own"); !reflect.DeepEqual(keys, []string{"stripe:pi:pi_4"}) {
			t.Fatalf("processed records written by the fill: %v; want pi_4's", keys)
		}
	})
}

// TestReplayResumeWithOtherRetryTiersIsRefused: the retry tiers make the
// replay's retry topics; a resume with others made new ones, and copies
// waiting in the old ones were never processed while the replay reported
// itself complete.
func TestReplayResumeWithOtherRetryTiersIsRefused(t *testing.T) {
	h := newHarness(t)
	h.send("stripe", "evt_1", "pi_1", 1700000100)
	h.process(1)
	cfg := Config{ID: "tiers", Source: "stripe", Mode: Rebuild, Processor: h.pcfg()}
	h.stopAfterCopy(t, cfg, h.deps())
	other := h.deps()
	other.Topics.RetryTiers = []time.Duration{time.Second}
	if slices.Equal(other.Topics.RetryTiers, h.topics.RetryTiers) {
		t.Fatal("the test needs other tiers than the harness's")
	}
	if _, err := Run(context.Background(), cfg, other); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "retry tiers") {
		t.Fatalf("resumed with other retry tiers: %v; want ErrMismatch naming them", err)
	}
	if sum := h.replay(t, "tiers", Rebuild, time.Time{}); !sum.Complete || sum.Applied != 1 {
		t.Fatalf("resumed with the same tiers: %+v", sum)
	}
	t.Run("a finished replay run with other tiers just reports its summary", func(t *testing.T) {
		sum, err := Run(context.Background(), cfg, other)
		if err != nil || !sum.Complete || !sum.Resumed || sum.Applied != 1 {
			t.Fatalf("finished replay run with other retry tiers: %+v, %v; want its summary", sum, err)
		}
	})
}

// TestReplayRebuildLeavesFailureQueueEntries: rebuild, as fill does,
// leaves the events whose DLQ or invalid entry stands. It replayed them: a
// second entry, and a discarded event back on the queue. A discarded
// entry is counted apart from the undecided ones (on_failure_queues, "left
// N events whose DLQ or invalid entry stands (requeue them from there)"):
// requeueing it is refused, it was decided. The summary counts the
// source's records in the range apart from every source's.
func TestReplayRebuildLeavesFailureQueueEntries(t *testing.T) {
	h := newHarness(t)
	before := time.Now().Add(-time.Second)
	h.send("stripe", "evt_ok", "pi_ok", 1700000000)
	h.sendInvalid()
	h.send("other", "evt_other", "pi_other", 1700000002) // another source's, in the range
	h.process(3)
	q, err := ops.New(h.kopts(), h.topics, h.codec)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if res, err := q.Discard(context.Background(), h.topics.Invalid, ops.Filter{Source: "stripe"}, "test", "not ours", false); err != nil || res.Count != 1 {
		t.Fatalf("discard: %+v, %v", res, err)
	}
	sum := h.replay(t, "rebuild-q", Rebuild, before)
	if !sum.Complete || sum.Read != 1 || sum.Applied != 1 || sum.OnFailureQueues != 0 || sum.LeftDiscarded != 1 || sum.Invalid != 0 ||
		sum.SourceRecords != 2 || sum.Scanned != 3 {
		t.Fatalf("summary %+v; want read 1 of the source's 2 records (3 scanned), applied 1, none undecided on the queues, 1 discarded left, invalid 0", sum)
	}
	if n := len(h.env.ReadAll(t, h.topics.Invalid, 1, 300*time.Millisecond, 10*time.Second)); n != 1 {
		t.Fatalf("%d invalid records after the rebuild, want still 1", n)
	}
}

// An entry holding no copy of its event (too large with its failure
// headers) cannot be requeued, and its hint says to replay the raw record
// and then discard the entry: a fill must take that record, not leave it
// as standing on a failure queue.
func TestReplayFillTakesEventsWhoseEntryHasNoCopy(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	before := time.Now().Add(-time.Second)
	h.send("stripe", "evt_big", "pi_big", 1700000000)
	h.process(1)
	raws := h.env.ReadAll(t, h.topics.Raw, 1, 300*time.Millisecond, 10*time.Second)
	if len(raws) != 1 {
		t.Fatalf("%d raw records, want 1", len(raws))
	}
	// The entry the processor writes when the copy would not fit: no
	// value, marked, pointing at the raw record.
	entry := &kgo.Record{Topic: h.topics.DLQ, Key: raws[0].Key, Headers: []kgo.RecordHeader{
		{Key: retry.HeaderOrigin, Value: []byte(retry.Coordinates(raws[0]))},
		{Key: retry.HeaderSource, Value: []byte("stripe")},
		{Key: retry.HeaderReason, Value: []byte("budget exhausted")},
		{Key: retry.HeaderValueOmitted, Value: []byte("too large for a copy with its failure headers")},
	}}
	if err := h.env.Client(t).ProduceSync(ctx, entry).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// Its state is lost, as if it had never been processed.
	if _, err := h.store.DeleteClaims(ctx, []string{"dedup:stripe:evt_big"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.DeleteEntities(ctx, []string{"stripe:pi:pi_big"}); err != nil {
		t.Fatal(err)
	}
	sum := h.replay(t, "fill-nocopy", Fill, before)
	if sum.Read != 1 || sum.Applied != 1 || sum.OnFailureQueues != 0 || !sum.Complete {
		t.Fatalf("summary %+v; want the record read and applied, none left on the failure queues", sum)
	}
}

// TestReplayDefaultIDOfALongSourceIsValid: a source name may be 64
// characters (pkg/source), and the id DefaultID derives from it must pass
// Validate. Over 58 characters it was longer than 100, and the replay
// was refused as if the user had given a bad --id. A long id is cut and
// hashed: valid, the same for the same command (a resume), and distinct
// for other sources sharing the cut, other ranges and modes.
func TestReplayDefaultIDOfALongSourceIsValid(t *testing.T) {
	from := time.Date(2025, 1, 31, 0, 0, 0, 0, time.UTC)
	to := time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)
	long := strings.Repeat("s", 64)
	seen := map[string]string{}
	for _, c := range []struct {
		name     string
		src      string
		from, to time.Time
		mode     Mode
	}{
		{"64 characters", long, from, to, Rebuild},
		{"59 characters", long[:59], from, to, Rebuild},
		{"another source sharing the cut", long[:63] + "t", from, to, Rebuild},
		{"another mode", long, from, to, Fill},
		{"another range", long, from.Add(time.Second), to, Rebuild},
		{"to a millisecond apart", long, from, to.Add(time.Millisecond), Rebuild},
		{"open start", long, time.Time{}, to, Rebuild}, // short enough: not cut
	} {
		t.Run(c.name, func(t *testing.T) {
			id := DefaultID(c.src, c.from, c.to, c.mode)
			cfg := Config{ID: id, Source: c.src, From: c.from, To: c.to, Mode: c.mode}
			if err := cfg.Validate(); err != nil {
				t.Fatalf("default id %q (%d chars) refused: %v", id, len(id), err)
			}
			if again := DefaultID(c.src, c.from, c.to, c.mode); again != id {
				t.Fatalf("the same parameters gave %q, then %q: a resume would not find the replay", id, again)
			}
			if other, ok := seen[id]; ok {
				t.Fatalf("id %q is also %s's", id, other)
			}
			seen[id] = c.name
			if !regexp.MustCompile(`^s+t?-(open|\d{8}T\d{6}(\.\d+)?Z)-\d{8}T\d{6}(\.\d+)?Z-` + string(c.mode) + `(-[0-9a-f]{12})?$`).MatchString(id) {
				t.Errorf("id %q: want <source (cut)>-<from>-<to>-<mode>(-<hash>, when cut)", id)
			}
		})
	}
	// Up to 58 characters, as before.
	if id := DefaultID(long[:58], from, to, Rebuild); id != long[:58]+"-20250131T000000Z-20250201T000000Z-rebuild" {
		t.Errorf("default id of a 58-character source %q", id)
	}
}

// TestReplayRangeIsByRecordTime: From and To bound the raw records' own
// timestamps, [From, To). Ingest stamps a record with the time its
// request was received, before the produce, so two concurrent requests
// (or two ingest replicas) land out of time order. The range was cut by
// offset (the first record at or after From, and at or after To): a
// record received before To but written after a later-stamped one was
// left out, and one received before From but written after a later one
// was taken.
func TestReplayRangeIsByRecordTime(t *testing.T) {
	h := newHarness(t)
	cl := h.env.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	to := time.Now().Add(-2 * time.Minute).Truncate(time.Millisecond)
	from := to.Add(-time.Hour)
	h.sendAt(t, cl, "stripe", "evt_before", "pi_before", from.Add(-time.Hour))
	h.sendAt(t, cl, "stripe", "evt_first", "pi_first", from.Add(5*time.Millisecond))
	h.sendAt(t, cl, "stripe", "evt_early", "pi_early", from.Add(-5*time.Millisecond)) // received before From, written after evt_first
	h.sendAt(t, cl, "stripe", "evt_in", "pi_in", to.Add(-10*time.Second))
	h.sendAt(t, cl, "stripe", "evt_after", "pi_after", to.Add(5*time.Millisecond))
	h.sendAt(t, cl, "stripe", "evt_late", "pi_late", to.Add(-5*time.Millisecond)) // received before To, written after evt_after
	h.sendAt(t, cl, "stripe", "evt_later", "pi_later", to.Add(time.Hour))
	want := []string{"stripe:evt_first", "stripe:evt_in", "stripe:evt_late"}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cfg := Config{ID: "by-time", Source: "stripe", From: from, To: to, Mode: Fill, Processor: h.pcfg()}
	sum, err := Run(ctx, cfg, h.deps())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range h.env.ReadAll(t, Topic(h.topics, "by-time"), len(want), 300*time.Millisecond, 10*time.Second) {
		got = append(got, string(r.Key))
	}
	slices.Sort(got) // the copies are spread over the replay topic's partitions
	if !reflect.DeepEqual(got, want) || sum.Read != 3 || sum.Scanned != 3 || sum.SourceRecords != 3 || !sum.Complete {
		t.Fatalf("copied %v, summary %+v; want %v (the records whose times are in [%v, %v)), read and scanned 3",
			got, sum, want, from, to)
	}

	t.Run("a copy stopped in the middle goes on by record time, copying nothing twice", func(t *testing.T) {
		defer func(c int) { copyChunk, afterCommit = c, nil }(copyChunk)
		copyChunk = 1
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		afterCommit = cancel // after the first copy
		cfg := Config{ID: "by-time-2", Source: "stripe", From: from, To: to, Mode: Fill, Processor: h.pcfg()}
		if _, err := Run(ctx, cfg, h.deps()); err == nil || !strings.Contains(err.Error(), "1 records copied so far stay") {
			t.Fatalf("stopped run: %v; want it stopped after its first copy", err)
		}
		afterCommit = nil
		sum := h.runToEnd(t, cfg)
		var got []string
		for _, r := range h.env.ReadAll(t, Topic(h.topics, "by-time-2"), len(want), 300*time.Millisecond, 10*time.Second) {
			got = append(got, string(r.Key))
		}
		slices.Sort(got)
		if !reflect.DeepEqual(got, want) || sum.Read != 3 || sum.Scanned != 3 || !sum.Complete || !sum.Resumed {
			t.Fatalf("copied %v, summary %+v; want %v once each, read and scanned 3", got, sum, want)
		}
	})
}

// runToEnd runs cfg to its end.
func (h *harness) runToEnd(t *testing.T, cfg Config) *Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sum, err := Run(ctx, cfg, h.deps())
	if err != nil {
		t.Fatalf("replay %s: %v", cfg.ID, err)
	}
	return sum
}

// TestReplayStoppedAsProcessingEndsIsComplete: a replay stopped (Ctrl-C)
// just as its last copy got its outcome, while the processor shut down,
// is finished: complete, recorded so, and no error. The complete flag was
// written with the cancelled context and failed, and the run returned
// complete together with context.Canceled ("interrupted", exit 1), the
// flag unrecorded.
func TestReplayStoppedAsProcessingEndsIsComplete(t *testing.T) {
	h := newHarness(t)
	for i := range 3 {
		h.send("stripe", fmt.Sprintf("evt_k%d", i), fmt.Sprintf("pi_k%d", i), 1700000000+int64(i))
	}
	h.process(3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := h.deps()
	stopped := false
	d.Progress = func(p Progress) {
		if p.Phase == "process" && p.Total > 0 && p.Done >= p.Total {
			stopped = true
			cancel()
		}
	}
	cfg := Config{ID: "stop-at-end", Source: "stripe", Mode: Rebuild, Processor: h.pcfg()}
	sum, err := Run(ctx, cfg, d)
	if !stopped {
		t.Fatal("the run was not stopped where the test meant to")
	}
	rec, _ := h.rdb.HGet(context.Background(), h.env.Prefix+":replay:stop-at-end", fComplete).Result()
	if err != nil || !sum.Complete || rec != "1" {
		t.Fatalf("stopped as processing ended: %v, summary %+v, complete recorded %q; want no error, complete and recorded", err, sum, rec)
	}
	again := h.replay(t, "stop-at-end", Rebuild, time.Time{})
	if !again.Resumed || !again.Complete || again.Read != 3 || again.Applied+again.Stale+again.Duplicate != 3 {
		t.Fatalf("run again: %+v; want the finished replay's summary", again)
	}
}

// The second run of TestReplaySameIDTwiceAtOnceIsRefused, in a process of
// its own, is given the stack by these variables.
const (
	twiceBrokers  = "INLET_REPLAY_TWICE_BROKERS"
	twiceRegistry = "INLET_REPLAY_TWICE_REGISTRY"
	twiceRedis    = "INLET_REPLAY_TWICE_REDIS"
	twicePrefix   = "INLET_REPLAY_TWICE_PREFIX"
	twiceHolder   = "INLET_REPLAY_TWICE_HOLDER" // the first run's pid
)

func twiceConfig(pcfg processor.Config) Config {
	return Config{ID: "twice", Source: "stripe", Mode: Fill, Processor: pcfg}
}

// TestReplaySameIDTwiceAtOnceIsRefused: the same replay run twice at once
// (a second terminal, a retried Job whose first pod still runs), each in
// its own process: the second is refused at once, naming the first run's
// host and pid, and the first finishes. Both ran: they joined the
// replay's group, split its partitions, and each waited for every copy's
// outcome counted by itself, so neither ever finished.
func TestReplaySameIDTwiceAtOnceIsRefused(t *testing.T) {
	if os.Getenv(twiceBrokers) != "" {
		t.Skip("in the second run's process: TestReplaySameIDTwiceAtOnceSecondRun runs")
	}
	h := newHarness(t)
	for i := range 3 {
		h.send("stripe", fmt.Sprintf("evt_t%d", i), fmt.Sprintf("pi_t%d", i), 1700000000+int64(i))
	}
	h.process(3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The first run is held at its first progress report while
	// processing, until the second has run.
	processing, release := make(chan struct{}), make(chan struct{})
	held := false
	d := h.deps()
	d.Progress = func(p Progress) {
		if p.Phase == "process" && !held {
			held = true
			close(processing)
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
	}
	type result struct {
		sum *Summary
		err error
	}
	done := make(chan result, 1)
	go func() {
		sum, err := Run(ctx, twiceConfig(h.pcfg()), d)
		done <- result{sum, err}
	}()
	select {
	case <-processing:
	case r := <-done:
		t.Fatalf("the first run ended before processing: %+v, %v", r.sum, r.err)
	case <-ctx.Done():
		t.Fatal("the first run did not reach processing")
	}
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestReplaySameIDTwiceAtOnceSecondRun$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), twiceBrokers+"="+strings.Join(h.env.Brokers, ","), twiceRegistry+"="+h.env.RegistryURL,
		twiceRedis+"="+h.env.RedisURL, twicePrefix+"="+h.env.Prefix, twiceHolder+"="+strconv.Itoa(os.Getpid()))
	out, cerr := cmd.CombinedOutput()
	close(release)
	if cerr != nil || !strings.Contains(string(out), "--- PASS: TestReplaySameIDTwiceAtOnceSecondRun") {
		t.Errorf("the second run: %v:\n%s", cerr, out)
	}
	select {
	case r := <-done:
		if r.err != nil || !r.sum.Complete || r.sum.Read != 3 || r.sum.Duplicate != 3 {
			t.Fatalf("the first run: %+v, %v; want it complete, 3 read, all duplicates", r.sum, r.err)
		}
	case <-ctx.Done():
		t.Fatal("the first run did not finish")
	}
	// Its lock released: the id runs again (and reports its summary).
	if again := h.runToEnd(t, twiceConfig(h.pcfg())); !again.Complete || !again.Resumed {
		t.Fatalf("run again after the first ended: %+v", again)
	}
}

// TestReplaySameIDTwiceAtOnceSecondRun is the second run of
// TestReplaySameIDTwiceAtOnceIsRefused, in a process of its own.
func TestReplaySameIDTwiceAtOnceSecondRun(t *testing.T) {
	brokers := os.Getenv(twiceBrokers)
	if brokers == "" {
		t.Skip("run by TestReplaySameIDTwiceAtOnceIsRefused")
	}
	t.Setenv("T_STRIPE", "s")
	env := &testenv.Env{Brokers: strings.Split(brokers, ","), RegistryURL: os.Getenv(twiceRegistry),
		RedisURL: os.Getenv(twiceRedis), Prefix: os.Getenv(twicePrefix)}
	s := processortest.New(t, env, testSources)
	h := &harness{t: t, stack: s, env: env, topics: s.Topics, sources: s.Sources, router: s.Router, codec: s.Codec, rdb: s.Redis, store: s.Store}
	before, err := h.rdb.HGetAll(context.Background(), env.Prefix+":replay:twice").Result()
	if err != nil {
		t.Fatal(err)
	}
	// At once: the first run holds the id until the test lets it go on.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	sum, err := Run(ctx, twiceConfig(h.pcfg()), h.deps())
	var running *RunningError
	if !errors.As(err, &running) || !errors.Is(err, ErrRunning) || sum != nil {
		t.Fatalf("second run of the id: %+v, %v; want ErrRunning at once, no summary", sum, err)
	}
	host, _ := os.Hostname()
	pid := os.Getenv(twiceHolder)
	if strconv.Itoa(running.Holder.PID) != pid || running.Holder.Host != host || time.Since(running.Holder.Since) > time.Minute ||
		!strings.Contains(err.Error(), fmt.Sprintf("host %s, pid %s, since ", host, pid)) {
		t.Fatalf("refused with %v (holder %+v); want it to name the first run: host %s, pid %s, since its start", err, running.Holder, host, pid)
	}
	var lock Holder
	if v, err := h.rdb.Get(context.Background(), env.Prefix+":replay:twice:lock").Result(); err != nil || json.Unmarshal([]byte(v), &lock) != nil || lock.Token == "" {
		t.Fatalf("the first run's lock: %q, %v", v, err)
	}
	if strings.Contains(err.Error(), lock.Token) || running.Holder.Token != "" {
		t.Fatalf("the refusal shows the lock's token: %v", err)
	}
	after, err := h.rdb.HGetAll(context.Background(), env.Prefix+":replay:twice").Result()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("the refused run changed the progress record: %v, then %v", before, after)
	}
}

// TestCopyResumeCopiesAnEntryRequeuedMeanwhile: a run stopped before the
// position of its last chunks was recorded leaves, behind copies of later
// records of the same partition, a record it did not copy because its
// entry on the invalid topic was undecided. Requeued before the resume,
// the entry no longer holds its event back: the resume copies it, rather
// than taking it, as it stands below a copied offset, for copied already
// (it was then neither copied nor counted anywhere).
func TestCopyResumeCopiesAnEntryRequeuedMeanwhile(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	before := time.Now().Add(-time.Second)
	h.sendInvalid()
	const good = 12
	for i := range good {
		h.send("stripe", fmt.Sprintf("evt_r%d", i), fmt.Sprintf("pi_r%d", i), 1700000000+int64(i))
	}
	h.process(good + 1)
	raw := h.env.ReadAll(t, h.topics.Raw, good+1, 300*time.Millisecond, 10*time.Second)
	var bad *kgo.Record
	for _, r := range raw {
		if strings.Contains(string(r.Value), "evt_bad") {
			bad = r
		}
	}
	shares := false
	for _, r := range raw {
		shares = shares || (r != bad && r.Partition == bad.Partition && r.Offset > bad.Offset)
	}
	if !shares {
		t.Fatal("no good event after the bad one on its partition: the test needs more events")
	}

	defer func(c int) { copyChunk, afterCommit = c, nil }(copyChunk)
	copyChunk = 2
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	commits := 0
	afterCommit = func() {
		if commits++; commits == good/2 {
			cancel() // stopped after its last chunk, its position unrecorded
		}
	}
	cfg := Config{ID: "decided", Source: "stripe", From: before, Mode: Fill, Processor: h.pcfg()}
	if _, err := Run(runCtx, cfg, h.deps()); !errors.Is(err, context.Canceled) {
		t.Fatalf("stopped run: %v; want it stopped", err)
	}
	h.wantCopiedOnce(t, "decided", good) // the bad one left
	afterCommit = nil
	// The position of earlier chunks lost too: the resume scans from the
	// start, and the copies say what was copied.
	if err := h.rdb.HDel(ctx, h.env.Prefix+":replay:decided", fCopyProgress).Err(); err != nil {
		t.Fatal(err)
	}
	h.requeueInvalid()
	sum := h.replay(t, "decided", Fill, before)
	if !sum.Complete || sum.Read != good+1 || sum.OnFailureQueues != 0 || sum.SourceRecords != good+1 {
		t.Fatalf("resumed summary %+v; want all %d read, the requeued one among them", sum, good+1)
	}
	h.wantCopiedOnce(t, "decided", good+1)
}

// TestReplayDefaultIDKeepsFractions: ranges that differ below the second
// got one default id, and the second replay was refused as started with
// different parameters.
func TestReplayDefaultIDKeepsFractions(t *testing.T) {
	from := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	a := DefaultID("shop", from, from.Add(time.Hour), Rebuild)
	b := DefaultID("shop", from.Add(500*time.Millisecond), from.Add(time.Hour), Rebuild)
	if a == b {
		t.Fatalf("ranges 500ms apart share id %s", a)
	}
	if want := "shop-20250102T030405.5Z-20250102T040405Z-rebuild"; b != want {
		t.Errorf("id %s, want %s", b, want)
	}
	if err := (&Config{ID: b, Source: "shop", Mode: Rebuild, From: from, To: from.Add(time.Hour)}).Validate(); err != nil {
		t.Errorf("id %s: %v", b, err)
	}
}

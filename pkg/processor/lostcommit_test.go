package processor

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/inletdev/inlet/pkg/router"
	"github.com/inletdev/inlet/pkg/store"
	"github.com/inletdev/inlet/pkg/telemetry"
	"github.com/inletdev/inlet/pkg/telemetry/telemetrytest"
	"github.com/inletdev/inlet/pkg/testenv/syncbuf"
)

// TestCommittedOffsetsFindLostCommits: a record below the offsets an
// acknowledged commit stored is marked as one whose commit Kafka lost, and
// described per partition; records at or past them, and on partitions no
// commit named, are not.
func TestCommittedOffsetsFindLostCommits(t *testing.T) {
	var c committedOffsets
	c.note(map[string]map[int32]int64{"raw": {0: 10, 1: 5}})
	c.note(map[string]map[int32]int64{"raw": {0: 7}, "retry.30s": {2: 3}}) // an older commit does not lower it
	rec := func(topic string, p int32, off int64) *item {
		return &item{rec: &kgo.Record{Topic: topic, Partition: p, Offset: off}}
	}
	items := []*item{rec("raw", 0, 9), rec("raw", 0, 10), rec("raw", 0, 4), rec("raw", 1, 5), rec("raw", 3, 0), rec("retry.30s", 2, 2)}
	found, where := c.lost(items)
	if len(found) != 3 {
		t.Errorf("%d lost, want 3", len(found))
	}
	want := []bool{true, false, true, false, false, true}
	for i, it := range items {
		if it.lostCommit != want[i] {
			t.Errorf("%s/%d offset %d: lostCommit %v, want %v", it.rec.Topic, it.rec.Partition, it.rec.Offset, it.lostCommit, want[i])
		}
	}
	if where != "raw/0 offsets 4–9 (committed up to 10), retry.30s/2 offsets 2–2 (committed up to 3)" {
		t.Errorf("where %q", where)
	}
	if found, where := c.lost([]*item{rec("raw", 0, 12)}); len(found) != 0 || where != "" {
		t.Errorf("a record past the commit: %q, want none", where)
	}
}

// TestClaimTakesBackTheKeysOfALostCommit: an event whose record a lost
// commit covered finds its dedup key done (its processing was confirmed
// before Kafka lost it): claim takes the key back and the event goes on
// to be processed, where any other event with a done key is a duplicate.
// A key another attempt holds stays busy for it too.
func TestClaimTakesBackTheKeysOfALostCommit(t *testing.T) {
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	st := store.New(rdb, store.ClaimLease(time.Minute))
	var buf syncbuf.Buffer
	p := &Processor{cfg: DefaultConfig(), d: Deps{Store: st}, log: bufLog(&buf)}
	ctx := context.Background()
	// Both events were processed and confirmed before. (The store keeps
	// a dedup key k under inlet:dedup:k.)
	done := []string{"dedup:s:lost", "dedup:s:dup"}
	first := store.NewToken()
	if _, err := st.ClaimBatch(ctx, done, first); err != nil {
		t.Fatal(err)
	}
	if err := st.ConfirmBatch(ctx, done, first, []time.Duration{time.Hour}); err != nil {
		t.Fatal(err)
	}
	lost := &item{rec: &kgo.Record{Topic: "raw", Offset: 1}, out: &router.Output{EntityKey: "e1"}, dedup: "dedup:s:lost", lock: "lock:e1", lostCommit: true}
	dup := &item{rec: &kgo.Record{Topic: "raw", Offset: 2}, out: &router.Output{EntityKey: "e2"}, dedup: "dedup:s:dup", lock: "lock:e2"}
	token := store.NewToken()
	held, err := p.claim(ctx, ctx, []*item{lost, dup}, token, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if lost.outcome != "" || dup.outcome != Duplicate {
		t.Fatalf("outcomes %q and %q, want the lost commit's event undecided (to be processed) and the other a duplicate", lost.outcome, dup.outcome)
	}
	if !strings.Contains(strings.Join(held, " "), "dedup:s:lost") {
		t.Fatalf("claimed %v, want the lost commit's key among them", held)
	}
	if v, _ := rdb.Get(ctx, "inlet:dedup:dedup:s:lost").Result(); v != token {
		t.Fatalf("the key holds %q, want this attempt's token", v)
	}
	// Confirmed again once its output is written.
	if err := st.ConfirmBatch(ctx, []string{"dedup:s:lost"}, token, []time.Duration{time.Hour}); err != nil {
		t.Fatal(err)
	}

	// Held by another attempt: busy, not taken.
	other := store.NewToken()
	if _, err := st.ClaimBatch(ctx, []string{"dedup:s:held"}, other); err != nil {
		t.Fatal(err)
	}
	res, err := st.RetakeDone(ctx, []string{"dedup:s:held", "dedup:s:lost", "dedup:s:free"}, token)
	if err != nil {
		t.Fatal(err)
	}
	if res[0] != store.ClaimBusy || res[1] != store.ClaimAcquired || res[2] != store.ClaimAcquired {
		t.Fatalf("retake %v, want busy, acquired, acquired", res)
	}
	if v, _ := rdb.Get(ctx, "inlet:dedup:dedup:s:held").Result(); v != other {
		t.Fatalf("a held key now holds %q, want the other attempt's token", v)
	}
}

// TestClaimTakesBackTheKeysDoneAtTheSameOffsets: with no memory of the
// commit (another instance's, or one from before a restart), a record
// whose dedup key is done at its own position is the same record come
// back, not a duplicate: claim takes its key back, logs where, and the
// event goes on to be processed. A record of the same key at another
// offset stays a duplicate.
func TestClaimTakesBackTheKeysDoneAtTheSameOffsets(t *testing.T) {
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	st := store.New(rdb, store.ClaimLease(time.Minute))
	var buf syncbuf.Buffer
	r := sdkmetric.NewManualReader()
	met, err := newMetrics(sdkmetric.NewMeterProvider(sdkmetric.WithReader(r)).Meter("t"), telemetry.NewLimiter(10))
	if err != nil {
		t.Fatal(err)
	}
	p := &Processor{cfg: DefaultConfig(), d: Deps{Store: st}, log: bufLog(&buf), metrics: met}
	ctx := context.Background()
	rec := func(off int64) *kgo.Record { return &kgo.Record{Topic: "inlet.raw", Partition: 2, Offset: off} }
	// Processed before, by the records at inlet.raw/2/40 and /41.
	first := store.NewToken()
	done := []string{"dedup:s:back", "dedup:s:dup"}
	if _, err := st.ClaimBatch(ctx, done, first); err != nil {
		t.Fatal(err)
	}
	if err := st.Settle(ctx, first, done, []string{"inlet.raw/2/40", "inlet.raw/2/41"}, []time.Duration{time.Hour}, nil); err != nil {
		t.Fatal(err)
	}
	back := &item{rec: rec(40), out: &router.Output{EntityKey: "e1"}, dedup: "dedup:s:back", lock: "lock:e1"}
	dup := &item{rec: rec(57), out: &router.Output{EntityKey: "e2"}, dedup: "dedup:s:dup", lock: "lock:e2"}
	token := store.NewToken()
	held, err := p.claim(ctx, ctx, []*item{back, dup}, token, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if back.outcome != "" || dup.outcome != Duplicate {
		t.Fatalf("outcomes %q and %q, want the record come back undecided (to be processed) and the other a duplicate", back.outcome, dup.outcome)
	}
	if !strings.Contains(strings.Join(held, " "), "dedup:s:back") {
		t.Fatalf("claimed %v, want the returned record's key among them", held)
	}
	if v, _ := rdb.Get(ctx, "inlet:dedup:dedup:s:back").Result(); v != token {
		t.Fatalf("the key holds %q, want this attempt's token", v)
	}
	log := buf.String()
	if !strings.Contains(log, "processed and marked done at the same offsets") || !strings.Contains(log, "inlet.raw/2 offsets 40–40") || !strings.Contains(log, `"records":1`) {
		t.Fatalf("log does not say which records came back:\n%s", log)
	}
	if got := telemetrytest.Int64s(t, r, "inlet.redelivered", "topic"); !maps.Equal(got, map[string]int64{"inlet.raw": 1}) {
		t.Fatalf("inlet.redelivered %v, want 1 for inlet.raw", got)
	}
}

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
	held, _, err := p.claim(ctx, ctx, []*item{back, dup}, token, time.Now().Add(time.Minute), nil, nil)
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

package processor

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/testenv"
)

// TestNewPartitionsConsumedWithoutRestart: partitions added to the raw and
// retry topics of a settled group are consumed within newPartitionsWithin.
// At franz-go's default metadata age (5 min) the group took them on only
// at its leader's next refresh: an ingest that refreshed first wrote
// events there that waited minutes, unprocessed and outside the lag gauge
// (it counts assigned partitions only); this test timed out.
func TestNewPartitionsConsumedWithoutRestart(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t))
	a, b := h.start("a", nil), h.start("b", nil)
	// Ingest, as one whose metadata refresh comes right after the change.
	ing := h.env.Client(t, kgo.ProducerLinger(0), kgo.MetadataMinAge(50*time.Millisecond), kgo.MetadataMaxAge(100*time.Millisecond))
	send := func(id string, i int) int32 {
		r, err := h.rawRecord(id, paymentIntent(id, fmt.Sprintf("pi_%d", i%5), "succeeded", 1700000000+int64(i)))
		if err != nil {
			t.Fatal(err)
		}
		if err := ing.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		return r.Partition
	}
	for i := range 30 {
		send(fmt.Sprintf("evt_before_%d", i), i)
	}
	// Every member synced in one generation: the joins, which refresh
	// metadata, are over before the partitions are added.
	testenv.Eventually(t, 20*time.Second, "the group to settle", func() bool {
		return h.all() >= 30 && settled(a, b)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(h.env.Client(t)).CreatePartitions(ctx, 3, append([]string{h.topics.Raw}, h.topics.Retry...)...)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	added := time.Now()
	var onNew string
	next := 30
	testenv.Eventually(t, 5*time.Second, "ingest to write to a new partition", func() bool {
		id := fmt.Sprintf("evt_after_%d", next)
		if send(id, next) >= 3 {
			onNew = id
		}
		next++
		return onNew != ""
	})
	testenv.Eventually(t, 10*time.Second+10*time.Second, "the event on a new partition to be processed", func() bool {
		return processedID(h, onNew)
	})
	t.Logf("consumed %v after the partitions were added", time.Since(added).Round(time.Millisecond))
}

// processedID reports whether the processed topic holds an output of the
// event id.
func processedID(h *harness, id string) bool {
	for _, r := range h.env.ReadTopic(h.t, h.topics.Processed, 1<<30, 300*time.Millisecond) {
		if strings.Contains(string(r.Value), id) {
			return true
		}
	}
	return false
}

// flakySink fails the first delivery of the keys fail picks, then answers
// 200.
type flakySink struct {
	mu    sync.Mutex
	fail  func(key string) bool
	calls map[string]int
}

func (s *flakySink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := r.Header.Get("Idempotency-Key")
	s.calls[k]++
	if s.calls[k] == 1 && s.fail(k) {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// TestScaleOutWhileEventsFlow: partitions added to the raw and retry
// topics, an instance added, one removed and one restarted with fewer
// workers, all while events flow (some retried, some redelivered by the
// sender after the change, on other partitions, some older than their
// entity's state): every event has one outcome and at most one output, a
// redelivery is a duplicate wherever it lands, each entity holds its newest
// event, every raw record is committed, and the lag gauges cover the new
// partitions.
func TestScaleOutWhileEventsFlow(t *testing.T) {
	sink := &flakySink{calls: map[string]int{}}
	sink.fail = func(k string) bool {
		return strings.HasSuffix(k, "0") || strings.HasSuffix(k, "3") || strings.HasSuffix(k, "6")
	}
	ds := httptest.NewServer(sink)
	t.Cleanup(ds.Close)
	h := newHarnessWith(t, testenv.Embedded(t), shopSinkSources(ds.URL, "\n    retry: {tiers: [1s, 2s], max_attempts: 3}"), testTiers, nil)
	// Ingest's producers, as one that refreshed its metadata right after
	// the partitions were added.
	h.prod = h.env.Client(t, kgo.ProducerLinger(0), kgo.MetadataMinAge(50*time.Millisecond), kgo.MetadataMaxAge(100*time.Millisecond))
	base := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	newest := map[int64]time.Time{}
	order := func(i int) (string, []byte) {
		id, at := int64(i%5+1), base.Add(time.Duration(i)*time.Minute)
		if at.After(newest[id]) {
			newest[id] = at
		}
		return fmt.Sprintf("wh-%d", i), shopOrder(id, at, "paid", true)
	}
	send := func(from, to int) {
		for i := from; i < to; i++ {
			id, body := order(i)
			h.send("shop", "orders/updated", id, "2025-01", envelope.ChannelWebhook, body)
		}
	}
	a := h.start("a", nil)
	b := h.start("b", nil)
	send(0, 20)
	adm := kadm.NewClient(h.env.Client(t))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := adm.CreatePartitions(ctx, 3, append([]string{h.topics.Raw}, h.topics.Retry...)...)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	// Traffic goes on until ingest writes to the new partitions.
	next := 20
	testenv.Eventually(t, 10*time.Second, "a raw record on a new partition", func() bool {
		send(next, next+1)
		next++
		ends, err := adm.ListEndOffsets(ctx, h.topics.Raw)
		if err != nil {
			t.Fatal(err)
		}
		written := false
		ends.Each(func(o kadm.ListedOffset) { written = written || (o.Partition >= 3 && o.Offset > 0) })
		return written
	})
	send(next, next+20)
	next += 20
	send(0, 10) // the sender redelivers: same keys, now hashed over 6 partitions
	c := h.start("c", func(c *Config) { c.Workers = 3 })
	send(next, next+20)
	next += 20
	for k := range 5 { // older than everything of their entities
		h.send("shop", "orders/updated", fmt.Sprintf("wh-old-%d", k), "2025-01", envelope.ChannelWebhook,
			shopOrder(int64(k+1), base.Add(-time.Hour), "pending", true))
	}
	b.stop(t)
	send(next, next+20)
	next += 20
	a.stop(t)
	h.start("a", func(c *Config) { c.Workers = 1 }) // rolling restart, fewer workers
	send(next, next+20)
	next += 20

	events, redelivered := int64(next+5), int64(10)
	testenv.Eventually(t, 25*time.Second, "every event decided", func() bool {
		return h.total(Processed)+h.total(Stale)+h.total(Duplicate) >= events+redelivered
	})
	ids := eventIDs(h, int(h.total(Processed)))
	for id, n := range ids {
		if n != 1 {
			t.Errorf("%s has %d processed outputs, want 1", id, n)
		}
	}
	if p, s, d, dl, inv := h.total(Processed), h.total(Stale), h.total(Duplicate), h.total(DeadLetter), h.total(Invalid); p+s != events || d != redelivered || dl+inv != 0 || int(p) != len(ids) {
		t.Errorf("processed %d + stale %d, want %d; duplicate %d, want %d; dlq %d, invalid %d; %d events with output", p, s, events, d, redelivered, dl, inv, len(ids))
	}
	keys := []string{}
	for id := range int64(5) {
		keys = append(keys, fmt.Sprintf("shopify:order:%d", id+1))
	}
	times, err := storeFor(h).EntityTimes(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		if want := newest[int64(i+1)]; !times[i].EventTime.Equal(want) {
			t.Errorf("%s stored at %v, want its newest event's %v", k, times[i].EventTime, want)
		}
	}
	// Every raw record, on old partitions and new, consumed and committed.
	raw := h.env.ReadAll(t, h.topics.Raw, int(events+redelivered), 300*time.Millisecond, 10*time.Second)
	onNew, moved := 0, 0
	first := map[string]int32{} // key → partition of its first delivery
	for _, r := range raw {
		if r.Partition >= 3 {
			onNew++
		}
		if p, ok := first[string(r.Key)]; !ok {
			first[string(r.Key)] = r.Partition
		} else if p != r.Partition {
			moved++
		}
	}
	if moved == 0 {
		t.Error("no redelivery landed on another partition than its first delivery")
	}
	if n := committedRaw(t, h); n != int64(len(raw)) {
		t.Errorf("the group committed %d raw offsets for %d raw records", n, len(raw))
	}
	t.Logf("%d of %d raw records on the new partitions, %d redeliveries on another partition than the first; %d retried", onNew, len(raw), moved, h.total(Retried))
	// The lag gauges cover the new partitions and read 0 once drained.
	lm := newLagMeter(h.env.Client(t))
	var d depths
	var parts int
	testenv.Eventually(t, 10*time.Second, "the lag gauges to read 0 over 6 raw partitions", func() bool {
		lags, err := lm.adm.Lag(ctx, h.config().Group)
		c.p.foldLag(ctx, &d, lm, lags, err, time.Now())
		parts = len(lags[h.config().Group].Lag[h.topics.Raw])
		return d.known && parts == 6 && d.lag[h.topics.Raw] == 0 && d.retry["1s"] == 0 && d.retry["2s"] == 0
	})
}

// settled reports whether every worker of rs synced in the same generation.
func settled(rs ...*running) bool {
	gen := rs[0].p.workers[0].syncedGen.Load()
	for _, r := range rs {
		for _, w := range r.p.workers {
			if g := w.syncedGen.Load(); g == 0 || g != gen || w.revokedGen.Load() >= g {
				return false
			}
		}
	}
	return true
}

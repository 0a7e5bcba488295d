package history

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// commandCounter counts the commands a client sends, by name.
type commandCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.add(cmd)
		return next(ctx, cmd)
	}
}
func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			c.add(cmd)
		}
		return next(ctx, cmds)
	}
}
func (c *commandCounter) add(cmd redis.Cmder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[cmd.Name()]++
}
func (c *commandCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

// TestAppendBoundsEachHistory: a history keeps its newest maxEntries
// entries and its retention from the last append; appends that keep it
// under the bound send no LTRIM.
func TestAppendBoundsEachHistory(t *testing.T) {
	m, rdb, s := newStore(t)
	counter := &commandCounter{n: map[string]int{}}
	rdb.AddHook(counter)
	ctx := context.Background()
	entry := func(i int) Entry {
		return Entry{At: time.Unix(1700000000, 0).UTC(), Stage: "attempt", Attempt: i, Where: fmt.Sprintf("inlet.raw/0/%d", i)}
	}
	// Many events, each a few entries: no trimming needed.
	for i := range 50 {
		if err := s.Append(ctx, map[string][]Entry{fmt.Sprint("c", i): {entry(1), entry(2), entry(3)}, "hot": {entry(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if got := counter.take(); got["ltrim"] != 0 || got["incrby"] != 0 || got["rpush"] != 100 || got["expire"] != 100 {
		t.Fatalf("commands under the bound: %v, want 100 rpush, 100 expire and no ltrim or incrby", got)
	}
	// One correlation id reused past the bound: trimmed to the newest.
	for i := 50; i < maxEntries+30; i++ {
		if err := s.Append(ctx, map[string][]Entry{"hot": {entry(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if got := counter.take(); got["ltrim"] != 30 || got["incrby"] != 30 {
		t.Fatalf("commands past the bound: %v, want an ltrim and an incrby (the count of entries dropped) for each of the 30 appends past it", got)
	}
	es, err := s.Get(ctx, "hot")
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != maxEntries || es[0].Attempt != 30 || es[len(es)-1].Attempt != maxEntries+29 {
		t.Fatalf("%d entries, attempts %d..%d; want %d, the newest (30..%d)", len(es), es[0].Attempt, es[len(es)-1].Attempt, maxEntries, maxEntries+29)
	}
	if ttl := m.TTL("t:trace:hot"); ttl != time.Hour {
		t.Fatalf("ttl %v, want the retention from the last append", ttl)
	}
	if es, err := s.Get(ctx, "c7"); err != nil || len(es) != 3 || es[2].Attempt != 3 {
		t.Fatalf("c7: %v, %v; want its 3 entries in order", es, err)
	}
}

// TestAppendWritesAnEventsFieldsOnce: the entries an event adds in one
// append carry its source, type and id once; Get gives every entry them
// back, also when other events share the correlation id.
func TestAppendWritesAnEventsFieldsOnce(t *testing.T) {
	_, rdb, s := newStore(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 28, 17, 11, 21, 875000000, time.UTC)
	a := Entry{Source: "shop", EventType: "orders/create", EventID: "e1"}
	b := Entry{Source: "shop", EventType: "orders/create", EventID: "e2"} // a second line of one batch
	stage := func(base Entry, stage, where string, attempt int) Entry {
		base.At, base.Stage, base.Where, base.Attempt = at, stage, where, attempt
		return base
	}
	first := []Entry{stage(a, "received", "ingest (batch)", 0), stage(a, "written", "inlet.raw/0/1", 0), stage(a, "attempt", "inlet.retry.30s", 1),
		stage(b, "received", "ingest (batch)", 0), stage(b, "written", "inlet.raw/1/1", 0)}
	later := []Entry{stage(a, "attempt", "inlet.processed key shop:1", 2)}
	for _, es := range [][]Entry{first, later} {
		if err := s.Append(ctx, map[string][]Entry{"c": es}); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := rdb.LRange(ctx, "t:trace:c", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	var withID []int
	for i, v := range raw {
		if strings.Contains(v, `"event_id"`) {
			withID = append(withID, i)
		}
	}
	if want := []int{0, 3, 5}; !slices.Equal(withID, want) {
		t.Fatalf("entries carrying the event's fields: %v, want %v (the first of each event in each append):\n%s", withID, want, strings.Join(raw, "\n"))
	}
	got, err := s.Get(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if want := append(first, later...); !slices.EqualFunc(got, want, func(x, y Entry) bool {
		return x.At.Equal(y.At) && x.Stage == y.Stage && x.Source == y.Source && x.EventType == y.EventType && x.EventID == y.EventID && x.Where == y.Where && x.Attempt == y.Attempt
	}) {
		t.Fatalf("Get:\n%+v\nwant\n%+v", got, want)
	}
}

// TestGetFillsFromTheEntryJustBefore: an entry written without its
// event's fields takes them from the entry just before it, never across
// one that could not be read (it may have been another event's).
func TestGetFillsFromTheEntryJustBefore(t *testing.T) {
	_, rdb, s := newStore(t)
	ctx := context.Background()
	for _, v := range []string{
		`{"at":"2026-11-28T17:11:21Z","stage":"received","source":"shop","event_type":"orders/create","event_id":"e1"}`,
		`{"at":"2026-11-28T17:11:21Z","stage":"written","where":"inlet.raw/0/1"}`,
		`{not json`,
		`{"at":"2026-11-28T17:11:22Z","stage":"attempt","attempt":1}`,
	} {
		if err := rdb.RPush(ctx, "t:trace:c", v).Err(); err != nil {
			t.Fatal(err)
		}
	}
	es, err := s.Get(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 3 || es[1].EventID != "e1" || es[2].EventID != "" {
		t.Fatalf("entries %+v; want 3, the second filled from the first, the third (after an unreadable one) left without", es)
	}
}

// TestReadCountsDroppedEntries: Read says how many older entries a
// history's bound dropped, exactly, also when processors append to one
// correlation id at once; the count costs nothing under the bound and
// expires with the list.
func TestReadCountsDroppedEntries(t *testing.T) {
	m, rdb, s := newStore(t)
	counter := &commandCounter{n: map[string]int{}}
	rdb.AddHook(counter)
	ctx := context.Background()
	entries := func(n int) []Entry {
		es := make([]Entry, n)
		for i := range es {
			es[i] = Entry{At: time.Unix(1700000000, 0).UTC(), Stage: "attempt", Source: "shop", EventID: fmt.Sprint("e", i), Attempt: 1}
		}
		return es
	}
	read := func(t *testing.T, corr string) History {
		t.Helper()
		h, err := s.Read(ctx, corr)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}

	t.Run("under the bound nothing is dropped or counted", func(t *testing.T) {
		if err := s.Append(ctx, map[string][]Entry{"c": entries(maxEntries)}); err != nil {
			t.Fatal(err)
		}
		if h := read(t, "c"); len(h.Entries) != maxEntries || h.Dropped != 0 {
			t.Fatalf("%d entries, %d dropped; want %d, 0", len(h.Entries), h.Dropped, maxEntries)
		}
		if got := counter.take(); got["incrby"] != 0 || got["ltrim"] != 0 {
			t.Fatalf("commands %v: want no trim and no count", got)
		}
		if h := read(t, "unknown"); len(h.Entries) != 0 || h.Dropped != 0 {
			t.Fatalf("unknown id: %+v", h)
		}
	})
	t.Run("past the bound each trim counts what it drops", func(t *testing.T) {
		for i, n := range []int{3, 5, 1} {
			if err := s.Append(ctx, map[string][]Entry{"c": entries(n)}); err != nil {
				t.Fatal(err)
			}
			want := []int64{3, 8, 9}[i]
			if h := read(t, "c"); len(h.Entries) != maxEntries || h.Dropped != want {
				t.Fatalf("after appending %d: %d entries, %d dropped; want %d, %d", n, len(h.Entries), h.Dropped, maxEntries, want)
			}
		}
		if ttl := m.TTL("t:trace-dropped:c"); ttl != time.Hour {
			t.Fatalf("count's ttl %v, want the retention", ttl)
		}
	})
	t.Run("an append crossing the bound counts only its overflow", func(t *testing.T) {
		if err := s.Append(ctx, map[string][]Entry{"x": entries(maxEntries - 1)}); err != nil {
			t.Fatal(err)
		}
		if err := s.Append(ctx, map[string][]Entry{"x": entries(4)}); err != nil {
			t.Fatal(err)
		}
		if h := read(t, "x"); len(h.Entries) != maxEntries || h.Dropped != 3 {
			t.Fatalf("%d entries, %d dropped; want %d, 3", len(h.Entries), h.Dropped, maxEntries)
		}
	})
	t.Run("concurrent appends", func(t *testing.T) {
		var wg sync.WaitGroup
		const writers, appends, per = 8, 40, 2
		for range writers {
			wg.Go(func() {
				for range appends {
					if err := s.Append(ctx, map[string][]Entry{"hot": entries(per)}); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if h := read(t, "hot"); len(h.Entries) != maxEntries || h.Dropped != writers*appends*per-maxEntries {
			t.Fatalf("%d entries, %d dropped; want %d, %d", len(h.Entries), h.Dropped, maxEntries, writers*appends*per-maxEntries)
		}
	})
}

// TestGetLeavesUndecodableEntriesWithoutFields: the stages of a record
// whose envelope could not be decoded take no event's fields from the
// entries before them (another event sharing the correlation id).
func TestGetLeavesUndecodableEntriesWithoutFields(t *testing.T) {
	_, _, s := newStore(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 28, 17, 11, 21, 0, time.UTC)
	ok := Entry{At: at, Source: "shop", EventType: "orders/create", EventID: "e1"}
	bad := Entry{At: at, Undecodable: true}
	with := func(e Entry, stage, where string) Entry { e.Stage, e.Where = stage, where; return e }
	if err := s.Append(ctx, map[string][]Entry{"c": {with(ok, "written", "inlet.raw/0/1"), with(ok, "attempt", "inlet.processed key k")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, map[string][]Entry{"c": {with(bad, "written", "inlet.raw/0/2"), with(bad, "attempt", "inlet.invalid"), with(ok, "requeued", "inlet.retry.1s/0/0")}}); err != nil {
		t.Fatal(err)
	}
	es, err := s.Get(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 5 {
		t.Fatalf("%d entries: %+v", len(es), es)
	}
	for i, e := range es {
		if e.Undecodable && (e.Source != "" || e.EventType != "" || e.EventID != "") || !e.Undecodable && e.EventID != "e1" {
			t.Errorf("entry %d %+v: want the fields of e1 on its own entries only", i, e)
		}
	}
	if !es[2].Undecodable || !es[3].Undecodable {
		t.Errorf("undecodable entries %+v %+v lost their mark", es[2], es[3])
	}
}

// TestHandlerSaysWhatWasDropped: GET /v1/trace/{id} answers the entries
// kept and how many older ones were dropped.
func TestHandlerSaysWhatWasDropped(t *testing.T) {
	_, _, s := newStore(t)
	es := make([]Entry, maxEntries+7)
	for i := range es {
		es[i] = Entry{At: time.Unix(1700000000, 0).UTC(), Stage: "received", EventID: fmt.Sprint("e", i)}
	}
	if err := s.Append(context.Background(), map[string][]Entry{"hot": es, "calm": es[:2]}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/trace/{id}", s.Handler())
	for _, tc := range []struct {
		id      string
		stages  int
		dropped int64
	}{{"hot", maxEntries, 7}, {"calm", 2, 0}} {
		t.Run(tc.id, func(t *testing.T) {
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/trace/"+tc.id, nil))
			var body struct {
				Stages  []Entry `json:"stages"`
				Dropped *int64  `json:"dropped_entries"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusOK {
				t.Fatalf("%d %s: %v", rec.Code, rec.Body, err)
			}
			if body.Dropped == nil {
				t.Fatalf("no dropped_entries in %.200s…", rec.Body)
			}
			if len(body.Stages) != tc.stages || *body.Dropped != tc.dropped {
				t.Fatalf("%d stages, dropped_entries %d; want %d, %d", len(body.Stages), *body.Dropped, tc.stages, tc.dropped)
			}
		})
	}
}

// newStore is a Store with a one-hour retention on a miniredis of its
// own, closed when t ends.
func newStore(t *testing.T) (*miniredis.Miniredis, *redis.Client, *Store) {
	t.Helper()
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	return m, rdb, New(rdb, "t:", time.Hour)
}

// TestAppendCountsWhatOtherKeysDrop: one correlation id's push failing (its
// key holds another type) leaves the others' appends done, and their
// trims counted: an append that stopped at the error trimmed nothing and
// counted nothing, and the next one counted only its own overflow.
func TestAppendCountsWhatOtherKeysDrop(t *testing.T) {
	_, rdb, s := newStore(t)
	ctx := context.Background()
	if err := rdb.Set(ctx, "t:trace:bad", "not a list", 0).Err(); err != nil {
		t.Fatal(err)
	}
	full := make([]Entry, maxEntries)
	for i := range full {
		full[i] = Entry{Stage: "attempt", Attempt: i}
	}
	if err := s.Append(ctx, map[string][]Entry{"c": full}); err != nil {
		t.Fatal(err)
	}
	err := s.Append(ctx, map[string][]Entry{"c": {{Stage: "attempt"}, {Stage: "attempt"}}, "bad": {{Stage: "attempt"}}})
	if err == nil {
		t.Fatal("an append to a key of another type did not fail")
	}
	h, err := s.Read(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Entries) != maxEntries || h.Dropped != 2 {
		t.Fatalf("%d entries, %d dropped; want %d and 2", len(h.Entries), h.Dropped, maxEntries)
	}
}

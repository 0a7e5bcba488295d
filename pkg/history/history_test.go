package history

import (
	"context"
	"fmt"
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
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	counter := &commandCounter{n: map[string]int{}}
	rdb.AddHook(counter)
	s := New(rdb, "t:", time.Hour)
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
	if got := counter.take(); got["ltrim"] != 0 || got["rpush"] != 100 || got["expire"] != 100 {
		t.Fatalf("commands under the bound: %v, want 100 rpush, 100 expire and no ltrim", got)
	}
	// One correlation id reused past the bound: trimmed to the newest.
	for i := 50; i < maxEntries+30; i++ {
		if err := s.Append(ctx, map[string][]Entry{"hot": {entry(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if got := counter.take(); got["ltrim"] != 30 {
		t.Fatalf("commands past the bound: %v, want an ltrim for each of the 30 appends past it", got)
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
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	s := New(rdb, "t:", time.Hour)
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
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	s := New(rdb, "t:", time.Hour)
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

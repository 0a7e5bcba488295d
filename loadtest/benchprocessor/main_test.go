package main

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/inletdev/inlet/pkg/contract"
	"github.com/inletdev/inlet/pkg/devstack"
	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/handlers"
	"github.com/inletdev/inlet/pkg/registry"
	"github.com/inletdev/inlet/pkg/router"
	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/pkg/store"
	"github.com/inletdev/inlet/schemas/contracts"
)

func TestWorkload(t *testing.T) {
	for _, n := range []int{10, 997, 5000} {
		w, err := newWorkload(n, 6, 1024, 0.10, 0.05, 1)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if len(w.events) != n || w.unique+w.dups != n {
			t.Fatalf("n=%d: %d events, %d unique + %d dups", n, len(w.events), w.unique, w.dups)
		}
		// Replay the stream per entity: dedup by message id, newest wins
		// by seq. It must give exactly the promised outcomes.
		seen := map[int]bool{}
		newest := map[int]int{}
		var processed, stale, dups int
		for _, ev := range w.events {
			if seen[ev.msg] {
				if !ev.dup {
					t.Fatalf("n=%d: msg %d seen twice but not marked duplicate", n, ev.msg)
				}
				dups++
				continue
			}
			if ev.dup {
				t.Fatalf("n=%d: duplicate of msg %d before its original", n, ev.msg)
			}
			seen[ev.msg] = true
			if ev.seq < newest[ev.entity] {
				stale++
				continue
			}
			newest[ev.entity] = ev.seq
			processed++
		}
		if processed != w.unique-w.stale || stale != w.stale || dups != w.dups {
			t.Errorf("n=%d: replay gives processed %d stale %d dups %d, want %d %d %d",
				n, processed, stale, dups, w.unique-w.stale, w.stale, w.dups)
		}
	}
}

func TestBody(t *testing.T) {
	for _, size := range []int{256, 1024, 4096} {
		b := body(event{entity: 42, seq: 3}, size)
		if len(b) != size {
			t.Errorf("size %d: %d bytes", size, len(b))
		}
		var v struct {
			Type, Timestamp string
			Data            struct {
				ID  string
				Seq int
			}
		}
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if v.Type != eventType || v.Data.ID != "inv_00000042" || v.Data.Seq != 3 {
			t.Errorf("size %d: %+v", size, v)
		}
	}
}

// TestRun runs every mode on a small workload against miniredis and checks
// the output's shape: the outcome check inside run fails it otherwise.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kfake and runs the processor")
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-events", "2000", "-redis", "miniredis", "-batch", "200"}, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	s := out.String()
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "ratio=") {
		t.Errorf("last line %q, want ratio=…", last)
	}
	for _, want := range []string{"miniredis", "\nbare ", "\nnaive ", "\ninlet ", "ok: outcomes add up"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}

// TestRunRounds: with -count every mode runs each round and the table is
// the median round's, with the range beside it.
func TestRunRounds(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kfake and runs the processor")
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-events", "1000", "-redis", "miniredis", "-batch", "200", "-modes", "bare,inlet", "-count", "3"}, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{"bare #1 ", "inlet #3 ", "median of 3 rounds", "ok: outcomes add up"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "#4") {
		t.Errorf("a fourth round ran:\n%s", s)
	}
}

func TestMedians(t *testing.T) {
	r := func(mode string, ms int) result {
		return result{mode: mode, events: 1000, elapsed: time.Duration(ms) * time.Millisecond}
	}
	rounds := [][]result{
		{r("bare", 100), r("inlet", 900)},
		{r("bare", 300), r("inlet", 700)},
		{r("bare", 200), r("inlet", 800)},
	}
	got := medians(rounds, []string{"bare", "inlet"})
	if len(got) != 2 || got[0].elapsed != 200*time.Millisecond || got[1].elapsed != 800*time.Millisecond {
		t.Fatalf("medians = %+v, want bare 200ms and inlet 800ms", got)
	}
	// An even count takes the lower middle rate: the slower of the two.
	got = medians(rounds[:2], []string{"bare"})
	if got[0].elapsed != 300*time.Millisecond {
		t.Fatalf("median of two = %v, want the slower 300ms", got[0].elapsed)
	}
}

// BenchmarkStages costs the per-record CPU work of the processor's prepare
// and encode steps on one workload record, one stage at a time: where
// inlet's CPU goes besides Kafka and Redis.
func BenchmarkStages(b *testing.B) {
	stack, err := devstack.Start(devstack.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer stack.Close()
	cl, err := sr.NewClient(sr.URLs(stack.RegistryURL))
	if err != nil {
		b.Fatal(err)
	}
	reg := registry.New(cl)
	ctx := context.Background()
	codec, err := envelope.NewCodec(ctx, reg, "bench.raw-value")
	if err != nil {
		b.Fatal(err)
	}
	env := envelopeFor(event{msg: 7, entity: 7, seq: 2}, 7, 1024)
	raw, err := codec.Encode(env)
	if err != nil {
		b.Fatal(err)
	}
	sources, err := source.Parse([]byte(sourcesYAML), source.WithoutSecrets())
	if err != nil {
		b.Fatal(err)
	}
	rt, err := handlers.Router(sources)
	if err != nil {
		b.Fatal(err)
	}
	h, _, err := rt.Lookup(sourceName, eventType, "v1")
	if err != nil {
		b.Fatal(err)
	}
	creg, err := contract.Load(contracts.FS)
	if err != nil {
		b.Fatal(err)
	}
	c, _ := creg.Contract("standardwebhooks/event")
	v, _ := c.VersionFor("v1")
	ev := &router.Event{Envelope: env, Attempt: 1}
	out, err := h.Handle(ctx, ev)
	if err != nil {
		b.Fatal(err)
	}
	id, _, err := reg.Register(ctx, "bench.processed-value", out.SchemaText)
	if err != nil {
		b.Fatal(err)
	}

	b.Run("envelope-decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := codec.Decode(ctx, raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("contract-read", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Read(env.Payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("handler", func(b *testing.B) { // contract read + key templates + output map
		b.ReportAllocs()
		for b.Loop() {
			if _, err := h.Handle(ctx, ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("output-encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := reg.Encode(nil, id, out.Schema, out.Value); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json-valid", func(b *testing.B) { // the floor of any JSON reading
		b.ReportAllocs()
		for b.Loop() {
			if !json.Valid(env.Payload) {
				b.Fatal("invalid")
			}
		}
	})
}

// TestBreakdownNamesStoreOps runs the store's pipelines through the
// breakdown hook: each must be named by its operation, not "pipeline set".
func TestBreakdownNamesStoreOps(t *testing.T) {
	mr := miniredis.RunT(t)
	b := newBreakdown()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	rdb.AddHook(b)
	t.Cleanup(func() { _ = rdb.Close() })
	st := store.New(rdb)
	ctx := context.Background()
	tok := store.NewToken()
	if _, err := st.ClaimBatch(ctx, []string{"a", "lock:x"}, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ApplyBatch(ctx, []store.Update{{EntityKey: "x", EventTime: time.Unix(1, 0), EventID: "e"}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Settle(ctx, tok, []string{"a"}, nil, []time.Duration{time.Hour}, []string{"lock:x"}); err != nil {
		t.Fatal(err)
	}
	// Connection set-up (hello, client) and the EVAL that follows a
	// NOSCRIPT on a fresh server are there too.
	for _, want := range []string{"claim", "apply", "confirm+release"} {
		if b.redis[want] == nil {
			t.Errorf("no %q pipeline among %v", want, slices.Collect(maps.Keys(b.redis)))
		}
	}
	for op := range b.redis {
		if strings.Contains(op, "set") {
			t.Errorf("pipeline named %q", op)
		}
	}
}

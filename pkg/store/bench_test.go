package store

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// Benchmarks run on miniredis, or on the real Redis at INLET_REDIS_URL when
// set. Each reports items/s (events per second through that call) besides
// ns/op per batch of 100. Compare runs with benchstat.

const benchBatch = 100

func benchStore(b *testing.B) *Store {
	b.Helper()
	newEnv := realRedisEnv(b)
	if newEnv == nil {
		newEnv = newMiniredisEnv
	}
	e := newEnv(b)
	// A short lease so that claims left by the benchmark expire by themselves.
	return New(e.rdb, KeyPrefix(e.prefix), ClaimLease(30*time.Second))
}

func reportItems(b *testing.B, n int) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "items/s")
}

// BenchmarkClaimBatch100 claims 100 new keys per call.
func BenchmarkClaimBatch100(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	tok := NewToken()
	keys := make([]string, benchBatch)
	n := 0
	for b.Loop() {
		for i := range keys {
			keys[i] = "order:" + strconv.Itoa(n) + ":paid"
			n++
		}
		res, err := s.ClaimBatch(ctx, keys, tok)
		if err != nil {
			b.Fatal(err)
		}
		if res[0] != ClaimAcquired {
			b.Fatalf("claim: %v", res[0])
		}
	}
	reportItems(b, n)
}

// BenchmarkApplyBatch100 applies 100 newer updates per call, over 10k
// entities, with 256-byte states.
func BenchmarkApplyBatch100(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	state := make([]byte, 256)
	ups := make([]Update, benchBatch)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	n := 0
	for b.Loop() {
		for i := range ups {
			ups[i] = Update{
				EntityKey: "order:" + strconv.Itoa(n%10_000),
				EventTime: t0.Add(time.Duration(n) * time.Microsecond),
				EventID:   strconv.Itoa(n),
				State:     state,
			}
			n++
		}
		res, err := s.ApplyBatch(ctx, ups)
		if err != nil {
			b.Fatal(err)
		}
		if res[0] != Applied {
			b.Fatalf("apply: %v", res[0])
		}
	}
	reportItems(b, n)
}

// BenchmarkProcessBatch100 is the processor's whole Redis path for a batch of
// 100 events: claim, apply, confirm (three round trips).
func BenchmarkProcessBatch100(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	state := make([]byte, 256)
	keys := make([]string, benchBatch)
	ups := make([]Update, benchBatch)
	window := []time.Duration{time.Minute}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	n := 0
	for b.Loop() {
		for i := range keys {
			keys[i] = "order:" + strconv.Itoa(n) + ":paid"
			ups[i] = Update{
				EntityKey: "order:" + strconv.Itoa(n%10_000),
				EventTime: t0.Add(time.Duration(n) * time.Microsecond),
				EventID:   strconv.Itoa(n),
				State:     state,
			}
			n++
		}
		tok := NewToken()
		if _, err := s.ClaimBatch(ctx, keys, tok); err != nil {
			b.Fatal(err)
		}
		if _, err := s.ApplyBatch(ctx, ups); err != nil {
			b.Fatal(err)
		}
		if err := s.ConfirmBatch(ctx, keys, tok, window); err != nil {
			b.Fatal(err)
		}
	}
	reportItems(b, n)
}

// BenchmarkProcessBatch100Parallel is BenchmarkProcessBatch100 with
// GOMAXPROCS goroutines, as a processor handling several partitions at once.
func BenchmarkProcessBatch100Parallel(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	state := make([]byte, 256)
	window := []time.Duration{time.Minute}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var worker atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		w := strconv.FormatInt(worker.Add(1), 10)
		keys := make([]string, benchBatch)
		ups := make([]Update, benchBatch)
		n := 0
		for pb.Next() {
			for i := range keys {
				keys[i] = "order:" + w + ":" + strconv.Itoa(n) + ":paid"
				ups[i] = Update{
					EntityKey: "order:" + w + ":" + strconv.Itoa(n%10_000),
					EventTime: t0.Add(time.Duration(n) * time.Microsecond),
					EventID:   strconv.Itoa(n),
					State:     state,
				}
				n++
			}
			tok := NewToken()
			if _, err := s.ClaimBatch(ctx, keys, tok); err != nil {
				b.Error(err)
				return
			}
			if _, err := s.ApplyBatch(ctx, ups); err != nil {
				b.Error(err)
				return
			}
			if err := s.ConfirmBatch(ctx, keys, tok, window); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportItems(b, b.N*benchBatch)
}

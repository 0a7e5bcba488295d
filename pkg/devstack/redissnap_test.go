package devstack

import (
	"context"
	"encoding/gob"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

func redisClient(t *testing.T, s *Stack) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(s.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// What the processor keeps in Redis — dedup claims with their windows,
// entity hashes, history lists — survives a restart of the stack, keys and
// values byte for byte.
func TestRestartKeepsEmbeddedRedis(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := startStack(t, dir)
	rdb := redisClient(t, s)
	binKey := "inlet:entity:billing:\xff\x00é"
	for _, err := range []error{
		rdb.Set(ctx, "inlet:dedup:dedup:billing:evt_1", "done", time.Hour).Err(),
		rdb.Set(ctx, "no-ttl", "\x00\xfe raw", 0).Err(),
		rdb.HSet(ctx, binKey, "ts", "1700000000000000", "event_id", "evt_1").Err(),
		rdb.RPush(ctx, "inlet:history:c1", "a", "b", "c").Err(),
		rdb.Expire(ctx, "inlet:history:c1", 2*time.Hour).Err(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	s2 := startStack(t, dir)
	rdb2 := redisClient(t, s2)
	if v, err := rdb2.Get(ctx, "inlet:dedup:dedup:billing:evt_1").Result(); err != nil || v != "done" {
		t.Fatalf("dedup key after restart: %q, %v", v, err)
	}
	if ttl := rdb2.TTL(ctx, "inlet:dedup:dedup:billing:evt_1").Val(); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Errorf("dedup window after restart: %v left of 1h", ttl)
	}
	if v := rdb2.Get(ctx, "no-ttl").Val(); v != "\x00\xfe raw" {
		t.Errorf("binary value after restart: %q", v)
	}
	if ttl := rdb2.TTL(ctx, "no-ttl").Val(); ttl != -1 {
		t.Errorf("key without a TTL has %v after restart", ttl)
	}
	if h := rdb2.HGetAll(ctx, binKey).Val(); h["ts"] != "1700000000000000" || h["event_id"] != "evt_1" || len(h) != 2 {
		t.Errorf("entity hash after restart: %v", h)
	}
	if l := rdb2.LRange(ctx, "inlet:history:c1", 0, -1).Val(); strings.Join(l, ",") != "a,b,c" {
		t.Errorf("history list after restart: %v", l)
	}
	if ttl := rdb2.TTL(ctx, "inlet:history:c1").Val(); ttl <= time.Hour {
		t.Errorf("history TTL after restart: %v", ttl)
	}
}

// A key whose expiry passed while the stack was down is gone after it: a
// dedup window runs on during the downtime, as with a persistent Redis.
func TestRedisSnapshotDropsKeysThatExpiredMeanwhile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "redis.gob")
	m := miniredis.NewMiniRedis()
	saved := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := m.Set("short", "x"); err != nil {
		t.Fatal(err)
	}
	m.SetTTL("short", time.Minute)
	if err := m.Set("long", "y"); err != nil {
		t.Fatal(err)
	}
	m.SetTTL("long", time.Hour)
	if n, skipped, err := saveRedis(m, path, saved); err != nil || n != 2 || len(skipped) != 0 {
		t.Fatalf("saved %d keys (left out %v): %v", n, skipped, err)
	}
	m2 := miniredis.NewMiniRedis()
	n, savedAt, err := loadRedis(m2, path, saved.Add(10*time.Minute))
	if err != nil || n != 1 || !savedAt.Equal(saved) {
		t.Fatalf("loaded %d keys saved at %v, want 1 saved at %v: %v", n, savedAt, saved, err)
	}
	if m2.Exists("short") {
		t.Error("a key that expired during the downtime came back")
	}
	if ttl := m2.TTL("long"); ttl != 50*time.Minute {
		t.Errorf("long has %v left, want 50m", ttl)
	}
}

// A snapshot that cannot be read stops the start with the file's name and
// what to do, rather than starting empty and forgetting every claim.
func TestRedisSnapshotUnreadable(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "redis.gob")
	if err := os.WriteFile(path, []byte("not a snapshot"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Start(Config{DataDir: dir})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "move it away") {
		t.Fatalf("start over a corrupt snapshot: %v", err)
	}

	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := gob.NewEncoder(f).Encode(&redisSnapshot{Version: redisSnapshotVersion + 1}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, _, err := loadRedis(miniredis.NewMiniRedis(), path, time.Now()); err == nil || !strings.Contains(err.Error(), "version") {
		t.Fatalf("snapshot of another version: %v", err)
	}
}

// Without a data directory nothing is written.
func TestNoDataDirNoRedisSnapshot(t *testing.T) {
	s, err := Start(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.redisFile != "" {
		t.Fatalf("in-memory stack snapshots Redis to %q", s.redisFile)
	}
}

// A key of a type Inlet does not write (somebody else's set) is left out
// and named, and the rest is still saved: one odd key must not cost the
// snapshot. A temp file a killed stack left behind is removed at start.
func TestRedisSnapshotLeavesOutOtherTypes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "redis.gob")
	m := miniredis.NewMiniRedis()
	if err := m.Set("inlet:dedup:x", "done"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetAdd("someone:set", "a"); err != nil {
		t.Fatal(err)
	}
	n, skipped, err := saveRedis(m, path, time.Now())
	if err != nil || n != 1 || len(skipped) != 1 || skipped[0] != "someone:set" {
		t.Fatalf("saved %d, left out %v: %v", n, skipped, err)
	}
	stale := filepath.Join(dir, ".redis-123.gob")
	if err := os.WriteFile(stale, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	m2 := miniredis.NewMiniRedis()
	if n, _, err := loadRedis(m2, path, time.Now()); err != nil || n != 1 || !m2.Exists("inlet:dedup:x") {
		t.Fatalf("loaded %d: %v", n, err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temp file still there: %v", err)
	}
}

// While running, the stack saves its Redis now and then, so a forced stop
// (no Close) loses only what came after the last save.
func TestRedisSavedWhileRunning(t *testing.T) {
	dir := t.TempDir()
	s, err := Start(Config{DataDir: dir, RedisSnapshotEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := redisClient(t, s).Set(context.Background(), "inlet:dedup:y", "done", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "redis.gob")
	// Read, not loaded: loading removes temp files, a save in progress too.
	saved := func() bool {
		snap, err := readSnapshot(path)
		return err == nil && snap != nil && slices.ContainsFunc(snap.Keys, func(k snapKey) bool { return k.Key == "inlet:dedup:y" })
	}
	deadline := time.Now().Add(10 * time.Second)
	for !saved() {
		if time.Now().After(deadline) {
			t.Fatal("the key never reached a snapshot while the stack ran")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

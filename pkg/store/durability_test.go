package store

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// fakeConfigServer answers CONFIG GET from config (a parameter it lacks
// gets an empty answer, as Redis gives), or every CONFIG with refusal when
// refusal is set (a raw RESP error).
func fakeConfigServer(t *testing.T, config map[string]string, refusal string) string {
	t.Helper()
	return fakeServer(t, func(args []string) string {
		if len(args) < 2 || !strings.EqualFold(args[0], "CONFIG") {
			return "+OK\r\n"
		}
		if refusal != "" {
			return refusal
		}
		if !strings.EqualFold(args[1], "GET") {
			return "-ERR unexpected\r\n"
		}
		var out []string
		for _, name := range args[2:] {
			if v, ok := config[name]; ok {
				out = append(out, bulk(name), bulk(v))
			}
		}
		return "*" + strconv.Itoa(len(out)) + "\r\n" + strings.Join(out, "")
	})
}

// durabilityLog runs CheckDurability against rdb and returns
// the JSON lines it logged (debug and up).
func durabilityLog(t *testing.T, rdb redis.UniversalClient) []map[string]any {
	t.Helper()
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	New(rdb).CheckDurability(context.Background(), log)
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		lines = append(lines, m)
	}
	return lines
}

func levels(lines []map[string]any) string {
	var out []string
	for _, l := range lines {
		out = append(out, l["level"].(string)+":"+l["msg"].(string))
	}
	return strings.Join(out, "\n")
}

// TestCheckDurability: a Redis without persistence, or with an evicting
// maxmemory-policy, is a warning naming what the guide requires; CONFIG
// refused (managed Redis) is only a debug line, and the start goes on.
func TestCheckDurability(t *testing.T) {
	for _, tc := range []struct {
		name    string
		config  map[string]string
		refusal string
		// want are the messages' starts, by level, in order.
		want []string
	}{
		{"production", map[string]string{"appendonly": "yes", "save": "3600 1 300 100 60 10000", "maxmemory-policy": "noeviction", "maxmemory": "0"}, "", nil},
		{"aof without snapshots", map[string]string{"appendonly": "yes", "save": "", "maxmemory-policy": "noeviction"}, "", nil},
		{"no persistence (deploy/local/redis.sh)", map[string]string{"appendonly": "no", "save": "", "maxmemory-policy": "noeviction"}, "",
			[]string{"WARN:redis persists nothing"}},
		{"snapshots only", map[string]string{"appendonly": "no", "save": "3600 1", "maxmemory-policy": "noeviction"}, "",
			[]string{"INFO:redis persists by RDB snapshots only"}},
		{"evicting", map[string]string{"appendonly": "yes", "save": "", "maxmemory-policy": "allkeys-lru", "maxmemory": "1073741824"}, "",
			[]string{"WARN:redis maxmemory-policy is not noeviction"}},
		{"volatile eviction, no persistence", map[string]string{"appendonly": "no", "save": "", "maxmemory-policy": "volatile-lru"}, "",
			[]string{"WARN:redis persists nothing", "WARN:redis maxmemory-policy is not noeviction"}},
		{"unreported parameters are not judged", map[string]string{"maxmemory-policy": "noeviction"}, "", nil},
		{"config unknown (managed Redis)", nil, "-ERR unknown command 'CONFIG', with args beginning with: 'GET'\r\n",
			[]string{"DEBUG:could not read Redis's persistence"}},
		{"config forbidden (ACL)", nil, "-NOPERM this user has no permissions to run the 'config|get' command\r\n",
			[]string{"DEBUG:could not read Redis's persistence"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rdb := redis.NewClient(&redis.Options{Addr: fakeConfigServer(t, tc.config, tc.refusal), MaxRetries: -1})
			t.Cleanup(func() { _ = rdb.Close() })
			lines := durabilityLog(t, rdb)
			if len(lines) != len(tc.want) {
				t.Fatalf("logged:\n%s\nwant %q", levels(lines), tc.want)
			}
			for i, w := range tc.want {
				level, msg, _ := strings.Cut(w, ":")
				l := lines[i]
				if l["level"] != level || !strings.HasPrefix(l["msg"].(string), msg) {
					t.Fatalf("line %d %v, want %s %q", i, l, level, msg)
				}
				if !strings.Contains(l["requires"].(string), "docs/run-on-real-kafka.md") {
					t.Errorf("line %d names no requirement: %v", i, l)
				}
			}
		})
	}
}

// TestCheckDurabilityServers: miniredis has no CONFIG (a debug line, nothing
// more); an unreachable Redis is a debug line too. (A real one:
// TestIntegrationCheckDurability.)
func TestCheckDurabilityServers(t *testing.T) {
	t.Run("miniredis", func(t *testing.T) {
		lines := durabilityLog(t, newMiniredisEnv(t).rdb)
		if len(lines) != 1 || lines[0]["level"] != "DEBUG" {
			t.Fatalf("logged:\n%s\nwant one debug line", levels(lines))
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		e := newMiniredisEnv(t)
		e.kill()
		lines := durabilityLog(t, e.rdb)
		if len(lines) != 1 || lines[0]["level"] != "DEBUG" {
			t.Fatalf("logged:\n%s\nwant one debug line", levels(lines))
		}
	})
}

// TestIntegrationCheckDurability: a real Redis (INLET_REDIS_URL) is read as
// CONFIG GET reports it, and warned about exactly when it keeps nothing or
// evicts. Named for make test-integration (-run Integration), the only run
// with INLET_REDIS_URL set.
func TestIntegrationCheckDurability(t *testing.T) {
	newEnv := realRedisEnv(t)
	if newEnv == nil {
		t.Skipf("%s not set", redisURLEnv)
	}
	rdb := newEnv(t).rdb
	ctx := context.Background()
	ds, err := New(rdb).ReadDurability(ctx)
	if err != nil || len(ds) != 1 || ds[0].Err != nil || ds[0].Node != "" {
		t.Fatalf("ReadDurability: %+v, %v; want one server read", ds, err)
	}
	d := ds[0]
	cfg := map[string]string{}
	for _, p := range []string{"appendonly", "save", "maxmemory-policy"} {
		m, err := rdb.ConfigGet(ctx, p).Result()
		if err != nil {
			t.Fatal(err)
		}
		cfg[p] = m[p]
	}
	if d.AppendOnly != cfg["appendonly"] || d.Save != cfg["save"] || !d.SaveReported || d.MaxmemoryPolicy != cfg["maxmemory-policy"] {
		t.Fatalf("read %+v, CONFIG GET says %v", d, cfg)
	}
	var warns int
	lines := durabilityLog(t, rdb)
	t.Logf("%v logged:\n%s", cfg, levels(lines))
	for _, l := range lines {
		if l["level"] == "WARN" {
			warns++
		}
	}
	want := 0
	if cfg["appendonly"] == "no" && cfg["save"] == "" {
		want++
	}
	if cfg["maxmemory-policy"] != "noeviction" {
		want++
	}
	if warns != want {
		t.Fatalf("%d warnings for %v, want %d", warns, cfg, want)
	}
}

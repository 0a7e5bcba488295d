package service

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/inletdev/inlet/pkg/store"
	"github.com/inletdev/inlet/pkg/testenv/redisha"
)

// checkURL opens the Redis of url as the processor does (Parse,
// NewClient) and runs its start check, returning its error and log.
func checkURL(t *testing.T, url string) (string, error) {
	t.Helper()
	o, err := (&RedisConfig{URL: url}).Parse()
	if err != nil {
		t.Fatal(err)
	}
	rdb := o.NewClient()
	t.Cleanup(func() { _ = rdb.Close() })
	var log bytes.Buffer
	err = CheckRedis(context.Background(), store.New(rdb, store.KeyPrefix("inlet:")), slog.New(slog.NewTextHandler(&log, nil)))
	return log.String(), err
}

// TestRedisClusterURL: a redis+cluster:// URL reaches a real cluster, with
// the password of the URL or REDIS_PASSWORD on every node; a wrong one is
// refused at start without being shown.
func TestRedisClusterURL(t *testing.T) {
	t.Setenv("REDIS_PASSWORD", "")
	c := redisha.StartCluster(t)
	if log, err := checkURL(t, c.URL()); err != nil || log != "" {
		t.Fatalf("%v\n%s", err, log)
	}
	for _, addr := range c.Addrs {
		node := redis.NewClient(&redis.Options{Addr: addr})
		err := node.ConfigSet(context.Background(), "requirepass", "right").Err()
		_ = node.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	withPass := strings.Replace(c.URL(), "://", "://:right@", 1)
	if log, err := checkURL(t, withPass); err != nil || log != "" {
		t.Fatalf("password in the URL: %v\n%s", err, log)
	}
	t.Setenv("REDIS_PASSWORD", "wrong-s3cr3t")
	log, err := checkURL(t, withPass)
	if err == nil || !strings.Contains(err.Error(), "WRONGPASS") || !strings.Contains(err.Error(), "INLET_REDIS_URL") || strings.Contains(err.Error()+log, "s3cr3t") {
		t.Fatalf("%v\n%s; want WRONGPASS naming the setting, not the password", err, log)
	}
	t.Setenv("REDIS_PASSWORD", "right")
	if log, err := checkURL(t, c.URL()); err != nil || log != "" {
		t.Fatalf("REDIS_PASSWORD: %v\n%s", err, log)
	}
}

// TestRedisSentinelURL: a redis+sentinel:// URL finds the master through
// the sentinel and writes there.
func TestRedisSentinelURL(t *testing.T) {
	t.Setenv("REDIS_PASSWORD", "")
	t.Setenv("SENTINEL_PASSWORD", "")
	s := redisha.StartSentinel(t)
	if log, err := checkURL(t, s.URL()); err != nil || log != "" {
		t.Fatalf("%v\n%s", err, log)
	}
	o, err := (&RedisConfig{URL: s.URL()}).Parse()
	if err != nil {
		t.Fatal(err)
	}
	rdb := o.NewClient()
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	master := redis.NewClient(&redis.Options{Addr: s.MasterAddr(t)})
	defer master.Close()
	if v := master.Get(ctx, "k").Val(); v != "v" {
		t.Fatalf("the master has %q, want the write made through the sentinel", v)
	}
}

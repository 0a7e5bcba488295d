package service

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/alicebob/miniredis/v2/server"
	"github.com/redis/go-redis/v9"

	"github.com/inletdev/inlet/pkg/store"
)

// TestCheckRedisCredentials: credentials Redis refuses fail the start at
// once (they were logged as Redis being unreachable, and the processor
// waited for good), naming the settings and never the password; an ACL
// user that may not run INFO is not refused for it, one that may not read
// the store's keys is; Redis unreachable is only logged.
func TestCheckRedisCredentials(t *testing.T) {
	const secret = "wrong-s3cr3t"
	check := func(t *testing.T, opt *redis.Options) (string, error) {
		t.Helper()
		rdb := redis.NewClient(opt)
		t.Cleanup(func() { rdb.Close() })
		var log bytes.Buffer
		err := CheckRedis(context.Background(), store.New(rdb, store.KeyPrefix("inlet:")), slog.New(slog.NewTextHandler(&log, nil)))
		return log.String(), err
	}
	refused := func(t *testing.T, err error, log string, want ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("CheckRedis passed; log:\n%s", log)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v, want an error mentioning %q", err, w)
			}
		}
		if strings.Contains(err.Error()+log, secret) {
			t.Errorf("the password is shown: %v\n%s", err, log)
		}
	}
	t.Run("good password", func(t *testing.T) {
		m := miniredis.RunT(t)
		m.RequireAuth("right")
		if log, err := check(t, &redis.Options{Addr: m.Addr(), Password: "right"}); err != nil || log != "" {
			t.Fatalf("%v\n%s", err, log)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		m := miniredis.RunT(t)
		m.RequireAuth("right")
		log, err := check(t, &redis.Options{Addr: m.Addr(), Password: secret})
		refused(t, err, log, "WRONGPASS", "INLET_REDIS_URL", "REDIS_PASSWORD")
	})
	t.Run("wrong ACL user", func(t *testing.T) {
		m := miniredis.RunT(t)
		m.RequireUserAuth("inlet", "right")
		log, err := check(t, &redis.Options{Addr: m.Addr(), Username: "nobody", Password: secret})
		refused(t, err, log, "WRONGPASS", "INLET_REDIS_URL")
	})
	t.Run("no password where one is required", func(t *testing.T) {
		m := miniredis.RunT(t)
		m.RequireAuth("right")
		log, err := check(t, &redis.Options{Addr: m.Addr()})
		refused(t, err, log, "NOAUTH", "INLET_REDIS_URL", "REDIS_PASSWORD")
	})
	t.Run("ACL user without the store's keys", func(t *testing.T) {
		m := miniredis.RunT(t)
		m.Server().SetPreHook(func(c *server.Peer, cmd string, _ ...string) bool {
			if strings.EqualFold(cmd, "hget") || strings.EqualFold(cmd, "hmget") { // the store's reads of entity hashes
				c.WriteError("NOPERM No permissions to access a key")
				return true
			}
			return false
		})
		log, err := check(t, &redis.Options{Addr: m.Addr()})
		refused(t, err, log, "NOPERM", "INLET_REDIS_URL", "INLET_REDIS_KEY_PREFIX")
	})
	t.Run("ACL user without INFO", func(t *testing.T) {
		m := miniredis.RunT(t)
		m.Server().SetPreHook(func(c *server.Peer, cmd string, _ ...string) bool {
			if strings.EqualFold(cmd, "info") {
				c.WriteError("NOPERM User inlet has no permissions to run the 'info' command")
				return true
			}
			return false
		})
		log, err := check(t, &redis.Options{Addr: m.Addr()})
		if err != nil || !strings.Contains(log, "INFO") {
			t.Fatalf("%v, want nil and a warning that the version was not checked; log:\n%s", err, log)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		m := miniredis.RunT(t)
		addr := m.Addr()
		m.Close()
		log, err := check(t, &redis.Options{Addr: addr, MaxRetries: -1})
		if err != nil || !strings.Contains(log, "processing waits for Redis") {
			t.Fatalf("%v, want nil and a warning; log:\n%s", err, log)
		}
	})
}

package main

import (
	"strings"
	"testing"

	"github.com/inletdev/inlet/pkg/admin"
	"github.com/inletdev/inlet/pkg/service"
)

// TestRedisOptions: a -redis-url is taken as the processor takes it, so
// REDIS_PASSWORD[_FILE] reaches the client; without one the embedded
// miniredis is used, and a REDIS_PASSWORD meant elsewhere does not.
func TestRedisOptions(t *testing.T) {
	t.Setenv("REDIS_PASSWORD", "from-env")
	t.Run("url", func(t *testing.T) {
		c := config{redis: service.RedisConfig{URL: "redis://127.0.0.1:6379/3"}}
		opt, err := c.redisOptions()
		if err != nil || opt == nil || opt.Password != "from-env" || opt.DB != 3 {
			t.Fatalf("options %+v, %v; want REDIS_PASSWORD and DB 3", opt, err)
		}
	})
	t.Run("password file", func(t *testing.T) {
		t.Setenv("REDIS_PASSWORD", "")
		t.Setenv("REDIS_PASSWORD_FILE", t.TempDir()+"/missing")
		c := config{redis: service.RedisConfig{URL: "redis://127.0.0.1:6379/0"}}
		if _, err := c.redisOptions(); err == nil || !strings.Contains(err.Error(), "REDIS_PASSWORD_FILE") {
			t.Fatalf("%v, want an unreadable REDIS_PASSWORD_FILE refused", err)
		}
	})
	t.Run("embedded", func(t *testing.T) {
		var c config
		if opt, err := c.redisOptions(); opt != nil || err != nil {
			t.Fatalf("options %+v, %v; want none (the embedded miniredis)", opt, err)
		}
	})
}

// TestBadRedisURL: a -redis-url that does not parse stops the start with
// an error naming the setting, never the password in it.
func TestBadRedisURL(t *testing.T) {
	for k, v := range devSecrets {
		t.Setenv(k, v) // run sets them otherwise, for the whole test process
	}
	t.Setenv(admin.EnvWriteToken, "test-token")
	const secret = "s3cr3t%zzpass"
	err := run([]string{
		"-redis-url", "redis://:" + secret + "@127.0.0.1:6379/0",
		"-sources", "../../deploy/sources.example.yaml",
		"-data-dir", t.TempDir(), "-kafka-port", "0", "-registry-port", "0", "-redis-port", "0",
		"-ingest-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0", "-log-level", "error",
	})
	if err == nil || !strings.Contains(err.Error(), "INLET_REDIS_URL") {
		t.Fatalf("%v, want an error naming INLET_REDIS_URL", err)
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("the error shows the password: %v", err)
	}
}

// TestShownURL: the banner never prints a Redis password.
func TestShownURL(t *testing.T) {
	for in, want := range map[string]string{
		"redis://:s3cret@db.internal:6379/2":     "redis://:xxxxx@db.internal:6379/2",
		"rediss://app:s3cret@db.internal:6380/0": "rediss://app:xxxxx@db.internal:6380/0",
		"redis://127.0.0.1:6390/0":               "redis://127.0.0.1:6390/0",
	} {
		if got := shownURL(in); got != want || strings.Contains(got, "s3cret") {
			t.Errorf("shownURL(%q) = %q, want %q", in, got, want)
		}
	}
}

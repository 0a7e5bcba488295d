package store

import (
	"context"
	"crypto/rand"
	"os"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/inletdev/inlet/pkg/testenv/poll"
)

// redisURLEnv names the real Redis the integration tests and benchmarks use,
// e.g. redis://127.0.0.1:6379/0. Unset: integration tests skip, benchmarks
// use miniredis.
const redisURLEnv = "INLET_REDIS_URL"

// env is one test's view of a Redis backend.
type env struct {
	rdb redis.UniversalClient
	// prefix is unique to the test; on real Redis its keys are deleted at
	// cleanup.
	prefix string
	// lease is the claim lease for tests that let claims expire: the
	// default on miniredis, where expire moves the clock; short on real
	// Redis, where the test polls until it has run out.
	lease time.Duration
	// expire makes d pass for TTLs (miniredis FastForward). On real Redis it
	// does nothing: the caller polls for the effect with a deadline.
	expire func(d time.Duration)
	// kill makes the server unavailable to rdb; nil when the server is
	// shared (real Redis), where tests use a client on a dead port instead.
	kill func()
}

// newEnvFunc is the client factory the behavioural suite runs on.
type newEnvFunc func(t testing.TB) *env

// newMiniredisEnv starts a miniredis of the test's own.
func newMiniredisEnv(t testing.TB) *env {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(fastFailOptions(mr.Addr()))
	t.Cleanup(func() { _ = rdb.Close() })
	return &env{
		rdb:    rdb,
		prefix: testPrefix(),
		lease:  time.Minute,
		expire: mr.FastForward,
		kill:   mr.Close,
	}
}

// realRedisEnv returns the factory for the Redis at INLET_REDIS_URL, or nil
// when it is unset.
func realRedisEnv(t testing.TB) newEnvFunc {
	t.Helper()
	url := os.Getenv(redisURLEnv)
	if url == "" {
		return nil
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("%s: %v", redisURLEnv, err)
	}
	return func(t testing.TB) *env {
		t.Helper()
		rdb := redis.NewClient(opt)
		t.Cleanup(func() { _ = rdb.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := rdb.Ping(ctx).Err(); err != nil {
			t.Fatalf("%s=%s: %v", redisURLEnv, url, err)
		}
		e := &env{
			rdb:    rdb,
			prefix: testPrefix(),
			lease:  200 * time.Millisecond,
			expire: func(time.Duration) {},
		}
		t.Cleanup(func() { deleteKeys(t, rdb, e.prefix) })
		return e
	}
}

// fastFailOptions are client options for addr that give up on a dead server
// within about 100ms instead of go-redis's default of seconds (5 dial
// attempts 100ms apart, for each of 4 tries), to keep "Redis down" tests
// short. Pipelines and retries behave as with the defaults otherwise.
func fastFailOptions(addr string) *redis.Options {
	return &redis.Options{
		Addr:               addr,
		DialerRetries:      1,
		DialerRetryTimeout: time.Millisecond,
		MaxRetryBackoff:    20 * time.Millisecond,
	}
}

func testPrefix() string { return "inlet-test:" + rand.Text() + ":" }

// deleteKeys removes every key under prefix.
func deleteKeys(t testing.TB, rdb *redis.Client, prefix string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	batch := make([]string, 0, 1000)
	flush := func() {
		if len(batch) > 0 {
			if err := rdb.Unlink(ctx, batch...).Err(); err != nil {
				t.Errorf("cleanup: %v", err)
			}
			batch = batch[:0]
		}
	}
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == cap(batch) {
			flush()
		}
	}
	flush()
	if err := iter.Err(); err != nil {
		t.Errorf("cleanup scan: %v", err)
	}
}

// eventually is poll.Eventually (testenv imports this package).
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	poll.Eventually(t, timeout, what, cond)
}

// TestStore runs the behavioural suite on miniredis, with both ways of
// calling the scripts.
func TestStore(t *testing.T) {
	t.Run("chunked", func(t *testing.T) { runSuite(t, newMiniredisEnv, false) })
	t.Run("per key", func(t *testing.T) { runSuite(t, newMiniredisEnv, true) })
}

// TestStoreServerErrors checks which server replies mean "unavailable"; it
// needs miniredis's SetError to make the server answer them.
func TestStoreServerErrors(t *testing.T) {
	for reply, want := range map[string]bool{
		"LOADING Redis is loading the dataset in memory":          true,
		"READONLY You can't write against a read only replica.":   true,
		"MASTERDOWN Link with MASTER is down":                     true,
		"TRYAGAIN Multiple keys request during rehashing of slot": true,
		"CLUSTERDOWN The cluster is down":                         true,
		"OOM command not allowed when used memory > 'maxmemory'.": true,
		// Both were taken as failures: a claim aborted its batch, and a
		// confirm was not retried, so a committed output's key never became
		// done.
		"BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.":           true,
		"MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk.": true,
		"BUSYKEY Target key name already exists.":                                                          false,
		"NOPERM this user has no permissions to run the 'evalsha'":                                         false,
		"ERR something else": false,
	} {
		t.Run(reply, func(t *testing.T) {
			mr := miniredis.RunT(t)
			rdb := redis.NewClient(fastFailOptions(mr.Addr()))
			t.Cleanup(func() { _ = rdb.Close() })
			s := New(rdb)
			mr.SetError(reply)
			ctx, tok := context.Background(), NewToken()
			_, err := s.ClaimBatch(ctx, []string{"a"}, tok)
			if err == nil || IsUnavailable(err) != want {
				t.Errorf("claim: err %v, IsUnavailable %v, want %v", err, IsUnavailable(err), want)
			}
			err = s.ConfirmBatch(ctx, []string{"a"}, tok, []time.Duration{time.Hour})
			if err == nil || IsUnavailable(err) != want {
				t.Errorf("confirm: err %v, IsUnavailable %v, want %v", err, IsUnavailable(err), want)
			}
			_, err = s.ApplyBatch(ctx, []Update{{EntityKey: "e", EventTime: time.Unix(1, 0), EventID: "x"}})
			if err == nil || IsUnavailable(err) != want {
				t.Errorf("apply: err %v, IsUnavailable %v, want %v", err, IsUnavailable(err), want)
			}
		})
	}
}

// TestIntegrationStore runs the behavioural suite on the real Redis at
// INLET_REDIS_URL.
func TestIntegrationStore(t *testing.T) {
	newEnv := realRedisEnv(t)
	if newEnv == nil {
		t.Skipf("%s not set", redisURLEnv)
	}
	t.Run("chunked", func(t *testing.T) { runSuite(t, newEnv, false) })
	t.Run("per key", func(t *testing.T) { runSuite(t, newEnv, true) })
}

package devstack

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Keys with a TTL expire on the embedded Redis: miniredis ages them only
// when the stack tells it to.
func TestEmbeddedRedisExpiresKeys(t *testing.T) {
	s := startStack(t, "")
	opt, err := redis.ParseURL(s.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.Set(ctx, "lease", "token", 200*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Exists(ctx, "lease").Val() == 1 {
		if time.Now().After(deadline) {
			t.Fatal("a key with a 200ms TTL still exists after 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Ageing walks every key under miniredis' lock: the pause after it grows
// with what it took, so it holds the lock a twentieth of the time at most.
func TestAgePause(t *testing.T) {
	for _, c := range []struct{ took, want time.Duration }{
		{0, 100 * time.Millisecond},
		{time.Millisecond, 100 * time.Millisecond},
		{5 * time.Millisecond, 100 * time.Millisecond},
		{150 * time.Millisecond, 3 * time.Second},
	} {
		if got := agePause(c.took); got != c.want {
			t.Errorf("agePause(%v) = %v, want %v", c.took, got, c.want)
		}
	}
}

package replay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/testenv/redisha"
)

// Replays on Redis Cluster: the inventory's SCAN and the lock's scripts.

// TestIDsOnRedisCluster: replay ls finds every replay's progress record and
// lock on Redis Cluster, where the keys are spread over the masters and a
// SCAN reaches one master only.
func TestIDsOnRedisCluster(t *testing.T) {
	c := redisha.StartCluster(t)
	rdb := c.Client(t)
	ctx := context.Background()
	const prefix = "inlet:"
	var want []string
	for i := range 12 {
		id := fmt.Sprintf("r%02d", i)
		want = append(want, id)
		key := progressKey(prefix, id)
		if i%3 == 0 {
			key = lockKey(prefix, id) // a run that has not written progress yet
		}
		if err := rdb.Set(ctx, key, "x", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
	}
	inv := &inventory{d: Deps{Redis: rdb, KeyPrefix: prefix}, base: "inlet.replay.", topics: map[string]bool{}}
	got, err := inv.ids(ctx)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("ids %v, %v; want %v", got, err, want)
	}
}

// TestLockOnRedisCluster: a replay's lock (SET NX, then its renew and
// unlock scripts, one key each) works on a cluster client, and a second
// run of the id is refused while it is held.
func TestLockOnRedisCluster(t *testing.T) {
	rdb := redisha.StartCluster(t).Client(t)
	ctx := context.Background()
	key := lockKey("inlet:", "r1")
	l, err := lock(ctx, rdb, key, "r1", func(err error) { t.Errorf("lock lost: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock(ctx, rdb, key, "r1", nil); !errors.Is(err, ErrRunning) {
		t.Fatalf("second lock: %v, want ErrRunning", err)
	}
	if n, err := renewScript.Run(ctx, rdb, []string{key}, l.value, lockLease.Milliseconds()).Int(); err != nil || n != 1 {
		t.Fatalf("renew: %d, %v", n, err)
	}
	if err := l.unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if n := rdb.Exists(ctx, key).Val(); n != 0 {
		t.Fatal("the lock is still there after unlock")
	}
}

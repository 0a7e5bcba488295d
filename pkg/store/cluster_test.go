package store

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/inletdev/inlet/pkg/testenv/redisha"
)

// clusterEnv returns the factory of envs on one Redis Cluster of three
// masters, started for t: each env a client of its own and a prefix of its
// own, its keys spread over every master (no hash tags).
func clusterEnv(t *testing.T) newEnvFunc {
	t.Helper()
	c := redisha.StartCluster(t)
	return func(t testing.TB) *env {
		t.Helper()
		return &env{
			rdb:    c.Client(t),
			prefix: testPrefix(),
			lease:  200 * time.Millisecond,
			expire: func(time.Duration) {},
		}
	}
}

// TestRedisCluster runs the behavioural suite on a real Redis Cluster,
// where the store calls each script once per key (New picks that for a
// *redis.ClusterClient; the chunked form would fail with CROSSSLOT).
func TestRedisCluster(t *testing.T) {
	newEnv := clusterEnv(t)
	t.Run("suite", func(t *testing.T) { runSuite(t, newEnv, false) })
	t.Run("every master is 7.0 or newer", func(t *testing.T) {
		if err := New(newEnv(t).rdb).CheckServer(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("per key on a cluster client", func(t *testing.T) {
		if s := New(newEnv(t).rdb); !s.perKey {
			t.Fatal("New chose chunked script calls on a *redis.ClusterClient")
		}
	})
}

// TestCheckDurabilityEveryMaster: on Redis Cluster each master keeps its own
// share of the keys, so every master is read: one that evicts is warned
// about by name, whichever node a keyless CONFIG GET would have reached.
func TestCheckDurabilityEveryMaster(t *testing.T) {
	c := redisha.StartCluster(t)
	bad := c.Addrs[2]
	node := redis.NewClient(&redis.Options{Addr: bad})
	defer node.Close()
	if err := node.ConfigSet(context.Background(), "maxmemory-policy", "allkeys-lru").Err(); err != nil {
		t.Fatal(err)
	}
	rdb := c.Client(t)
	for range 5 { // a keyless command reaches one master, a random one
		var warned []any
		lines := durabilityLog(t, rdb)
		for _, l := range lines {
			if l["level"] == "WARN" && l["maxmemory_policy"] == "allkeys-lru" {
				warned = append(warned, l["node"])
			}
		}
		if len(warned) != 1 || warned[0] != bad {
			t.Fatalf("warned of eviction on %v, want only %s; logged:\n%s", warned, bad, levels(lines))
		}
	}
}

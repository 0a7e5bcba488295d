package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/inletdev/inlet/pkg/testenv/poll"
	"github.com/inletdev/inlet/pkg/testenv/redisha"
)

// TestWaitReplicas: on a master with one replica, an entity state
// written (ApplyBatch) and a done key (Prepare, of a claim taken on
// another connection) are on the replica when the call returns; while the
// replica acknowledges nothing, both fail as unavailable
// (ErrNotReplicated), and the same calls succeed once it does again.
func TestWaitReplicas(t *testing.T) {
	s := redisha.StartSentinel(t, "--enable-debug-command", "local")
	ctx := context.Background()
	master := redis.NewClient(&redis.Options{Addr: s.Nodes[0]})
	defer master.Close()
	replica := redis.NewClient(&redis.Options{Addr: s.Nodes[1]})
	defer replica.Close()
	st := New(master, KeyPrefix("r:"), WaitReplicas(1, 300*time.Millisecond))
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	apply := func(entity string) error {
		_, err := st.ApplyBatch(ctx, []Update{{EntityKey: entity, EventTime: at, EventID: "evt_" + entity, State: []byte("{}")}})
		return err
	}
	tok := NewToken()
	// Claimed on other connections of the pool, at once.
	var wg sync.WaitGroup
	keys := make([]string, 20)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i)
		wg.Go(func() {
			if _, err := st.ClaimBatch(ctx, keys[i:i+1], tok); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	prepare := func(keys ...string) error {
		pos := make([]string, len(keys))
		for i := range pos {
			pos[i] = "raw/0/" + keys[i]
		}
		lost, err := st.Prepare(ctx, tok, keys, pos, []time.Duration{time.Hour})
		if err == nil && len(lost) > 0 {
			err = fmt.Errorf("lost %v", lost)
		}
		return err
	}
	onReplica := func(key string) bool {
		t.Helper()
		n, err := replica.Exists(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	if err := apply("e1"); err != nil || !onReplica(st.entityKey("e1")) {
		t.Fatalf("apply with the replica in sync: %v, on the replica: %v", err, onReplica(st.entityKey("e1")))
	}
	if err := prepare(keys[:10]...); err != nil {
		t.Fatalf("prepare with the replica in sync: %v", err)
	}
	for _, k := range keys[:10] {
		if v := replica.Get(ctx, st.dedupKey(k)).Val(); !strings.HasPrefix(v, "done ") {
			t.Fatalf("%s on the replica after Prepare: %q, want done", k, v)
		}
	}

	// The replica stalls (DEBUG SLEEP blocks it whole): nothing is
	// acknowledged.
	slept := make(chan error, 1)
	go func() { slept <- replica.Do(ctx, "DEBUG", "SLEEP", "3").Err() }()
	poll.Eventually(t, 5*time.Second, "the replica to stall", func() bool {
		probe := redis.NewClient(&redis.Options{Addr: s.Nodes[1], MaxRetries: -1, ReadTimeout: 50 * time.Millisecond})
		defer probe.Close()
		return probe.Ping(ctx).Err() != nil
	})
	for what, err := range map[string]error{"apply": apply("e2"), "prepare": prepare(keys[10:]...)} {
		if !IsUnavailable(err) || !errors.Is(err, ErrNotReplicated) || !strings.Contains(err.Error(), "0 of the 1 replicas") {
			t.Errorf("%s with the replica stalled: %v; want unavailable, not replicated, saying 0 of 1", what, err)
		}
	}
	if err := <-slept; err != nil {
		t.Fatalf("DEBUG SLEEP: %v", err)
	}
	// Tried again, as the processor does: the same calls succeed.
	poll.Eventually(t, 10*time.Second, "apply to succeed again", func() bool { return apply("e2") == nil })
	if err := prepare(keys[10:]...); err != nil {
		t.Fatalf("prepare tried again: %v", err)
	}
	if !onReplica(st.entityKey("e2")) || !strings.HasPrefix(replica.Get(ctx, st.dedupKey(keys[19])).Val(), "done ") {
		t.Fatal("the writes tried again are not on the replica")
	}

	// At start, a master with fewer replicas than asked for is warned of.
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	st.CheckReplicas(ctx, log)
	if logs.Len() != 0 {
		t.Fatalf("warned with its replica connected: %s", logs.String())
	}
	New(master, KeyPrefix("r:"), WaitReplicas(2, time.Second)).CheckReplicas(ctx, log)
	if !strings.Contains(logs.String(), "connected_replicas=1 redis_wait_replicas=2") {
		t.Fatalf("no warning of 1 replica where 2 are asked for: %q", logs.String())
	}
}

// TestWaitReplicasOptions: a negative count, a timeout WAIT would take as
// forever, and Redis Cluster are refused.
func TestWaitReplicasOptions(t *testing.T) {
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer dead.Close()
	for _, bad := range []Opt{WaitReplicas(-1, time.Second), WaitReplicas(1, 0), WaitReplicas(1, time.Microsecond)} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%+v: not refused", bad)
				}
			}()
			New(dead, bad)
		}()
	}
	cl := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
	defer cl.Close()
	defer func() {
		if recover() == nil {
			t.Error("WaitReplicas on a cluster client: not refused")
		}
	}()
	New(cl, WaitReplicas(1, time.Second))
}

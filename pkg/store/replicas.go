package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotReplicated is wrapped (with ErrUnavailable) by a write when fewer
// replicas than WaitReplicas asks for acknowledged it in time: a failover
// now could lose it.
var ErrNotReplicated = errors.New("writes not acknowledged by enough replicas")

// WaitReplicas makes the writes a failover must not lose (entity states,
// ApplyBatch; done keys, Prepare) return only once n replicas hold them,
// waiting up to timeout; fewer by then fails the call as unavailable
// (ErrNotReplicated), and the processor tries it again as it does through
// any outage, committing nothing meanwhile. 0, the default, waits for
// none: Redis replicates asynchronously, and a master lost before its
// replica had a batch's done keys and entity states hands the promoted
// replica a past in which those events never happened; their redeliveries
// are processed twice, or an older update applied over a newer one. Only
// on a *redis.Client (one server, or Sentinel's failover client): on
// Redis Cluster a WAIT reaches one master, and a batch's keys are on all
// of them (New panics). n must not be negative, nor timeout below 1ms when
// n is above 0 (WAIT takes 0 as forever).
func WaitReplicas(n int, timeout time.Duration) Opt {
	return func(c *cfg) { c.waitReplicas, c.waitTimeout = n, timeout }
}

// evalReplicated is evalBatch for writes a failover must not lose: with
// WaitReplicas, sent over one connection and followed by a WAIT on it.
// WAIT covers its own connection's writes only, and the pool would spread
// a call's pipelines (a NOSCRIPT retry is a second one) over several; on
// one connection every write went to the server that answers the WAIT,
// even across a failover. Claims taken on other connections are checked
// by Prepare's script on that same server (a claim lost with the old
// master fails it).
func (s *Store) evalReplicated(ctx context.Context, ops ...op) ([][]int64, error) {
	if s.cfg.waitReplicas == 0 {
		return s.evalBatch(ctx, nil, ops...)
	}
	conn := s.rdb.(*redis.Client).Conn() // New allows no other client
	defer conn.Close()
	out, err := s.evalOn(ctx, conn, nil, ops...)
	if err != nil {
		return nil, err
	}
	got, err := conn.Do(ctx, "WAIT", s.cfg.waitReplicas, s.cfg.waitTimeout.Milliseconds()).Int()
	if err != nil {
		return nil, wrapErr(ctx, ops[0].name+": wait for replicas", err)
	}
	if got < s.cfg.waitReplicas {
		return nil, fmt.Errorf("store: %s: %w: %w: %d of the %d replicas asked for (-redis-wait-replicas) acknowledged it within %v",
			ops[0].name, ErrUnavailable, ErrNotReplicated, got, s.cfg.waitReplicas, s.cfg.waitTimeout)
	}
	return out, nil
}

// CheckReplicas warns, at start, when the master has fewer replicas
// connected than WaitReplicas asks for: every batch would wait for them.
// Not being able to ask is logged at debug, as processing finds out soon.
func (s *Store) CheckReplicas(ctx context.Context, log *slog.Logger) {
	n := s.cfg.waitReplicas
	if n == 0 {
		return
	}
	got, err := replicasOf(ctx, s.rdb)
	if err != nil {
		log.Debug("could not read the Redis master's connected replicas (INFO replication)", "error", err)
		return
	}
	if got < n {
		log.Warn("the Redis master has fewer replicas connected than -redis-wait-replicas asks for: every batch waits, committing nothing, until enough are",
			"connected_replicas", got, "redis_wait_replicas", n)
	}
}

// replicasOf is the number of replicas connected to the master rdb
// reaches (INFO replication).
func replicasOf(ctx context.Context, rdb redis.Cmdable) (int, error) {
	info, err := rdb.Info(ctx, "replication").Result()
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "connected_slaves:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, errors.New("INFO replication has no connected_slaves")
}

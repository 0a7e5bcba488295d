// Package store holds the processor's Redis state: dedup claims (claim with a
// lease, confirm after the output is written, release on failure) and the
// newest-wins conditional update of each entity's state.
//
// Every operation has a batch form that costs one round trip: one Lua script
// call per item (EVALSHA), all items of a batch in one pipeline. Each script
// is atomic on its own key, so the batch is not a transaction: on an error
// some items may already have taken effect. Every operation is idempotent for
// the same token (claims) or the same event (updates), so retrying the whole
// batch is always safe; go-redis itself retries a pipeline after a network
// error, which relies on the same property.
//
// Cancelling a call's ctx abandons its round trip: the call returns an error
// wrapping ctx.Err() (never [ErrUnavailable]), and whatever was already sent
// may have taken effect. Redis being unreachable or not serving returns an
// error for which [IsUnavailable] is true: pause and retry the same batch.
//
// Keys (prefix from [KeyPrefix], default "inlet:"):
//
//	<prefix>dedup:<natural key>   string: a claim token, or "done"
//	<prefix>entity:<entity key>   hash: ts (unix µs), event_id, state
//
// Each script touches a single key, so the store works on Redis Cluster
// (go-redis splits the pipeline per node, keeping the order per key).
package store

import (
	"context"
	_ "embed"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	//go:embed claim.lua
	claimSrc string
	//go:embed confirm.lua
	confirmSrc string
	//go:embed release.lua
	releaseSrc string
	//go:embed apply.lua
	applySrc string

	claimScript   = redis.NewScript(claimSrc)
	confirmScript = redis.NewScript(confirmSrc)
	releaseScript = redis.NewScript(releaseSrc)
	applyScript   = redis.NewScript(applySrc)
)

// Store is the processor's Redis state. It is safe for concurrent use; it
// holds no state of its own besides its configuration and the client.
type Store struct {
	rdb redis.UniversalClient
	cfg cfg
}

type cfg struct {
	prefix string
	lease  time.Duration
}

func defaultCfg() cfg {
	return cfg{
		prefix: "inlet:",
		lease:  60 * time.Second,
	}
}

func (c cfg) validate() error {
	if c.lease < time.Millisecond {
		return fmt.Errorf("store: ClaimLease %v is below the 1ms resolution of PX", c.lease)
	}
	return nil
}

// Opt configures a Store.
type Opt func(*cfg)

// KeyPrefix sets the prefix of every key the store writes, overriding the
// default "inlet:". Use a distinct prefix per environment sharing a Redis.
func KeyPrefix(p string) Opt { return func(c *cfg) { c.prefix = p } }

// ClaimLease sets how long a claim is held before another attempt may take
// it over, overriding the default 60s. It must exceed the time a batch takes
// from claim to confirm (handlers plus the Kafka transaction); a crashed
// worker's events are retried once it runs out. Minimum 1ms.
func ClaimLease(d time.Duration) Opt { return func(c *cfg) { c.lease = d } }

// New returns a Store over rdb (a *redis.Client, *redis.ClusterClient or
// failover client). It does not contact Redis. The caller owns rdb and closes
// it after the last call.
//
// New panics if an option is out of range (ClaimLease below 1ms): that is a
// programming error, and service configuration validates its values first.
func New(rdb redis.UniversalClient, opts ...Opt) *Store {
	c := defaultCfg()
	for _, o := range opts {
		o(&c)
	}
	if err := c.validate(); err != nil {
		panic(err)
	}
	return &Store{rdb: rdb, cfg: c}
}

func (s *Store) dedupKey(k string) string  { return s.cfg.prefix + "dedup:" + k }
func (s *Store) entityKey(k string) string { return s.cfg.prefix + "entity:" + k }

// evalBatch runs sc once per item in one pipeline and returns the integer
// each call returned, in item order. item(i) gives the full Redis key and the
// script arguments of call i.
//
// Scripts go as EVALSHA. After a Redis restart, failover or SCRIPT FLUSH the
// server no longer has them and answers NOSCRIPT; go-redis's Script.Run cannot
// fall back inside a pipeline, so the calls that got NOSCRIPT are sent again,
// in order, with EVAL (which also caches the script for the next batch). That
// second round trip only happens once per script and server.
func (s *Store) evalBatch(ctx context.Context, op string, sc *redis.Script, n int, item func(i int) (string, []any)) ([]int64, error) {
	if n == 0 {
		return nil, nil
	}
	cmds := make([]*redis.Cmd, n)
	pipe := s.rdb.Pipeline()
	for i := range n {
		key, args := item(i)
		cmds[i] = sc.EvalSha(ctx, pipe, []string{key}, args...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		var again []int
		for i, c := range cmds {
			if err := c.Err(); err != nil {
				if !isNoScript(err) {
					return nil, wrapErr(ctx, op, err)
				}
				again = append(again, i)
			}
		}
		pipe = s.rdb.Pipeline()
		for _, i := range again {
			key, args := item(i)
			cmds[i] = sc.Eval(ctx, pipe, []string{key}, args...)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, wrapErr(ctx, op, err)
		}
	}
	out := make([]int64, n)
	for i, c := range cmds {
		v, err := c.Int64()
		if err != nil {
			return nil, fmt.Errorf("store: %s: unexpected script reply: %w", op, err)
		}
		out[i] = v
	}
	return out, nil
}

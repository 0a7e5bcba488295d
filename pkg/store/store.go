// Package store holds the processor's Redis state: dedup claims (claim with a
// lease, confirm after the output is written, release on failure) and the
// newest-wins conditional update of each entity's state.
//
// Every operation has a batch form that costs one round trip, all of a
// batch's commands in one pipeline: claims and confirms are one atomic SET
// per key (SET … NX … GET, SET … GET; Redis 7.0 or newer), and the
// conditional operations — newest-wins apply, release, a replay's
// delete-if — a Lua script (EVALSHA) that loops over the batch's keys,
// called once per chunk of keys on a single server and once per key on
// Redis Cluster. A batch is not a
// transaction: on an error some items may already have taken effect. Every
// operation is idempotent for the same token (claims) or the same event
// (updates), so retrying the whole batch is always safe; go-redis itself
// retries a pipeline after a network error, which relies on the same
// property.
//
// Cancelling a call's ctx abandons its round trip: the call returns an error
// wrapping ctx.Err() (never [ErrUnavailable]), and whatever was already sent
// may have taken effect. Redis being unreachable or not serving returns an
// error for which [IsUnavailable] is true: pause and retry the same batch.
//
// Keys (prefix from [KeyPrefix], default "inlet:"):
//
//	<prefix>dedup:<claim key>     string: a claim token, or "done", "done <position>" or "done <position> <token>" (prepared)
//	<prefix>entity:<entity key>   hash: ts (unix µs), event_id, state
//
// A claim or entity key of [MaxKeyBytes] or more is stored under its head
// and a hash, MaxKeyBytes in all.
//
// The processor claims two kinds of keys, named apart in the claim key:
// "dedup:<source>:<natural key>" for an event (so the Redis key is
// inlet:dedup:dedup:<source>:<natural key>) and "lock:<entity key>" for
// its entity while the batch holding it is in flight.
//
// On Redis Cluster (or a Ring) each command and script call touches a
// single key, so the store works there too (go-redis splits the pipeline
// per node, keeping the order per key).
package store

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	//go:embed claim.lua
	claimSrc string
	//go:embed release.lua
	releaseSrc string
	//go:embed apply.lua
	applySrc string
	//go:embed delete_if.lua
	deleteIfSrc string
	//go:embed retake.lua
	retakeSrc string
	//go:embed renew.lua
	renewSrc string
	//go:embed prepare.lua
	prepareSrc string

	claimScript    = redis.NewScript(claimSrc)
	releaseScript  = redis.NewScript(releaseSrc)
	applyScript    = redis.NewScript(applySrc)
	deleteIfScript = redis.NewScript(deleteIfSrc)
	retakeScript   = redis.NewScript(retakeSrc)
	renewScript    = redis.NewScript(renewSrc)
	prepareScript  = redis.NewScript(prepareSrc)
)

// ScriptOps maps the SHA1 of each Lua script the store runs (as EVALSHA
// sends it) to its operation: claim (renewing a lease a retried batch
// already holds), apply, release, retake (RetakeDone), renew
// (RenewLocks) or prepare (Prepare). Claims and confirms are otherwise plain
// SET commands (SET … NX … GET and SET … GET). DeleteEntitiesIf's script
// (replay rebuild) is "delete entities". It is for instrumentation that
// sees the Redis commands, such as a go-redis hook.
func ScriptOps() map[string]string {
	return map[string]string{
		claimScript.Hash():    "claim",
		applyScript.Hash():    "apply",
		releaseScript.Hash():  "release",
		deleteIfScript.Hash(): "delete entities",
		retakeScript.Hash():   "retake",
		renewScript.Hash():    "renew",
	}
}

// Store is the processor's Redis state. It is safe for concurrent use; it
// holds no state of its own besides its configuration and the client.
type Store struct {
	rdb redis.UniversalClient
	cfg cfg
	// perKey sends one script call per item (see evalBatch): on anything
	// but a single server, and in tests of that path.
	perKey bool
}

type cfg struct {
	prefix       string
	lease        time.Duration
	lockLease    time.Duration
	waitReplicas int
	waitTimeout  time.Duration
	// retention is the entity hashes' TTL, set on every touch; 0: none.
	retention time.Duration
}

func defaultCfg() cfg {
	return cfg{
		prefix:    "inlet:",
		lease:     60 * time.Second,
		lockLease: 10 * time.Second,
	}
}

func (c cfg) validate() error {
	if c.lease < time.Millisecond {
		return fmt.Errorf("store: ClaimLease %v is below the 1ms resolution of PX", c.lease)
	}
	if c.lockLease < time.Millisecond {
		return fmt.Errorf("store: LockLease %v is below the 1ms resolution of PX", c.lockLease)
	}
	if c.retention < 0 || c.retention > 0 && c.retention < time.Millisecond {
		return fmt.Errorf("store: EntityRetention %v: want 0 (none) or 1ms or more", c.retention)
	}
	if c.waitReplicas < 0 || c.waitReplicas > 0 && c.waitTimeout < time.Millisecond {
		return fmt.Errorf("store: WaitReplicas %d, %v: want 0, or replicas and a timeout of 1ms or more", c.waitReplicas, c.waitTimeout)
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

// LockLease sets the lease of an entity lock (a key claimed at [AtLock]),
// overriding the default 10s. Unlike a dedup claim, which must outlive its
// batch's commit so that a duplicate is never let through, a lock only
// keeps two attempts from applying one entity at once: its holder renews
// it while the batch runs ([Store.RenewLocks]), and a crashed worker's
// locks free their entities after this long, not after the claim lease —
// an entity's events sit on every partition, so until then each partition
// stops at its first event of that entity. Minimum 1ms.
func LockLease(d time.Duration) Opt { return func(c *cfg) { c.lockLease = d } }

// EntityRetention makes an entity's stored state (its newest-wins time)
// expire once no event of it, applied or stale, came for d; 0, the
// default, keeps every entity for good. An entity forgotten this way takes
// the next event of it as its first: an older one arriving after d (a dead
// letter requeued, a replay of an old range) applies as the newest.
func EntityRetention(d time.Duration) Opt { return func(c *cfg) { c.retention = d } }

// LockLease is the lease of an entity lock: a holder renews well within it.
func (s *Store) LockLease() time.Duration { return s.cfg.lockLease }

// New returns a Store over rdb (a *redis.Client, *redis.ClusterClient or
// failover client). It does not contact Redis. The caller owns rdb and closes
// it after the last call.
//
// New panics if an option is out of range (a lease below 1ms): that is a
// programming error, and service configuration validates its values first.
func New(rdb redis.UniversalClient, opts ...Opt) *Store {
	c := defaultCfg()
	for _, o := range opts {
		o(&c)
	}
	if err := c.validate(); err != nil {
		panic(err)
	}
	_, single := rdb.(*redis.Client)
	if !single && c.waitReplicas > 0 {
		panic("store: WaitReplicas on a client of more than one server (Redis Cluster)")
	}
	return &Store{rdb: rdb, cfg: c, perKey: !single}
}

// eachMaster calls fn for each server holding the store's keys, with its
// address as node: on Redis Cluster each master, concurrently; otherwise
// rdb itself, node "". For commands that read a server rather than a key
// (INFO, CONFIG GET), which on a cluster client reach one node only.
func (s *Store) eachMaster(ctx context.Context, fn func(ctx context.Context, c redis.Cmdable, node string) error) error {
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			return fn(ctx, c, c.Options().Addr)
		})
	}
	return fn(ctx, s.rdb, "")
}

func (s *Store) dedupKey(k string) string  { return s.cfg.prefix + "dedup:" + boundKey(k) }
func (s *Store) entityKey(k string) string { return s.cfg.prefix + "entity:" + boundKey(k) }

// MaxKeyBytes bounds the part of a Redis key that names a claim or an
// entity (after "<prefix>dedup:" or "<prefix>entity:"). Entity and natural
// keys come from the events (a handler's template over the payload) and
// can be as long as a Kafka record; an entity's hash is kept for good, so
// a sender could otherwise grow Redis by up to a megabyte of key name per
// event. A key of MaxKeyBytes or more is stored under its first bytes
// followed by "#sha256:" and the SHA-256 of the whole key, MaxKeyBytes in
// all: two keys are still one Redis key only when they are equal (the
// hashed form has exactly MaxKeyBytes, a key kept as it is fewer).
const MaxKeyBytes = 256

// boundKey returns k as stored in a Redis key name: k itself when shorter
// than MaxKeyBytes, otherwise its head and hash (see MaxKeyBytes).
func boundKey(k string) string {
	if len(k) < MaxKeyBytes {
		return k
	}
	sum := sha256.Sum256([]byte(k))
	const tag = "#sha256:"
	head := MaxKeyBytes - len(tag) - 2*len(sum)
	return k[:head] + tag + hex.EncodeToString(sum[:])
}

// maxScriptKeys bounds the keys of one script call: Redis runs a script to
// its end before serving anyone else, so a long batch is cut into calls of
// at most this many keys (about a millisecond of Redis time each).
const maxScriptKeys = 512

// op is one batched script operation: n items, each a key and its script
// arguments.
type op struct {
	name   string
	script *redis.Script
	// common are the ARGV every call of the script starts with.
	common []any
	n      int
	// item returns item i's full Redis key and appends its arguments to args.
	item func(i int, args []any) (string, []any)
}

// evalBatch runs the ops in one pipeline (one round trip) and returns each
// op's per-item result codes, in item order. pipe, when not nil, may hold
// commands queued by the caller, which go first in the same round trip; the
// caller reads their results (and errors) from its own Cmds.
//
// The scripts loop over their KEYS. On a single Redis server (a
// *redis.Client, also behind Sentinel) an op's items go to its script in
// calls of up to maxScriptKeys keys: one script call per chunk costs Redis a
// fraction of the CPU of one call per item. On Redis Cluster or a Ring,
// where the keys of one call must live on one node, each item is a call of
// its own.
//
// Scripts go as EVALSHA. After a Redis restart, failover or SCRIPT FLUSH the
// server no longer has them and answers NOSCRIPT; go-redis's Script.Run cannot
// fall back inside a pipeline, so the calls that got NOSCRIPT are sent again,
// in order, with EVAL (which also caches the script for the next batch). That
// second round trip only happens once per script and server.
func (s *Store) evalBatch(ctx context.Context, pipe redis.Pipeliner, ops ...op) ([][]int64, error) {
	return s.evalOn(ctx, s.rdb, pipe, ops...)
}

// evalOn is evalBatch through rdb: the store's client, or one connection
// of it (evalReplicated).
func (s *Store) evalOn(ctx context.Context, rdb interface{ Pipeline() redis.Pipeliner }, pipe redis.Pipeliner, ops ...op) ([][]int64, error) {
	type call struct {
		op   int
		keys []string
		args []any
		cmd  *redis.Cmd
	}
	per := maxScriptKeys
	if s.perKey {
		per = 1
	}
	var calls []call
	if pipe == nil {
		pipe = rdb.Pipeline()
	}
	for o, op := range ops {
		for lo := 0; lo < op.n; lo += per {
			hi := min(lo+per, op.n)
			c := call{op: o, keys: make([]string, 0, hi-lo), args: append(make([]any, 0, len(op.common)+3*(hi-lo)), op.common...)}
			for i := lo; i < hi; i++ {
				var key string
				key, c.args = op.item(i, c.args)
				c.keys = append(c.keys, key)
			}
			c.cmd = op.script.EvalSha(ctx, pipe, c.keys, c.args...)
			calls = append(calls, c)
		}
	}
	if pipe.Len() == 0 {
		return make([][]int64, len(ops)), nil
	}
	// An error from Exec may be a queued command's (even redis.Nil, for a
	// GET of a missing key): only the script calls' own errors count here.
	if _, err := pipe.Exec(ctx); err != nil {
		var again []int
		for i, c := range calls {
			if err := c.cmd.Err(); err != nil {
				if !isNoScript(err) {
					return nil, wrapErr(ctx, ops[c.op].name, err)
				}
				again = append(again, i)
			}
		}
		if len(again) > 0 {
			pipe = rdb.Pipeline()
			for _, i := range again {
				c := &calls[i]
				c.cmd = ops[c.op].script.Eval(ctx, pipe, c.keys, c.args...)
			}
			if _, err := pipe.Exec(ctx); err != nil {
				return nil, wrapErr(ctx, ops[calls[again[0]].op].name, err)
			}
		}
	}
	out := make([][]int64, len(ops))
	for o, op := range ops {
		out[o] = make([]int64, 0, op.n)
	}
	for _, c := range calls {
		codes, err := c.cmd.Int64Slice()
		if err != nil || len(codes) != len(c.keys) {
			return nil, fmt.Errorf("store: %s: unexpected script reply %v: %v", ops[c.op].name, c.cmd.Val(), err)
		}
		out[c.op] = append(out[c.op], codes...)
	}
	return out, nil
}

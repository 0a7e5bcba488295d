package store

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Durability is what Redis says (CONFIG GET) about keeping the store's keys:
// dedup claims and done keys, entity state. A field Redis did not report is
// left empty and not judged.
type Durability struct {
	// AppendOnly is the appendonly setting: "yes" keeps every write in the
	// AOF.
	AppendOnly string
	// Save is the RDB snapshot rules ("3600 1 300 100 60 10000"); empty
	// (save "") takes no snapshots. Reported is whether Redis answered.
	Save         string
	SaveReported bool
	// MaxmemoryPolicy is what Redis does when full: noeviction refuses
	// writes (the processor then waits); any other policy evicts keys.
	MaxmemoryPolicy string
	// Maxmemory is the memory limit in bytes ("0": none).
	Maxmemory string
}

// NoPersistence reports a Redis that keeps nothing across a restart: no AOF
// and no RDB snapshots. Its dedup state (done keys) is lost on restart, and
// events delivered again after it are processed twice.
func (d Durability) NoPersistence() bool {
	return d.AppendOnly == "no" && d.SaveReported && strings.TrimSpace(d.Save) == ""
}

// SnapshotsOnly reports a Redis that persists by RDB snapshots alone: a crash
// loses what was written since the last one.
func (d Durability) SnapshotsOnly() bool {
	return d.AppendOnly == "no" && d.SaveReported && strings.TrimSpace(d.Save) != ""
}

// Evicts reports a maxmemory-policy other than noeviction: once maxmemory is
// reached Redis deletes keys, and an evicted dedup claim, done key or
// entity state lets a duplicate or stale update through. (The volatile-*
// policies evict keys with a TTL, which every dedup key has.)
func (d Durability) Evicts() bool {
	return d.MaxmemoryPolicy != "" && d.MaxmemoryPolicy != "noeviction"
}

// NodeDurability is what one server reported.
type NodeDurability struct {
	// Node is the server's address on Redis Cluster; "" on a single
	// server (also Sentinel's master), the only one.
	Node string
	Durability
	// Err is why the server could not be read: CONFIG refused (managed
	// Redis renames or forbids it; an ACL user may lack it), or the
	// server unreachable ([IsUnavailable]). Durability is then empty.
	Err error
}

// ReadDurability asks each server holding the store's keys for its
// persistence and eviction settings (CONFIG GET appendonly, save,
// maxmemory-policy, maxmemory), one command each, so a server that answers
// one parameter at a time is read too. That is the one server, or on Redis
// Cluster every master (each holds its own share of the keys), in the
// order of their addresses; a master that cannot be read has Err set and
// the others are read all the same. The error is for not reaching the
// cluster at all.
func (s *Store) ReadDurability(ctx context.Context) ([]NodeDurability, error) {
	var (
		mu  sync.Mutex
		out []NodeDurability
	)
	err := s.eachMaster(ctx, func(ctx context.Context, c redis.Cmdable, node string) error {
		d, err := readDurability(ctx, c)
		mu.Lock()
		defer mu.Unlock()
		out = append(out, NodeDurability{Node: node, Durability: d, Err: err})
		return nil
	})
	if err != nil {
		return nil, wrapErr(ctx, "list the cluster's masters", err)
	}
	slices.SortFunc(out, func(a, b NodeDurability) int { return strings.Compare(a.Node, b.Node) })
	return out, nil
}

func readDurability(ctx context.Context, c redis.Cmdable) (Durability, error) {
	var d Durability
	for _, p := range []struct {
		name string
		into *string
		ok   *bool
	}{
		{"appendonly", &d.AppendOnly, nil},
		{"save", &d.Save, &d.SaveReported},
		{"maxmemory-policy", &d.MaxmemoryPolicy, nil},
		{"maxmemory", &d.Maxmemory, nil},
	} {
		m, err := c.ConfigGet(ctx, p.name).Result()
		if err != nil {
			return Durability{}, wrapErr(ctx, "config get "+p.name, err)
		}
		v, ok := m[p.name]
		*p.into = strings.ToLower(strings.TrimSpace(v))
		if p.ok != nil {
			*p.ok = ok
		}
	}
	return d, nil
}

// DurabilityDoc names what the operator's guide requires of Redis.
const DurabilityDoc = "docs/run-on-real-kafka.md (What Inlet needs: appendonly yes, maxmemory-policy noeviction)"

// CheckDurability reads the Redis settings that decide whether dedup state
// survives (see ReadDurability: on Redis Cluster every master) and logs
// what would let duplicates through: a warning for no persistence at all
// (a restart loses every done key, so a failure drill shows duplicates
// production would not) and one for a maxmemory-policy that evicts; RDB
// snapshots without the AOF at info (a crash loses the writes since the
// last snapshot). On Redis Cluster each line names its master (node). It
// never stops the start: CONFIG refused (managed Redis) or Redis
// unreachable is logged at debug and that server is not checked.
func (s *Store) CheckDurability(ctx context.Context, log *slog.Logger) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	nodes, err := s.ReadDurability(cctx)
	if err != nil {
		nodes = []NodeDurability{{Err: err}}
	}
	for _, n := range nodes {
		l := log
		if n.Node != "" {
			l = log.With("node", n.Node)
		}
		logDurability(l, n)
	}
}

func logDurability(log *slog.Logger, n NodeDurability) {
	d := n.Durability
	if n.Err != nil {
		log.Debug("could not read Redis's persistence and eviction settings (CONFIG GET refused, as managed Redis may, or Redis unreachable); not checked", "error", n.Err, "requires", DurabilityDoc)
		return
	}
	if d.NoPersistence() {
		log.Warn("redis persists nothing (appendonly no, save \"\"): a restart loses every dedup claim and done key and the newest-wins state, and events delivered again after it are processed twice",
			"appendonly", d.AppendOnly, "save", d.Save, "requires", DurabilityDoc)
	} else if d.SnapshotsOnly() {
		log.Info("redis persists by RDB snapshots only (appendonly no): a crash loses the dedup state written since the last snapshot",
			"save", d.Save, "requires", DurabilityDoc)
	}
	if d.Evicts() {
		log.Warn("redis maxmemory-policy is not noeviction: once maxmemory is reached it evicts keys, and an evicted dedup key or entity state lets a duplicate or a stale update through",
			"maxmemory_policy", d.MaxmemoryPolicy, "maxmemory", d.Maxmemory, "requires", DurabilityDoc)
	}
}

package replay

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/processor"
)

// What a replay leaves behind, until Remove deletes it: its topic and
// retry topics, its consumer group and its progress record in Redis.

// The statuses of an Info.
const (
	StatusFinished = "finished" // every copy has its outcome
	StatusRunning  = "running"  // a run (or a removal) holds the id's lock
	// StatusStopped: not finished and not running (interrupted, failed or
	// killed); run the same id to resume.
	StatusStopped = "stopped"
	// StatusOrphaned: topics or a group left without a progress record
	// (deleted by hand, or another --redis-key-prefix).
	StatusOrphaned = "orphaned"
)

// Info is what List finds of one replay.
type Info struct {
	ID     string    `json:"id"`
	Source string    `json:"source,omitempty"`
	Mode   Mode      `json:"mode,omitempty"`
	From   time.Time `json:"from,omitzero"` // zero: the start of the raw topic
	To     time.Time `json:"to,omitzero"`
	Status string    `json:"status"`
	// Phase is where the progress record stands: copy, delete (rebuild),
	// process or complete; empty without a record.
	Phase string `json:"phase,omitempty"`
	// Done of Total: raw records scanned (copy, Total 0), final outcomes
	// of the copies (process, complete).
	Done     int64 `json:"done"`
	Total    int64 `json:"total"`
	Complete bool  `json:"complete"`
	// Holder is the run (or removal) holding the id's lock.
	Holder *Holder `json:"running_by,omitempty"`
	// Key is the progress record, when it exists.
	Key             string `json:"key,omitempty"`
	Applied         int64  `json:"applied"`
	Duplicate       int64  `json:"duplicate"`
	Stale           int64  `json:"stale"`
	Invalid         int64  `json:"invalid"`
	DLQ             int64  `json:"dlq"`
	DeletedClaims   int64  `json:"deleted_claims,omitempty"` // rebuild, so far
	DeletedEntities int64  `json:"deleted_entities,omitempty"`
	// Topics are the replay's topics that exist: its topic first, then
	// its retry topics.
	Topics []TopicInfo `json:"topics"`
	Group  *GroupInfo  `json:"group,omitempty"` // nil: no such group
	// Pending counts the records on its topics after its group's
	// committed offsets: copies not processed yet. Counting stops at
	// pendingCap (PendingAtLeast).
	Pending        int64 `json:"pending"`
	PendingAtLeast bool  `json:"pending_at_least,omitempty"`
	// Conflict says why Remove will not delete the replay's topics: a
	// name of them is under another Inlet deployment's topic prefix.
	Conflict string `json:"conflict,omitempty"`
}

// TopicInfo is one of a replay's topics.
type TopicInfo struct {
	Name       string `json:"name"`
	Partitions int    `json:"partitions"`
	// Offsets is the span of offsets it holds (end - start, over its
	// partitions): its records, and transaction markers.
	Offsets int64 `json:"offsets"`
	// Bytes is its size on disk (the largest replica of each partition);
	// -1 when the brokers did not say (DescribeLogDirs refused).
	Bytes   int64 `json:"bytes"`
	Pending int64 `json:"pending"` // records its group has not processed
}

// GroupInfo is a replay's consumer group.
type GroupInfo struct {
	Name    string `json:"name"`
	State   string `json:"state"`   // Empty, Stable, PreparingRebalance, ...
	Members int    `json:"members"` // active consumers: a run in progress
	// Foreign lists the topics not of this replay the group has offsets
	// for: group names carry no topic prefix, so another deployment's
	// replay of the same id shares it (Remove then deletes only this
	// replay's offsets).
	Foreign []string `json:"foreign_topics,omitempty"`
}

// pendingCap bounds the records List and Remove count per replay: a
// running replay's millions of copies would take minutes to read, and
// "at least 100000" says what there is to say. A var for tests.
var pendingCap int64 = 100_000

// keys of a replay in Redis.
func progressKey(prefix, id string) string { return prefix + "replay:" + id }
func lockKey(prefix, id string) string     { return progressKey(prefix, id) + ":lock" }

// inventory reads what replays left: one listing of the cluster's topics
// serves every replay listed.
type inventory struct {
	d      Deps
	cl     *kgo.Client
	adm    *kadm.Client
	base   string          // Topic(d.Topics, ""): every replay topic's start
	topics map[string]bool // every topic of the cluster
}

func newInventory(ctx context.Context, d Deps) (*inventory, error) {
	if d.Redis == nil {
		return nil, fmt.Errorf("%w: redis is required", ErrConfig)
	}
	cl, err := kgo.NewClient(d.KafkaOpts...)
	if err != nil {
		return nil, err
	}
	inv := &inventory{d: d, cl: cl, adm: kadm.NewClient(cl), base: Topic(d.Topics, "")}
	if err := inv.listTopics(ctx); err != nil {
		cl.Close()
		return nil, err
	}
	return inv, nil
}

func (inv *inventory) close() { inv.cl.Close() }

func (inv *inventory) listTopics(ctx context.Context) error {
	td, err := inv.adm.ListTopics(ctx)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	inv.topics = map[string]bool{}
	for name, t := range td {
		if t.Err == nil {
			inv.topics[name] = true
		}
	}
	return nil
}

// replayOf splits a topic name into the replay it belongs to and whether
// it is one of its retry topics; ok is false for a name that is no
// replay's topic (not under base, or its id not one CheckID takes).
func (inv *inventory) replayOf(name string) (id string, retryTopic, ok bool) {
	rest, found := strings.CutPrefix(name, inv.base)
	if !found {
		return "", false, false
	}
	if i := strings.LastIndex(rest, retryInID); i > 0 && isTierName(rest[i+len(retryInID):]) {
		rest, retryTopic = rest[:i], true
	}
	return rest, retryTopic, CheckID(rest) == nil
}

// isTierName: s names a retry tier as kafka.TierName writes it.
func isTierName(s string) bool {
	d, err := time.ParseDuration(s)
	return err == nil && d > 0 && kafka.TierName(d) == s
}

// topicsOf lists id's topics that exist: its topic, then its retry topics
// (by name).
func (inv *inventory) topicsOf(id string) []string {
	var main, retries []string
	for name := range inv.topics {
		rid, retryTopic, ok := inv.replayOf(name)
		switch {
		case !ok || rid != id:
		case retryTopic:
			retries = append(retries, name)
		default:
			main = append(main, name)
		}
	}
	// In tier order, as the replay made them.
	tier := func(name string) time.Duration {
		d, _ := time.ParseDuration(name[strings.LastIndex(name, ".")+1:])
		return d
	}
	slices.SortFunc(retries, func(a, b string) int { return cmp.Compare(tier(a), tier(b)) })
	return append(main, retries...)
}

// ours: name is id's topic or one of its retry topics, existing or not.
func (inv *inventory) ours(id, name string) bool {
	rid, _, ok := inv.replayOf(name)
	return ok && rid == id
}

// ids lists every replay with a progress record, a lock or a topic.
// Groups alone are not enough: a legacy group (inlet-replay-<id>) carries
// no topic prefix, and may be another deployment's.
func (inv *inventory) ids(ctx context.Context) ([]string, error) {
	set := map[string]bool{}
	for name := range inv.topics {
		if id, _, ok := inv.replayOf(name); ok {
			set[id] = true
		}
	}
	prefix := progressKey(inv.d.KeyPrefix, "")
	err := scanKeys(ctx, inv.d.Redis, globEscape(prefix)+"*", func(key string) {
		id := strings.TrimSuffix(strings.TrimPrefix(key, prefix), ":lock")
		if CheckID(id) == nil {
			set[id] = true
		}
	})
	if err != nil {
		return nil, fmt.Errorf("list replay progress records in Redis: %w", err)
	}
	return slices.Sorted(maps.Keys(set)), nil
}

// scanKeys calls fn with each key matching the pattern, one call at a
// time. On Redis Cluster every master is scanned: a SCAN reaches one
// master, and with it only the keys in its slots.
func scanKeys(ctx context.Context, rdb redis.UniversalClient, match string, fn func(key string)) error {
	scan := func(ctx context.Context, c redis.Cmdable, fn func(string)) error {
		iter := c.Scan(ctx, 0, match, 1000).Iterator()
		for iter.Next(ctx) {
			fn(iter.Val())
		}
		return iter.Err()
	}
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		return scan(ctx, rdb, fn)
	}
	var mu sync.Mutex // the masters are scanned concurrently
	return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		return scan(ctx, c, func(key string) {
			mu.Lock()
			defer mu.Unlock()
			fn(key)
		})
	})
}

// globEscape quotes the characters a Redis MATCH pattern treats
// specially: a key prefix is the operator's, and may hold them.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\^-`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// info reads what id left. With withLock false the lock is not read: the
// caller holds it.
func (inv *inventory) info(ctx context.Context, id string, withLock bool) (*Info, error) {
	in := &Info{ID: id, Topics: []TopicInfo{}}
	if err := inv.readProgress(ctx, in, withLock); err != nil {
		return nil, err
	}
	names := inv.topicsOf(id)
	g, committed, err := inv.group(ctx, id)
	if err != nil {
		return nil, err
	}
	in.Group = g
	if err := inv.readTopics(ctx, in, names, committed); err != nil {
		return nil, err
	}
	if in.Conflict == "" {
		in.Conflict = inv.conflict(names)
	}
	switch {
	case in.Holder != nil:
		in.Status = StatusRunning
	case in.Complete:
		in.Status = StatusFinished
	case in.Key != "":
		in.Status = StatusStopped
	default:
		in.Status = StatusOrphaned
	}
	return in, nil
}

// exists: id left anything at all.
func (in *Info) exists() bool {
	return in.Key != "" || in.Holder != nil || len(in.Topics) > 0 || in.Group != nil
}

// readProgress fills in what the progress record (and the lock) say.
func (inv *inventory) readProgress(ctx context.Context, in *Info, withLock bool) error {
	key := progressKey(inv.d.KeyPrefix, in.ID)
	if withLock {
		h, err := inv.d.Redis.Get(ctx, lockKey(inv.d.KeyPrefix, in.ID)).Result()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return fmt.Errorf("replay %s: read its lock: %w", in.ID, err)
		default:
			in.Holder = &Holder{}
			_ = json.Unmarshal([]byte(h), in.Holder) // unreadable: a holder all the same
			in.Holder.Token = ""
		}
	}
	typ, err := inv.d.Redis.Type(ctx, key).Result()
	if err != nil {
		return fmt.Errorf("replay %s: read its progress record: %w", in.ID, err)
	}
	switch typ {
	case "none":
		return nil
	case "hash":
	default:
		// Listed, not failing the listing of every replay; Remove
		// refuses it.
		in.Conflict = fmt.Sprintf("Redis key %s is a %s, not a replay's progress record (a hash)", key, typ)
		return nil
	}
	prog, err := inv.d.Redis.HGetAll(ctx, key).Result()
	if err != nil {
		return fmt.Errorf("replay %s: read its progress record: %w", in.ID, err)
	}
	if len(prog) == 0 {
		return nil // gone meanwhile
	}
	in.Key = key
	in.Source, in.Mode, in.From, in.To = parseParams(prog[fParams])
	n := func(f string) int64 { v, _ := strconv.ParseInt(prog[f], 10, 64); return v }
	in.Applied, in.Duplicate, in.Stale = n(string(processor.Processed)), n(string(processor.Duplicate)), n(string(processor.Stale))
	in.Invalid, in.DLQ = n(string(processor.Invalid)), n(string(processor.DeadLetter))
	deleted := prog[fDeleted]
	if deleted == "" {
		deleted = prog[fDeleting]
	}
	if c, e, ok := strings.Cut(deleted, ","); ok {
		in.DeletedClaims, _ = strconv.ParseInt(c, 10, 64)
		in.DeletedEntities, _ = strconv.ParseInt(e, 10, 64)
	}
	in.Complete = prog[fComplete] == "1"
	outcomes := in.Applied + in.Duplicate + in.Stale + in.Invalid + in.DLQ
	switch {
	case in.Complete:
		in.Phase, in.Done, in.Total = "complete", outcomes, n(fCopied)
	case prog[fCopied] == "":
		var cp copyProgress
		_ = json.Unmarshal([]byte(prog[fCopyProgress]), &cp) // none yet: 0
		in.Phase, in.Done = "copy", cp.Scanned
	case in.Mode == Rebuild && prog[fDeleted] == "":
		in.Phase = "delete"
	default:
		in.Phase, in.Done, in.Total = "process", outcomes, n(fCopied)
	}
	return nil
}

// parseParams reads the progress record's params (see run.params):
// source|mode|from ms|to ms, the source possibly holding "|".
func parseParams(p string) (src string, mode Mode, from, to time.Time) {
	parts := strings.Split(p, "|")
	if len(parts) < 4 {
		return "", "", time.Time{}, time.Time{}
	}
	n := len(parts)
	at := func(s string) time.Time {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil || ms == (time.Time{}).UnixMilli() {
			return time.Time{} // open
		}
		return time.UnixMilli(ms).UTC()
	}
	return strings.Join(parts[:n-3], "|"), Mode(parts[n-3]), at(parts[n-2]), at(parts[n-1])
}

// group describes id's group (nil when there is none) and returns its
// committed offsets on id's topics. Without one, a replay stopped before
// its group took its topic's name has its offsets in the legacy group,
// until a run moves them (adoptLegacyGroup); that group is id's only if
// it holds offsets on id's topics.
func (inv *inventory) group(ctx context.Context, id string) (*GroupInfo, map[string]map[int32]int64, error) {
	g, committed, err := inv.describeGroup(ctx, Group(inv.d.Topics, id), id)
	if err != nil || g != nil {
		return g, committed, err
	}
	if g, committed, err = inv.describeGroup(ctx, legacyGroup(id), id); err != nil || len(committed) == 0 {
		return nil, nil, err
	}
	return g, committed, nil
}

// describeGroup describes the group name (nil when there is none) and
// returns its committed offsets on id's topics.
func (inv *inventory) describeGroup(ctx context.Context, name, id string) (*GroupInfo, map[string]map[int32]int64, error) {
	lags, err := inv.adm.Lag(ctx, name)
	if err != nil {
		return nil, nil, fmt.Errorf("describe group %s: %w", name, err)
	}
	l, ok := lags[name]
	if !ok || errors.Is(l.DescribeErr, kerr.GroupIDNotFound) || l.State == "Dead" {
		return nil, nil, nil
	}
	if err := l.Error(); err != nil {
		return nil, nil, fmt.Errorf("describe group %s: %w", name, err)
	}
	g := &GroupInfo{Name: name, State: l.State, Members: len(l.Members)}
	committed := map[string]map[int32]int64{}
	for topic, ps := range l.Lag {
		for p, pl := range ps {
			if pl.Commit.At < 0 {
				continue // assigned, nothing committed yet
			}
			if !inv.ours(id, topic) {
				g.Foreign = append(g.Foreign, topic)
				break
			}
			if committed[topic] == nil {
				committed[topic] = map[int32]int64{}
			}
			committed[topic][p] = pl.Commit.At
		}
	}
	slices.Sort(g.Foreign)
	return g, committed, nil
}

// readTopics fills in in's topics: sizes, and what their group has not
// processed (read past its committed offsets, up to pendingCap records).
func (inv *inventory) readTopics(ctx context.Context, in *Info, names []string, committed map[string]map[int32]int64) error {
	if len(names) == 0 {
		return nil
	}
	starts, err := inv.adm.ListStartOffsets(ctx, names...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("list start offsets of %s: %w", strings.Join(names, ", "), err)
	}
	// Sizes count to the high watermark; what is pending, to the last
	// stable offset (an open transaction's records are not readable yet).
	ends, err := inv.adm.ListEndOffsets(ctx, names...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("list end offsets of %s: %w", strings.Join(names, ", "), err)
	}
	stable, err := inv.adm.ListCommittedOffsets(ctx, names...)
	if err == nil {
		err = stable.Error()
	}
	if err != nil {
		return fmt.Errorf("list stable offsets of %s: %w", strings.Join(names, ", "), err)
	}
	// By partition: a DescribeLogDirs naming topics alone is answered
	// with nothing.
	set := kadm.TopicsSet{}
	starts.Each(func(o kadm.ListedOffset) { set.Add(o.Topic, o.Partition) })
	bytes := inv.sizes(ctx, set)
	for _, name := range names {
		t := TopicInfo{Name: name, Bytes: -1}
		if b, ok := bytes[name]; ok {
			t.Bytes = b
		}
		sp := kafka.Span{}
		for p, s := range starts[name] {
			t.Partitions++
			if e, ok := ends.Lookup(name, p); ok {
				t.Offsets += max(0, e.Offset-s.Offset)
			}
			from := s.Offset
			if at, ok := committed[name][p]; ok && at > from {
				from = at
			}
			if e, ok := stable.Lookup(name, p); ok && e.Offset > from {
				sp[p] = [2]int64{from, e.Offset}
			}
		}
		left := pendingCap - in.Pending
		n, capped, err := countUpTo(ctx, inv.d.KafkaOpts, name, sp, left)
		if err != nil {
			return fmt.Errorf("count what the replay's group has not processed on %s: %w", name, err)
		}
		t.Pending = n
		in.Pending += n
		in.PendingAtLeast = in.PendingAtLeast || capped
		in.Topics = append(in.Topics, t)
	}
	return nil
}

// sizes are the topics' bytes on disk, the largest replica of each
// partition; best effort (DescribeLogDirs needs DESCRIBE on the cluster).
func (inv *inventory) sizes(ctx context.Context, set kadm.TopicsSet) map[string]int64 {
	all, err := inv.adm.DescribeAllLogDirs(ctx, set)
	if err != nil {
		return nil
	}
	largest := map[string]map[int32]int64{}
	all.Each(func(d kadm.DescribedLogDir) {
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			if largest[p.Topic] == nil {
				largest[p.Topic] = map[int32]int64{}
			}
			largest[p.Topic][p.Partition] = max(largest[p.Topic][p.Partition], p.Size)
		})
	})
	out := map[string]int64{}
	for t, ps := range largest {
		for _, n := range ps {
			out[t] += n
		}
	}
	return out
}

var errEnough = errors.New("counted enough")

// countUpTo counts the committed records of topic in sp, stopping at
// limit (capped then).
func countUpTo(ctx context.Context, opts []kgo.Opt, topic string, sp kafka.Span, limit int64) (n int64, capped bool, err error) {
	if len(sp) == 0 {
		return 0, false, nil
	}
	if limit <= 0 {
		return 0, true, nil
	}
	err = kafka.ReadSpan(ctx, opts, topic, sp, func(*kgo.Record) error {
		n++
		if n >= limit {
			return errEnough
		}
		return nil
	})
	if errors.Is(err, errEnough) {
		return n, true, nil
	}
	return n, false, err
}

// conflict says why names (a replay's topics) are not only the replay's:
// a name under another Inlet deployment's prefix, one whose raw topic
// (<prefix>.raw) exists. With deployment prefix inlet, replay id
// staging.raw has topic inlet.replay.staging.raw: the raw topic, kept
// forever, of a deployment with prefix inlet.replay.staging, whose retry
// topics are also replay staging's. Empty when there is none.
func (inv *inventory) conflict(names []string) string {
	own := map[string]bool{inv.d.Topics.Raw: true, inv.d.Topics.DLQ: true, inv.d.Topics.Invalid: true,
		inv.d.Topics.Processed: true, inv.d.Topics.State: true, inv.d.Topics.Audit: true}
	for _, t := range inv.d.Topics.Retry {
		own[t] = true
	}
	prefix := strings.TrimSuffix(inv.base, ".")
	for _, name := range names {
		if own[name] || !strings.HasPrefix(name, inv.base) {
			// Never so (Topic puts every replay under base): said
			// should it ever change.
			return fmt.Sprintf("topic %s is not under %s", name, inv.base)
		}
		for i := len(prefix); i < len(name); i++ {
			if name[i] != '.' {
				continue
			}
			if other := name[:i]; inv.topics[other+".raw"] {
				return fmt.Sprintf("topic %s is under %s, the topic prefix of another Inlet deployment (its raw topic %s.raw exists)", name, other, other)
			}
		}
	}
	return ""
}

// List lists the replays whose progress record, lock or topics exist
// (only ids, when given: each that left nothing is left out), in id
// order. It uses d's KafkaOpts, Topics, Redis and KeyPrefix, and reads
// (up to pendingCap records per replay) what each replay's group has not
// processed. Cancelling ctx stops it.
func List(ctx context.Context, d Deps, ids ...string) ([]*Info, error) {
	for _, id := range ids {
		if err := CheckID(id); err != nil {
			return nil, err
		}
	}
	if d.KeyPrefix == "" {
		d.KeyPrefix = "inlet:"
	}
	inv, err := newInventory(ctx, d)
	if err != nil {
		return nil, err
	}
	defer inv.close()
	if len(ids) == 0 {
		if ids, err = inv.ids(ctx); err != nil {
			return nil, err
		}
	}
	out := []*Info{}
	for _, id := range slices.Compact(slices.Sorted(slices.Values(ids))) {
		in, err := inv.info(ctx, id, true)
		if err != nil {
			return nil, err
		}
		if in.exists() {
			out = append(out, in)
		}
	}
	return out, nil
}

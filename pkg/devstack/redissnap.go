package devstack

import (
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// The embedded Redis is kept across restarts of `make run` like Kafka's log
// and the registry's schemas: without it a restart forgot every dedup claim
// and entity time, so a duplicate delivered after the restart was processed
// again and an older update could win. miniredis has no persistence of its
// own; Close writes a snapshot of database 0 to the data directory and
// Start loads it back; it is also saved every minute while running, so a
// forced stop (a second Ctrl-C, SIGKILL) loses at most the last minute.
// Keys keep their absolute expiry, so a dedup window runs on while the
// stack is down, as with a persistent redis-server.

// redisSnapshotVersion changes when the file's layout does.
const redisSnapshotVersion = 1

// redisSnapshot is the file. gob, not JSON: keys and values are arbitrary
// bytes (entity keys come from payloads), which JSON strings would mangle.
type redisSnapshot struct {
	Version int
	SavedAt time.Time
	Keys    []snapKey
}

// snapKey is one key: a string, a hash (Hash holds field, value, field,
// value, …) or a list. Expires is zero for a key without a TTL.
type snapKey struct {
	Key     string
	Type    string
	Expires time.Time
	Value   string
	Hash    []string
	List    []string
}

// saveRedis writes m's database 0 to path, atomically (a reader sees the
// old file or the new one). Taken while clients write (the periodic
// save), it is a key-by-key copy, not a point-in-time one, and a key
// deleted meanwhile is simply absent; Close saves after closing m. Keys of
// a type Inlet does not write (sets, sorted sets, streams: somebody
// else's) are left out and returned in skipped.
func saveRedis(m *miniredis.Miniredis, path string, now time.Time) (saved int, skipped []string, err error) {
	snap := redisSnapshot{Version: redisSnapshotVersion, SavedAt: now}
	for _, k := range m.Keys() {
		sk := snapKey{Key: k, Type: m.Type(k)}
		if ttl := m.TTL(k); ttl > 0 {
			sk.Expires = now.Add(ttl)
		}
		var err error
		switch sk.Type {
		case "string":
			sk.Value, err = m.Get(k)
		case "hash":
			var fields []string
			if fields, err = m.HKeys(k); err == nil {
				for _, f := range fields {
					sk.Hash = append(sk.Hash, f, m.HGet(k, f))
				}
			}
		case "list":
			sk.List, err = m.List(k)
		case "", "none": // gone since Keys
			continue
		default:
			skipped = append(skipped, k)
			continue
		}
		if errors.Is(err, miniredis.ErrKeyNotFound) || errors.Is(err, miniredis.ErrWrongType) {
			continue // gone, or replaced, since Type
		}
		if err != nil {
			return 0, nil, fmt.Errorf("key %q: %w", k, err)
		}
		snap.Keys = append(snap.Keys, sk)
	}
	if err := writeSnapshot(path, &snap); err != nil {
		return 0, nil, err
	}
	return len(snap.Keys), skipped, nil
}

// tempPattern names a snapshot being written; a stack killed meanwhile
// leaves one behind, and the next start removes it.
const tempPattern = ".redis-*.gob"

func writeSnapshot(path string, snap *redisSnapshot) error {
	return writeFileAtomic(path, tempPattern, func(w io.Writer) error { return gob.NewEncoder(w).Encode(snap) })
}

// loadRedis fills m from the snapshot at path, if there is one, leaving
// out keys that expired meanwhile. It returns how many keys it loaded and
// when the snapshot was taken (zero without one).
func loadRedis(m *miniredis.Miniredis, path string, now time.Time) (n int, savedAt time.Time, err error) {
	stale, _ := filepath.Glob(filepath.Join(filepath.Dir(path), tempPattern))
	for _, t := range stale {
		_ = os.Remove(t)
	}
	snap, err := readSnapshot(path)
	if snap == nil || err != nil {
		return 0, time.Time{}, err
	}
	for _, k := range snap.Keys {
		var ttl time.Duration
		if !k.Expires.IsZero() {
			if ttl = k.Expires.Sub(now); ttl <= 0 {
				continue
			}
		}
		switch k.Type {
		case "string":
			err = m.Set(k.Key, k.Value)
		case "hash":
			if len(k.Hash)%2 != 0 {
				err = errors.New("odd field list")
				break
			}
			m.HSet(k.Key, k.Hash...)
		case "list":
			_, err = m.Push(k.Key, k.List...)
		default:
			err = fmt.Errorf("unknown type %q", k.Type)
		}
		if err != nil {
			return n, snap.SavedAt, fmt.Errorf("%s: key %q: %w", path, k.Key, err)
		}
		if ttl > 0 {
			m.SetTTL(k.Key, ttl)
		}
		n++
	}
	return n, snap.SavedAt, nil
}

// readSnapshot reads the snapshot at path; nil, nil when there is none.
func readSnapshot(path string) (*redisSnapshot, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var snap redisSnapshot
	if err := gob.NewDecoder(f).Decode(&snap); err != nil {
		return nil, fmt.Errorf("%s is not a Redis snapshot this version can read (%w); move it away to start with an empty Redis", path, err)
	}
	if snap.Version != redisSnapshotVersion {
		return nil, fmt.Errorf("%s has snapshot version %d, this build reads %d; move it away to start with an empty Redis", path, snap.Version, redisSnapshotVersion)
	}
	return &snap, nil
}

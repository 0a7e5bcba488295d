// Package history keeps, per correlation ID, the stages one event went
// through — received, written to the raw log, each processing attempt, the
// final outcome and where its output went — so an operator can follow one
// event without an external tracing backend. Entries live in Redis lists
// with a bounded retention.
package history

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Entry is one stage of one event.
type Entry struct {
	At        time.Time `json:"at"`
	Stage     string    `json:"stage"` // received | written | attempt | requeued | replayed | decided
	Outcome   string    `json:"outcome,omitempty"`
	Source    string    `json:"source,omitempty"`
	EventType string    `json:"event_type,omitempty"`
	EventID   string    `json:"event_id,omitempty"`
	// Undecodable marks the stages of a record whose envelope could not be
	// decoded: it has no source, type or event id, and takes none from
	// the entries before it.
	Undecodable bool   `json:"undecodable,omitempty"`
	Attempt     int    `json:"attempt,omitempty"`
	Where       string `json:"where,omitempty"` // topic/partition/offset or topic
	Error       string `json:"error,omitempty"`
	// Note is who made a decision (stage "decided") and why.
	Note string `json:"note,omitempty"`
}

// History is what is kept of one correlation id.
type History struct {
	// Entries are the stages kept, oldest first.
	Entries []Entry
	// Dropped counts the older entries trimmed to keep the history within
	// its bound (a correlation id shared by many events: a sender reusing
	// X-Correlation-ID, or one correlation_id on every line of batches).
	// The first entries kept may then lack their event's source, type and
	// id, written only on the event's first entry of each append.
	Dropped int64
}

// Store reads and writes histories.
type Store struct {
	rdb       redis.UniversalClient
	prefix    string // of the lists
	dropped   string // of the counters of entries trimmed from them
	retention time.Duration
}

// New returns a Store keeping each history for retention (default 7 days)
// after its last entry.
func New(rdb redis.UniversalClient, prefix string, retention time.Duration) *Store {
	if retention <= 0 {
		retention = 7 * 24 * time.Hour
	}
	return &Store{rdb: rdb, prefix: prefix + "trace:", dropped: prefix + "trace-dropped:", retention: retention}
}

// maxEntries bounds one history (a hostile sender reusing a correlation id
// cannot grow it without limit).
const maxEntries = 200

// Append adds entries, grouped by correlation id, in one round trip.
func (s *Store) Append(ctx context.Context, entries map[string][]Entry) error {
	if len(entries) == 0 {
		return nil
	}
	pipe := s.rdb.Pipeline()
	corrs := make([]string, 0, len(entries))
	pushed := make([]int, 0, len(entries))
	pushes := make([]*redis.IntCmd, 0, len(entries))
	for corr, es := range entries {
		key := s.prefix + corr
		vals := make([]any, 0, len(es))
		for i := range es {
			e := &es[i]
			if i > 0 && sameEvent(e, &es[i-1]) {
				// Get fills these in from the entry before: they were
				// half of an event's history, in Redis memory for the
				// whole retention.
				c := *e
				c.Source, c.EventType, c.EventID = "", "", ""
				e = &c
			}
			vals = append(vals, appendEntry(make([]byte, 0, 192), e))
		}
		corrs, pushed = append(corrs, corr), append(pushed, len(vals))
		pushes = append(pushes, pipe.RPush(ctx, key, vals...))
		pipe.Expire(ctx, key, s.retention)
	}
	// A failed command (one key of the wrong type, say) leaves the others
	// done: their lists are trimmed and counted all the same below.
	_, err := pipe.Exec(ctx)
	// Trimmed only when RPUSH says a list grew past the bound, which takes
	// a correlation id shared by many events: an LTRIM per event was a
	// third of the history's commands. What a trim drops is counted beside
	// the list, kept as long as it (every append to a list at the bound
	// trims). Each append counts what its own push added past the bound,
	// min(pushed, length-bound): summed over appends in Redis' order, also
	// when several processors append at once, that is what the trims drop.
	for i, push := range pushes {
		if push.Err() != nil {
			continue
		}
		if over := push.Val() - maxEntries; over > 0 {
			key := s.dropped + corrs[i]
			pipe.LTrim(ctx, s.prefix+corrs[i], -maxEntries, -1)
			pipe.IncrBy(ctx, key, min(over, int64(pushed[i])))
			pipe.Expire(ctx, key, s.retention)
		}
	}
	if pipe.Len() == 0 {
		return err
	}
	_, terr := pipe.Exec(ctx)
	return errors.Join(err, terr)
}

// Get returns the entries of a correlation id's history, oldest first;
// empty when unknown or expired. Read also says whether older ones were
// dropped.
func (s *Store) Get(ctx context.Context, corr string) ([]Entry, error) {
	h, err := s.Read(ctx, corr)
	return h.Entries, err
}

// Read returns the history of a correlation id, in one round trip; no
// entries when unknown or expired.
func (s *Store) Read(ctx context.Context, corr string) (History, error) {
	pipe := s.rdb.Pipeline()
	lr := pipe.LRange(ctx, s.prefix+corr, 0, -1)
	dr := pipe.Get(ctx, s.dropped+corr)
	// Exec reports the GET's redis.Nil (nothing dropped) as its error too.
	_, _ = pipe.Exec(ctx)
	vals, err := lr.Result()
	if err != nil {
		return History{}, err
	}
	dropped, err := dr.Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return History{}, err
	}
	return History{Entries: decode(vals), Dropped: dropped}, nil
}

// decode reads a list's entries, giving those Append wrote without their
// event's fields the fields of the entry before.
func decode(vals []string) []Entry {
	out := make([]Entry, 0, len(vals))
	var prev *Entry // the entry just before, if it could be read
	for _, v := range vals {
		var e Entry
		if json.Unmarshal([]byte(v), &e) != nil {
			prev = nil // the next entry's fields may have been that one's
			continue
		}
		if e.Source == "" && e.EventType == "" && e.EventID == "" && !e.Undecodable && prev != nil {
			// Written without them by Append. (The first entries left
			// by a trim may lack them too: they show none, and
			// History.Dropped says why.)
			e.Source, e.EventType, e.EventID = prev.Source, prev.EventType, prev.EventID
		}
		out = append(out, e)
		prev = &out[len(out)-1]
	}
	return out
}

func sameEvent(a, b *Entry) bool {
	return a.Source == b.Source && a.EventType == b.EventType && a.EventID == b.EventID && a.Undecodable == b.Undecodable
}

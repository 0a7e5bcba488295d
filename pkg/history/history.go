// Package history keeps, per correlation ID, the stages one event went
// through — received, written to the raw log, each processing attempt, the
// final outcome and where its output went — so an operator can follow one
// event without an external tracing backend. Entries live in Redis lists
// with a bounded retention.
package history

import (
	"context"
	"encoding/json"
	"time"

	"github.com/redis/go-redis/v9"
)

// Entry is one stage of one event.
type Entry struct {
	At        time.Time `json:"at"`
	Stage     string    `json:"stage"` // received | written | attempt | requeued
	Outcome   string    `json:"outcome,omitempty"`
	Source    string    `json:"source,omitempty"`
	EventType string    `json:"event_type,omitempty"`
	EventID   string    `json:"event_id,omitempty"`
	Attempt   int       `json:"attempt,omitempty"`
	Where     string    `json:"where,omitempty"` // topic/partition/offset or topic
	Error     string    `json:"error,omitempty"`
}

// Store reads and writes histories.
type Store struct {
	rdb       redis.UniversalClient
	prefix    string
	retention time.Duration
}

// New returns a Store keeping each history for retention (default 7 days)
// after its last entry.
func New(rdb redis.UniversalClient, prefix string, retention time.Duration) *Store {
	if retention <= 0 {
		retention = 7 * 24 * time.Hour
	}
	return &Store{rdb: rdb, prefix: prefix + "trace:", retention: retention}
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
	keys := make([]string, 0, len(entries))
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
		keys = append(keys, key)
		pushes = append(pushes, pipe.RPush(ctx, key, vals...))
		pipe.Expire(ctx, key, s.retention)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	// Trimmed only when RPUSH says a list grew past the bound, which takes
	// a hostile or buggy sender: an LTRIM per event was a third of the
	// history's commands.
	for i, push := range pushes {
		if push.Val() > maxEntries {
			pipe.LTrim(ctx, keys[i], -maxEntries, -1)
		}
	}
	if pipe.Len() == 0 {
		return nil
	}
	_, err := pipe.Exec(ctx)
	return err
}

// Get returns the history of a correlation id, oldest first; empty when
// unknown or expired.
func (s *Store) Get(ctx context.Context, corr string) ([]Entry, error) {
	vals, err := s.rdb.LRange(ctx, s.prefix+corr, 0, -1).Result()
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(vals))
	var prev *Entry // the entry just before, if it could be read
	for _, v := range vals {
		var e Entry
		if json.Unmarshal([]byte(v), &e) != nil {
			prev = nil // the next entry's fields may have been that one's
			continue
		}
		if e.Source == "" && e.EventType == "" && e.EventID == "" && prev != nil {
			// Written without them by Append. (The first entry left by
			// a trim may lack them too: it shows none.)
			e.Source, e.EventType, e.EventID = prev.Source, prev.EventType, prev.EventID
		}
		out = append(out, e)
		prev = &out[len(out)-1]
	}
	return out, nil
}

func sameEvent(a, b *Entry) bool {
	return a.Source == b.Source && a.EventType == b.EventType && a.EventID == b.EventID
}

package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// ApplyResult is the outcome of one conditional update.
type ApplyResult int

const (
	// Applied: the update was not older than the entity's stored state and
	// is now its state.
	Applied ApplyResult = iota + 1
	// Stale: the entity already holds a newer state; nothing was written.
	// Skip the event as stale.
	Stale
)

func (r ApplyResult) String() string {
	switch r {
	case Applied:
		return "applied"
	case Stale:
		return "stale"
	}
	return fmt.Sprintf("ApplyResult(%d)", int(r))
}

// Update is one event's new state for an entity.
type Update struct {
	EntityKey string
	// EventTime is the event's business time. It is stored and compared at
	// microsecond precision, and must lie within ±2^53 µs of 1970 (about
	// years 1685 to 2255); the zero time.Time is rejected.
	EventTime time.Time
	// EventID identifies the event (the envelope ID); it is stored beside
	// the state for tracing.
	EventID string
	State   []byte
	// ReceivedAt, when not zero, breaks a tie of EventTime: of two events of
	// one entity and one time, the one received later wins, whatever the
	// order they are applied in (a retried event coming back after a later
	// one). Without it, the later applied wins. Microsecond precision, in
	// EventTime's range.
	ReceivedAt time.Time
}

// Stamp is what newest-wins orders an entity's events by: the business
// time, then, between equal ones, the time received (when both have one).
type Stamp struct {
	EventTime  time.Time // zero: none stored
	ReceivedAt time.Time // zero: unknown
}

// Before reports whether an update stamped a is stale against a stored b,
// at the microsecond precision the store compares, as ApplyBatch decides.
func (a Stamp) Before(b Stamp) bool {
	at, bt := a.EventTime.UnixMicro(), b.EventTime.UnixMicro()
	if at != bt {
		return at < bt
	}
	return !a.ReceivedAt.IsZero() && !b.ReceivedAt.IsZero() && a.ReceivedAt.UnixMicro() < b.ReceivedAt.UnixMicro()
}

// EntityState is an entity's stored state: that of the newest event applied.
type EntityState struct {
	EventTime time.Time // microsecond precision
	EventID   string
	State     []byte
}

// maxMicros bounds event times so that the scripts' Lua numbers (doubles)
// compare them exactly.
const maxMicros = 1 << 53

// EventTimeRange is the range of event times ApplyBatch takes (about years
// 1685 to 2255): callers refuse an event outside it as invalid, since
// ApplyBatch refuses the whole batch.
func EventTimeRange() (first, last time.Time) {
	return time.UnixMicro(-maxMicros).UTC(), time.UnixMicro(maxMicros).UTC()
}

// ApplyBatch applies each update to its entity if the update is not older
// than the entity's stored state, in one round trip; results are in the order
// of ups. Per update, atomically (Lua on <prefix>entity:<key>, a hash of ts,
// event_id and state): if EventTime is before the stored ts the result is
// Stale and nothing changes; otherwise ts, event_id and state are replaced
// and the result is Applied.
//
// Equal times apply ("not older"), unless both updates have a receive
// time and the stored one's is later (see Update.ReceivedAt): the same
// event again applies, which makes a reapply idempotent, and between two
// events of the same (often second-resolution) time the one received
// later wins, else the one processed later. Updates of one entity inside one batch
// are evaluated in the order given (scripts and pipeline keep it), so
// [older, newer] gives [Applied, Applied] and [newer, older] gives
// [Applied, Stale].
//
// The processor applies before its Kafka transaction commits, so a failed
// commit leaves the entity already advanced in Redis. That is safe: the
// redelivered event has ts equal to the stored one and applies again, so its
// record and state are written by the retry. (If a newer event of the same
// entity was applied in between, the redelivery is Stale, exactly as if the
// two had arrived in the other order: newest wins either way.) For the same
// reason a batch that failed part way through can simply be retried.
//
// On error no results are returned; some updates may have been applied.
// An entity key that is not a hash, or whose stored ts is not decimal unix
// microseconds (something other than Inlet wrote it), fails the call with
// an error naming the key, as EntityTimes does: nothing is compared with
// a time Inlet cannot read.
func (s *Store) ApplyBatch(ctx context.Context, ups []Update) ([]ApplyResult, error) {
	for i := range ups {
		u := &ups[i]
		if u.EntityKey == "" {
			return nil, fmt.Errorf("%w: update %d: empty entity key", ErrInvalidArgument, i)
		}
		if us := u.EventTime.UnixMicro(); u.EventTime.IsZero() || us > maxMicros || us < -maxMicros {
			return nil, fmt.Errorf("%w: update %d (entity %q): event time %v out of range", ErrInvalidArgument, i, u.EntityKey, u.EventTime)
		}
		if us := u.ReceivedAt.UnixMicro(); !u.ReceivedAt.IsZero() && (us > maxMicros || us < -maxMicros) {
			return nil, fmt.Errorf("%w: update %d (entity %q): receive time %v out of range", ErrInvalidArgument, i, u.EntityKey, u.ReceivedAt)
		}
	}
	out, err := s.evalReplicated(ctx, op{name: "apply", script: applyScript, common: []any{s.cfg.retention.Milliseconds()}, n: len(ups), item: func(i int, args []any) (string, []any) {
		u := &ups[i]
		rcv := ""
		if !u.ReceivedAt.IsZero() {
			rcv = strconv.FormatInt(u.ReceivedAt.UnixMicro(), 10)
		}
		return s.entityKey(u.EntityKey), append(args, u.EventTime.UnixMicro(), rcv, u.EventID, u.State)
	}})
	if err != nil {
		return nil, err
	}
	codes := out[0]
	res := make([]ApplyResult, len(ups))
	for i, c := range codes {
		switch c {
		case 0:
			res[i] = Applied
		case 1:
			res[i] = Stale
		default:
			return nil, fmt.Errorf("store: apply: unexpected script result %d", c)
		}
	}
	return res, nil
}

// Entity reads an entity's stored state; ok is false if it has none. It is
// for tests and ops; the processing path reads only times (EntityTimes).
func (s *Store) Entity(ctx context.Context, entityKey string) (st EntityState, ok bool, err error) {
	vals, err := s.rdb.HMGet(ctx, s.entityKey(entityKey), "ts", "event_id", "state").Result()
	if err != nil {
		return EntityState{}, false, keyErr(ctx, "entity", s.entityKey(entityKey), err)
	}
	if vals[0] == nil {
		return EntityState{}, false, nil
	}
	ts, _ := vals[0].(string)
	if st.EventTime, err = parseTS(entityKey, ts); err != nil {
		return EntityState{}, false, err
	}
	st.EventID, _ = vals[1].(string)
	if v, _ := vals[2].(string); v != "" {
		st.State = []byte(v)
	}
	return st, true, nil
}

// EntityTimes reads the stored stamp (event time, and receive time when
// stored) of each entity, in one round trip; the zero Stamp for an entity
// with none. It is for a caller holding
// the entities' locks (see the processor's claims), which makes the read
// stay true until its own ApplyBatch: the processor decides newest-wins
// this way for events it must deliver to a sink before applying them.
func (s *Store) EntityTimes(ctx context.Context, entityKeys []string) ([]Stamp, error) {
	out := make([]Stamp, len(entityKeys))
	if len(entityKeys) == 0 {
		return out, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(entityKeys))
	for i, k := range entityKeys {
		cmds[i] = pipe.HMGet(ctx, s.entityKey(k), "ts", "rcv")
	}
	_, _ = pipe.Exec(ctx) // each command's error is read below
	for i, c := range cmds {
		vals, err := c.Result()
		if err != nil {
			return nil, keyErr(ctx, "entity times", s.entityKey(entityKeys[i]), err)
		}
		ts, _ := vals[0].(string)
		if ts == "" {
			continue
		}
		if out[i].EventTime, err = parseTS(entityKeys[i], ts); err != nil {
			return nil, err
		}
		if rcv, _ := vals[1].(string); rcv != "" {
			if out[i].ReceivedAt, err = parseTS(entityKeys[i], rcv); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// EntityEvent names the event an entity's stored state is.
type EntityEvent struct {
	EntityKey string
	EventID   string
	EventTime time.Time // microsecond precision
}

// EntityEvents reads which event each entity's state is (its ts and
// event_id, not the state), in one round trip, in the order of entityKeys;
// for an entity with none, the EventID is empty and the time zero. The
// answer can be out of date as soon as it is read: it is for replays
// (pkg/replay), which act on it only atomically (DeleteEntitiesIf) or
// where a newer state makes no difference.
func (s *Store) EntityEvents(ctx context.Context, entityKeys []string) ([]EntityEvent, error) {
	out := make([]EntityEvent, len(entityKeys))
	if len(entityKeys) == 0 {
		return out, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(entityKeys))
	for i, k := range entityKeys {
		cmds[i] = pipe.HMGet(ctx, s.entityKey(k), "ts", "event_id")
	}
	_, _ = pipe.Exec(ctx) // each command's error is read below
	for i, c := range cmds {
		vals, err := c.Result()
		if err != nil {
			return nil, keyErr(ctx, "entity events", s.entityKey(entityKeys[i]), err)
		}
		out[i].EntityKey = entityKeys[i]
		ts, _ := vals[0].(string)
		if ts == "" {
			continue
		}
		if out[i].EventTime, err = parseTS(entityKeys[i], ts); err != nil {
			return nil, err
		}
		out[i].EventID, _ = vals[1].(string)
	}
	return out, nil
}

// parseTS reads an entity hash's ts field (unix microseconds).
func parseTS(entityKey, ts string) (time.Time, error) {
	us, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("store: entity %q: bad ts %q: %w", entityKey, ts, err)
	}
	return time.UnixMicro(us), nil
}

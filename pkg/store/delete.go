package store

import (
	"context"
	"slices"
)

// deleteChunk bounds one pipeline of deletions.
const deleteChunk = 1000

// DeleteClaims removes the dedup claims (in flight or done) of keys — the
// same keys ClaimBatch takes — so the events they stand for are processed
// again. It returns how many existed. It is for operators rebuilding state
// (inletctl replay --mode rebuild); never call it while a processor may be
// holding one of these claims for a batch in flight.
//
// Deletions are single-key DELs pipelined in chunks (Redis Cluster safe); on
// error some keys may already be deleted, and retrying is safe.
func (s *Store) DeleteClaims(ctx context.Context, keys []string) (int64, error) {
	return s.del(ctx, "delete claims", keys, s.dedupKey)
}

// DeleteEntities removes the stored state of entityKeys, so the next event
// of each applies whatever its time. It returns how many existed. Same
// caveats as DeleteClaims.
func (s *Store) DeleteEntities(ctx context.Context, entityKeys []string) (int64, error) {
	return s.del(ctx, "delete entities", entityKeys, s.entityKey)
}

func (s *Store) del(ctx context.Context, op string, keys []string, name func(string) string) (int64, error) {
	var n int64
	for chunk := range slices.Chunk(keys, deleteChunk) {
		pipe := s.rdb.Pipeline()
		cmds := make([]interface{ Val() int64 }, 0, len(chunk))
		for _, k := range chunk {
			cmds = append(cmds, pipe.Del(ctx, name(k)))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return n, wrapErr(ctx, op, err)
		}
		for _, c := range cmds {
			n += c.Val()
		}
	}
	return n, nil
}

// DeleteEntitiesIf deletes the stored state of each entity of evs whose
// stored event is evs[i].EventID (EventTime is not compared), atomically
// per entity; deleted[i] reports whether evs[i]'s was. An entity whose
// state is another event's (or none) is kept: one a newer event was
// applied to since the caller looked is never lost. It is for inletctl
// replay --mode rebuild, which deletes only the states the replay will
// derive again (see pkg/replay). On error nothing is reported, and some
// states may already be deleted; retrying is safe.
func (s *Store) DeleteEntitiesIf(ctx context.Context, evs []EntityEvent) (deleted []bool, err error) {
	out, err := s.evalBatch(ctx, nil, op{name: "delete entities", script: deleteIfScript, n: len(evs), item: func(i int, args []any) (string, []any) {
		return s.entityKey(evs[i].EntityKey), append(args, evs[i].EventID)
	}})
	if err != nil {
		return nil, err
	}
	deleted = make([]bool, len(evs))
	for i, c := range out[0] {
		deleted[i] = c == 1
	}
	return deleted, nil
}

package replay

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

var errRedisDown = errors.New("test: redis down")

// fail fails cmds, a pipeline not sent, as Redis being down does.
func fail(cmds []redis.Cmder) error {
	for _, c := range cmds {
		c.SetErr(errRedisDown)
	}
	return errRedisDown
}

// TestReplayRebuildCountsAfterAFailedBatchAreLowerBounds: a batch of deletions
// that failed, or whose count could not be recorded (as when its process is
// killed between the two), may have deleted keys it never counted; the
// resumed rebuild cannot know how many, and its summary says the counts
// are lower bounds (DeletedAtLeast) rather than give them as exact.
func TestReplayRebuildCountsAfterAFailedBatchAreLowerBounds(t *testing.T) {
	setup := func(t *testing.T) *harness {
		h := newHarness(t)
		h.send("stripe", "evt_1", "pi_1", 1700000100)
		h.send("stripe", "evt_2", "pi_1", 1700000200)
		h.send("stripe", "evt_3", "pi_2", 1700000150)
		h.process(3)
		old := deleteBatch
		t.Cleanup(func() { deleteBatch = old })
		deleteBatch = 1 // a batch per copy (one claim each; pi_1's state goes with evt_2's)
		return h
	}
	cfg := func(h *harness) Config {
		return Config{ID: "rebuild-fail", Source: "stripe", Mode: Rebuild, Processor: h.pcfg()}
	}

	t.Run("the entity states' deletion fails", func(t *testing.T) {
		h := setup(t)
		dels, failed := 0, false
		d := h.deps()
		// The second batch's claims are deleted, then Redis fails the
		// entity states' call (done or not: the caller cannot tell).
		d.Store = h.hookedStore(t, pipeHook{before: func(cmds []redis.Cmder) error {
			name, _ := pipelineOf(cmds, "")
			if name == "del" {
				dels++
			}
			if !failed && dels == 2 && (name == "evalsha" || name == "eval") {
				failed = true
				return fail(cmds)
			}
			return nil
		}})
		sum, err := Run(context.Background(), cfg(h), d)
		if !errors.Is(err, errRedisDown) || sum == nil || !sum.DeletedAtLeast {
			t.Fatalf("failed run: %+v, %v; want the failure, and the counts said to be lower bounds", sum, err)
		}
		sum = h.replay(t, "rebuild-fail", Rebuild, time.Time{})
		if !sum.Complete || !sum.DeletedAtLeast || sum.DeletedClaims != 3 || sum.DeletedEntities != 2 {
			t.Fatalf("resumed: %+v; want at least 3 claims and 2 entities (what it could count) said to be lower bounds", sum)
		}
		if again := h.replay(t, "rebuild-fail", Rebuild, time.Time{}); !again.DeletedAtLeast {
			t.Fatalf("finished replay run again: %+v; want its counts still said to be lower bounds", again)
		}
	})

	t.Run("the count of a batch's deletions is not recorded", func(t *testing.T) {
		h := setup(t)
		counts, failed := 0, false
		d := h.deps()
		// The progress record takes the first batch's count, and not the
		// second's (its deletions done): as when the process is killed
		// between the two.
		d.Redis = h.hookedRedis(t, pipeHook{before: func(cmds []redis.Cmder) error {
			if _, ok := pipelineOf(cmds, fDeleting); ok {
				if counts++; counts == 2 && !failed {
					failed = true
					return fail(cmds)
				}
			}
			return nil
		}})
		if _, err := Run(context.Background(), cfg(h), d); !errors.Is(err, errRedisDown) {
			t.Fatalf("failed run: %v; want the failure", err)
		}
		// The second batch's claim (and entity state, if it deleted one)
		// is not counted: deleted, it deletes nothing when resumed.
		sum := h.replay(t, "rebuild-fail", Rebuild, time.Time{})
		if !sum.Complete || !sum.DeletedAtLeast || sum.DeletedClaims != 2 || sum.DeletedEntities > 2 {
			t.Fatalf("resumed: %+v; want 2 claims counted of the 3 deleted, said to be lower bounds", sum)
		}
	})
}

package ops

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inletdev/inlet/pkg/testenv"
)

// decideWithin bounds how long after Kafka answers a requeue's requests
// again the requeue returns. Measured with Queues' MetadataMinAge of
// 250 ms: about 0.25 s after refused or dropped produces; with franz-go's
// default 5 s, 5.0 s (10 s in all for two refusals).
const decideWithin = time.Second

// TestKafkaBackIsDecidedAtOnce: after a short outage in which Kafka
// refused a requeue's transactional produces (NOT_ENOUGH_REPLICAS, as a
// broker short of in-sync replicas answers) or dropped their
// connections, the requeue returns within decideWithin of Kafka taking
// them again. franz-go retries such a produce at its next metadata
// refresh, no sooner than MetadataMinAge after the previous one: with its
// default of 5 s, a requeue right after a broker blip stalled 5 s per
// refusal.
func TestKafkaBackIsDecidedAtOnce(t *testing.T) {
	for _, mode := range []string{"refused", "dropped"} {
		t.Run(mode, func(t *testing.T) {
			env, tp, q := deadLettered(t, testenv.Embedded, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			testenv.Eventually(t, 20*time.Second, "the entry to be listed", func() bool {
				es, err := q.List(ctx, tp.DLQ, Filter{Unresolved: true})
				return err == nil && len(es) == 1
			})
			// Two refusals: the first comes soon after the client's
			// previous metadata request, the second right after the
			// refresh that the first asked for.
			const refusals = 2
			txnID := TxnID(tp)
			out := env.FailProduces(t, mode == "dropped", func(req *kmsg.ProduceRequest) bool {
				return req.TransactionID != nil && *req.TransactionID == txnID
			}, refusals)
			out.Down()
			start := time.Now()
			res, err := q.Requeue(ctx, tp.DLQ, Filter{Source: "shop"}, "alice", "sink fixed", false)
			done := time.Now()
			if out.UpAt().IsZero() {
				t.Fatalf("%d requests refused, want %d (requeue: %d entries, %v)", out.Failed(), refusals, res.Count, err)
			}
			took := done.Sub(out.UpAt())
			t.Logf("requeue returned %v after Kafka took its produces again (%v in all): %d entries, %v", took.Round(time.Millisecond), done.Sub(start).Round(time.Millisecond), res.Count, err)
			if err != nil || res.Count != 1 {
				t.Fatalf("requeue: %d entries, %v; want 1", res.Count, err)
			}
			if took > decideWithin {
				t.Fatalf("requeue returned %v after Kafka took its produces again, want within %v", took.Round(time.Millisecond), decideWithin)
			}
			if got := env.ReadAll(t, tp.Retry[0], 1, 500*time.Millisecond, 10*time.Second); len(got) != 1 {
				t.Fatalf("%d records requeued, want 1", len(got))
			}
		})
	}
}

// TestKafkaBackIsCountedAtOnce: a depth refresh whose reads meet two
// dropped metadata requests (a broker restarting) counts within
// decideWithin of Kafka answering them again. A client whose metadata
// request failed asks again no sooner than MetadataMinAge after it, and a
// read cannot start without: with franz-go's default 5 s the refresh
// failed after 10 s ("nothing came for 10s"); measured 0.4–0.6 s with
// Queues' 250 ms.
func TestKafkaBackIsCountedAtOnce(t *testing.T) {
	env, tp, q := deadLettered(t, testenv.Embedded, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tr := NewTracker(q, tp.DLQ, tp.Invalid)
	if _, err := tr.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	env.DeadLetter(t, tp, env.Codec(t, tp), "shop", "orders/updated", "wh-x", "sink answered 503")
	var (
		dropped atomic.Int32
		backAt  atomic.Int64
	)
	const drops = 2
	c := env.Stack.Kafka
	c.ControlKey(int16(kmsg.Metadata), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if backAt.Load() != 0 {
			return nil, nil, false
		}
		if dropped.Add(1) == drops {
			backAt.Store(time.Now().UnixNano())
		}
		return nil, errors.New("injected: connection dropped"), true
	})
	n, err := tr.Refresh(ctx)
	done := time.Now()
	if backAt.Load() == 0 {
		t.Fatalf("%d metadata requests dropped, want %d (refresh: %v, %v)", dropped.Load(), drops, n, err)
	}
	took := done.Sub(time.Unix(0, backAt.Load()))
	t.Logf("refresh returned %v after Kafka answered metadata again: %v, %v", took.Round(time.Millisecond), n, err)
	if err != nil || len(n) != 2 || n[0] != 4 {
		t.Fatalf("refresh: %v, %v; want 4 entries in the DLQ", n, err)
	}
	if took > decideWithin {
		t.Fatalf("refresh returned %v after Kafka answered metadata again, want within %v", took.Round(time.Millisecond), decideWithin)
	}
}

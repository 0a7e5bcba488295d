package processor

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/router"
	"github.com/inletdev/inlet/pkg/store"
)

// failAfter lets a pipeline run, then reports an error: Redis applied the
// commands but the answer was lost, as when a connection drops mid-reply.
type failAfter struct{ on bool }

func (f *failAfter) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (f *failAfter) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (f *failAfter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if f.on {
			return errors.New("reply lost")
		}
		return err
	}
}

// TestClaimReturnsWhatItMayHoldOnError: a claim round that fails after
// Redis took its keys returns them, so the abandoned batch releases them;
// they blocked the redelivered batch (a new token) until their lease ran
// out.
func TestClaimReturnsWhatItMayHoldOnError(t *testing.T) {
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr(), MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	hook := &failAfter{on: true}
	rdb.AddHook(hook)
	st := store.New(rdb, store.ClaimLease(time.Minute))
	p := &Processor{cfg: DefaultConfig(), d: Deps{Store: st}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	items := []*item{
		{rec: &kgo.Record{Topic: "raw", Offset: 1}, out: &router.Output{EntityKey: "e1"}, dedup: "dedup:s:1", lock: "lock:e1"},
		{rec: &kgo.Record{Topic: "raw", Offset: 2}, out: &router.Output{EntityKey: "e2"}, dedup: "dedup:s:2", lock: "lock:e2"},
	}
	ctx := context.Background()
	token := store.NewToken()
	held, err := p.claim(ctx, ctx, items, token, time.Now().Add(time.Second))
	if err == nil {
		t.Fatal("claim succeeded through a lost reply")
	}
	if len(held) != 4 {
		t.Fatalf("claim returned %v, want the 4 keys it may hold", held)
	}
	hook.on = false
	p.release(ctx, ctx, held, token)
	res, err := st.ClaimBatch(ctx, []string{"dedup:s:1", "lock:e1", "dedup:s:2", "lock:e2"}, store.NewToken())
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r != store.ClaimAcquired {
			t.Fatalf("key %d is %v after the release, want it free for the redelivery", i, r)
		}
	}
}

package replay

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestReplayPassesOverTombstones: a tombstone on the raw topic (another
// producer erasing a key, which the processor reads past) is no event:
// the replay does not copy it. Copied, the replay's processor read past
// it with no outcome, and the replay waited for that outcome for good.
func TestReplayPassesOverTombstones(t *testing.T) {
	h := newHarness(t)
	from := time.Now().Add(-time.Second)
	h.send("stripe", "evt_t1", "pi_t1", 1700000000)
	cl := h.env.Client(t, kgo.ProducerLinger(0))
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: h.topics.Raw, Key: []byte("stripe:evt_gone")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	h.send("stripe", "evt_t2", "pi_t2", 1700000001)
	h.process(2)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := Config{ID: "tombstone", Source: "stripe", From: from, Mode: Rebuild, Processor: h.pcfg()}
	sum, err := Run(ctx, cfg, h.deps())
	if err != nil || !sum.Complete || sum.Read != 2 || sum.Applied+sum.Stale+sum.Duplicate != 2 {
		t.Fatalf("replay over a tombstone: %v, summary %+v; want complete, 2 read and 2 outcomes", err, sum)
	}
}

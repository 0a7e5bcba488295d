package replay

import (
	"context"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/processor/processortest"
	"github.com/inletdev/inlet/pkg/testenv"
)

// undatedSources has a source whose events have no business time: a fill
// tells those from gaps by their dedup claim alone.
const undatedSources = `
sources:
  plain:
    kind: stripe
    secrets_env: [T_STRIPE]
    events:
      "payment_intent.*":
        contract: stripe/payment_intent
        entity_key: "plain:pi:{/data/object/id}"
`

// TestReplayRemovedAndRunAgainSkipsWhatItProcessed: a fill replay removed
// (replay rm) and run again under the same id (the default id of the same
// command) makes its topic again, whose offsets start over: its copies
// land where the removed run's did. The claims that run marked done at
// those positions read as the copies' own commit, lost, and the events
// were processed again: a second output of each event it had filled.
func TestReplayRemovedAndRunAgainSkipsWhatItProcessed(t *testing.T) {
	t.Setenv("T_STRIPE", "s")
	s := processortest.New(t, testenv.Embedded(t), undatedSources)
	h := &harness{t: t, stack: s, env: s.Env, topics: s.Topics, sources: s.Sources, router: s.Router, codec: s.Codec, rdb: s.Redis, store: s.Store}
	from := time.Now().Add(-time.Second)
	h.send("plain", "evt_u1", "pi_u1", 1700000000)
	to := time.Now()
	cfg := Config{ID: "again", Source: "plain", From: from, To: to, Mode: Fill, Processor: h.pcfg()}
	if sum := h.runToEnd(t, cfg); !sum.Complete || sum.Applied != 1 {
		t.Fatalf("first run: %+v; want the gap applied", sum)
	}
	if _, err := Remove(context.Background(), h.deps(), "again", RemoveOptions{Who: "test"}); err != nil {
		t.Fatal(err)
	}
	sum := h.runToEnd(t, cfg)
	if !sum.Complete || sum.Resumed || sum.Read != 1 || sum.Applied != 0 || sum.Duplicate != 1 {
		t.Fatalf("run again after rm: %+v; want its one event a duplicate", sum)
	}
	outs := h.env.ReadAll(t, h.topics.Processed, 1, 500*time.Millisecond, 10*time.Second)
	if len(outs) != 1 {
		t.Fatalf("%d processed records of the one event; want 1", len(outs))
	}
}

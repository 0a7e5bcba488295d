package replay

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestReplayStopAfterLastOutcomeCompletes: a stop (Ctrl-C) that lands once
// every copy has its outcome, before the replay's next look at its counts,
// finishes the replay (docs/operations.md, "Interrupt and resume"). It
// returned context.Canceled with the summary incomplete, every copy
// processed: inletctl exited 1, "interrupted".
func TestReplayStopAfterLastOutcomeCompletes(t *testing.T) {
	h := newHarness(t)
	before := time.Now().Add(-time.Second)
	h.send("stripe", "evt_1", "pi_1", 1700000100)
	h.send("stripe", "evt_2", "pi_2", 1700000200)
	h.send("stripe", "evt_3", "pi_3", 1700000300)
	h.process(3)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cl, err := kgo.NewClient(h.kopts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	const id = "stop-when-done"
	watching := false
	d := h.deps()
	d.Progress = func(p Progress) {
		if p.Phase != "delete" || watching {
			return
		}
		watching = true
		// Stopped as soon as the replay's group has processed every copy:
		// before the replay's next tick (every 500 ms) sees it.
		go func() {
			for ctx.Err() == nil {
				n, err := pending(ctx, adm, h.kopts(), Group(h.topics, id), Topic(h.topics, id))
				if err == nil && n == 0 {
					cancel()
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	cfg := Config{ID: id, Source: "stripe", From: before, Mode: Rebuild, Processor: h.pcfg()}
	sum, err := Run(ctx, cfg, d)
	if sum == nil || sum.Applied+sum.Duplicate+sum.Stale != 3 {
		t.Fatalf("summary %+v, %v: want every copy's outcome counted", sum, err)
	}
	if err != nil || !sum.Complete {
		t.Fatalf("stopped once every copy had its outcome: %v, complete %v; want complete, no error", err, sum.Complete)
	}
}

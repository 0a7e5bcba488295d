package replay

import (
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// staleStableOffsets makes the embedded Kafka answer the next n
// latest-offset lookups (read_committed) of topic with 0, as a broker
// whose transaction markers have not reached the partitions yet. It returns
// how many it answered so.
func staleStableOffsets(h *harness, topic string, n int) func() int {
	var mu sync.Mutex
	lies := 0
	c := h.env.Stack.Kafka
	c.ControlKey(int16(kmsg.ListOffsets), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.ListOffsetsRequest)
		ours := false
		for _, rt := range req.Topics {
			ours = ours || rt.Topic == topic
			for _, p := range rt.Partitions {
				if p.Timestamp != -1 {
					return nil, nil, false // not a latest-offset lookup
				}
			}
		}
		if req.IsolationLevel != 1 || !ours {
			return nil, nil, false
		}
		mu.Lock()
		defer mu.Unlock()
		if lies >= n {
			return nil, nil, false
		}
		lies++
		// The replay's own retry topics, asked with it, are empty: 0 is
		// true of them.
		resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
		for _, t := range req.Topics {
			rt := kmsg.NewListOffsetsResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewListOffsetsResponseTopicPartition()
				rp.Partition, rp.Offset, rp.Timestamp = p.Partition, 0, -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return lies
	}
}

// twoGaps processes two events of two entities, then deletes their claims
// and states: a fill from before applies both.
func twoGaps(t *testing.T) (*harness, time.Time) {
	t.Helper()
	h := newHarness(t)
	before := time.Now().Add(-time.Second)
	h.send("stripe", "evt_1", "pi_1", 1700000100)
	h.send("stripe", "evt_2", "pi_2", 1700000200)
	h.process(2)
	if _, err := h.store.DeleteClaims(t.Context(), []string{"dedup:stripe:evt_1", "dedup:stripe:evt_2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.DeleteEntities(t.Context(), []string{"stripe:pi:pi_1", "stripe:pi:pi_2"}); err != nil {
		t.Fatal(err)
	}
	return h, before
}

// TestReplayWaitsForItsCopiesToBeReadable: Kafka answers the copy's last
// commit before its markers reach the partitions, so for a moment the
// replay topic's stable offsets do not cover the copies. A replay that
// counted what it had to process then found nothing, and reported itself
// complete having processed none of it (seen once under load). kfake here
// answers the first stable-offset lookups of the replay topic with 0, as
// a broker whose markers have not landed.
func TestReplayWaitsForItsCopiesToBeReadable(t *testing.T) {
	h, before := twoGaps(t)
	lies := staleStableOffsets(h, Topic(h.topics, "unseen"), 3)
	sum := h.replay(t, "unseen", Fill, before)
	if lies() == 0 {
		t.Fatal("no stable-offset lookup of the replay topic was answered stale: the test tested nothing")
	}
	if !sum.Complete || sum.Read != 2 || sum.Applied != 2 {
		t.Fatalf("summary %+v: want both copies read and applied", sum)
	}
}

// TestReplayResumeWaitsForTheCopiesOfTheRunBefore: a replay resumed right
// after a run that stopped once its copy committed counts the copies the
// replay topic holds, to copy only what is missing. Counted before the
// markers of that commit landed, they read as none, and the range was
// copied a second time: each event twice, the second copy a duplicate of
// the first (seen in CI as a fill that applied nothing). kfake answers the
// resume's first stable-offset lookups of the replay topic with 0.
func TestReplayResumeWaitsForTheCopiesOfTheRunBefore(t *testing.T) {
	h, before := twoGaps(t)
	cfg := Config{ID: "resumed", Source: "stripe", From: before, Mode: Fill, Processor: h.pcfg()}
	h.stopAfterCopy(t, cfg, h.deps())
	lies := staleStableOffsets(h, Topic(h.topics, "resumed"), 3)
	sum := h.replay(t, "resumed", Fill, before)
	if lies() == 0 {
		t.Fatal("no stable-offset lookup of the replay topic was answered stale: the test tested nothing")
	}
	if !sum.Complete || !sum.Resumed || sum.Read != 2 || sum.Applied != 2 || sum.Duplicate != 0 {
		t.Fatalf("summary %+v: want the two copies of the run before, read once and applied", sum)
	}
}

package processor

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/testenv"
	"github.com/inletdev/inlet/pkg/testenv/syncbuf"
)

// TestPausedMemberDropsTheBatchAnotherMemberCommitted: a member paused
// with a polled batch in hand (a GC pause, SIGSTOP, a frozen VM) for
// longer than the group waits for it loses its partitions; another member
// processes and commits the same records. When the paused one resumes,
// its claims find the keys done at the very offsets it holds: not a
// commit Kafka lost (the group's committed offsets are past them), so it
// drops the batch instead of logging the lost-commit error, counting
// inlet.redelivered (the InletRecordsRedelivered alert) and processing
// the events again.
func TestPausedMemberDropsTheBatchAnotherMemberCommitted(t *testing.T) {
	pausedMemberDropsTheBatch(t, testenv.Embedded(t))
}

// TestIntegrationPausedMemberDropsTheBatchAnotherMemberCommitted is the
// same on a real broker, where a SIGSTOPped processor showed it.
func TestIntegrationPausedMemberDropsTheBatchAnotherMemberCommitted(t *testing.T) {
	pausedMemberDropsTheBatch(t, testenv.Real(t))
}

func pausedMemberDropsTheBatch(t *testing.T, env *testenv.Env) {
	const n = 3
	h := newHarness(t, env)
	for i := range n {
		id := fmt.Sprintf("evt_paused%d", i)
		h.send("stripe", "payment_intent.succeeded", id, "2024-06-20", envelope.ChannelWebhook, paymentIntent(id, "pi_"+id, "succeeded", 1700000000+int64(i)))
	}
	// A short rebalance timeout on both members: the group gives up on
	// the paused member soon after the other one joins.
	short := kgo.RebalanceTimeout(3 * time.Second)
	one := func(c *Config) { c.Workers = 1 }

	var buf syncbuf.Buffer
	paused, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	cfg := h.config()
	cfg.InstanceID = h.env.Prefix + "-paused"
	one(&cfg)
	deps := h.deps(cfg)
	deps.KafkaOpts = append(deps.KafkaOpts, short)
	deps.Log = bufLog(&buf)
	a, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	a.heldBeforeClaim = func() {
		first := false
		once.Do(func() { first = true })
		if first {
			close(paused)
			<-resume
		}
	}
	h.run(a)
	select {
	case <-paused:
	case <-time.After(30 * time.Second):
		t.Fatal("the member never polled the batch")
	}

	b := h.startWithOpts("other", one, short)
	testenv.Eventually(t, 60*time.Second, "the other member to process the batch", func() bool {
		return b.p.Counts().Total(Processed) >= n
	})
	close(resume)

	dropped := "batch dropped before writing: another member committed its records"
	testenv.Eventually(t, 30*time.Second, "the resumed member to decide its batch", func() bool {
		s := buf.String()
		return strings.Contains(s, dropped) || strings.Contains(s, "kafka redelivered records")
	})
	if s := buf.String(); strings.Contains(s, "kafka redelivered records") {
		t.Errorf("the resumed member took its stale batch for a commit Kafka lost:\n%s", s)
	}
	if got := a.Counts().Total(Processed); got != 0 {
		t.Errorf("the resumed member counted %d events processed that the other member had processed", got)
	}
	ids := eventIDs(h, n)
	for i := range n {
		if c := ids[fmt.Sprintf("evt_paused%d", i)]; c != 1 {
			t.Errorf("evt_paused%d has %d processed outputs, want 1", i, c)
		}
	}
}

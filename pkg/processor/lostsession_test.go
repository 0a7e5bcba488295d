package processor

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/testenv"
)

// TestLostGroupSessionDoesNotHoldTheCommit: the group's heartbeat failing
// for good while a worker writes its batch (a broker killed: its dials
// refused) ends franz-go's heartbeat loop, and the OnPartitionsLost that
// follows waits for the worker's AllowRebalance (BlockRebalanceOnPoll).
// The commit's End, its offsets sent, then waits for a forced heartbeat
// the ended loop never answers: until the batch's context ended
// (-drain-timeout plus -batch-deadline from the batch's start; a drill's
// processors stalled 12 s after the broker was back). The worker now lets
// the group through once it has waited commitBlockedGrace: the lost
// session aborts the transaction, and the batch is redelivered and
// processed once.
func TestLostGroupSessionDoesNotHoldTheCommit(t *testing.T) {
	const n = 3
	env := testenv.Embedded(t)
	c := env.Stack.Kafka
	h := newHarness(t, env)
	group := h.config().Group
	txnID := "inlet-processor-" + h.env.Prefix + "-lost"
	var (
		failNext atomic.Bool // the group's next heartbeat fails
		failed   = make(chan struct{})
		failedAt atomic.Int64
		once     sync.Once
	)
	c.ControlKey(int16(kmsg.Heartbeat), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.HeartbeatRequest)
		if r.Group != group || !failNext.CompareAndSwap(true, false) {
			return nil, nil, false
		}
		// ILLEGAL_GENERATION: not REBALANCE_IN_PROGRESS, so franz-go
		// ends the heartbeat loop for OnPartitionsLost, as for a dial
		// that fails, and rejoins as the same member.
		resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.SetVersion(r.GetVersion())
		resp.ErrorCode = kerr.IllegalGeneration.Code
		once.Do(func() {
			failedAt.Store(time.Now().UnixNano())
			close(failed)
		})
		return resp, nil, true
	})
	// The worker's first transactional produce waits until the heartbeat
	// has failed: the batch is being written when the session is lost.
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.ProduceRequest)
		if r.TransactionID == nil || !strings.HasPrefix(*r.TransactionID, txnID) {
			return nil, nil, false
		}
		c.DropControl()
		failNext.Store(true)
		c.SleepControl(func() { <-failed })
		return nil, nil, false
	})
	for i := range n {
		id := fmt.Sprintf("evt_lost%d", i)
		h.send("stripe", "payment_intent.succeeded", id, "2024-06-20", envelope.ChannelWebhook, paymentIntent(id, fmt.Sprintf("pi_lost%d", i), "succeeded", int64(1700000000+i)))
	}
	// The batch's context ends 40 s after it starts: the wait this test
	// is about would outlast the bound below.
	h.start("lost", func(c *Config) {
		c.Workers = 1
		c.BatchDeadline, c.DrainTimeout, c.ClaimLease, c.TxnTimeout = 30*time.Second, 10*time.Second, 2*time.Minute, 2*time.Minute
	})
	select {
	case <-failed:
	case <-time.After(30 * time.Second):
		t.Fatal("no heartbeat failed: the test did not test anything")
	}
	bound := commitBlockedGrace + 10*time.Second
	testenv.Eventually(t, bound, fmt.Sprintf("%d outcomes within %s of the lost session", n, bound), func() bool { return h.all() >= n })
	t.Logf("outcomes %s after the heartbeat failed", time.Since(time.Unix(0, failedAt.Load())).Round(100*time.Millisecond))
	if p := h.total(Processed); p != n {
		t.Fatalf("processed %d, want %d", p, n)
	}
	ids := eventIDs(h, n)
	for i := range n {
		if got := ids[fmt.Sprintf("evt_lost%d", i)]; got != 1 {
			t.Errorf("evt_lost%d has %d outputs, want 1", i, got)
		}
	}
}

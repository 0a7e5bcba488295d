package processor

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/testenv"
)

// TestTransactionCoordinatorAwayIsWaitedOut: the transaction coordinator
// away (its broker killed, the other brokers answering; a drill on a
// two-broker Apache Kafka with __transaction_state on the killed one)
// for longer than franz-go's retry timeout (30 s by default). The
// commit's EndTxn failed, the session was renewed, and the new session's
// fence (InitProducerID) failed too: that error stopped the processor,
// after a /readyz that never listed Kafka, while a whole cluster down is
// waited out. The renewal now waits for the coordinator as for Kafka
// (listed in Waiting), and the batch is processed once it is back.
func TestTransactionCoordinatorAwayIsWaitedOut(t *testing.T) {
	const n = 3
	env := testenv.Embedded(t)
	c := env.Stack.Kafka
	h := newHarness(t, env)
	txnID := "inlet-processor-" + h.env.Prefix + "-coord"
	const retryTimeout = time.Second
	outage := 4 * retryTimeout
	var until atomic.Int64 // unix nanos; the coordinator answers nothing before
	away := func(id *string) bool {
		if id == nil || !strings.HasPrefix(*id, txnID) {
			return false
		}
		if until.Load() == 0 {
			until.CompareAndSwap(0, time.Now().Add(outage).UnixNano())
		}
		return time.Now().UnixNano() < until.Load()
	}
	started := atomic.Bool{} // the first EndTxn begins the outage
	c.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.EndTxnRequest)
		if !strings.HasPrefix(r.TransactionalID, txnID) {
			return nil, nil, false
		}
		started.Store(true)
		if !away(&r.TransactionalID) {
			return nil, nil, false
		}
		resp := r.ResponseKind().(*kmsg.EndTxnResponse)
		resp.SetVersion(r.GetVersion())
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil, true
	})
	c.ControlKey(int16(kmsg.InitProducerID), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.InitProducerIDRequest)
		if !started.Load() || !away(r.TransactionalID) {
			return nil, nil, false
		}
		resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
		resp.SetVersion(r.GetVersion())
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil, true
	})
	for i := range n {
		id := fmt.Sprintf("evt_coord%d", i)
		h.send("stripe", "payment_intent.succeeded", id, "2024-06-20", envelope.ChannelWebhook, paymentIntent(id, fmt.Sprintf("pi_coord%d", i), "succeeded", int64(1700000000+i)))
	}
	cfg := h.config()
	cfg.InstanceID = h.env.Prefix + "-coord"
	cfg.Workers = 1
	cfg.BatchDeadline, cfg.DrainTimeout, cfg.ClaimLease, cfg.TxnTimeout = 5*time.Second, 4*time.Second, 30*time.Second, 30*time.Second
	d := h.deps(cfg)
	// franz-go gives up on a request after its retry timeout: shortened
	// so that the outage outlasts it several times within the test.
	d.KafkaOpts = append(d.KafkaOpts, kgo.RetryTimeout(retryTimeout))
	p, err := New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	r := h.run(p)
	testenv.Eventually(t, 30*time.Second, "the coordinator outage to begin", func() bool { return until.Load() != 0 })
	listed := false
	for time.Now().UnixNano() < until.Load() {
		select {
		case err := <-r.done:
			r.done <- err
			t.Fatalf("the processor stopped while the transaction coordinator was away: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		for _, w := range p.Waiting() {
			listed = listed || w.On == waitKafka
		}
	}
	if !listed {
		t.Errorf("Waiting never listed kafka while the transaction coordinator was away")
	}
	testenv.Eventually(t, 30*time.Second, fmt.Sprintf("%d outcomes after the coordinator is back", n), func() bool { return h.all() >= n })
	if p := h.total(Processed); p != n {
		t.Fatalf("processed %d, want %d", p, n)
	}
	ids := eventIDs(h, n)
	for i := range n {
		if got := ids[fmt.Sprintf("evt_coord%d", i)]; got != 1 {
			t.Errorf("evt_coord%d has %d outputs, want 1", i, got)
		}
	}
	testenv.Eventually(t, 10*time.Second, "Waiting empty again", func() bool { return len(p.Waiting()) == 0 })
}

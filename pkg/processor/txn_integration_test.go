package processor

import (
	"fmt"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/testenv"
	"github.com/inletdev/inlet/pkg/testenv/syncbuf"
)

// TestIntegrationDuplicateOnlyBatchesCommit: a batch whose events are all
// duplicates writes nothing, and its transaction holds only its offsets.
// On Kafka 4.x (transactions v2) such a commit, sent while the previous
// transaction's markers were still being written, was answered
// CONCURRENT_TRANSACTIONS, which franz-go takes for an abort: the batch
// was rewound and redone, most duplicate-only batches once or more (the
// log said "the commit did not land"). Every such batch must commit the
// first time.
func TestIntegrationDuplicateOnlyBatchesCommit(t *testing.T) {
	env := testenv.Real(t)
	h := newHarness(t, env)
	logs := &syncbuf.Buffer{}
	h.log = bufLog(logs)
	const n = 20
	id := func(i int) string { return fmt.Sprintf("evt_dup%d", i) }
	for i := range n {
		h.sendPI(id(i), int64(i))
	}
	// Two records a transaction: many commits, each right after the last.
	r := h.start("a", func(c *Config) { c.BatchSize, c.Workers = 2, 1 })
	h.waitRunning(r, 60*time.Second, fmt.Sprintf("%d events processed", n), func() bool { return h.total(Processed) >= n })
	const rounds = 5
	for range rounds {
		for i := range n {
			h.sendPI(id(i), int64(i))
		}
	}
	h.waitRunning(r, 60*time.Second, fmt.Sprintf("%d outcomes", (rounds+1)*n), func() bool { return h.all() >= (rounds+1)*n })
	if p, d := h.total(Processed), h.total(Duplicate); p != n || d != rounds*n {
		t.Errorf("processed %d and duplicate %d, want %d and %d", p, d, n, rounds*n)
	}
	redone := len(linesWith(t, logs, "the commit did not land; records will be redelivered")) +
		len(linesWith(t, logs, "transaction aborted (rebalance or produce failure); records will be redelivered"))
	if redone > 0 {
		t.Errorf("%d of %d duplicate-only batches were aborted and redone; want every one committed the first time", redone, rounds*n/2)
	}
}

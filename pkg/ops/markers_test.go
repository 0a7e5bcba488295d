package ops

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/testenv"
	"github.com/inletdev/inlet/pkg/testenv/syncbuf"
)

// TestDecisionsGoOnWithoutTheMarkerCheck: on a cluster that refuses to
// describe the decisions' transactional id (the principal has no
// DESCRIBE on it), a requeue and a discard succeed, neither waiting out
// the check's bound, and the refusal is warned of once, not per decision.
func TestDecisionsGoOnWithoutTheMarkerCheck(t *testing.T) {
	env, tp, q := deadLettered(t, testenv.Embedded, 2)
	var logs syncbuf.Buffer
	q.SetLogger(slog.New(slog.NewTextHandler(&logs, nil)))
	c := env.Stack.Kafka
	var asked atomic.Int32
	c.ControlKey(int16(kmsg.DescribeTransactions), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		asked.Add(1)
		req := kreq.(*kmsg.DescribeTransactionsRequest)
		resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
		for _, id := range req.TransactionalIDs {
			st := kmsg.NewDescribeTransactionsResponseTransactionState()
			st.TransactionalID, st.ErrorCode = id, kerr.TransactionalIDAuthorizationFailed.Code
			resp.TransactionStates = append(resp.TransactionStates, st)
		}
		return resp, nil, true
	})
	ctx := context.Background()
	es, err := q.List(ctx, tp.DLQ, Filter{})
	if err != nil || len(es) != 2 {
		t.Fatalf("list: %d, %v", len(es), err)
	}
	start := time.Now()
	d, err := q.Requeue(ctx, tp.DLQ, Filter{IDs: []string{es[0].ID}}, "op", "sink fixed", false)
	if err != nil || d.Count != 1 {
		t.Fatalf("requeue: %+v, %v", d, err)
	}
	d, err = q.Discard(ctx, tp.DLQ, Filter{IDs: []string{es[1].ID}}, "op", "cancelled", false)
	if err != nil || d.Count != 1 {
		t.Fatalf("discard: %+v, %v", d, err)
	}
	if took := time.Since(start); took > kafka.MarkerCheckWait {
		t.Errorf("two decisions took %v: the check that cannot run held them up", took)
	}
	if n := strings.Count(logs.String(), "cannot describe the transactional id"); n != 1 || asked.Load() != 1 {
		t.Errorf("warned %d times, Kafka asked %d times; want once each; log:\n%s", n, asked.Load(), logs.String())
	}
	es, err = q.List(ctx, tp.DLQ, Filter{})
	if err != nil || len(es) != 2 || es[0].Decision == nil || es[1].Decision == nil {
		t.Fatalf("after: %d entries, %v; want both decided", len(es), err)
	}
}

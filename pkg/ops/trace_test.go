package ops

import (
	"context"
	"strings"
	"testing"

	"github.com/inletdev/inlet/pkg/testenv"
)

// TestTraceEntriesShowDecisions: trace finds, by correlation id, each
// decision about that id's entries — a discard, which leaves nothing else
// behind, and a requeue with where it went — with who and why; a dry run
// and another event's decision are not shown.
func TestTraceEntriesShowDecisions(t *testing.T) {
	_, tp, q := deadLettered(t, testenv.Embedded, 3)
	ctx := context.Background()
	es, err := q.List(ctx, tp.DLQ, Filter{})
	if err != nil || len(es) != 3 {
		t.Fatalf("%d entries, %v", len(es), err)
	}
	byEvent := map[string]*Entry{}
	for _, e := range es {
		byEvent[e.EventID] = e
	}
	discarded, requeued := byEvent["wh-0"], byEvent["wh-1"]
	if _, err := q.Discard(ctx, tp.DLQ, Filter{IDs: []string{discarded.ID}}, "alice", "order cancelled", true); err != nil {
		t.Fatal(err)
	}
	if got, err := q.TraceEntries(ctx, discarded.CorrelationID); err != nil || len(got) != 0 {
		t.Fatalf("after a dry run: %+v, %v; want nothing", got, err)
	}
	if _, err := q.Discard(ctx, tp.DLQ, Filter{IDs: []string{discarded.ID}}, "alice", "order cancelled", false); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Requeue(ctx, tp.DLQ, Filter{IDs: []string{requeued.ID}}, "bob", "sink fixed", false); err != nil {
		t.Fatal(err)
	}

	got, err := q.TraceEntries(ctx, discarded.CorrelationID)
	if err != nil || len(got) != 1 {
		t.Fatalf("discarded: %+v, %v; want one entry", got, err)
	}
	d := got[0]
	if d.Stage != "decided" || d.Outcome != "discarded" || d.Where != discarded.ID || d.Note != "by alice: order cancelled" ||
		d.EventID != "wh-0" || d.Source != "shop" || d.EventType != "orders/updated" || d.At.IsZero() {
		t.Fatalf("discard shown as %+v", d)
	}

	got, err = q.TraceEntries(ctx, requeued.CorrelationID)
	if err != nil || len(got) != 1 {
		t.Fatalf("requeued: %+v, %v; want one entry", got, err)
	}
	if r := got[0]; r.Outcome != "requeued" || r.Where != requeued.ID+" to "+tp.Retry[0] || !strings.Contains(r.Note, "bob") || r.EventID != "wh-1" {
		t.Fatalf("requeue shown as %+v", r)
	}

	if got, err := q.TraceEntries(ctx, byEvent["wh-2"].CorrelationID); err != nil || len(got) != 0 {
		t.Fatalf("undecided: %+v, %v; want nothing", got, err)
	}
	// A correlation id that is a prefix of another's is not theirs.
	if got, err := q.TraceEntries(ctx, "corr-wh"); err != nil || len(got) != 0 {
		t.Fatalf("prefix: %+v, %v; want nothing", got, err)
	}
}

package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/history"
	"github.com/inletdev/inlet/pkg/kafka"
)

// TraceEntries returns the decisions on the audit topic about entries of
// correlation id corr, as history entries of stage "decided" (outcome
// "requeued" or "discarded", where the entry was and where a requeue went,
// who and why in Note): the processing history in Redis knows nothing of
// a discard, and of a requeue only once the processor reads it back. Every
// decision is shown, also one about an entry the queue has since dropped:
// it is what became of the event. It reads the audit topic whole, which
// holds one small record per decided entry.
func (q *Queues) TraceEntries(ctx context.Context, corr string) ([]history.Entry, error) {
	sp, err := kafka.RangeOf(ctx, q.adm, q.topics.Audit, time.Time{}, time.Time{})
	if err != nil {
		return nil, err
	}
	// The id as JSON spells it: a record without it is not decoded.
	quoted, _ := json.Marshal(corr)
	var out []history.Entry
	err = kafka.ReadSpan(ctx, q.cl.Opts(), q.topics.Audit, sp, func(r *kgo.Record) error {
		if !bytes.Contains(r.Value, quoted) {
			return nil
		}
		var d Decision
		if json.Unmarshal(r.Value, &d) != nil || d.CorrelationID != corr {
			return nil
		}
		out = append(out, d.traceEntry())
		return nil
	})
	return out, err
}

func (d *Decision) traceEntry() history.Entry {
	e := history.Entry{At: d.At, Stage: "decided", Source: d.Source, EventType: d.EventType, EventID: d.EventID,
		Where: d.ID, Note: "by " + d.Who + ": " + d.Why}
	switch d.Action {
	case ActionRequeue:
		e.Outcome = "requeued"
		if d.To != "" {
			e.Where += " to " + d.To
		}
	case ActionDiscard:
		e.Outcome = "discarded"
	default:
		e.Outcome = d.Action
	}
	return e
}

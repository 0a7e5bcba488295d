package processor

import (
	"context"
	"time"

	"github.com/inletdev/inlet/pkg/history"
	"github.com/inletdev/inlet/pkg/retry"
)

// recordHistory appends each committed item's stages to its correlation
// id's history: on the first attempt from the raw topic, when ingest
// received it and where it was written; on every attempt, the outcome and
// where the output went. Best effort: a Redis failure here is logged, never
// holds processing.
func (p *Processor) recordHistory(ctx context.Context, items []*item, now time.Time) {
	if p.d.History == nil {
		return
	}
	byCorr := map[string][]history.Entry{}
	for _, it := range items {
		if it.env == nil {
			continue
		}
		e := it.env
		base := history.Entry{Source: e.Source, EventType: e.EventType, EventID: e.EventID}
		corr := e.CorrelationID
		if it.rec.Topic == p.d.Topics.Raw {
			rcv, wr := base, base
			rcv.At, rcv.Stage, rcv.Where = e.ReceivedAt, "received", "ingest ("+e.Channel+")"
			wr.At, wr.Stage, wr.Where = it.rec.Timestamp, "written", origin(it)
			byCorr[corr] = append(byCorr[corr], rcv, wr)
		} else if retry.Get(it.rec.Headers, retry.HeaderReason) == "" && retry.Attempt(it.rec.Headers) == 1 {
			req := base
			req.At, req.Stage, req.Where = it.rec.Timestamp, "requeued", origin(it)
			byCorr[corr] = append(byCorr[corr], req)
		}
		at := base
		at.At, at.Stage, at.Outcome, at.Attempt = now.UTC(), "attempt", string(it.outcome), it.ev.Attempt
		switch it.outcome {
		case Processed:
			at.Where = p.d.Topics.Processed + " key " + it.out.EntityKey
		case Invalid:
			at.Where, at.Error = p.d.Topics.Invalid, failureText(it.reason)
		case Retried:
			at.Where, at.Error = p.d.Topics.Retry[p.tier[it.tier]]+" due in "+it.next.Delay.String(), failureText(it.failure)
		case DeadLetter:
			at.Where, at.Error = p.d.Topics.DLQ+" ("+it.next.Reason+")", failureText(it.failure)
		case Duplicate, Stale:
			if it.out != nil {
				at.Where = "entity " + it.out.EntityKey
			}
		}
		byCorr[corr] = append(byCorr[corr], at)
	}
	if err := p.d.History.Append(ctx, byCorr); err != nil {
		p.log.Warn("processing history not recorded", "error", err)
	}
}

func origin(it *item) string { return retry.Coordinates(it.rec) }

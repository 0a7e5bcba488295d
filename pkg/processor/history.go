package processor

import (
	"cmp"
	"context"
	"time"

	"github.com/inletdev/inlet/pkg/history"
	"github.com/inletdev/inlet/pkg/retry"
)

// maxHistoryKey bounds the entity key a history entry names. A key is
// as long as the payload value it is built from, up to a body's size;
// every attempt's entry named it whole, so each duplicate of an event
// keyed by a long value (which otherwise costs Redis nothing) kept
// another copy of it in Redis for the history's retention.
const maxHistoryKey = 256

// recordHistory appends each committed item's stages to its correlation
// id's history: on the first attempt from the raw topic, when ingest
// received it and where it was written (for a replay's copy, which takes
// the raw topic's place in a replay's processor, the replay that copied it
// instead: its receipt and raw record are in the history already); on
// every attempt, the outcome and where the output went. A record whose
// envelope could not be decoded is recorded by its correlation-id header,
// without source, type or event id (marked undecodable). Best effort: a
// Redis failure here is logged, never holds processing.
func (p *Processor) recordHistory(ctx context.Context, items []*item, now time.Time) {
	if p.d.History == nil {
		return
	}
	byCorr := map[string][]history.Entry{}
	for _, it := range items {
		var corr string
		var base history.Entry
		if e := it.env; e != nil {
			// An envelope from a producer other than ingest may have no
			// correlation id: the record's header, else no history, as
			// every such event's under "" was one list, merged and cut
			// to its last 200 entries, and no trace could ask for it.
			corr, base = e.CorrelationID, history.Entry{Source: e.Source, EventType: e.EventType, EventID: e.EventID}
			if corr == "" { // the headers read only then: this runs per event
				corr = retry.Get(it.rec.Headers, retry.HeaderCorrelationID)
			}
		} else if corr = retry.Get(it.rec.Headers, retry.HeaderCorrelationID); corr != "" {
			base.Undecodable = true
		}
		if corr == "" {
			continue
		}
		replay := retry.Get(it.rec.Headers, retry.HeaderReplay)
		switch {
		case it.rec.Topic == p.d.Topics.Raw && replay != "":
			// The replay's id ([A-Za-z0-9._-], see replay.Config.ID)
			// and the raw record it copied (inlet-origin).
			rp := base
			rp.At, rp.Stage, rp.Where = it.rec.Timestamp, "replayed", "replay "+replay+" of "+cmp.Or(retry.Get(it.rec.Headers, retry.HeaderOrigin), origin(it))
			byCorr[corr] = append(byCorr[corr], rp)
		case it.rec.Topic == p.d.Topics.Raw:
			if e := it.env; e != nil {
				rcv := base
				rcv.At, rcv.Stage, rcv.Where = e.ReceivedAt, "received", "ingest ("+e.Channel+")"
				byCorr[corr] = append(byCorr[corr], rcv)
			}
			wr := base
			wr.At, wr.Stage, wr.Where = it.rec.Timestamp, "written", origin(it)
			byCorr[corr] = append(byCorr[corr], wr)
		case retry.Get(it.rec.Headers, retry.HeaderReason) == "" && retry.Attempt(it.rec.Headers) == 1:
			req := base
			req.At, req.Stage, req.Where = it.rec.Timestamp, "requeued", origin(it)
			byCorr[corr] = append(byCorr[corr], req)
		}
		at := base
		at.At, at.Stage, at.Outcome, at.Attempt = now.UTC(), "attempt", string(it.outcome), attempt(it.rec)
		if it.ev != nil {
			at.Attempt = it.ev.Attempt
		}
		switch it.outcome {
		case Processed:
			at.Where = p.d.Topics.Processed + " key " + retry.Truncate(it.out.EntityKey, maxHistoryKey)
		case Invalid:
			at.Where, at.Error = p.d.Topics.Invalid, failureText(it.reason)
		case Retried:
			at.Where, at.Error = p.d.Topics.Retry[p.tier[it.tier]]+" due in "+it.next.Delay.String(), failureText(it.failure)
		case DeadLetter:
			at.Where, at.Error = p.d.Topics.DLQ+" ("+it.next.Reason+")", failureText(it.failure)
		case Duplicate, Stale:
			if it.out != nil {
				at.Where = "entity " + retry.Truncate(it.out.EntityKey, maxHistoryKey)
			}
		}
		byCorr[corr] = append(byCorr[corr], at)
	}
	if err := p.d.History.Append(ctx, byCorr); err != nil {
		p.log.Warn("processing history not recorded", "error", err)
	}
}

func origin(it *item) string { return retry.Coordinates(it.rec) }

// position is where it's dedup claim is marked done: its record's
// coordinates, tagged with Deps.PositionTag when set.
func position(it *item) string { return cmp.Or(it.pos, origin(it)) }

package processor

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"

	"github.com/inletdev/inlet/pkg/alert"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/retry"
	"github.com/inletdev/inlet/pkg/router"
)

// maxDeliveries bounds concurrent sink calls per batch.
const maxDeliveries = 16

// deliverOne runs an event's side effect (its sink), taking one of sem's
// slots. Deliveries end at ctx's deadline (deliveryDeadline): a sink that
// hangs would otherwise hold the batch past its budget, fail its
// transaction and have the same batch polled and posted again for good.
// An event not delivered by then fails like a timeout and takes a retry
// tier.
func (p *Processor) deliverOne(ctx context.Context, sem chan struct{}, d router.Deliverer, it *item) error {
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return errors.New("not delivered: the batch's time for deliveries ran out while other deliveries of the batch waited for their sinks")
	}
	defer func() { <-sem }()
	// The event's span and the sender's baggage, for the trace context
	// the sink sends on (as the processed records carry them).
	ctx = baggage.ContextWithBaggage(trace.ContextWithSpan(ctx, it.span), baggage.FromContext(it.ctx))
	return p.guard(it, "Deliver", func() error { return d.Deliver(ctx, it.ev, it.out) })
}

// route sends each failed event to its next retry tier or, when its budget
// is spent or the error permanent, to the dead-letter topic.
func (p *Processor) route(items []*item) {
	for _, it := range items {
		if it.failure == nil {
			continue
		}
		policy := retry.Policy{MaxAttempts: 1}
		if it.src != nil {
			policy = p.policies[it.src.Name]
		}
		it.next = policy.Decide(it.ev.Attempt, it.failure)
		if !it.next.DeadLetter && rawSize(it.rec) > kafka.MaxRawRecordBytes {
			// A retry needs the whole record back; this one (written
			// before ingest kept room for failure headers, or by another
			// producer) may not fit a copy with them. Measured without
			// the failure headers earlier attempts added: those are
			// replaced, bounded, in the copy, and counting them sent a
			// raw record near the bound to the DLQ on its second failure.
			it.next = retry.Decision{DeadLetter: true, Reason: "too large for a retry copy"}
		}
		if it.next.DeadLetter {
			it.outcome = DeadLetter
		} else {
			it.outcome, it.tier = Retried, policy.Tiers[it.next.Tier]
		}
	}
}

// failureHeaderKeys are the headers the processor adds to a failed event's
// copies; a raw record's own size leaves them out.
var failureHeaderKeys = []string{retry.HeaderAttempt, retry.HeaderDueAt, retry.HeaderErrors,
	retry.HeaderOrigin, retry.HeaderReason, retry.HeaderRunbook, retry.HeaderValueOmitted}

// rawSize is kafka.RecordSize of r without the failure headers.
func rawSize(r *kgo.Record) int {
	n := kafka.RecordSize(r)
	for _, h := range r.Headers {
		if slices.Contains(failureHeaderKeys, h.Key) {
			n -= kafka.RecordSize(&kgo.Record{Headers: []kgo.RecordHeader{h}}) - kafka.RecordFraming
		}
	}
	return n
}

// failureHeaders are the consumed record's headers with the origin kept
// (first stage wins) and this failure appended to the error history.
func (p *Processor) failureHeaders(it *item, stage string, err error) []kgo.RecordHeader {
	r := it.rec
	h := retry.Clone(r.Headers)
	// This stage's span is the parent of the next attempt's.
	carrier := &kgo.Record{Headers: h}
	p.propagator.Inject(it.ctx, kotel.NewRecordCarrier(carrier))
	h = carrier.Headers
	if retry.Get(h, retry.HeaderOrigin) == "" {
		h = retry.Set(h, retry.HeaderOrigin, retry.Coordinates(r))
	}
	h = retry.Set(h, retry.HeaderAttempt, strconv.Itoa(attempt(r)))
	return retry.AppendError(h, retry.ErrorEntry{At: time.Now().UTC(), Stage: stage, Error: failureText(err)})
}

// retryRecord is the original envelope, untouched, on its next tier with
// the attempt, due time and error history in headers.
func (p *Processor) retryRecord(it *item) *kgo.Record {
	h := p.failureHeaders(it, it.stage, it.failure)
	h = retry.Set(h, retry.HeaderAttempt, strconv.Itoa(it.next.NextAttempt))
	h = retry.Set(h, retry.HeaderDueAt, strconv.FormatInt(time.Now().Add(it.next.Delay).UnixMilli(), 10))
	topic := p.d.Topics.Retry[p.tier[it.tier]]
	return fit(&kgo.Record{Topic: topic, Key: it.rec.Key, Value: it.rec.Value, Headers: h})
}

// deadLetterRecord is the original envelope, untouched, with the full
// error history, the reason and the source's runbook.
func (p *Processor) deadLetterRecord(it *item) *kgo.Record {
	h := p.failureHeaders(it, it.stage, it.failure)
	h = retry.Set(h, retry.HeaderReason, it.next.Reason)
	if it.src != nil && it.src.Runbook != "" {
		h = retry.Set(h, retry.HeaderRunbook, it.src.Runbook)
	}
	return fit(&kgo.Record{Topic: p.d.Topics.DLQ, Key: it.rec.Key, Value: it.rec.Value, Headers: h})
}

// invalidRecord is the original envelope, untouched, with the validation
// error appended to its error history, the reason and, as the invalid
// alert has it, the source's runbook.
func (p *Processor) invalidRecord(it *item) *kgo.Record {
	h := p.failureHeaders(it, "validate", it.reason)
	if it.src != nil && it.src.Runbook != "" {
		h = retry.Set(h, retry.HeaderRunbook, it.src.Runbook)
	}
	return fit(&kgo.Record{Topic: p.d.Topics.Invalid, Key: it.rec.Key, Value: it.rec.Value, Headers: retry.Set(h, retry.HeaderReason, invalidReason(it))})
}

// fit keeps a dead-letter or invalid copy within what Kafka takes. Ingest
// leaves kafka.FailureHeadroom free in every raw record and the history is
// bounded (retry.MaxErrorText), so this only bites a raw record written
// some other way (or before ingest kept that room): its history is cut to
// the newest entry and, if it still does not fit, the copy goes without
// its value, saying so (retry.HeaderValueOmitted): the event stays in the
// raw topic, kept for good, at the copy's inlet-origin. Refused by Kafka,
// the copy would abort its batch on every try and stop the partitions
// sharing it.
func fit(r *kgo.Record) *kgo.Record {
	if kafka.RecordSize(r) > kafka.MaxMessageBytes {
		r.Headers = retry.ShrinkHistory(r.Headers, 256)
	}
	if kafka.RecordSize(r) > kafka.MaxMessageBytes {
		r.Value = nil
		r.Headers = retry.Set(r.Headers, retry.HeaderValueOmitted,
			"too large for a copy with its failure headers: the event is the raw record inlet-origin names; replay it from there (inletctl replay), then discard this entry")
	}
	return r
}

func invalidReason(it *item) string {
	switch {
	case it.env == nil:
		return "undecodable"
	case errors.Is(it.reason, router.ErrNoHandler):
		return "no handler"
	}
	return "validation"
}

// alert tells people about a committed dead letter or invalid event: an
// error-level log line (logOutcome), the outcome counter, and the webhook.
func (p *Processor) alert(it *item) {
	if p.d.Alerter == nil || (it.outcome != DeadLetter && it.outcome != Invalid) {
		return
	}
	a := alert.Alert{Kind: alert.KindDLQ, Topic: p.d.Topics.DLQ, At: time.Now().UTC(), Source: "unknown", EventType: "unknown",
		CorrelationID: retry.Get(it.rec.Headers, retry.HeaderCorrelationID)}
	err, stage := it.failure, it.stage
	if it.outcome == Invalid {
		a.Kind, a.Topic, a.Reason, err, stage = alert.KindInvalid, p.d.Topics.Invalid, invalidReason(it), it.reason, "validate"
	} else {
		a.Reason = it.next.Reason
	}
	// The history the copy carries: an invalid event's too, as one
	// requeued from the invalid topic has the failures before it.
	hist := retry.AppendError(retry.Clone(it.rec.Headers), retry.ErrorEntry{At: a.At, Stage: stage, Error: failureText(err)})
	a.History = json.RawMessage(retry.Get(hist, retry.HeaderErrors))
	a.Error = failureText(err)
	if it.env != nil {
		a.Source, a.EventType, a.EventID, a.CorrelationID = it.env.Source, it.env.EventType, it.env.EventID, it.env.CorrelationID
		a.Excerpt = p.d.Alerter.Excerpt(it.env.Payload)
	}
	if it.src != nil {
		a.Runbook = it.src.Runbook
	}
	p.d.Alerter.Notify(a)
}

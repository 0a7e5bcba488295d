package gen

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Event is one logical event the run sends (once or several times). Its
// fields say what the outcome checker must find on the topics.
type Event struct {
	Kind      string // provider kind: stripe, github, shopify, standard-webhooks
	Source    string // the dev stack's source name: stripe, github, shop, billing
	EventType string
	ID        string // the provider event id; the raw key is Source:ID
	// Seq numbers the event within the run (payload ids derive from it).
	Seq int64
	// EntityKey is the key of the processed and state records the
	// processor derives (the sources file's entity_key); empty for a
	// planted invalid event, which must produce none.
	EntityKey string
	// NaturalKey is the dedup key the processor derives.
	NaturalKey string
	// BusinessTime is the payload's occurred-at (newest wins on it).
	BusinessTime time.Time
	// Invalid marks a payload planted to fail its contract: 2xx at ingest,
	// outcome invalid.
	Invalid bool
	// Size, when set, pads the body to exactly this many bytes.
	Size int
	// Batch marks an event sent as an NDJSON line on /events/billing.
	Batch bool

	accepted, rejected, ambiguous atomic.Int32
}

// RawKey is the raw topic's record key for the event.
func (e *Event) RawKey() string { return e.Source + ":" + e.ID }

// CorrelationID is sent as X-Correlation-ID with every delivery of the
// event, so each output record names the event it came from.
func (e *Event) CorrelationID() string { return e.ID }

// Accepted is the number of the event's deliveries answered 2xx.
func (e *Event) Accepted() int { return int(e.accepted.Load()) }

// Rejected is the number answered with a definitive 4xx (nothing written).
func (e *Event) Rejected() int { return int(e.rejected.Load()) }

// Ambiguous is the number with no definitive answer (5xx, 408, 429, no
// answer): the event may or may not be on the log.
func (e *Event) Ambiguous() int { return int(e.ambiguous.Load()) }

// record counts one delivery's answer.
func (e *Event) record(status int) {
	switch {
	case status >= 200 && status < 300:
		e.accepted.Add(1)
	case status >= 400 && status < 500 && !retryable(status):
		e.rejected.Add(1)
	default:
		e.ambiguous.Add(1)
	}
}

// newEvent fills the ids and keys of an event of kind k.
func (p *planner) newEvent(kind string, bt time.Time) *Event {
	p.seq++
	n := p.seq
	e := &Event{Kind: kind, Seq: n, BusinessTime: bt.UTC().Truncate(time.Second)}
	id := p.runID + "-" + strconv.FormatInt(n, 10)
	switch kind {
	case KindStripe:
		e.Source, e.EventType, e.ID = "stripe", "payment_intent.succeeded", "evt_"+id
		e.EntityKey = "stripe:pi:pi_" + id
		e.NaturalKey = e.ID
	case KindGitHub:
		e.Source, e.EventType, e.ID = "github", "push", id
		e.EntityKey = "github:repo:inletdev/loadtest:refs/heads/" + id
		e.NaturalKey = e.ID
	case KindShopify:
		e.Source, e.EventType, e.ID = "shop", "orders/updated", id
		e.EntityKey = "shopify:order:" + strconv.FormatInt(p.orderBase+n, 10)
	case KindStandardWebhooks:
		e.Source, e.EventType, e.ID = "billing", "invoice.paid", "msg_"+id
		e.EntityKey = "billing:invoice.paid:inv_" + id
		e.NaturalKey = e.ID // the example sources name no natural_key: the message id
	}
	e.setNaturalKey()
	return e
}

func (e *Event) setNaturalKey() {
	if e.Kind == KindShopify {
		e.NaturalKey = strings.TrimPrefix(e.EntityKey, "shopify:order:") + ":" + e.BusinessTime.Format(time.RFC3339)
	}
}

// orderID is the Shopify order id of a shop event.
func (e *Event) orderID() string { return strings.TrimPrefix(e.EntityKey, "shopify:order:") }

// Body renders the event's payload: the fields the contracts read (and a
// few more), padded to Size when set.
func (e *Event) Body() []byte {
	var v map[string]any
	bt := e.BusinessTime
	switch {
	case e.Batch:
		v = map[string]any{"id": e.ID, "type": e.EventType, "occurred_at": bt.Format(time.RFC3339), "correlation_id": e.CorrelationID(),
			"data": map[string]any{"id": strings.TrimPrefix(e.EntityKey, "billing:invoice.paid:"), "amount": 1200 + e.Seq%100, "currency": "EUR"}}
		if e.Invalid {
			delete(v, "data")
		}
	case e.Kind == KindStripe:
		status := "succeeded"
		if e.Invalid {
			status = "exploded" // not in the contract's closed enum
		}
		v = map[string]any{"id": e.ID, "object": "event", "type": e.EventType, "created": bt.Unix(),
			"livemode": false, "api_version": "2024-06-20",
			"data": map[string]any{"object": map[string]any{
				"id": strings.TrimPrefix(e.EntityKey, "stripe:pi:"), "object": "payment_intent", "status": status,
				"amount": 1000 + e.Seq%1000, "currency": "usd", "customer": nil, "metadata": map[string]string{"load": "inlet"}}}}
	case e.Kind == KindGitHub:
		v = map[string]any{"ref": "refs/heads/" + e.ID, "before": strings.Repeat("0", 40), "after": fmt.Sprintf("%040x", e.Seq),
			"repository": map[string]any{"full_name": "inletdev/loadtest", "name": "loadtest"},
			"pusher":     map[string]any{"name": "inlet-load"},
			"commits":    []any{map[string]any{"id": fmt.Sprintf("%040x", e.Seq), "message": "load " + e.ID, "timestamp": bt.Format(time.RFC3339)}}}
		if e.Invalid {
			delete(v, "pusher")
		}
	case e.Kind == KindShopify:
		id, _ := strconv.ParseInt(e.orderID(), 10, 64)
		var items any = []any{map[string]any{"id": e.Seq, "title": "Wool hat", "quantity": 1, "price": "19.90"}}
		if e.Invalid {
			items = "not a list"
		}
		v = map[string]any{"id": id, "name": "#" + strconv.FormatInt(e.Seq, 10), "email": "load@example.com",
			"created_at": bt.Add(-time.Hour).Format(time.RFC3339), "updated_at": bt.Format(time.RFC3339),
			"currency": "USD", "total_price": "19.90", "financial_status": "paid", "line_items": items}
	case e.Kind == KindStandardWebhooks:
		v = map[string]any{"type": e.EventType, "timestamp": bt.Format(time.RFC3339),
			"data": map[string]any{"id": strings.TrimPrefix(e.EntityKey, "billing:invoice.paid:"), "amount": 1200 + e.Seq%100, "currency": "EUR"}}
		if e.Invalid {
			delete(v, "data")
		}
	}
	body, _ := json.Marshal(v)
	if e.Size > len(body)+16 {
		// "pad" is unknown to every contract: the tolerant reader ignores it.
		pad := e.Size - len(body) - len(`,"pad":""`)
		body = append(body[:len(body)-1], `,"pad":"`...)
		body = append(body, strings.Repeat("x", pad)...)
		body = append(body, `"}`...)
	}
	return body
}

// Headers are the event's non-signature headers.
func (e *Event) Headers(h http.Header) {
	h.Set("Content-Type", "application/json")
	h.Set("X-Correlation-ID", e.CorrelationID())
	switch e.Kind {
	case KindGitHub:
		h.Set("X-GitHub-Event", e.EventType)
		h.Set("X-GitHub-Delivery", e.ID)
	case KindShopify:
		h.Set("X-Shopify-Topic", e.EventType)
		h.Set("X-Shopify-API-Version", "2025-01")
		h.Set("X-Shopify-Webhook-Id", e.ID)
		h.Set("X-Shopify-Triggered-At", e.BusinessTime.Format(time.RFC3339))
	}
}

// Secret is the signing secret of the event's kind.
func (s Secrets) For(kind string) string {
	switch kind {
	case KindStripe:
		return s.Stripe
	case KindGitHub:
		return s.GitHub
	case KindShopify:
		return s.Shopify
	case KindStandardWebhooks:
		return s.Billing
	}
	return ""
}

// wrongSecret is a well-formed secret that is not the configured one.
func wrongSecret(kind string) string {
	if kind == KindStandardWebhooks {
		return "whsec_d3Jvbmctc2VjcmV0LWZvci1sb2FkLXRlc3Q="
	}
	return "wrong-secret-for-load-test"
}

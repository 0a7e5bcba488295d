package source

import (
	"fmt"
	"net/http"
)

// applyKindDefaults fills in where each provider puts its event metadata,
// leaving anything the file sets alone. Every kind has its own case: a kind
// without one is an error, not the hmac defaults (it used to fall into them
// silently, schema version v1 included).
func (s *Source) applyKindDefaults() error {
	def := func(f *Field, d Field) {
		if f.Header == "" && f.Pointer == "" && len(f.Fallback) == 0 {
			f.Header, f.Pointer, f.Fallback, f.pointerFirst, f.headerAlt = d.Header, d.Pointer, d.Fallback, d.pointerFirst, d.headerAlt
		}
		if f.Default == "" {
			f.Default = d.Default
		}
	}
	switch s.Kind {
	case KindStripe:
		def(&s.EventType, Field{Pointer: "/type"})
		def(&s.EventID, Field{Pointer: "/id"})
		def(&s.SchemaVersion, Field{Pointer: "/api_version"})
		def(&s.OccurredAt, Field{Pointer: "/created"})
	case KindGitHub:
		// X-GitHub-Delivery names the event, not the attempt: a
		// redelivery keeps it, and so does the same event delivered to
		// another hook or GitHub App (with that one's payload). Hooks
		// pointed at one source therefore deliver one event; each hook
		// whose copies must all be kept needs a source of its own.
		def(&s.EventType, Field{Header: "X-GitHub-Event"})
		def(&s.EventID, Field{Header: "X-GitHub-Delivery"})
	case KindShopify:
		// The webhook id is the same on every retry of one delivery and
		// differs between deliveries, so it is safe as a compaction key.
		// X-Shopify-Event-Id (kept as a header) is shared by the
		// deliveries of one event to each subscription of its topic,
		// which may differ in API version and fields: as the key, the
		// raw topic would keep only one of them.
		// Each header also has an unprefixed name (Shopify-Topic, ...),
		// which Shopify's libraries read too; the signature is checked in
		// either (pkg/webhook).
		def(&s.EventType, Field{Header: "X-Shopify-Topic", headerAlt: "Shopify-Topic"})
		def(&s.EventID, Field{Header: "X-Shopify-Webhook-Id", headerAlt: "Shopify-Webhook-Id"})
		def(&s.SchemaVersion, Field{Header: "X-Shopify-API-Version", headerAlt: "Shopify-API-Version"})
		// From the signed body first: Shopify signs only the body, so a
		// header time can be set by whoever replays a captured delivery,
		// and the business time decides newest-wins. Topics whose body
		// has no updated_at (a deletion) keep X-Shopify-Triggered-At:
		// without a time they would not move the entity's, and a late
		// older update could bring a deleted entity back.
		def(&s.OccurredAt, Field{Pointer: "/updated_at", Header: "X-Shopify-Triggered-At", headerAlt: "Shopify-Triggered-At", pointerFirst: true})
	case KindStandardWebhooks:
		def(&s.EventType, Field{Pointer: "/type"})
		def(&s.EventID, Field{Header: "webhook-id"})
		def(&s.OccurredAt, Field{Pointer: "/timestamp"})
	case KindHMAC, KindNone:
		// From the signed body first: kind hmac signs only the body, so a
		// replayed delivery could carry a fresh X-Event-Id (a new event to
		// dedup) or another X-Event-Type. The headers serve bodies without
		// the field, or that are not JSON.
		def(&s.EventType, Field{Header: "X-Event-Type", Pointer: "/type", pointerFirst: true})
		def(&s.EventID, Field{Header: "X-Event-Id", Pointer: "/id", pointerFirst: true})
	default:
		return fmt.Errorf("kind %q: no metadata defaults for it in pkg/source (add its case to applyKindDefaults)", s.Kind)
	}
	if s.SchemaVersion.Default == "" {
		s.SchemaVersion.Default = DefaultSchemaVersion
	}
	return nil
}

// kindHeaders are the non-secret headers worth keeping for each kind:
// useful to operators and to handlers, never signatures. The correlation
// and trace headers come first: ingest keeps headers in this order up to a
// size bound, so a large User-Agent never displaces them.
func kindHeaders(kind string) []string {
	common := []string{"X-Correlation-Id", "Traceparent", "Tracestate", "User-Agent", "Content-Type"}
	switch kind {
	case KindGitHub:
		return append(common, "X-GitHub-Event", "X-GitHub-Delivery", "X-GitHub-Hook-Id", "X-GitHub-Hook-Installation-Target-Id")
	case KindShopify:
		return append(common, "X-Shopify-Topic", "X-Shopify-Shop-Domain", "X-Shopify-API-Version", "X-Shopify-Webhook-Id", "X-Shopify-Event-Id", "X-Shopify-Triggered-At",
			"Shopify-Topic", "Shopify-Shop-Domain", "Shopify-API-Version", "Shopify-Webhook-Id", "Shopify-Event-Id", "Shopify-Triggered-At")
	case KindStandardWebhooks:
		return append(common, "Webhook-Id", "Webhook-Timestamp")
	}
	return common
}

// signatureHeaders are never copied into envelopes. Envelope headers are
// an allowlist, kindHeaders plus the source's keep_headers; these names are
// taken out of it, so that a keep_headers entry naming one cannot copy a
// signature (or a credential) into every envelope, kept forever on the
// compacted raw topic. A signature is useless once verified, and one over
// the body alone (no timestamp) lets whoever reads it replay the delivery.
// Every kind's signature header belongs here: TestKindDefaults checks that
// no header whose value depends on the secret is kept.
func signatureHeaders(s *Source) []string {
	h := []string{"Stripe-Signature", "X-Hub-Signature", "X-Hub-Signature-256", "X-Shopify-Hmac-Sha256", "Shopify-Hmac-Sha256", "Webhook-Signature", "Authorization", "Cookie"}
	if s.HMAC.Header != "" {
		h = append(h, s.HMAC.Header)
	}
	return h
}

func canonical(h string) string { return http.CanonicalHeaderKey(h) }

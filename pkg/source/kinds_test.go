package source

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/webhook"
)

// kindCase is a delivery as a provider of one kind sends it, and the
// metadata the kind's defaults must find in it.
type kindCase struct {
	settings string      // more of the source's YAML, e.g. "hmac: {header: X-Sig}"
	secrets  [2]string   // two different signing secrets; none has none
	header   http.Header // the provider's headers other than the signature
	body     string
	want     Meta
}

// kindCases has a case for every kind in webhook.Kinds(): TestKindDefaults
// fails for a kind without one.
var kindCases = map[string]kindCase{
	KindStripe: {
		secrets: [2]string{"whsec_a", "whsec_b"},
		body:    `{"id":"evt_1","type":"invoice.paid","api_version":"2024-06-20","created":1719411023}`,
		want:    Meta{EventType: "invoice.paid", EventID: "evt_1", SchemaVersion: "2024-06-20", OccurredAt: unix(1719411023)},
	},
	KindGitHub: {
		secrets: [2]string{"a", "b"},
		header:  http.Header{"X-Github-Event": {"push"}, "X-Github-Delivery": {"d-1"}},
		body:    `{"ref":"refs/heads/main","id":"not-the-id","type":"not-the-type"}`,
		want:    Meta{EventType: "push", EventID: "d-1", SchemaVersion: "v1"},
	},
	KindShopify: {
		secrets: [2]string{"a", "b"},
		header: http.Header{"X-Shopify-Topic": {"orders/updated"}, "X-Shopify-Webhook-Id": {"wh-1"},
			"X-Shopify-Api-Version": {"2025-01"}, "X-Shopify-Triggered-At": {"2030-01-01T00:00:00Z"}},
		body: `{"id":1,"updated_at":"2025-01-10T12:00:00-05:00"}`,
		want: Meta{EventType: "orders/updated", EventID: "wh-1", SchemaVersion: "2025-01", OccurredAt: unix(1736528400)},
	},
	KindStandardWebhooks: {
		secrets: [2]string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_YmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJi"},
		header:  http.Header{"Webhook-Id": {"msg_1"}},
		body:    `{"type":"user.created","timestamp":"2025-01-02T03:04:05Z","id":"not-the-id","data":{}}`,
		want:    Meta{EventType: "user.created", EventID: "msg_1", SchemaVersion: "v1", OccurredAt: unix(1735787045)},
	},
	KindHMAC: {
		settings: "hmac: {header: X-Sig}",
		secrets:  [2]string{"a", "b"},
		header:   http.Header{"X-Event-Type": {"not-the-type"}, "X-Event-Id": {"not-the-id"}},
		body:     `{"type":"thing.done","id":"e1"}`,
		want:     Meta{EventType: "thing.done", EventID: "e1", SchemaVersion: "v1"},
	},
	KindNone: {
		body: `{"type":"thing.done","id":"e1"}`,
		want: Meta{EventType: "thing.done", EventID: "e1", SchemaVersion: "v1"},
	},
}

func unix(s int64) *time.Time {
	t := time.Unix(s, 0).UTC()
	return &t
}

// TestKindDefaults: every kind pkg/webhook knows parses in a sources file
// (so applyKindDefaults has its case), its defaults find the type, id,
// schema version and business time of a signed delivery, and no header
// whose value depends on the secret (the signature) is kept in envelopes,
// even when keep_headers names it (so signatureHeaders lists it).
func TestKindDefaults(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	for _, kind := range webhook.Kinds() {
		t.Run(kind, func(t *testing.T) {
			c, ok := kindCases[kind]
			if !ok {
				t.Fatalf("kind %q has no case in kindCases (pkg/source/kinds_test.go): add a delivery and the metadata its defaults must find", kind)
			}
			parse := func(secret string, keep []string) *Source {
				t.Helper()
				var b strings.Builder
				fmt.Fprintf(&b, "sources:\n  s:\n    kind: %s\n", kind)
				if kind != KindNone {
					t.Setenv("T_KIND_SECRET", secret)
					b.WriteString("    secrets_env: [T_KIND_SECRET]\n")
				}
				if c.settings != "" {
					b.WriteString("    " + c.settings + "\n")
				}
				if len(keep) > 0 {
					fmt.Fprintf(&b, "    keep_headers: [%s]\n", strings.Join(keep, ", "))
				}
				f, err := Parse([]byte(b.String()))
				if err != nil {
					t.Fatalf("Parse kind %s: %v", kind, err)
				}
				src, _ := f.Get("s")
				return src
			}
			sign := func(src *Source, h http.Header) http.Header {
				t.Helper()
				if err := src.Provider().Sign(h, []byte(c.body), now); err != nil {
					t.Fatalf("Sign: %v", err)
				}
				if err := src.Provider().Verify(h, []byte(c.body), now); err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return h
			}

			src := parse(c.secrets[0], nil)
			h := http.Header{}
			for name, vs := range c.header {
				h[name] = slices.Clone(vs)
			}
			h = sign(src, h)
			m, err := src.Extract(h, []byte(c.body))
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			if m.EventType != c.want.EventType || m.EventID != c.want.EventID || m.SchemaVersion != c.want.SchemaVersion {
				t.Errorf("type, id, version = %q, %q, %q; want %q, %q, %q",
					m.EventType, m.EventID, m.SchemaVersion, c.want.EventType, c.want.EventID, c.want.SchemaVersion)
			}
			if (m.OccurredAt == nil) != (c.want.OccurredAt == nil) || m.OccurredAt != nil && !m.OccurredAt.Equal(*c.want.OccurredAt) {
				t.Errorf("occurred_at = %v, want %v", m.OccurredAt, c.want.OccurredAt)
			}

			// The signature headers: those whose value changes with the
			// secret (the same body, time and, for Standard Webhooks,
			// message id signed with the other secret).
			other := sign(parse(c.secrets[1], nil), h.Clone())
			var sigs []string
			for name, vs := range h {
				if !slices.Equal(vs, other[name]) {
					sigs = append(sigs, name)
				}
			}
			if kind != KindNone && len(sigs) == 0 {
				t.Fatalf("no header Sign sets depends on the secret: %v", h)
			}
			var names []string
			for name := range h {
				names = append(names, name)
			}
			slices.Sort(names)
			kept := parse(c.secrets[0], names).KeptHeaders()
			for _, sig := range sigs {
				if slices.Contains(kept, sig) {
					t.Errorf("signature header %s is kept in envelopes when keep_headers names it: add it to signatureHeaders", sig)
				}
			}
			for _, name := range names {
				if !slices.Contains(sigs, name) && !slices.Contains(kept, name) {
					t.Errorf("header %s, named in keep_headers and no signature, is not kept", name)
				}
			}
		})
	}
}

// TestShopifyUnprefixedHeaders: a Shopify delivery may name its headers
// without the X- prefix (Shopify-Topic, Shopify-Hmac-Sha256, ...), as
// Shopify's own library reads them. Verified, its metadata must be found
// there too (it was not: "no event type"), and its signature never kept,
// even when keep_headers names it.
func TestShopifyUnprefixedHeaders(t *testing.T) {
	t.Setenv("T_SHOP_SECRET", "shh")
	f, err := Parse([]byte("sources:\n  shop:\n    kind: shopify\n    secrets_env: [T_SHOP_SECRET]\n    keep_headers: [Shopify-Hmac-Sha256]\n"))
	if err != nil {
		t.Fatal(err)
	}
	src, _ := f.Get("shop")
	body := []byte(`{"id":7}`)
	signed := http.Header{}
	if err := src.Provider().Sign(signed, body, time.Now()); err != nil {
		t.Fatal(err)
	}
	h := http.Header{
		"Shopify-Hmac-Sha256": signed.Values(webhook.ShopifyHeader),
		"Shopify-Topic":       {"orders/create"}, "Shopify-Webhook-Id": {"wh-9"},
		"Shopify-Api-Version": {"2025-01"}, "Shopify-Triggered-At": {"2025-01-10T12:00:00Z"},
	}
	if err := src.Provider().Verify(h, body, time.Now()); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	m, err := src.Extract(h, body)
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	if m.EventType != "orders/create" || m.EventID != "wh-9" || m.SchemaVersion != "2025-01" || m.OccurredAt == nil || !m.OccurredAt.Equal(time.Unix(1736510400, 0)) {
		t.Errorf("meta = %q, %q, %q, %v; want orders/create, wh-9, 2025-01, 2025-01-10T12:00:00Z", m.EventType, m.EventID, m.SchemaVersion, m.OccurredAt)
	}
	kept := src.KeptHeaders()
	if slices.Contains(kept, "Shopify-Hmac-Sha256") {
		t.Error("the unprefixed signature header is kept in envelopes")
	}
	for _, name := range []string{"Shopify-Topic", "Shopify-Webhook-Id", "Shopify-Event-Id"} {
		if !slices.Contains(kept, name) {
			t.Errorf("%s is not kept, as its X- name is", name)
		}
	}
}

package source

import (
	"strings"
	"testing"
)

// twoSources is a sources file of source a with entity_key ka and source
// b with entity_key kb (left out when empty: the default).
func twoSources(a, ka, b, kb string) []byte {
	entry := func(name, key string) string {
		s := "  " + name + ":\n    kind: none\n    events:\n      \"*\": {contract: c"
		if key != "" {
			s += ", entity_key: \"" + key + "\""
		}
		return s + "}\n"
	}
	return []byte("sources:\n" + entry(a, ka) + entry(b, kb))
}

// TestParseRefusesEntityKeysTwoSourcesShare: entity keys are one
// namespace for every source (Redis entity:<key>, lock:<key>, the state
// topic's key). A kind none source with entity_key "{/data/entity}"
// let anyone post {"data":{"entity":"stripe:pi:pi_1"}} and take over
// that payment intent: its state record, and a newest-wins time up to
// max_future ahead that made Stripe's real updates stale.
func TestParseRefusesEntityKeysTwoSourcesShare(t *testing.T) {
	for name, doc := range map[string][]byte{
		"no literal":                                     twoSources("stripe", "stripe:pi:{/data/object/id}", "crm", "{/data/entity}"),
		"a literal another one extends":                  twoSources("stripe", "stripe:pi:{/data/object/id}", "crm", "stripe:{/id}"),
		"the default, named as another's literal starts": twoSources("shop", "shopify:order:{/id}", "shopify", ""),
		"$source, named as another's literal starts":     twoSources("shop", "shopify:order:{/id}", "shopify", "{$source}:order:{/id}"),
		"a placeholder first":                            twoSources("shop", "shopify:order:{/id}", "crm", "{$event_type}:{/id}"),
		"the same fixed text":                            twoSources("shop", "order:{/id}", "crm", "order:{/id}"),
	} {
		_, err := Parse(doc, WithoutSecrets())
		if err == nil || !strings.Contains(err.Error(), "can render the same key as") {
			t.Errorf("%s: %v, want it refused:\n%s", name, err, doc)
		}
	}
	for name, doc := range map[string][]byte{
		"literals of their own":          twoSources("stripe", "stripe:pi:{/data/object/id}", "crm", "crm:{/data/entity}"),
		"$source in both":                twoSources("stripe", "{$source}:{/id}", "crm", "{$source}:{/id}"),
		"the defaults":                   twoSources("stripe", "", "crm", ""),
		"ends of their own":              twoSources("stripe", "{/id}:stripe", "crm", "{/id}:crm"),
		"a name that is another's start": twoSources("shop", "shop:{/id}", "shopify", "shopify:{/id}"),
	} {
		if _, err := Parse(doc, WithoutSecrets()); err != nil {
			t.Errorf("%s: %v, want it accepted", name, err)
		}
	}
	t.Run("two sources of one provider may share entities when they say so", func(t *testing.T) {
		doc := "sources:\n  stripe:\n    kind: none\n    events:\n      \"*\": {contract: c, entity_key: \"stripe:pi:{/id}\"}\n" +
			"  stripe-backfill:\n    kind: none\n    share_entities_with: [stripe]\n    events:\n      \"*\": {contract: c, entity_key: \"stripe:pi:{/id}\"}\n"
		if _, err := Parse([]byte(doc), WithoutSecrets()); err != nil {
			t.Error(err)
		}
		bad := strings.Replace(doc, "share_entities_with: [stripe]", "share_entities_with: [strpe]", 1)
		if _, err := Parse([]byte(bad), WithoutSecrets()); err == nil || !strings.Contains(err.Error(), `share_entities_with: "strpe" is not another source`) {
			t.Errorf("a misspelt source in share_entities_with: %v", err)
		}
	})
	t.Run("entries of one source may share keys", func(t *testing.T) {
		doc := "sources:\n  shop:\n    kind: none\n    events:\n      \"orders/create\": {contract: c, entity_key: \"shopify:order:{/id}\"}\n" +
			"      \"orders/updated\": {contract: c, entity_key: \"shopify:order:{/id}\"}\n"
		if _, err := Parse([]byte(doc), WithoutSecrets()); err != nil {
			t.Error(err)
		}
	})
	t.Run("the shipped example passes", func(t *testing.T) {
		if _, err := Load("../../deploy/sources.example.yaml", WithoutSecrets()); err != nil {
			t.Error(err)
		}
	})
}

// Within one source, an entry without natural_key deduplicates on the
// event id (source:<event id>), and an entry with one on source:<natural
// key>: an order 42's natural key "42" and another type's event 42 were
// one dedup key, and the second of the two events was dropped as a
// duplicate. Parse refuses the mix (changing either key's format would let
// duplicates through an upgrade).
func TestNaturalKeyBesideEventIDKeys(t *testing.T) {
	const head = "sources:\n  shop:\n    kind: none\n    events:\n"
	for _, c := range []struct {
		name, events string
		refused      bool
	}{
		{"natural key beside the default", `      "order.*":
        contract: standardwebhooks/event
        natural_key: "{/order_id}"
      "customer.*":
        contract: standardwebhooks/event
`, true},
		{"natural key beside {$event_id}", `      "order.*":
        contract: standardwebhooks/event
        natural_key: "order:{/order_id}"
      "customer.*":
        contract: standardwebhooks/event
        natural_key: "{$event_id}"
`, true},
		{"event id keys only", `      "order.*":
        contract: standardwebhooks/event
        natural_key: "{$event_id}"
      "customer.*":
        contract: standardwebhooks/event
      "refund.*":
        contract: standardwebhooks/event
        natural_key: "{/id}"
`, false},
		{"natural keys only", `      "order.*":
        contract: standardwebhooks/event
        natural_key: "order:{/order_id}"
      "customer.*":
        contract: standardwebhooks/event
        natural_key: "customer:{/customer_id}"
`, false},
		{"one entry", `      "order.*":
        contract: standardwebhooks/event
        natural_key: "{/order_id}"
`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(head+c.events), WithoutSecrets())
			if c.refused && (err == nil || !strings.Contains(err.Error(), "natural_key")) {
				t.Errorf("Parse: %v, want the mix of natural and event-id dedup keys refused", err)
			}
			if !c.refused && err != nil {
				t.Errorf("Parse: %v", err)
			}
		})
	}
}

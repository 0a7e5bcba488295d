package processor_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/processor"
	"github.com/inletdev/inlet/pkg/processor/processortest"
	"github.com/inletdev/inlet/pkg/testenv"
)

// crmEvent is what anyone may post to a kind none source ("crm") taking
// Standard Webhooks bodies: data.entity names the entity, data.k the
// natural key.
func crmEvent(entity, k string, at time.Time) []byte {
	return fmt.Appendf(nil, `{"type":"customer.updated","timestamp":%q,"data":{"entity":%q,"k":%q}}`,
		at.UTC().Format(time.RFC3339), entity, k)
}

// TestSourcesCannotTouchEachOthersEvents: whoever can post to a kind none
// source sends it events naming another source's dedup and entity keys
// (its event id, "source:event-id", the entity key), dated within
// max_future. The other source's next real event is still processed, and
// is its entity's last: dedup keys carry their source's name (which holds
// no ":"), and entity keys their source's own text (source.Parse refuses
// templates of two sources that could meet; until 2026-11-30 a crm
// entity_key of "{/data/entity}" made this update stale).
func TestSourcesCannotTouchEachOthersEvents(t *testing.T) {
	t.Setenv("T_STRIPE_ISO", "whsec_x")
	stack := processortest.New(t, testenv.Embedded(t), `
sources:
  stripe:
    kind: stripe
    secrets_env: [T_STRIPE_ISO]
    events:
      "payment_intent.*":
        contract: stripe/payment_intent
        entity_key: "stripe:pi:{/data/object/id}"
        occurred_at: /created
  crm:
    kind: none
    events:
      "*":
        contract: standardwebhooks/event
        entity_key: "crm:{/data/entity}"
        natural_key: "{/data/k}"
        occurred_at: /timestamp
  erp:
    kind: none
    events:
      "no-natural-key":
        contract: standardwebhooks/event
        entity_key: "erp:{/data/entity}"
        occurred_at: /timestamp
`)
	now := time.Now()
	stack.Send(t, "stripe", "payment_intent.created", "evt_v1", processortest.StripePayment("evt_v1", "payment_intent.created", "pi_victim", now.Add(-10*time.Minute).Unix()))
	// Within max_future (1h): not refused as a future time.
	later := now.Add(50 * time.Minute)
	for i, k := range []string{"stripe:evt_v2", "evt_v2", "dedup:stripe:evt_v2"} {
		stack.Send(t, "crm", "customer.updated", fmt.Sprintf("crm-%d", i), crmEvent("stripe:pi:pi_victim", k, later))
	}
	for _, id := range []string{"evt_v2", "stripe:evt_v2"} {
		stack.Send(t, "erp", "no-natural-key", id, crmEvent("stripe:pi:pi_victim", "-", later))
	}
	stack.Run(t, "stripe's first event and the crm events", func(c *processor.Counts) bool { return processortest.Final(c) >= 6 })

	stack.Send(t, "stripe", "payment_intent.succeeded", "evt_v2", processortest.StripePayment("evt_v2", "payment_intent.succeeded", "pi_victim", now.Unix()))
	var stale, dup int64
	stack.Run(t, "stripe's second event", func(c *processor.Counts) bool {
		stale, dup = c.Total(processor.Stale), c.Total(processor.Duplicate)
		return processortest.Final(c) >= 1
	})
	if dup != 0 {
		t.Errorf("stripe's evt_v2 was dropped as a duplicate of a crm event")
	}
	last, err := stack.Redis.HGet(context.Background(), stack.Env.Prefix+":entity:stripe:pi:pi_victim", "event_id").Result()
	if err != nil {
		t.Fatal(err)
	}
	if stale != 0 || last != "evt_v2" {
		t.Errorf("stripe's evt_v2: stale %d, and the entity's last event is %q, want evt_v2", stale, last)
	}
}

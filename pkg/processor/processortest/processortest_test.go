package processortest_test

import (
	"os"
	"testing"

	"github.com/inletdev/inlet/pkg/processor"
	"github.com/inletdev/inlet/pkg/processor/processortest"
	"github.com/inletdev/inlet/pkg/testenv"
)

// A developer testing a handler for another provider sends that provider's
// events at the version its source reads: GitHub's ping is v1 (the github
// kind reads no version), and its contract reads v1 only. Send used to
// write every event at Stripe's 2024-06-20, so the ping went to the
// invalid topic with "no handler for version".
func TestSendVersionOfTheSource(t *testing.T) {
	t.Setenv("T_GITHUB_PT", "x")
	stack := processortest.New(t, testenv.Embedded(t), `
sources:
  github:
    kind: github
    secrets_env: [T_GITHUB_PT]
    events:
      ping:
        contract: github/ping
        entity_key: "github:hook:{/hook_id}"
  stripe:
    kind: stripe
    secrets_env: [T_GITHUB_PT]
    events:
      "payment_intent.*":
        contract: stripe/payment_intent
        entity_key: "stripe:pi:{/data/object/id}"
`)
	ping, err := os.ReadFile("../../../schemas/contracts/github/ping/fixtures/v1/ping.repository.json")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("from the source", func(t *testing.T) {
		if e := stack.Send(t, "github", "ping", "d-1", ping); e.SchemaVersion != "v1" {
			t.Errorf("github ping sent at schema version %q, want the github kind's v1", e.SchemaVersion)
		}
		if e := stack.Send(t, "stripe", "payment_intent.created", "evt_1", processortest.StripePayment("evt_1", "payment_intent.created", "pi_1", 1700000000)); e.SchemaVersion != "2024-06-20" {
			t.Errorf("stripe event sent at schema version %q, want its api_version 2024-06-20", e.SchemaVersion)
		}
		var processed, invalid int64
		stack.Run(t, "2 outcomes", func(c *processor.Counts) bool {
			processed, invalid = c.Total(processor.Processed), c.Total(processor.Invalid)
			return processortest.Final(c) >= 2
		})
		if processed != 2 || invalid != 0 {
			t.Errorf("processed %d, invalid %d: want both processed", processed, invalid)
		}
	})
	t.Run("from the caller", func(t *testing.T) {
		if e := stack.SendVersion(t, "github", "ping", "v9", "d-2", ping); e.SchemaVersion != "v9" {
			t.Errorf("SendVersion v9 sent at %q", e.SchemaVersion)
		}
		var invalid int64
		stack.Run(t, "1 outcome", func(c *processor.Counts) bool {
			invalid = c.Total(processor.Invalid)
			return processortest.Final(c) >= 1
		})
		if invalid != 1 {
			t.Errorf("a ping at v9, which github/ping does not read: invalid %d, want 1", invalid)
		}
	})
}

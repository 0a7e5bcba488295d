package processor

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/testenv"
)

// processWithin bounds how long after Kafka takes the processor's writes
// again its first event is processed. Measured with the workers'
// MetadataMinAge of 250 ms: 0.27 s when produces were refused, 15–35 ms
// when their connections dropped; with franz-go's default 5 s, 4.0 s and
// 4.7 s.
const processWithin = time.Second

// TestKafkaBackIsProcessedAtOnce: after a short outage in which Kafka
// refused the worker's transactional produces (NOT_ENOUGH_REPLICAS, as a
// broker short of in-sync replicas answers) or dropped their
// connections, the batch in hand is processed within processWithin of
// Kafka taking them again. franz-go retries such a partition at its next
// metadata refresh, not after its retry backoff, and the batch's End
// waits for it: with a refresh no sooner than 5 s after the previous one
// (franz-go's default MetadataMinAge), every worker stalled that long
// after each broker blip.
func TestKafkaBackIsProcessedAtOnce(t *testing.T) {
	for _, mode := range []string{"refused", "dropped"} {
		t.Run(mode, func(t *testing.T) {
			env := testenv.Embedded(t)
			h := newHarness(t, env)
			txnID := "inlet-processor-" + env.Prefix + "-back"
			// The outage lasts two refused produces: the first may come
			// long after the client's last metadata refresh, the second
			// comes right after one (the refresh that let it through).
			const refusals = 2
			out := env.FailProduces(t, mode == "dropped", func(req *kmsg.ProduceRequest) bool {
				return req.TransactionID != nil && strings.HasPrefix(*req.TransactionID, txnID)
			}, refusals)
			h.start("back", func(c *Config) { c.Workers = 1 })
			h.send("stripe", "payment_intent.succeeded", "evt_before", "2024-06-20", envelope.ChannelWebhook, paymentIntent("evt_before", "pi_before", "succeeded", 1700000000))
			h.waitAll(1)

			out.Down()
			h.send("stripe", "payment_intent.succeeded", "evt_down", "2024-06-20", envelope.ChannelWebhook, paymentIntent("evt_down", "pi_down", "succeeded", 1700000001))
			testenv.Eventually(t, 30*time.Second, fmt.Sprintf("%d produces refused", refusals), func() bool { return !out.UpAt().IsZero() })
			back := out.UpAt()
			testenv.Eventually(t, 30*time.Second, "the event written during the outage processed", func() bool { return h.all() >= 2 })
			took := time.Since(back)
			t.Logf("first outcome %v after Kafka took the processor's produces again", took.Round(time.Millisecond))
			if took > processWithin {
				t.Fatalf("first outcome %v after Kafka took the processor's produces again, want within %v", took.Round(time.Millisecond), processWithin)
			}
			if n := h.total(Processed); n != 2 {
				t.Fatalf("processed %d, want 2", n)
			}
		})
	}
}

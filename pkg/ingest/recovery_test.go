package ingest

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/testenv"
)

// recoverWithin bounds how long ingest keeps answering 503 once Kafka
// takes produces again after a short outage. Measured here with
// ProducerOpts (MetadataMinAge 250 ms): 0.20–0.27 s, whether produces
// were refused or their connections dropped; with franz-go's default
// 5 s, 4.7–4.9 s (13–15 webhooks answered 503 first).
const recoverWithin = time.Second

// TestKafkaBackIsAcceptedAtOnce: after a short outage in which every
// producer client had a produce refused on every partition of the raw
// topic, the first webhook accepted comes within recoverWithin of Kafka
// taking produces again. A partition refused with a retriable error
// (NOT_ENOUGH_REPLICAS, as a broker short of in-sync replicas answers)
// waited for franz-go's next metadata refresh, no sooner than 5 s after
// the previous one (its MetadataMinAge), and 503s went on for that long
// after every broker blip.
func TestKafkaBackIsAcceptedAtOnce(t *testing.T) {
	for _, mode := range []string{"refused", "dropped"} {
		t.Run(mode, func(t *testing.T) {
			env := testenv.Embedded(t)
			h := newHarness(t, env, func(c *Config) { c.AckTimeout = 300 * time.Millisecond })
			out := env.FailProduces(t, mode == "dropped", nil, 0)
			testenv.Eventually(t, 10*time.Second, "a webhook accepted before the outage", func() bool {
				return do(t, h.signed(t, "stripe", stripeEvent(fmt.Sprintf("evt_before_%d", time.Now().UnixNano())), nil)).status == http.StatusAccepted
			})

			// One event for each (client, partition): every client has
			// a write to every partition refused. Sent together, so the
			// outage lasts about one ack deadline.
			const partitions = 3 // testenv's
			clients := len(h.srv.kafka)
			ids := map[[2]int]string{}
			for i := 0; len(ids) < clients*partitions; i++ {
				id := fmt.Sprintf("evt_down_%d", i)
				r := &kgo.Record{Key: []byte(envelope.IdempotencyKey("stripe", id))}
				ids[[2]int{h.srv.kafka.index(r), keyHash.Partition(r, partitions)}] = id
			}
			out.Down()
			var wg sync.WaitGroup
			statuses := make(chan string, len(ids))
			for _, id := range ids {
				wg.Go(func() {
					if a := do(t, h.signed(t, "stripe", stripeEvent(id), nil)); a.status != http.StatusServiceUnavailable {
						statuses <- fmt.Sprintf("%s answered %d while Kafka refused produces, want 503 (%s)", id, a.status, a.raw)
					}
				})
			}
			wg.Wait()
			close(statuses)
			for s := range statuses {
				t.Error(s)
			}
			if t.Failed() {
				return
			}

			out.Up()
			back := out.UpAt()
			refused := 0
			testenv.Eventually(t, 15*time.Second, "a webhook accepted with Kafka back", func() bool {
				a := do(t, h.signed(t, "stripe", stripeEvent(fmt.Sprintf("evt_after_%d", refused)), nil))
				if a.status != http.StatusAccepted {
					refused++
				}
				return a.status == http.StatusAccepted
			})
			took := time.Since(back)
			t.Logf("first webhook accepted %v after Kafka took produces again (%d not accepted before it)", took.Round(time.Millisecond), refused)
			if took > recoverWithin {
				t.Fatalf("first webhook accepted %v after Kafka took produces again (%d not accepted before it), want within %v", took.Round(time.Millisecond), refused, recoverWithin)
			}
		})
	}
}

package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/testenv"
)

// TestSoakKafkaOutagesAndDisconnectsLeakNothing cycles a Kafka outage and
// its recovery three times, with webhooks and batches answered 503 while it
// lasts, senders that hang up while their request waits for the ack, and
// senders that hang up halfway through their body. Goroutines and open
// fds must come back to where they were after warm-up: anything a request
// or an outage leaves behind adds up over weeks of a service's life.
func TestSoakKafkaOutagesAndDisconnectsLeakNothing(t *testing.T) {
	env := testenv.Embedded(t)
	// The producers retry every 20 ms, and close a connection idle for a
	// second: franz-go opens one after an outage, kept idle until its
	// reaper closes it (up to twice the 20 s default), which is not a
	// leak and which this test must not wait for.
	h := newHarnessDeps(t, env, testSources, func(c *Config) { c.AckTimeout = 300 * time.Millisecond }, func(d *Deps) {
		p, err := NewProducers(DefaultConfig().Producers, kgo.SeedBrokers(env.Brokers...), kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }), kgo.ConnIdleTimeout(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		d.Kafka = p
	})
	// Produces refused with a retriable error, as a broker short of
	// in-sync replicas answers: the connection stays up, and the
	// producer is back at its next metadata refresh (ProducerOpts'
	// MetadataMinAge; see TestKafkaBackIsAcceptedAtOnce).
	out := env.FailProduces(t, false, nil, 0)
	batch := func(id string) []byte {
		return fmt.Appendf(nil, `{"id":%q,"type":"invoice.paid","occurred_at":"2025-01-01T00:00:00Z","data":{"id":"inv_%s"}}`, id, id)
	}
	// traffic sends webhooks and a batch: while Kafka is down each must be
	// answered 503; once it is back each is sent until accepted (the
	// producer's first writes after an outage may still miss the ack
	// deadline).
	traffic := func(round int, up bool) {
		t.Helper()
		for i := range 3 {
			id := fmt.Sprintf("evt_%d_%t_%d", round, up, i)
			if !up {
				if a := do(t, h.signed(t, "stripe", stripeEvent(id), nil)); a.status != http.StatusServiceUnavailable {
					t.Fatalf("round %d, Kafka down: webhook status %d, want 503 (%s)", round, a.status, a.raw)
				}
				continue
			}
			testenv.Eventually(t, 15*time.Second, "a webhook accepted with Kafka back", func() bool {
				return do(t, h.signed(t, "stripe", stripeEvent(id), nil)).status == http.StatusAccepted
			})
		}
		id := fmt.Sprintf("b_%d_%t", round, up)
		if !up {
			if status, br, _ := postBatch(t, h, "/events/billing", "Bearer batch-token-1-0123456789", batch(id), ""); status != http.StatusServiceUnavailable {
				t.Fatalf("round %d, Kafka down: batch status %d, want 503 (%+v)", round, status, br)
			}
			return
		}
		testenv.Eventually(t, 15*time.Second, "a batch accepted with Kafka back", func() bool {
			status, _, _ := postBatch(t, h, "/events/billing", "Bearer batch-token-1-0123456789", batch(id), "")
			return status == http.StatusOK
		})
	}
	// hangUp sends a webhook and leaves before its answer (Kafka down: it
	// waits for the ack).
	hangUp := func(id string) {
		t.Helper()
		req := h.signed(t, "stripe", stripeEvent(id), nil)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		resp, err := http.DefaultClient.Do(req.WithContext(ctx))
		if err == nil {
			resp.Body.Close()
			t.Fatalf("%s: answered %d before the sender left, want the sender to leave first", id, resp.StatusCode)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
	}
	// halfBody declares a body and closes the connection halfway through.
	halfBody := func(id string) {
		t.Helper()
		body := stripeEvent(id)
		req := h.signed(t, "stripe", body, nil)
		conn, err := net.Dial("tcp", req.URL.Host)
		if err != nil {
			t.Fatal(err)
		}
		var head bytes.Buffer
		fmt.Fprintf(&head, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", req.URL.Path, req.URL.Host, len(body))
		_ = req.Header.Write(&head)
		head.WriteString("\r\n")
		head.Write(body[:len(body)/2])
		if _, err := conn.Write(head.Bytes()); err != nil {
			t.Fatal(err)
		}
		conn.Close()
	}
	tidy := http.DefaultClient.CloseIdleConnections

	traffic(0, true)
	testenv.Eventually(t, 10*time.Second, "readyz to pass", func() bool {
		resp, err := http.Get(h.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	tidy()
	base := testenv.TakeBaseline()
	// Three rounds: a leak of one per round is past the tolerance by
	// then.
	const rounds = 3
	for round := 1; round <= rounds; round++ {
		out.Down()
		traffic(round, false)
		hangUp(fmt.Sprintf("evt_gone_%d", round))
		halfBody(fmt.Sprintf("evt_half_%d", round))
		out.Up()
		traffic(round, true)
	}
	base.Settled(t, 2, 10*time.Second, fmt.Sprintf("after %d Kafka outages with traffic and hang-ups", rounds), tidy)
}

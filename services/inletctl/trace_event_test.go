package main

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/testenv"
)

// TestCorrelationOfOnASlowLink: over a link where every new connection
// takes over a second (a remote cluster behind TLS/SASL), the lookup still
// finds the event; it used to stop at the first poll that brought nothing
// within a second and say the event was never received.
func TestCorrelationOfOnASlowLink(t *testing.T) {
	env := testenv.Embedded(t)
	topics := env.CreateTopics(t, nil)
	ctx := context.Background()
	rec := &kgo.Record{Topic: topics.Raw, Key: []byte("stripe:evt_slow"), Value: []byte("x"),
		Headers: []kgo.RecordHeader{{Key: "correlation-id", Value: []byte("corr-slow")}}}
	if err := env.Client(t, kgo.ProducerLinger(0)).ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	slow := kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
		select {
		case <-time.After(1200 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		var d net.Dialer
		return d.DialContext(ctx, network, host)
	})
	corr, err := correlationOf(ctx, []kgo.Opt{kgo.SeedBrokers(env.Brokers...), slow}, topics.Raw, "stripe:evt_slow")
	if err != nil || corr != "corr-slow" {
		t.Fatalf("correlationOf = %q, %v; want corr-slow", corr, err)
	}
}

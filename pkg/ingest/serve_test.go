package ingest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/pkg/testenv"
)

// TestShutdownBeforeServe: a Shutdown that wins the race against Serve (a
// signal right at start-up) makes Serve return at once instead of serving
// with nobody left to stop it.
func TestShutdownBeforeServe(t *testing.T) {
	env := testenv.Embedded(t)
	setSecrets(t)
	sources, err := source.Parse([]byte(testSources))
	if err != nil {
		t.Fatal(err)
	}
	topics := env.CreateTopics(t, nil)
	codec, err := envelope.NewCodec(context.Background(), env.Registry(t), topics.RawSubject())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		srv, err := New(DefaultConfig(), Deps{Sources: sources, Codec: codec, RawTopic: topics.Raw, Kafka: env.Client(t, ProducerOpts()...), SR: env.Registry(t).SR()})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := srv.Shutdown(ctx); err != nil {
			t.Fatalf("shutdown %d: %v", i, err)
		}
		cancel()
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ln) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("serve after shutdown: %v", err)
			}
		case <-time.After(10 * time.Second):
			ln.Close()
			t.Fatal("Serve after Shutdown was still serving after 10s")
		}
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			c.Close()
			t.Fatal("the listener still accepts after Serve returned")
		}
	}
}

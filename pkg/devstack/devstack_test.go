package devstack

import (
	"context"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/registry"
)

func startStack(t *testing.T, dir string) *Stack {
	t.Helper()
	s, err := Start(Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func regClient(t *testing.T, url string) *registry.Client {
	t.Helper()
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	return registry.New(cl)
}

// A record written before a restart must decode after it: the registry keeps
// its IDs and Kafka its log.
func TestRestartKeepsRecordsAndSchemaIDs(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := startStack(t, dir)

	// Another subject first, so the envelope does not get ID 1 by luck.
	if _, _, err := regClient(t, s.RegistryURL).Register(ctx, "other-value", `{"type":"record","name":"Other","fields":[{"name":"x","type":"int"}]}`); err != nil {
		t.Fatal(err)
	}
	codec, err := envelope.NewCodec(ctx, regClient(t, s.RegistryURL), "t.raw-value")
	if err != nil {
		t.Fatal(err)
	}
	val, err := codec.Encode(&envelope.Envelope{ID: "1", Source: "s", EventType: "e", EventID: "x", IdempotencyKey: "s:x", Payload: []byte("{}"), Headers: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Kafka.CreateTopic("t.raw", 1, nil); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t.raw", Key: []byte("s:x"), Value: val}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	s.Close()

	s2 := startStack(t, dir)
	cl2, err := kgo.NewClient(kgo.SeedBrokers(s2.Brokers...), kgo.ConsumeTopics("t.raw"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	fs := cl2.PollFetches(ctx)
	if err := fs.Err0(); err != nil {
		t.Fatal(err)
	}
	recs := fs.Records()
	if len(recs) != 1 {
		t.Fatalf("got %d records after restart, want 1", len(recs))
	}
	codec2, err := envelope.NewCodec(ctx, regClient(t, s2.RegistryURL), "t.raw-value")
	if err != nil {
		t.Fatal(err)
	}
	if codec2.SchemaID() != codec.SchemaID() {
		t.Fatalf("envelope schema id changed across restart: %d → %d", codec.SchemaID(), codec2.SchemaID())
	}
	e, err := codec2.Decode(ctx, recs[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	if e.IdempotencyKey != "s:x" {
		t.Fatalf("decoded %+v", e)
	}
}

func TestRegistryRejectsIncompatibleSchemas(t *testing.T) {
	s := startStack(t, "")
	ctx := context.Background()
	rc := regClient(t, s.RegistryURL)
	v1 := `{"type":"record","name":"R","namespace":"compat","fields":[{"name":"a","type":"string"}]}`
	ok := `{"type":"record","name":"R","namespace":"compat","fields":[{"name":"a","type":"string"},{"name":"b","type":"int","default":0}]}`
	bad := `{"type":"record","name":"R","namespace":"compat","fields":[{"name":"a","type":"string"},{"name":"c","type":"int"}]}`
	if _, _, err := rc.Register(ctx, "r-value", v1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := rc.Register(ctx, "r-value", bad); err == nil {
		t.Fatal("incompatible schema was accepted")
	} else {
		var re *sr.ResponseError
		if !errors.As(err, &re) || re.ErrorCode != 409 {
			t.Fatalf("err = %v, want a 409 from the registry", err)
		}
	}
	if _, _, err := rc.Register(ctx, "r-value", ok); err != nil {
		t.Fatalf("compatible schema refused: %v", err)
	}
	res, err := rc.SR().CheckCompatibility(ctx, "r-value", -1, sr.Schema{Schema: bad})
	if err != nil {
		t.Fatal(err)
	}
	if res.Is {
		t.Fatal("compatibility endpoint says an incompatible schema is compatible")
	}
}

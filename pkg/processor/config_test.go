package processor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/flagenv"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/registry"
	"github.com/inletdev/inlet/pkg/testenv"
)

// TestConfigClaimLeaseCoversABatch: a batch holds its claims and entity
// locks for up to the batch deadline plus the drain timeout; a lease that
// ends sooner is refused at start.
func TestConfigClaimLeaseCoversABatch(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tc := range []struct {
		lease, deadline, drain time.Duration
		ok                     bool
	}{
		{60 * time.Second, 30 * time.Second, 20 * time.Second, true},
		{40 * time.Second, 30 * time.Second, 20 * time.Second, false}, // passed before: only the deadline was checked
		{50 * time.Second, 30 * time.Second, 20 * time.Second, false},
		{10 * time.Second, 5 * time.Second, 4 * time.Second, true},
		{60 * time.Second, 30 * time.Second, -time.Second, false},
	} {
		c := DefaultConfig()
		c.ClaimLease, c.BatchDeadline, c.DrainTimeout = tc.lease, tc.deadline, tc.drain
		err := c.Validate()
		if (err == nil) != tc.ok || (err != nil && !strings.Contains(err.Error(), "-claim-lease")) {
			t.Errorf("lease %v deadline %v drain %v: %v, want ok=%v", tc.lease, tc.deadline, tc.drain, err, tc.ok)
		}
	}
}

// TestEntityRetention: -entity-retention under an hour is refused at start
// (a unit slip, 30m for 30 days, would forget entities between retries);
// set, it is the entity hashes' TTL, started over by each event of the
// entity; 0 keeps them for good.
func TestEntityRetention(t *testing.T) {
	for d, ok := range map[time.Duration]bool{0: true, time.Hour: true, 2160 * time.Hour: true, 30 * time.Minute: false, -time.Hour: false} {
		c := DefaultConfig()
		c.EntityRetention = d
		if err := c.Validate(); (err == nil) != ok || err != nil && !strings.Contains(err.Error(), "-entity-retention") {
			t.Errorf("-entity-retention %v: %v, want ok=%v", d, err, ok)
		}
	}
	env := testenv.Embedded(t)
	h := newHarness(t, env)
	const retention = 72 * time.Hour
	h.start("a", func(c *Config) { c.EntityRetention = retention })
	h.send("stripe", "payment_intent.succeeded", "evt_ret", "2024-06-20", envelope.ChannelWebhook, paymentIntent("evt_ret", "pi_ret", "succeeded", 1700000000))
	h.waitAll(1)
	if n := h.total(Processed); n != 1 {
		t.Fatalf("processed %d, want 1", n)
	}
	keys, err := h.rdb.Keys(context.Background(), h.prefix+"entity:*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("entity keys %v, %v; want one", keys, err)
	}
	if ttl := h.rdb.PTTL(context.Background(), keys[0]).Val(); ttl > retention || ttl < retention-time.Minute {
		t.Fatalf("entity %s: PTTL %v, want %v", keys[0], ttl, retention)
	}
}

// TestConfigTxnTimeoutCoversABatch: a batch keeps its transaction open for
// up to the batch deadline plus the drain timeout; a transaction timeout
// that ends sooner (or none) is refused at start, not met at a commit.
func TestConfigTxnTimeoutCoversABatch(t *testing.T) {
	for _, tc := range []struct {
		txn, deadline, drain time.Duration
		ok                   bool
	}{
		{60 * time.Second, 30 * time.Second, 20 * time.Second, true}, // the defaults
		{50 * time.Second, 30 * time.Second, 20 * time.Second, false},
		{40 * time.Second, 30 * time.Second, 20 * time.Second, false},
		{10 * time.Second, 5 * time.Second, 4 * time.Second, true},
		{0, 5 * time.Second, 4 * time.Second, false}, // what a malformed INLET_TXN_TIMEOUT used to leave
		{-time.Second, 5 * time.Second, 4 * time.Second, false},
	} {
		c := DefaultConfig()
		c.TxnTimeout, c.BatchDeadline, c.DrainTimeout = tc.txn, tc.deadline, tc.drain
		err := c.Validate()
		if (err == nil) != tc.ok || (err != nil && !strings.Contains(err.Error(), "-txn-timeout")) {
			t.Errorf("txn timeout %v deadline %v drain %v: %v, want ok=%v", tc.txn, tc.deadline, tc.drain, err, tc.ok)
		}
	}
}

// TestDefaultConfigIgnoresEnv: DefaultConfig is the built-in defaults; a
// process reads the environment through RegisterFlags and a parsed set,
// which names a malformed variable instead of leaving a zero behind.
func TestDefaultConfigIgnoresEnv(t *testing.T) {
	t.Setenv("INLET_TXN_TIMEOUT", "sixty")
	t.Setenv("INLET_PROCESSOR_WORKERS", "two")
	t.Setenv("INLET_BATCH_DEADLINE", "30")
	c := DefaultConfig()
	if c.TxnTimeout != time.Minute || c.Workers != 2 || c.BatchDeadline != 30*time.Second {
		t.Fatalf("txn timeout %v, workers %d, batch deadline %v: want the defaults 1m0s, 2, 30s", c.TxnTimeout, c.Workers, c.BatchDeadline)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	fs := flagenv.New("t")
	var p Config
	p.RegisterFlags(fs)
	err := fs.Parse(nil)
	for _, env := range []string{"INLET_TXN_TIMEOUT", "INLET_PROCESSOR_WORKERS", "INLET_BATCH_DEADLINE"} {
		if err == nil || !strings.Contains(err.Error(), env) {
			t.Errorf("parse: %v, want an error naming %s", err, env)
		}
	}
}

// TestWaitOutNamesRefusedCredentials: a registry refusing our credentials
// also pauses the batch (it says nothing about the event), but is logged
// as an error naming what to fix, not as an outage that will pass.
func TestWaitOutNamesRefusedCredentials(t *testing.T) {
	var logs bytes.Buffer
	p := &Processor{log: slog.New(slog.NewJSONHandler(&logs, nil)), cfg: Config{BackoffMax: time.Millisecond}}
	denied := fmt.Errorf("register: %w", registry.ErrDenied)
	err := p.waitOut(context.Background(), context.Background(), time.Now(), "schema registry", func() (bool, error) {
		return registry.IsUnavailable(denied), denied
	})
	if !errors.Is(err, registry.ErrDenied) {
		t.Fatalf("err %v, want the denial past the deadline", err)
	}
	if !strings.Contains(logs.String(), `"level":"ERROR"`) || !strings.Contains(logs.String(), "refused our credentials") {
		t.Fatalf("log %s: want an error naming the credentials", logs.String())
	}
}

// TestConfigErrorsNameTheFlags: each setting Validate refuses is named as
// an operator sets it, flag and environment variable, with its value.
func TestConfigErrorsNameTheFlags(t *testing.T) {
	for _, tc := range []struct {
		set  func(*Config)
		want string
	}{
		{func(c *Config) { c.Group = "" }, "-group (INLET_PROCESSOR_GROUP) is empty"},
		{func(c *Config) { c.BatchSize = 0 }, "-batch-size (INLET_PROCESSOR_BATCH) 0: want 1 or more"},
		{func(c *Config) { c.Workers = -2 }, "-workers (INLET_PROCESSOR_WORKERS) -2: want 1 or more"},
		{func(c *Config) { c.ClaimLease = 500 * time.Millisecond }, "-claim-lease (INLET_CLAIM_LEASE) 500ms: want 1s or more"},
		{func(c *Config) { c.BatchDeadline = 0 }, "-batch-deadline (INLET_BATCH_DEADLINE) 0s"},
		{func(c *Config) { c.BackoffMax = -time.Second }, "-backoff-max (INLET_BACKOFF_MAX) -1s"},
	} {
		c := DefaultConfig()
		tc.set(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v; want it to say %q", err, tc.want)
		}
	}
}

// TestFetchMemoryBoundedOnCompressibleEvents guards FetchOpts' sizes: the
// fetch limits count compressed bytes, and 1000 KiB events snappy shrinks
// many times over (a body of repeated bytes, valid JSON under the default
// max_body) made one worker on 12 partitions hold 510–580 MiB of live heap
// with 4 MiB fetches; 320–340 MiB with FetchOpts' sizes.
func TestFetchMemoryBoundedOnCompressibleEvents(t *testing.T) {
	if testing.Short() || raceBuild() {
		t.Skip("memory test: -short, or -race (too slow for 240 MB of events, and it changes the heap)")
	}
	env := testenv.EmbeddedAt(t, t.TempDir()) // kfake keeps records on disk, off this heap
	adm := kadm.NewClient(env.Client(t))
	if err := kafka.EnsureTopics(t.Context(), adm, 12, -1, env.Topics(nil).Specs()); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, env)
	// As ingest writes: snappy batches of up to 4 MiB before compression.
	prod := env.Client(t, kgo.ProducerLinger(50*time.Millisecond), kgo.ProducerBatchMaxBytes(kafka.MaxMessageBytes),
		kgo.ProducerBatchCompression(kgo.SnappyCompression()))
	const n = 240
	pad := strings.Repeat("a", 1000<<10)
	for i := range n {
		id := fmt.Sprintf("evt_big_%d", i)
		payload := fmt.Appendf(nil, `{"id":%q,"object":"event","api_version":"2024-06-20","created":%d,"type":"payment_intent.succeeded","livemode":false,"data":{"object":{"id":"pi_big_%d","object":"payment_intent","status":"succeeded","amount":1200,"currency":"usd","customer":null,"metadata":{"order":%q}}}}`,
			id, 1700000000+i, i, pad)
		e := &envelope.Envelope{ID: id, Source: "stripe", EventType: "payment_intent.succeeded", EventID: id,
			IdempotencyKey: envelope.IdempotencyKey("stripe", id), SchemaVersion: "2024-06-20",
			ReceivedAt: time.Now().UTC().Truncate(time.Microsecond), CorrelationID: "corr-" + id, Channel: envelope.ChannelWebhook,
			Headers: map[string]string{}, Payload: payload, ContentType: "application/json"}
		val, err := h.codec.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		prod.Produce(context.Background(), &kgo.Record{Topic: h.topics.Raw, Key: []byte(e.IdempotencyKey), Value: val}, nil)
	}
	if err := prod.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	live := func() uint64 {
		s := []rtmetrics.Sample{{Name: "/gc/heap/live:bytes"}}
		rtmetrics.Read(s)
		return s[0].Value.Uint64()
	}
	base := live()
	var peak atomic.Uint64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(2 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				if v := live(); v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	}()
	h.start("a", func(c *Config) { c.Workers = 1 })
	h.waitAll(n)
	close(stop)
	<-done
	// A quarter of the old fetch size gave about 60% of the heap: the
	// decoded copies and outputs of a batch in hand do not shrink with it.
	grew := (peak.Load() - min(base, peak.Load())) >> 20
	t.Logf("live heap: %d MiB before, peak %d MiB while processing %d events of 1000 KiB", base>>20, peak.Load()>>20, n)
	if grew > 430 {
		t.Errorf("live heap grew by %d MiB processing compressible 1 MB events, want under 430 MiB (FetchOpts too large?)", grew)
	}
}

// raceBuild reports whether the test binary was built with -race.
func raceBuild() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// Package testenv gives tests the infrastructure they run against: the
// embedded dev stack by default, or real Kafka and Redis when
// INLET_KAFKA_BROKERS and INLET_REDIS_URL are set (the integration suite).
// The same test bodies run on both, so the embedded fakes cannot drift from
// the real systems unnoticed.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/inletdev/inlet/pkg/devstack"
	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/registry"
	"github.com/inletdev/inlet/pkg/testenv/poll"
)

// Env is one test's infrastructure.
type Env struct {
	Brokers     []string
	RegistryURL string
	RedisURL    string
	// Prefix is unique per Env, so tests sharing a real broker never see
	// each other's topics.
	Prefix string
	// Stack is the embedded stack (nil on real infrastructure, except the
	// registry, which is always embedded: no real one runs here).
	Stack *devstack.Stack
	Real  bool

	// services controls the real Kafka and Redis (Real only, and only when
	// that is safe: see Services); noControl says why it is nil.
	services  *Services
	noControl string
}

// Embedded starts an in-memory dev stack for t.
func Embedded(t testing.TB) *Env {
	t.Helper()
	return start(t, devstack.Config{}, false)
}

// EmbeddedAt starts a dev stack keeping its data in dir (for restart tests).
func EmbeddedAt(t testing.TB, dir string) *Env {
	t.Helper()
	return start(t, devstack.Config{DataDir: dir}, false)
}

// Real returns an Env on the Kafka and Redis named by INLET_KAFKA_BROKERS and
// INLET_REDIS_URL, and skips t when they are unset.
func Real(t testing.TB) *Env {
	t.Helper()
	brokers, redisURL := os.Getenv("INLET_KAFKA_BROKERS"), os.Getenv("INLET_REDIS_URL")
	if brokers == "" || redisURL == "" {
		t.Skip("INLET_KAFKA_BROKERS and INLET_REDIS_URL not set: integration test skipped (make test-integration starts them)")
	}
	e := start(t, devstack.Config{RedisURL: redisURL}, true)
	e.Brokers = strings.Split(brokers, ",")
	e.services, e.noControl = controlFor(e.Brokers, redisURL)
	return e
}

func start(t testing.TB, cfg devstack.Config, real bool) *Env {
	t.Helper()
	s, err := devstack.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &Env{
		Brokers:     s.Brokers,
		RegistryURL: s.RegistryURL,
		RedisURL:    s.RedisURL,
		Prefix:      "t" + hex.EncodeToString(b[:]),
		Stack:       s,
		Real:        real,
	}
}

// KafkaConfig is a kafka.Config for this Env.
func (e *Env) KafkaConfig() *kafka.Config {
	return &kafka.Config{Brokers: e.Brokers, ClientID: "inlet-test", TopicPrefix: e.Prefix, Partitions: 3, ReplicationFactor: -1}
}

// Topics are this Env's topic names with the given retry tiers (nil for the
// defaults).
func (e *Env) Topics(tiers []time.Duration) kafka.Topics {
	if tiers == nil {
		tiers = kafka.DefaultRetryTiers
	}
	return kafka.TopicNames(e.Prefix, tiers)
}

// CreateTopics creates the topics for tiers and deletes them when t ends
// (on a shared real broker).
func (e *Env) CreateTopics(t testing.TB, tiers []time.Duration) kafka.Topics {
	t.Helper()
	topics := e.Topics(tiers)
	cl := e.Client(t)
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, adm, 3, -1, topics.Specs()); err != nil {
		t.Fatal(err)
	}
	if e.Real {
		t.Cleanup(func() {
			var names []string
			for _, s := range topics.Specs() {
				names = append(names, s.Name)
			}
			dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer dcancel()
			_, _ = adm.DeleteTopics(dctx, names...)
		})
	}
	return topics
}

// Client returns a Kafka client for e, closed when t ends.
func (e *Env) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(e.Brokers...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Redis returns a client of e's Redis, closed when t ends.
func (e *Env) Redis(t testing.TB) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(e.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	opt.ContextTimeoutEnabled = true // as the services' clients (service.RedisOptions.NewClient)
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// Registry returns a schema registry client for e.
func (e *Env) Registry(t testing.TB) *registry.Client {
	t.Helper()
	cl, err := sr.NewClient(sr.URLs(e.RegistryURL))
	if err != nil {
		t.Fatal(err)
	}
	return registry.New(cl)
}

// Codec registers the envelope schema under topics' raw subject and
// returns the codec ingest would write with.
func (e *Env) Codec(t testing.TB, topics kafka.Topics) *envelope.Codec {
	t.Helper()
	codec, err := envelope.NewCodec(context.Background(), e.Registry(t), topics.RawSubject())
	if err != nil {
		t.Fatal(err)
	}
	return codec
}

// ReadTopic reads topic from the start until it has read want records or
// timeout passes, and returns what it read. Reads are read_committed, so
// aborted transactional writes are never counted.
func (e *Env) ReadTopic(t testing.TB, topic string, want int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	cl := e.Client(t,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s[%d]: %v", topic, p, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

// Eventually is poll.Eventually: cond polled every 20 ms until true, the
// test failed once timeout has passed.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	poll.Eventually(t, timeout, what, cond)
}

// ReadAll reads topic from the start until it has at least min records,
// has reached the topic's last stable offsets as of the call, and then
// nothing new arrives for quiet; it fails t if that takes past timeout. Use
// it to check that there is nothing extra (duplicates). The end offsets make
// a read with min 0 honest: quiet alone returned nothing when the first
// fetch took longer than quiet (a loaded machine), as if the topic were
// empty.
func (e *Env) ReadAll(t testing.TB, topic string, min int, quiet, timeout time.Duration) []*kgo.Record {
	t.Helper()
	cl := e.Client(t,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Control records are seen (not returned): a partition whose last
		// offset is a transaction marker is reached by it.
		kgo.KeepControlRecords(),
	)
	deadline := time.Now().Add(timeout)
	lctx, cancel := context.WithDeadline(context.Background(), deadline)
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(lctx, topic)
	if err == nil {
		err = starts.Error()
	}
	var ends kadm.ListedOffsets
	if err == nil {
		ends, err = adm.ListCommittedOffsets(lctx, topic)
	}
	if err == nil {
		err = ends.Error()
	}
	cancel()
	if err != nil {
		t.Fatalf("start and end offsets of %s: %v", topic, err)
	}
	behind := map[int32]int64{} // partition → end offset not reached yet
	ends.Each(func(o kadm.ListedOffset) {
		if s, ok := starts.Lookup(topic, o.Partition); ok && o.Offset > s.Offset {
			behind[o.Partition] = o.Offset
		}
	})
	var out []*kgo.Record
	for {
		wait := quiet
		if len(out) < min || len(behind) > 0 {
			wait = time.Until(deadline)
			if wait <= 0 {
				byPart := map[int32]int{}
				for _, r := range out {
					byPart[r.Partition]++
				}
				t.Fatalf("read %d records from %s (by partition %v), want at least %d; partitions short of their end offsets: %v\n%s", len(out), topic, byPart, min, behind, e.txnDiagnosis(topic))
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		fs := cl.PollFetches(ctx)
		cancel()
		recs := fs.Records()
		if len(recs) == 0 && len(out) >= min && len(behind) == 0 && ctx.Err() != nil {
			return out
		}
		for _, r := range recs {
			if end, ok := behind[r.Partition]; ok && r.Offset+1 >= end {
				delete(behind, r.Partition)
			}
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
		}
	}
}

package kafka

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestTopicNames(t *testing.T) {
	got := TopicNames("inlet", DefaultRetryTiers)
	want := []string{"inlet.retry.30s", "inlet.retry.2m", "inlet.retry.15m"}
	for i, w := range want {
		if got.Retry[i] != w {
			t.Errorf("retry[%d] = %s, want %s", i, got.Retry[i], w)
		}
	}
	if got.Raw != "inlet.raw" || got.DLQ != "inlet.dlq" || got.Audit != "inlet.ops.audit" {
		t.Errorf("names = %+v", got)
	}
	for d, w := range map[time.Duration]string{time.Second: "1s", 90 * time.Minute: "1h30m", 2 * time.Hour: "2h", 1500 * time.Millisecond: "1.5s"} {
		if n := TierName(d); n != w {
			t.Errorf("TierName(%v) = %s, want %s", d, n, w)
		}
	}
}

func TestEnsureTopicsIsIdempotentAndSetsConfigs(t *testing.T) {
	_, cl := clusterAndClient(t)
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	topics := TopicNames("t", DefaultRetryTiers)
	for range 2 {
		if err := EnsureTopics(ctx, adm, 3, -1, topics.Specs()); err != nil {
			t.Fatal(err)
		}
	}
	rc, err := adm.DescribeTopicConfigs(ctx, topics.Raw, topics.DLQ)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{topics.Raw: "compact", topics.DLQ: "delete"}
	for _, r := range rc {
		for _, cfg := range r.Configs {
			if cfg.Key == "cleanup.policy" && cfg.MaybeValue() != want[r.Name] {
				t.Errorf("%s cleanup.policy = %s, want %s", r.Name, cfg.MaybeValue(), want[r.Name])
			}
		}
	}
	td, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(td[topics.Raw].Partitions); n != 3 {
		t.Errorf("raw partitions = %d, want 3", n)
	}
}

// TestEnsureTopicsWithoutCreatePermission: a principal refused every
// CreateTopics (no CREATE on the cluster) starts when the topics exist,
// and is told which topic it could not create when one does not.
func TestEnsureTopicsWithoutCreatePermission(t *testing.T) {
	c, cl := clusterAndClient(t)
	ctx := context.Background()
	topics := TopicNames("t", DefaultRetryTiers)
	specs := topics.Specs()
	if err := EnsureTopics(ctx, kadm.NewClient(cl), 3, -1, specs); err != nil {
		t.Fatal(err)
	}
	// Another client, as a restarted service: franz-go answers a metadata
	// request from what it learnt in the last seconds.
	cl2, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl2.Close)
	adm := kadm.NewClient(cl2)
	c.ControlKey(int16(kmsg.CreateTopics), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.CreateTopicsRequest)
		resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewCreateTopicsResponseTopic()
			st.Topic = rt.Topic
			st.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	if err := EnsureTopics(ctx, adm, 3, -1, specs); err != nil {
		t.Fatalf("all topics exist: %v", err)
	}
	extra := append(specs, TopicSpec{Name: "t.new"})
	err = EnsureTopics(ctx, adm, 3, -1, extra)
	if !errors.Is(err, kerr.TopicAuthorizationFailed) || !strings.Contains(err.Error(), "t.new") || strings.Contains(err.Error(), topics.Raw) {
		t.Fatalf("a missing topic not allowed to be created: %v; want an authorization error naming t.new only", err)
	}
}

func TestParseRetryTiers(t *testing.T) {
	got, err := ParseRetryTiers([]string{"30s", " 2m", "1h30m"})
	if err != nil || !slices.Equal(got, []time.Duration{30 * time.Second, 2 * time.Minute, 90 * time.Minute}) {
		t.Fatalf("ParseRetryTiers = %v, %v", got, err)
	}
	if got, err := ParseRetryTiers(nil); err != nil || len(got) != 0 {
		t.Fatalf("no tiers: %v, %v", got, err)
	}
	for _, bad := range []string{"soon", "0s", "-5s", "30"} {
		if _, err := ParseRetryTiers([]string{"30s", bad}); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("%q: error %v, want one naming it", bad, err)
		}
	}
}

// TestEnsureTopicsLeavesTheClientSeeingThem: the client that created a
// topic can list its offsets at once. franz-go answered from the listing
// made before the creation (topic unknown) for a second, and a replay
// failed on its new topic with UNKNOWN_TOPIC_OR_PARTITION.
func TestEnsureTopicsLeavesTheClientSeeingThem(t *testing.T) {
	_, cl := clusterAndClient(t)
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	if err := EnsureTopics(ctx, adm, 3, -1, []TopicSpec{{Name: "t.fresh", Configs: map[string]string{"cleanup.policy": "delete"}}}); err != nil {
		t.Fatal(err)
	}
	starts, err := adm.ListStartOffsets(ctx, "t.fresh")
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		t.Fatalf("start offsets of the topic just created: %v", err)
	}
}

// TestEnsureTopicsReturnsOnceServed: a real broker (KRaft) answers a
// CreateTopics once the controller has the topic, and serves the topic
// only once it has applied that: in between, UNKNOWN_TOPIC_OR_PARTITION.
// EnsureTopics returned in between, and the first read of a topic just
// made by another client failed (ops' requeue on the audit topic, in CI).
// Here the cluster refuses the first lookups of the topic's offsets as
// such a broker does; once EnsureTopics returns, another client must be
// served.
func TestEnsureTopicsReturnsOnceServed(t *testing.T) {
	c, cl := clusterAndClient(t)
	var refused atomic.Int32
	c.ControlKey(int16(kmsg.ListOffsets), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if refused.Load() >= 3 {
			return nil, nil, false
		}
		refused.Add(1)
		req := kreq.(*kmsg.ListOffsetsRequest)
		resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewListOffsetsResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewListOffsetsResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	ctx := context.Background()
	if err := EnsureTopics(ctx, kadm.NewClient(cl), 3, -1, []TopicSpec{{Name: "t.lagging"}}); err != nil {
		t.Fatal(err)
	}
	other, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	starts, err := kadm.NewClient(other).ListStartOffsets(ctx, "t.lagging")
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		t.Fatalf("another client's first read of the topic EnsureTopics made: %v (refused %d lookups before)", err, refused.Load())
	}
}

// TestMinInsyncAndDurability: topics created with WithMinInsync hold
// that min.insync.replicas, and CheckDurability lists the topics that
// would acknowledge an acks=all write held by one broker: replicated ones
// created without it (the broker's default, 1) or set to 1, and one of a
// single replica on this cluster of three brokers; not one that does not
// exist.
func TestMinInsyncAndDurability(t *testing.T) {
	_, cl := clusterOf(t, 3)
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	topics := TopicNames("d", DefaultRetryTiers)
	specs := WithMinInsync(topics.Specs(), 2)
	if _, ok := topics.Specs()[0].Configs["min.insync.replicas"]; ok {
		t.Fatal("WithMinInsync changed the specs it was given")
	}
	if err := EnsureTopics(ctx, adm, 3, 3, specs); err != nil {
		t.Fatal(err)
	}
	rc, err := adm.DescribeTopicConfigs(ctx, topics.Raw, topics.Processed)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rc {
		for _, cfg := range r.Configs {
			if cfg.Key == "min.insync.replicas" && cfg.MaybeValue() != "2" {
				t.Errorf("%s min.insync.replicas = %s, want 2", r.Name, cfg.MaybeValue())
			}
		}
	}
	names := []string{"weak", "one", "set-to-one"}
	if err := EnsureTopics(ctx, adm, 1, 3, []TopicSpec{{Name: "weak"}}); err != nil {
		t.Fatal(err)
	}
	if err := EnsureTopics(ctx, adm, 1, 1, []TopicSpec{{Name: "one"}}); err != nil {
		t.Fatal(err)
	}
	if err := EnsureTopics(ctx, adm, 1, 2, []TopicSpec{{Name: "set-to-one", Configs: map[string]string{"min.insync.replicas": "1"}}}); err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		names = append(names, s.Name)
	}
	got, err := CheckDurability(ctx, adm, append(names, "missing")...)
	if err != nil {
		t.Fatal(err)
	}
	want := []Undurable{{Topic: "one", Replication: 1, Brokers: 3}, {Topic: "set-to-one", Replication: 2, MinInsyncReplicas: 1}, {Topic: "weak", Replication: 3, MinInsyncReplicas: 1}}
	if !slices.Equal(got, want) {
		t.Fatalf("CheckDurability: %v, want %v", got, want)
	}
	if got[2].String() != "weak (replication 3, min.insync.replicas 1)" {
		t.Errorf("String: %q", got[2])
	}
	if got[0].String() != "one (replication 1 on a cluster of 3 brokers)" || !got[0].Unreplicated() || got[2].Unreplicated() {
		t.Errorf("String: %q, Unreplicated %v %v", got[0], got[0].Unreplicated(), got[2].Unreplicated())
	}
}

// TestDurabilityOneBroker: on a cluster of one broker (development), a
// topic of one replica is all there can be, and is not listed.
func TestDurabilityOneBroker(t *testing.T) {
	_, cl := clusterOf(t, 1)
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	if err := EnsureTopics(ctx, adm, 3, 1, []TopicSpec{{Name: "dev"}}); err != nil {
		t.Fatal(err)
	}
	got, err := CheckDurability(ctx, adm, "dev")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("CheckDurability on one broker: %v, want nothing", got)
	}
}

// clusterAndClient is a one-broker kfake cluster and a client of it, both
// closed when t ends.
func clusterAndClient(t *testing.T) (*kfake.Cluster, *kgo.Client) {
	t.Helper()
	return clusterOf(t, 1)
}

// clusterOf is clusterAndClient with brokers brokers.
func clusterOf(t *testing.T, brokers int) (*kfake.Cluster, *kgo.Client) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(brokers))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return c, cl
}

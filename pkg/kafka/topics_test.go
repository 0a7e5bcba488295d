package kafka

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
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
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
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

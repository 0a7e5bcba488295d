package replay

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/kafka"
)

// A replay's topics are made like the raw topic they stand in for: its
// partitions and its replication, not the broker's default (often 1).
func TestReplayTopicsFollowTheRawTopic(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.DefaultNumPartitions(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topics := kafka.TopicNames("rf", kafka.DefaultRetryTiers)
	if _, err := adm.CreateTopic(ctx, 4, 2, nil, topics.Raw); err != nil {
		t.Fatal(err)
	}
	r := &run{d: Deps{Topics: topics}, adm: adm, topic: "rf.replay.r1"}
	if err := r.ensureTopics(ctx); err != nil {
		t.Fatal(err)
	}
	want := append([]string{r.topic}, r.retry...)
	if len(want) != 1+len(kafka.DefaultRetryTiers) {
		t.Fatalf("retry topics %v, want one per tier", r.retry)
	}
	td, err := adm.ListTopics(ctx, want...)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range want {
		d, ok := td[name]
		if !ok || d.Err != nil {
			t.Fatalf("%s not created: %v", name, d.Err)
		}
		if len(d.Partitions) != 4 {
			t.Errorf("%s has %d partitions, want the raw topic's 4", name, len(d.Partitions))
		}
		for p, pd := range d.Partitions {
			if len(pd.Replicas) != 2 {
				t.Errorf("%s[%d] has %d replicas, want the raw topic's 2 (kfake, as a broker, defaults to 3)", name, p, len(pd.Replicas))
			}
		}
	}
}

func TestReplicationOf(t *testing.T) {
	detail := func(replicas ...int) kadm.TopicDetail {
		d := kadm.TopicDetail{Partitions: kadm.PartitionDetails{}}
		for i, n := range replicas {
			d.Partitions[int32(i)] = kadm.PartitionDetail{Partition: int32(i), Replicas: make([]int32, n)}
		}
		return d
	}
	for _, c := range []struct {
		name string
		d    kadm.TopicDetail
		want int
	}{
		{"three everywhere", detail(3, 3, 3), 3},
		{"one partition being reassigned", detail(3, 5, 3), 3},
		{"single replica", detail(1), 1},
		{"no partitions listed", detail(), -1},
		{"no replicas listed", detail(0, 0), -1},
	} {
		if got := replicationOf(c.d); got != c.want {
			t.Errorf("%s: replicationOf = %d, want %d", c.name, got, c.want)
		}
	}
}

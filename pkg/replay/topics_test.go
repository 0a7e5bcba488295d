package replay

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/processor/processortest"
	"github.com/inletdev/inlet/pkg/testenv"
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

// Two deployments (topic prefixes) on one Kafka cluster replaying the
// same id at once (DefaultID is the same for the same source, range and
// mode): each replay's copy must not fence the other's.
func TestReplaysOfTwoDeploymentsDoNotFenceEachOther(t *testing.T) {
	h := newHarness(t)
	env2 := *h.env
	env2.Prefix = h.env.Prefix + "b"
	s2 := processortest.New(t, &env2, testSources)
	h2 := &harness{t: t, stack: s2, env: s2.Env, topics: s2.Topics, sources: s2.Sources, router: s2.Router, codec: s2.Codec, rdb: s2.Redis, store: s2.Store}
	before := time.Now().Add(-time.Second)
	h.send("stripe", "evt_1", "pi_1", 1700000100)
	h.send("stripe", "evt_2", "pi_2", 1700000200)
	h2.send("stripe", "evt_9", "pi_9", 1700000300)

	defer func(c int) { copyChunk, afterCommit = c, nil }(copyChunk)
	copyChunk = 1
	held, release := make(chan struct{}), make(chan struct{})
	afterCommit = func() { // the first replay's first chunk only
		select {
		case <-held:
		default:
			close(held)
			<-release
		}
	}
	first := make(chan error, 1)
	go func() {
		_, err := Run(context.Background(), Config{ID: "same", Source: "stripe", From: before, Mode: Fill, Processor: h.pcfg()}, h.deps())
		first <- err
	}()
	select {
	case <-held:
	case err := <-first:
		t.Fatalf("first replay ended early: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("first replay never copied")
	}
	// The other deployment's replay of the same id, meanwhile.
	if s := h2.replay(t, "same", Fill, before); !s.Complete || s.Read != 1 {
		t.Fatalf("second deployment's replay: %+v", s)
	}
	close(release)
	var err error
	testenv.Eventually(t, 90*time.Second, "the first replay to end", func() bool {
		select {
		case err = <-first:
			return true
		default:
			return false
		}
	})
	if err != nil {
		t.Fatalf("first deployment's replay: %v", err)
	}
}

// TestResumeMovesTheLegacyGroup: a replay stopped before its group took
// its topic's name resumes from the offsets its run committed under
// inlet-replay-<id>, processing nothing again, and moves them to its own
// group; another deployment's offsets in the legacy group stay.
func TestResumeMovesTheLegacyGroup(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	before := time.Now().Add(-time.Second)
	for i := range 3 {
		h.send("stripe", fmt.Sprintf("evt_l%d", i), fmt.Sprintf("pi_l%d", i), 1700000000+int64(i))
	}
	if s := h.replay(t, "old", Fill, before); !s.Complete || s.Applied != 3 {
		t.Fatalf("first run: %+v", s)
	}
	// As an earlier version left a run stopped after processing: its
	// offsets under the legacy name, the replay not recorded complete.
	adm := kadm.NewClient(h.env.Client(t))
	group, legacy := Group(h.topics, "old"), legacyGroup("old")
	had, err := adm.FetchOffsets(ctx, group)
	if err != nil || len(had.Offsets()) == 0 {
		t.Fatalf("offsets of %s: %v %v", group, had, err)
	}
	mine := had.Offsets()
	theirs := "zz.replay.old"
	if _, err := adm.CreateTopic(ctx, 1, -1, nil, theirs); err != nil {
		t.Fatal(err)
	}
	offs := had.Offsets()
	offs.AddOffset(theirs, 0, 7, -1)
	if r, err := adm.CommitOffsets(ctx, legacy, offs); err != nil || r.Error() != nil {
		t.Fatalf("commit to %s: %v %v", legacy, err, r.Error())
	}
	if r, err := adm.DeleteGroups(ctx, group); err != nil || r.Error() != nil {
		t.Fatalf("delete %s: %v %v", group, err, r.Error())
	}
	if err := h.rdb.HDel(ctx, h.env.Prefix+":replay:old", fComplete).Err(); err != nil {
		t.Fatal(err)
	}
	infos, err := List(ctx, h.deps(), "old")
	if err != nil || len(infos) != 1 || infos[0].Group == nil || infos[0].Group.Name != legacy || infos[0].Pending != 0 {
		t.Fatalf("list before the resume: %+v, %v; want the legacy group, nothing pending", infos, err)
	}

	s := h.replay(t, "old", Fill, before)
	if !s.Complete || s.Applied != 3 || s.Duplicate != 0 || !s.Resumed {
		t.Fatalf("resumed: %+v; want complete with nothing processed again", s)
	}
	now, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	mine.Each(func(o kadm.Offset) {
		if got, ok := now.Lookup(o.Topic, o.Partition); !ok || got.At != o.At {
			t.Errorf("%s/%d: %+v in %s, want %d moved from %s", o.Topic, o.Partition, got, group, o.At, legacy)
		}
	})
	left, err := adm.FetchOffsets(ctx, legacy)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := left.Lookup(theirs, 0); !ok || o.At != 7 {
		t.Errorf("the other deployment's offset in %s: %+v, want kept at 7", legacy, o)
	}
	mine.Each(func(o kadm.Offset) {
		if _, ok := left.Lookup(o.Topic, o.Partition); ok {
			t.Errorf("%s/%d still in %s", o.Topic, o.Partition, legacy)
		}
	})
	if infos, err := List(ctx, h.deps(), "old"); err != nil || len(infos) != 1 || infos[0].Group == nil || infos[0].Group.Name != group {
		t.Fatalf("list after the resume: %+v, %v; want the replay's own group", infos, err)
	}
}

package kafka

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inletdev/inlet/pkg/testenv/syncbuf"
)

// TestMarkerGuardDegrades: where Kafka refuses to describe the
// transactional id (no DESCRIBE on it) or the producers of a partition
// (no READ), or does not answer, the guarded commits still succeed, each
// well within MarkerCheckWait (the outage: one check's bound), and the
// guard warns once, not per commit. A refused id is not asked again.
func TestMarkerGuardDegrades(t *testing.T) {
	for _, c := range []struct {
		name  string
		key   kmsg.Key
		fail  func(kmsg.Request) kmsg.Response
		warn  string
		asked func(n int32) bool // how often Kafka was asked, over three commits
	}{
		{name: "no DESCRIBE on the transactional id", key: kmsg.DescribeTransactions,
			fail: func(kreq kmsg.Request) kmsg.Response {
				req := kreq.(*kmsg.DescribeTransactionsRequest)
				resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
				for _, id := range req.TransactionalIDs {
					st := kmsg.NewDescribeTransactionsResponseTransactionState()
					st.TransactionalID, st.ErrorCode = id, kerr.TransactionalIDAuthorizationFailed.Code
					resp.TransactionStates = append(resp.TransactionStates, st)
				}
				return resp
			},
			warn: "cannot describe the transactional id", asked: func(n int32) bool { return n == 1 }},
		{name: "no READ on the topic", key: kmsg.DescribeProducers,
			fail: func(kreq kmsg.Request) kmsg.Response {
				req := kreq.(*kmsg.DescribeProducersRequest)
				resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
				for _, rt := range req.Topics {
					t := kmsg.NewDescribeProducersResponseTopic()
					t.Topic = rt.Topic
					for _, p := range rt.Partitions {
						pr := kmsg.NewDescribeProducersResponseTopicPartition()
						pr.Partition, pr.ErrorCode = p, kerr.TopicAuthorizationFailed.Code
						t.Partitions = append(t.Partitions, pr)
					}
					resp.Topics = append(resp.Topics, t)
				}
				return resp
			},
			warn: "refuses to describe the producers", asked: func(n int32) bool { return n == 3 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "t"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cluster.Close)
			var asked atomic.Int32
			cluster.ControlKey(int16(c.key), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
				cluster.KeepControl()
				asked.Add(1)
				return c.fail(kreq), nil, true
			})
			opts := []kgo.Opt{kgo.SeedBrokers(cluster.ListenAddrs()...)}
			_, ch := txnChunks(t, opts, "guarded")
			var logs syncbuf.Buffer
			ch.Guard(NewMarkerGuard("guarded", slog.New(slog.NewTextHandler(&logs, nil))), nil, nil)
			ctx := context.Background()
			for i := range 3 {
				start := time.Now()
				for range 4 {
					if err := ch.Produce(ctx, &kgo.Record{Topic: "t", Value: []byte{byte(i)}}); err != nil {
						t.Fatal(err)
					}
				}
				if err := ch.Commit(ctx); err != nil {
					t.Fatalf("commit %d: %v", i, err)
				}
				if took := time.Since(start); took > MarkerCheckWait/2 {
					t.Fatalf("commit %d took %v: the check that cannot run held it up; log:\n%s", i, took, logs.String())
				}
			}
			if n := strings.Count(logs.String(), c.warn); n != 1 {
				t.Errorf("warned %d times %q, want once; log:\n%s", n, c.warn, logs.String())
			}
			if n := asked.Load(); !c.asked(n) {
				t.Errorf("Kafka asked %d times", n)
			}
		})
	}
	t.Run("Kafka does not answer", func(t *testing.T) {
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cluster.Close)
		cluster.ControlKey(int16(kmsg.DescribeTransactions), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
			cluster.KeepControl()
			req := kreq.(*kmsg.DescribeTransactionsRequest)
			resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
			for _, id := range req.TransactionalIDs {
				st := kmsg.NewDescribeTransactionsResponseTransactionState()
				st.TransactionalID, st.ErrorCode = id, kerr.CoordinatorLoadInProgress.Code
				resp.TransactionStates = append(resp.TransactionStates, st)
			}
			return resp, nil, true
		})
		opts := []kgo.Opt{kgo.SeedBrokers(cluster.ListenAddrs()...)}
		_, ch := txnChunks(t, opts, "guarded")
		var logs syncbuf.Buffer
		ch.Guard(NewMarkerGuard("guarded", slog.New(slog.NewTextHandler(&logs, nil))), nil, nil)
		ctx := context.Background()
		for i := range 2 {
			start := time.Now()
			if err := ch.Produce(ctx, &kgo.Record{Topic: "t", Value: []byte{byte(i)}}); err != nil {
				t.Fatal(err)
			}
			if err := ch.Commit(ctx); err != nil {
				t.Fatalf("commit %d: %v", i, err)
			}
			if took := time.Since(start); took > MarkerCheckWait+5*time.Second {
				t.Fatalf("commit %d took %v, past the check's bound", i, took)
			}
		}
		if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
			t.Errorf("warned %d times, want once while the check cannot run; log:\n%s", n, logs.String())
		}
	})
}

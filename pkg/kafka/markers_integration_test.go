package kafka_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/testenv"
)

// TestIntegrationChunksSkippedMarkers stops the real (single) broker under
// Chunks committing back to back with a MarkerGuard, as requeue, discard
// and a replay's copy do, until Kafka answers a commit and skips its
// markers (about one restart in three to five here). Every commit Chunks
// answered nil for is then readable once, and, once each id's last
// transaction is settled as the next decision or run does before taking
// the id, none of the producers' transactions stays open.
func TestIntegrationChunksSkippedMarkers(t *testing.T) {
	env := testenv.Real(t)
	svc := env.Services(t)
	ctx := context.Background()
	adm := kadm.NewClient(env.Client(t))
	const restarts, producers = 8, 16 // each commit reads a record back: more producers keep EndTxns in flight
	for try := range restarts {
		topic := fmt.Sprintf("%s.skipped-%d", env.Prefix, try)
		if err := kafka.EnsureTopics(ctx, adm, 3, 1, []kafka.TopicSpec{{Name: topic}}); err != nil {
			t.Fatal(err)
		}
		var (
			mu        sync.Mutex
			committed = map[string]bool{}
			pids      []int64
			ids       []string
			repaired  int // by the confirm in Commit
			settled   int // by SettleCompleted after the restart
			wg        sync.WaitGroup
		)
		stop := make(chan struct{})
		log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
		for i := range producers {
			id := fmt.Sprintf("%s-skipped-%d-%d", env.Prefix, try, i)
			ids = append(ids, id)
			cl := env.Client(t, kgo.TransactionalID(id), kgo.DefaultProduceTopic(topic), kgo.TransactionTimeout(10*time.Second),
				kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
			ch := kafka.NewChunks(cl, []kgo.Opt{kgo.SeedBrokers(env.Brokers...)})
			ch.Guard(kafka.NewMarkerGuard(id, log), nil, func(s kafka.Settled) {
				mu.Lock()
				repaired += len(s.Repaired)
				mu.Unlock()
			})
			wg.Go(func() {
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					var values []string
					for j := range 3 {
						v := fmt.Sprintf("%s/%d/%d", id, n, j)
						values = append(values, v)
						if ch.Produce(ctx, &kgo.Record{Value: []byte(v)}) != nil {
							return
						}
					}
					cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
					err := ch.Commit(cctx)
					cancel()
					if err != nil {
						t.Logf("%s: commit %d: %v", id, n, err)
						return
					}
					pid, _, _ := cl.ProducerID(ctx)
					mu.Lock()
					if !slices.Contains(pids, pid) {
						pids = append(pids, pid)
					}
					for _, v := range values {
						committed[v] = true
					}
					mu.Unlock()
				}
			})
		}
		testenv.Eventually(t, 20*time.Second, "transactions committing", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(committed) >= 120
		})
		svc.StopKafka(t)
		close(stop)
		svc.StartKafka(t)
		wg.Wait()
		// As the next decision (or run) does before taking the id: a
		// commit whose confirm ran while the broker was down is settled.
		settler := env.Client(t)
		for _, id := range ids {
			s := kafka.NewMarkerGuard(id, log).SettleCompleted(ctx, settler, topic)
			mu.Lock()
			settled += len(s.Repaired)
			mu.Unlock()
		}
		mu.Lock()
		n := repaired + settled
		mu.Unlock()
		// Not one open transaction of these producers once the
		// coordinator aborted those whose end went unanswered (10 s).
		testenv.Eventually(t, 60*time.Second, "no transaction open", func() bool {
			ps, err := adm.DescribeProducers(ctx, kadm.TopicsSet{topic: nil})
			if err != nil {
				return false
			}
			open := false
			ps.EachPartition(func(dp kadm.DescribedProducersPartition) {
				for _, p := range dp.ActiveProducers {
					open = open || (slices.Contains(pids, p.ProducerID) && p.CurrentTxnStartOffset >= 0)
				}
			})
			return !open
		})
		got := map[string]int{}
		for _, r := range env.ReadAll(t, topic, len(committed), 700*time.Millisecond, 60*time.Second) {
			got[string(r.Value)]++
		}
		for v := range committed {
			if got[v] != 1 {
				t.Errorf("record %s of a committed transaction read %d times, want 1", v, got[v])
			}
		}
		if t.Failed() || n > 0 {
			t.Logf("restart %d: %d markers Kafka skipped were written (%d by the commits' confirm, %d settling the last transactions); %d committed records each read once",
				try+1, n, repaired, settled, len(committed))
			return
		}
		t.Logf("restart %d: Kafka wrote the markers of every commit", try+1)
	}
	t.Skipf("Kafka wrote every marker across %d restarts: nothing to repair this run", restarts)
}

// testWriter sends a logger's lines to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b))
	return len(b), nil
}

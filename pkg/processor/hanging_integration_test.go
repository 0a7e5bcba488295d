package processor

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/testenv"
	"github.com/inletdev/inlet/pkg/testenv/syncbuf"
)

// TestIntegrationSkippedMarkersAreWritten stops the real (single) broker
// under transactional producers committing back to back, until Kafka
// answers a commit and skips its markers (its coordinator finds no leader
// for the partitions while it shuts down, and takes them for deleted):
// the committed records stay open after the restart, hidden from
// read_committed readers. checkMarkers, told the fate of that
// transaction, writes the commit marker Kafka skipped, and the records are
// readable.
func TestIntegrationSkippedMarkersAreWritten(t *testing.T) {
	env := testenv.Real(t)
	svc := env.Services(t)
	topic := env.Prefix + ".skipped"
	ctx := context.Background()
	if err := kafka.EnsureTopics(ctx, kadm.NewClient(env.Client(t)), 3, 1, []kafka.TopicSpec{{Name: topic}}); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(env.Client(t))
	const tries, producers = 5, 4 // about one restart in three skips markers here
	for try := range tries {
		ended := map[string][]endedTxn{} // by transactional id
		var pids []int64
		for i := range producers {
			id := fmt.Sprintf("%s-skipped-%d-%d", env.Prefix, try, i)
			ended[id] = nil
		}
		commitAcrossRestart(t, env, svc, topic, ended)
		for _, e := range ended {
			if len(e) > 0 {
				pids = append(pids, e[0].pid)
			}
		}
		open := openOf(t, adm, topic, pids)
		if len(open) == 0 {
			t.Logf("restart %d: Kafka wrote every marker", try+1)
			continue
		}
		t.Logf("restart %d: transactions open: %v", try+1, open)
		var logs syncbuf.Buffer
		log := slog.New(slog.NewTextHandler(&logs, nil))
		cl := env.Client(t)
		for id, e := range ended {
			w := &worker{p: &Processor{log: log}, txnID: id, disc: &disconnects{}, ended: e}
			w.disc.seen.Store(true)
			if len(e) > 0 && !w.markersDue() {
				t.Fatal("markers not due after a dropped connection")
			}
			testenv.Eventually(t, 30*time.Second, "the markers Kafka skipped for "+id+" written", func() bool {
				if err := w.checkMarkers(ctx, cl, -1); err != nil {
					t.Logf("check: %v", err)
					return false
				}
				return true
			})
		}
		// A transaction whose end never reached the coordinator is
		// still running there, and aborted at its timeout (10 s).
		testenv.Eventually(t, 40*time.Second, "no transaction open", func() bool { return len(openOf(t, adm, topic, pids)) == 0 })
		if !strings.Contains(logs.String(), "wrote the marker it skipped") {
			t.Errorf("no repair logged:\n%s", logs.String())
		}
		if strings.Contains(logs.String(), "does not know") {
			t.Errorf("a fate was not known:\n%s", logs.String())
		}
		t.Logf("repairs:\n%s", logs.String())
		return
	}
	t.Skipf("Kafka wrote every marker across %d restarts: nothing to repair this run", tries)
}

// commitAcrossRestart commits small transactions back to back, one
// producer per transactional id of ended, while the broker stops, then
// starts it again; it fills ended with the transactions whose end Kafka
// answered.
func commitAcrossRestart(t *testing.T, env *testenv.Env, svc *testenv.Services, topic string, ended map[string][]endedTxn) {
	t.Helper()
	var (
		mu        sync.Mutex
		committed int
		stop      = make(chan struct{})
		wg        sync.WaitGroup
	)
	for id := range ended {
		cl := env.Client(t, kgo.TransactionalID(id), kgo.DefaultProduceTopic(topic), kgo.TransactionTimeout(10*time.Second),
			kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if cl.BeginTransaction() != nil {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				writes := &txnWrites{}
				for range 3 {
					cl.Produce(ctx, &kgo.Record{Value: []byte("v")}, func(r *kgo.Record, err error) {
						if err == nil {
							writes.produced(r)
						}
					})
				}
				err := cl.Flush(ctx)
				if err == nil {
					err = cl.EndTransaction(ctx, kgo.TryCommit)
				}
				cancel()
				if err != nil {
					return
				}
				mu.Lock()
				ended[id] = append(ended[id], endedTxn{pid: writes.pid, epoch: writes.epoch, commit: true, wrote: writes.wrote})
				committed++
				mu.Unlock()
			}
		})
	}
	testenv.Eventually(t, 10*time.Second, "transactions committing", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return committed >= 20
	})
	svc.StopKafka(t)
	close(stop)
	wg.Wait()
	svc.StartKafka(t)
}

// openOf lists the transactions of pids open on topic.
func openOf(t *testing.T, adm *kadm.Client, topic string, pids []int64) []string {
	t.Helper()
	var open []string
	testenv.Eventually(t, 30*time.Second, "the producers of "+topic+" described", func() bool {
		open = nil
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ps, err := adm.DescribeProducers(ctx, kadm.TopicsSet{topic: nil})
		if err != nil {
			return false
		}
		ok := true
		ps.EachPartition(func(dp kadm.DescribedProducersPartition) {
			if dp.Err != nil {
				ok = false
			}
			for _, p := range dp.ActiveProducers {
				if slices.Contains(pids, p.ProducerID) && p.CurrentTxnStartOffset >= 0 {
					open = append(open, fmt.Sprintf("%d from %d (producer %d epoch %d)", p.Partition, p.CurrentTxnStartOffset, p.ProducerID, p.ProducerEpoch))
				}
			}
		})
		return ok
	})
	return open
}

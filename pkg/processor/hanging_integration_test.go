package processor

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
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
// read_committed readers. checkMarkers, told the fates of those
// transactions, writes the markers Kafka skipped: every record of every
// transaction Kafka said it committed is then readable, once.
func TestIntegrationSkippedMarkersAreWritten(t *testing.T) {
	env := testenv.Real(t)
	svc := env.Services(t)
	topic := env.Prefix + ".skipped"
	ctx := context.Background()
	if err := kafka.EnsureTopics(ctx, kadm.NewClient(env.Client(t)), 3, 1, []kafka.TopicSpec{{Name: topic}}); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(env.Client(t))
	const tries, producers = 8, 4 // one restart in three to five skips markers here
	var every []int64             // the producers of every try: a try's leftovers hold the stable offset of the next's records
	for try := range tries {
		st := &staged{ended: map[string][]endedTxn{}, committed: map[string]bool{}}
		for i := range producers {
			st.ended[fmt.Sprintf("%s-skipped-%d-%d", env.Prefix, try, i)] = nil
		}
		commitAcrossRestart(t, env, svc, topic, st)
		var pids []int64
		for _, e := range st.ended {
			if len(e) > 0 {
				pids = append(pids, e[0].pid)
				every = append(every, e[0].pid)
			}
		}
		// Open and committed, as Kafka answered: its markers skipped.
		// (One whose end went unanswered may be open too, still running
		// at the coordinator: that is no skip.)
		committed := map[string]bool{}
		for _, e := range st.ended {
			for _, x := range e {
				committed[fmt.Sprintf("(producer %d epoch %d)", x.pid, x.epoch)] = true
			}
		}
		// The coordinator may still be writing the markers of what it was
		// committing when the broker stopped: those are late, not skipped.
		ids := slices.Collect(maps.Keys(st.ended))
		testenv.Eventually(t, 30*time.Second, "the coordinator done with every transaction it was ending", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			described, err := adm.DescribeTransactions(ctx, ids...)
			if err != nil {
				return false
			}
			for _, d := range described {
				if d.Err != nil || strings.HasPrefix(d.State, "Prepare") {
					return false
				}
			}
			return true
		})
		open := openOf(t, adm, topic, pids)
		skipped := slices.ContainsFunc(open, func(o string) bool { return committed[o[strings.Index(o, "("):]] })
		t.Logf("restart %d: transactions open: %v (a commit Kafka answered among them: %v)", try+1, open, skipped)
		var logs syncbuf.Buffer
		p := &Processor{log: slog.New(slog.NewTextHandler(&logs, nil))}
		cl := env.Client(t)
		for id, e := range st.ended {
			w := &worker{p: p, txnID: id, disc: &disconnects{}, ended: e}
			w.disc.seen.Store(true)
			if len(e) > 0 && !w.markersDue() {
				t.Fatal("markers not due after a dropped connection")
			}
			testenv.Eventually(t, 30*time.Second, "the markers Kafka skipped for "+id+" written", func() bool {
				if err := w.checkMarkers(ctx, cl, nil); err != nil {
					t.Logf("check: %v", err)
					return false
				}
				return true
			})
			if w.markersDue() || len(w.ended) != 0 {
				t.Errorf("%s: transactions still due for a check after a clean one", id)
			}
		}
		if !skipped {
			// Repaired all the same: a try's leftovers would hold the
			// next try's records back.
			continue
		}
		// A transaction whose end never reached the coordinator is
		// still running there, and aborted at its timeout (10 s).
		testenv.Eventually(t, 40*time.Second, "no transaction open", func() bool { return len(openOf(t, adm, topic, every)) == 0 })
		t.Logf("repairs:\n%s", logs.String())
		if !strings.Contains(logs.String(), "wrote the marker it skipped") || strings.Contains(logs.String(), "cannot settle") {
			t.Errorf("the open transactions were not all repaired:\n%s", logs.String())
		}
		got := map[string]int{}
		for _, r := range env.ReadAll(t, topic, len(st.committed), 700*time.Millisecond, 60*time.Second) {
			got[string(r.Value)]++
		}
		for v := range st.committed {
			if got[v] != 1 {
				t.Errorf("record %s of a committed transaction read %d times, want 1", v, got[v])
			}
		}
		return
	}
	t.Skipf("Kafka wrote every marker across %d restarts: nothing to repair this run", tries)
}

// TestIntegrationOrphansWrittenAgain: records of a committed transaction
// that a later abort of the same producer threw away (Kafka had left them
// open) are written again, once, and nothing else of the stretch is: not
// the aborted transaction's own records, not another producer's.
func TestIntegrationOrphansWrittenAgain(t *testing.T) {
	env := testenv.Real(t)
	topic := env.Prefix + ".orphans"
	ctx := context.Background()
	if err := kafka.EnsureTopics(ctx, kadm.NewClient(env.Client(t)), 1, 1, []kafka.TopicSpec{{Name: topic}}); err != nil {
		t.Fatal(err)
	}
	txn := env.Client(t, kgo.TransactionalID(env.Prefix+"-orphans"), kgo.DefaultProduceTopic(topic))
	other := env.Client(t, kgo.DefaultProduceTopic(topic))
	write := func(cl *kgo.Client, v string) *kgo.Record {
		t.Helper()
		r := &kgo.Record{Key: []byte("k"), Value: []byte(v)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		return r
	}
	end := func(try kgo.TransactionEndTry) {
		t.Helper()
		if err := txn.EndTransaction(ctx, try); err != nil {
			t.Fatal(err)
		}
	}
	// Stand-ins for Kafka's doing: the records of "lost" were committed,
	// but a later abort of the same producer decided them with its own.
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	write(txn, "kept")
	end(kgo.TryCommit)
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	lost := write(txn, "lost-1")
	write(other, "other")
	write(txn, "lost-2")
	end(kgo.TryAbort)
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	later := write(txn, "later")
	end(kgo.TryAbort)

	var logs syncbuf.Buffer
	w := &worker{p: &Processor{log: slog.New(slog.NewTextHandler(&logs, nil)), d: Deps{KafkaOpts: []kgo.Opt{kgo.SeedBrokers(env.Brokers...)}}}}
	w.addOrphans([]orphan{{topic: topic, partition: 0, from: lost.Offset, to: later.Offset, pid: lost.ProducerID, epochs: map[int16]bool{lost.ProducerEpoch: true}}})
	w.settleOrphans(ctx, false)
	if !strings.Contains(logs.String(), "wrote them again") || !strings.Contains(logs.String(), "records=2") {
		t.Errorf("log:\n%s", logs.String())
	}
	got := map[string]int{}
	for _, r := range env.ReadAll(t, topic, 4, 700*time.Millisecond, 30*time.Second) {
		got[string(r.Value)]++
	}
	want := map[string]int{"kept": 1, "other": 1, "lost-1": 1, "lost-2": 1}
	if !maps.Equal(got, want) {
		t.Errorf("read %v, want %v", got, want)
	}
	if len(w.orphans) != 0 {
		t.Error("orphans kept after they were written again")
	}
}

// staged is what commitAcrossRestart did: by transactional id, the
// transactions whose end Kafka answered, and the values of every record
// those that committed wrote.
type staged struct {
	mu        sync.Mutex
	ended     map[string][]endedTxn
	committed map[string]bool
}

// commitAcrossRestart commits small transactions back to back, one
// producer per transactional id of st, while the broker stops, then
// starts it again.
func commitAcrossRestart(t *testing.T, env *testenv.Env, svc *testenv.Services, topic string, st *staged) {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for id := range st.ended {
		cl := env.Client(t, kgo.TransactionalID(id), kgo.DefaultProduceTopic(topic), kgo.TransactionTimeout(10*time.Second),
			kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
		wg.Go(func() {
			for n := 0; ; n++ {
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
				var values []string
				for i := range 3 {
					v := fmt.Sprintf("%s/%d/%d", id, n, i)
					values = append(values, v)
					cl.Produce(ctx, &kgo.Record{Value: []byte(v)}, func(r *kgo.Record, err error) {
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
				st.mu.Lock()
				st.ended[id] = append(st.ended[id], endedTxn{pid: writes.pid, epoch: writes.epoch, commit: true, wrote: writes.wrote})
				for _, v := range values {
					st.committed[v] = true
				}
				st.mu.Unlock()
			}
		})
	}
	testenv.Eventually(t, 10*time.Second, "transactions committing", func() bool {
		st.mu.Lock()
		defer st.mu.Unlock()
		return len(st.committed) >= 60
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

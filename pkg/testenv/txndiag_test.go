package testenv

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/kafka"
)

func TestTxnDiagnosisTellsAbortedFromOpen(t *testing.T) { txnDiagnosisCase(t, Embedded(t)) }

func TestIntegrationTxnDiagnosisTellsAbortedFromOpen(t *testing.T) { txnDiagnosisCase(t, Real(t)) }

// txnDiagnosisCase writes one committed, one aborted and one still open
// transaction: the diagnosis names the aborted record and the open
// transaction, and not the committed record.
func txnDiagnosisCase(t *testing.T, env *Env) {
	{
		{
			topic := env.Prefix + ".diag"
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := kafka.EnsureTopics(ctx, kadm.NewClient(env.Client(t)), 1, 1, []kafka.TopicSpec{{Name: topic}}); err != nil {
				t.Fatal(err)
			}
			cl := env.Client(t, kgo.TransactionalID(env.Prefix+"-diag"), kgo.DefaultProduceTopic(topic))
			write := func(key string, end *kgo.TransactionEndTry) {
				t.Helper()
				if err := cl.BeginTransaction(); err != nil {
					t.Fatal(err)
				}
				if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(key), Value: []byte("v")}).FirstErr(); err != nil {
					t.Fatal(err)
				}
				if end == nil {
					return
				}
				if err := cl.EndTransaction(ctx, *end); err != nil {
					t.Fatal(err)
				}
			}
			commit, abort := kgo.TryCommit, kgo.TryAbort
			write("kept", &commit)
			write("lost", &abort)
			write("late", nil)
			got := env.txnDiagnosis(topic)
			t.Log(got)
			for _, want := range []string{`0/2 key "lost"`, "committed records by partition map[0:1]", "open transaction on partition 0 from offset 4", "partition 0 stable at 4"} {
				if !strings.Contains(got, want) {
					t.Errorf("diagnosis lacks %q", want)
				}
			}
			if strings.Contains(got, "kept") {
				t.Error("diagnosis names the committed record")
			}
		}
	}
}

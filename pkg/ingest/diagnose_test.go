package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inletdev/inlet/pkg/testenv"
	"github.com/inletdev/inlet/pkg/testenv/syncbuf"
)

// TestKafkaDiagnosisNamesWhyWritesAreRefused: while Kafka refuses the raw
// topic's writes, the "not acknowledged by kafka" warning said only
// "context deadline exceeded" (franz-go retries NOT_ENOUGH_REPLICAS and
// NOT_LEADER_OR_FOLLOWER internally), the same as for a slow broker. The
// warning is now followed by one "kafka diagnosis" line read from Kafka's
// metadata: the partitions below min.insync.replicas with both numbers,
// the partitions without a leader, or that every partition looks healthy.
func TestKafkaDiagnosisNamesWhyWritesAreRefused(t *testing.T) {
	type diagnosis struct {
		Level          string `json:"level"`
		Topic          string `json:"topic"`
		BelowMinInsync string `json:"below_min_insync"`
		NoLeader       string `json:"no_leader"`
		Healthy        string `json:"healthy"`
		Error          string `json:"error"`
	}
	cases := []struct {
		name string
		// refuse makes Kafka refuse the raw topic's writes as the case
		// says, through env's broker and admin client.
		refuse func(t *testing.T, c *kfake.Cluster, adm *kadm.Client, raw string)
		want   func(raw string) diagnosis
	}{
		{
			name: "below min insync",
			refuse: func(t *testing.T, c *kfake.Cluster, adm *kadm.Client, raw string) {
				// kfake's topics have one replica, in sync: a topic
				// config of 2 puts every partition below it, and the
				// broker refuses as a real one then does.
				v := "2"
				res, err := adm.AlterTopicConfigs(context.Background(), []kadm.AlterConfig{{Name: "min.insync.replicas", Value: &v}}, raw)
				if err == nil {
					_, err = res.On(raw, func(r *kadm.AlterConfigsResponse) error { return r.Err })
				}
				if err != nil {
					t.Fatal(err)
				}
				refuseProduces(t, c, raw, kerr.NotEnoughReplicas)
			},
			want: func(raw string) diagnosis {
				return diagnosis{Level: "WARN", Topic: raw, BelowMinInsync: raw + " partitions 0,1,2: 1 in-sync of 1, min.insync.replicas 2"}
			},
		},
		{
			name: "no leader",
			refuse: func(t *testing.T, c *kfake.Cluster, _ *kadm.Client, raw string) {
				h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Metadata}, Topic: raw, Partitions: []int32{1}, Err: kerr.LeaderNotAvailable, Count: -1})
				t.Cleanup(h.Remove)
				refuseProduces(t, c, raw, kerr.NotLeaderForPartition)
			},
			want: func(raw string) diagnosis {
				return diagnosis{Level: "WARN", Topic: raw, NoLeader: raw + " partitions 1"}
			},
		},
		{
			name: "healthy",
			refuse: func(t *testing.T, c *kfake.Cluster, _ *kadm.Client, _ string) {
				// A slow broker: produces held, metadata answered.
				release := make(chan struct{})
				t.Cleanup(func() { close(release) })
				c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
					c.KeepControl()
					c.SleepControl(func() { <-release })
					return nil, nil, false
				})
			},
			want: func(raw string) diagnosis {
				return diagnosis{Level: "WARN", Topic: raw, Healthy: "every partition has a leader and enough in-sync replicas (a slow broker or network?)"}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := testenv.Embedded(t)
			var logs syncbuf.Buffer
			const ack = 500 * time.Millisecond
			h := newHarnessDeps(t, env, testSources, func(c *Config) { c.AckTimeout = ack }, func(d *Deps) {
				d.Log = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
			})
			diagnoses := func() []diagnosis {
				var got []diagnosis
				for _, l := range logs.Lines() {
					var e struct {
						Msg string `json:"msg"`
						diagnosis
					}
					if json.Unmarshal([]byte(l), &e) == nil && e.Msg == "kafka diagnosis" {
						got = append(got, e.diagnosis)
					}
				}
				return got
			}
			testenv.Eventually(t, 10*time.Second, "a webhook accepted before Kafka refuses", func() bool {
				return do(t, h.signed(t, "stripe", stripeEvent(fmt.Sprintf("evt_before_%d", time.Now().UnixNano())), nil)).status == http.StatusAccepted
			})
			if got := diagnoses(); len(got) > 0 {
				t.Fatalf("diagnosis logged with Kafka acknowledging: %+v", got)
			}

			tc.refuse(t, env.Stack.Kafka, kadm.NewClient(env.Client(t)), h.topics.Raw)
			start := time.Now()
			for i := range 3 {
				if a := do(t, h.signed(t, "stripe", stripeEvent(fmt.Sprintf("evt_down_%d", i)), nil)); a.status != http.StatusServiceUnavailable {
					t.Fatalf("webhook while Kafka refuses: %d %s, want 503", a.status, a.raw)
				}
			}
			// The answers do not wait for the look at Kafka (2 s bound).
			if took := time.Since(start); took > 3*ack+time.Second {
				t.Fatalf("3 webhooks answered 503 in %v, want about 3 × the ack timeout (%v)", took, ack)
			}
			testenv.Eventually(t, 10*time.Second, "a kafka diagnosis line after the not-acknowledged warning", func() bool {
				return len(diagnoses()) > 0
			})
			got, want := diagnoses(), tc.want(h.topics.Raw)
			if len(got) != 1 || got[0] != want {
				t.Fatalf("diagnosis lines %+v\nwant one: %+v\nlogs:\n%s", got, want, strings.Join(logs.Lines(), "\n"))
			}
		})
	}
}

// refuseProduces makes c answer every produce to topic with code, until
// the test ends.
func refuseProduces(t *testing.T, c *kfake.Cluster, topic string, code *kerr.Error) {
	t.Helper()
	h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Err: code, Count: -1})
	t.Cleanup(h.Remove)
}

// TestKafkaDiagnosisWhenKafkaCannotBeAsked: a look at a Kafka that does
// not answer ends within its bound with the error, one look at a time,
// and none starts once the diagnoser is closed.
func TestKafkaDiagnosisWhenKafkaCannotBeAsked(t *testing.T) {
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	var logs syncbuf.Buffer
	d := newDiagnoser(kadm.NewClient(cl), "inlet.raw", slog.New(slog.NewJSONHandler(&logs, nil)))
	d.timeout = 300 * time.Millisecond
	start := time.Now()
	d.start()
	d.start() // one in progress: nothing
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Fatalf("start took %v: it must not wait for Kafka", took)
	}
	testenv.Eventually(t, 5*time.Second, "the diagnosis line", func() bool { return len(logs.Lines()) > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.close(ctx); err != nil {
		t.Fatal(err)
	}
	d.start() // closed: nothing
	lines := logs.Lines()
	if len(lines) != 1 || !strings.Contains(lines[0], `"msg":"kafka diagnosis"`) || !strings.Contains(lines[0], `"error":"kafka could not be asked for the topic's metadata: `) {
		t.Fatalf("lines %q, want one kafka diagnosis with the error", lines)
	}
	if testing.Verbose() {
		t.Log(lines[0])
	}
}

// TestKafkaDiagnosisAfterAFailedBatch: a batch whose lines Kafka did not
// acknowledge logged only its info "batch … failed=N" line, never the
// "not acknowledged by kafka" warning nor a diagnosis: a deployment fed by
// /events alone was told nothing of why. It now warns (rate-limited with
// the webhooks') and looks at Kafka as a webhook's warning does.
func TestKafkaDiagnosisAfterAFailedBatch(t *testing.T) {
	env := testenv.Embedded(t)
	var logs syncbuf.Buffer
	h := newHarnessDeps(t, env, testSources, func(c *Config) { c.AckTimeout = 500 * time.Millisecond }, func(d *Deps) {
		d.Log = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	lines := func(msg string) int {
		n := 0
		for _, l := range logs.Lines() {
			var e struct {
				Msg string `json:"msg"`
			}
			if json.Unmarshal([]byte(l), &e) == nil && e.Msg == msg {
				n++
			}
		}
		return n
	}
	refuseProduces(t, env.Stack.Kafka, h.topics.Raw, kerr.NotEnoughReplicas)
	line := `{"id":"inv_d1","type":"invoice.paid","occurred_at":"2025-01-01T00:00:00Z","data":{"id":"inv_d1"}}`
	status, br, _ := postBatch(t, h, "/events/billing", "Bearer batch-token-1-0123456789", []byte(line), "")
	if br.Failed != 1 {
		t.Fatalf("batch while Kafka refuses: %d %+v, want its line failed", status, br)
	}
	testenv.Eventually(t, 10*time.Second, "a kafka diagnosis after the failed batch", func() bool { return lines("kafka diagnosis") == 1 })
	if n := lines("not acknowledged by kafka"); n != 1 {
		t.Fatalf("%d not-acknowledged warnings, want 1:\n%s", n, strings.Join(logs.Lines(), "\n"))
	}
}

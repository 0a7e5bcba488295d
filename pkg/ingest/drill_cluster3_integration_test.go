package ingest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/inletdev/inlet/pkg/testenv"
)

// cluster3Env names the brokers of the three-broker cluster that
// deploy/local/kafka/cluster3.sh runs; the drill runs only when it is set,
// since it kills and restarts those brokers and takes minutes.
const cluster3Env = "INLET_CLUSTER3_BROKERS"

// TestIntegrationIngestCluster3Drill is the durability drill of a
// production-shaped cluster: three brokers (and three dedicated
// controllers), the raw topic with replication 3 and min.insync.replicas 2,
// ingest under steady load at its default ack timeout and Retry-After.
// The leader of a raw partition is SIGKILLed and restarted, one broker at a
// time, three times; then two brokers at once (below min.insync.replicas:
// every request answered after the ISRs shrank must be 503, none 2xx);
// then both come back. Every event answered 2xx must then be on the raw
// topic (read_committed), its envelope decodable and its body the bytes
// sent. Extra copies (an event answered 503, written late, sent again)
// are counted, not failed.
//
//	deploy/local/kafka/cluster3.sh start --fresh
//	INLET_CLUSTER3_BROKERS=$(deploy/local/kafka/cluster3.sh brokers) \
//	  go test ./pkg/ingest -run Cluster3Drill -v -timeout 15m
//	deploy/local/kafka/cluster3.sh stop
func TestIntegrationIngestCluster3Drill(t *testing.T) {
	brokers := os.Getenv(cluster3Env)
	if brokers == "" {
		t.Skip(cluster3Env + " not set: the three-broker drill is skipped (deploy/local/kafka/cluster3.sh starts the cluster)")
	}
	env := testenv.Embedded(t) // the schema registry; Kafka is the cluster's
	env.Brokers = strings.Split(brokers, ",")
	env.Real = true
	d := newDrill(t, env)
	def := DefaultConfig()
	// Ingest's own log (warnings and up) goes to the test log: what an
	// SRE reads during the drill.
	h := newHarnessDeps(t, env, testSources, func(c *Config) {
		c.AckTimeout = def.AckTimeout
		c.RetryAfter = def.RetryAfter
	}, func(d *Deps) {
		d.Log = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	d.checkRawTopic(t, h.topics.Raw)
	wantRetryAfter := fmt.Sprint(int(def.RetryAfter / time.Second))
	stopReady := d.sampleReadyz(h.url)
	l := startLoad(t, h, 8)
	l.waitFor(t, 60*time.Second, "load to be accepted", func(s loadStats) bool { return s.accepted >= 200 })

	type phase struct {
		name       string
		from, to   time.Time // kill .. recovered (or end of the check)
		strictFrom time.Time // two down: from when every answer must be 503
	}
	var phases []phase
	for round := range 3 {
		victim := d.leaderOf(t, h.topics.Raw, int32(round))
		killAt := time.Now()
		d.kill(t, victim)
		// Recovered: requests sent from now on are accepted, on every
		// partition (a new leader was elected for those the victim led).
		testenv.Eventually(t, 60*time.Second, "leaders elected for every raw partition", func() bool {
			return d.allLed(h.topics.Raw, victim)
		})
		elected := time.Now()
		l.waitFor(t, 60*time.Second, "load accepted again", func(s loadStats) bool { return s.acceptedSince(elected) >= 50 })
		phases = append(phases, phase{name: fmt.Sprintf("round %d: broker %d (leader of partition %d) killed", round+1, victim, round), from: killAt, to: time.Now()})
		d.start(t, victim)
		testenv.Eventually(t, 120*time.Second, "every raw partition back to 3 in-sync replicas", func() bool { return d.isrAll(h.topics.Raw, 3) })
	}

	victims := []int32{1, 2}
	killAt := time.Now()
	for _, v := range victims {
		d.kill(t, v)
	}
	testenv.Eventually(t, 60*time.Second, "ISRs shrunk to the one broker left", func() bool { return d.isrAll(h.topics.Raw, 1) })
	shrunk := time.Now()
	l.waitFor(t, 60*time.Second, "answers while below min.insync.replicas", func(s loadStats) bool {
		return s.answeredWithin(shrunk, time.Now()) >= 40
	})
	// Longer than an ack timeout: a write sent before the ISRs shrank
	// has had its answer.
	l.waitFor(t, 60*time.Second, "more answers while below min.insync.replicas", func(s loadStats) bool {
		return time.Since(shrunk) > def.AckTimeout+2*time.Second && s.answeredWithin(shrunk, time.Now()) >= 80
	})
	belowTo := time.Now()
	restartAt := time.Now()
	for _, v := range victims {
		d.start(t, v)
	}
	l.waitFor(t, 120*time.Second, "load accepted after both brokers are back", func(s loadStats) bool { return s.acceptedSince(restartAt) >= 100 })
	phases = append(phases, phase{name: "brokers 1 and 2 killed together, then restarted", from: killAt, to: time.Now(), strictFrom: shrunk})
	testenv.Eventually(t, 120*time.Second, "every raw partition back to 3 in-sync replicas", func() bool { return d.isrAll(h.topics.Raw, 3) })
	answers := l.stop(t)
	stopReady()

	accepted := map[string]bool{}
	var n503, nOther int
	for _, a := range answers {
		switch {
		case a.err != nil:
			t.Errorf("%s: no answer after %v: %v", a.id, a.end.Sub(a.start), a.err)
		case a.status == http.StatusAccepted:
			accepted[a.id] = true
		case a.status == http.StatusServiceUnavailable:
			n503++
			if a.retryAfter != wantRetryAfter {
				t.Errorf("%s: 503 with Retry-After %q, want %s", a.id, a.retryAfter, wantRetryAfter)
			}
		default:
			nOther++
			t.Errorf("%s: status %d (%s), want 202 or 503", a.id, a.status, a.body)
		}
		if took := a.end.Sub(a.start); took > def.AckTimeout+2*time.Second {
			t.Errorf("%s: answered %d after %v; the ack timeout is %v", a.id, a.status, took, def.AckTimeout)
		}
	}
	for _, p := range phases {
		var n2xx, n5xx, strict, strict2xx int
		var first, last time.Time
		for _, a := range answers {
			if a.end.Before(p.from) || a.start.After(p.to) {
				continue
			}
			switch a.status {
			case http.StatusAccepted:
				n2xx++
			case http.StatusServiceUnavailable:
				n5xx++
				if first.IsZero() || a.end.Before(first) {
					first = a.end
				}
				if a.end.After(last) {
					last = a.end
				}
			}
			if !p.strictFrom.IsZero() && a.start.After(p.strictFrom) && a.end.Before(belowTo) {
				strict++
				if a.status != http.StatusServiceUnavailable {
					strict2xx++
					t.Errorf("%s: sent and answered while two of three brokers were down: status %d, want 503", a.id, a.status)
				}
			}
		}
		window := "none"
		if !first.IsZero() {
			window = fmt.Sprintf("first 503 at +%v, last at +%v after the kill", first.Sub(p.from).Round(time.Millisecond), last.Sub(p.from).Round(time.Millisecond))
		}
		t.Logf("%s: %v until recovered; %d answered 2xx, %d answered 503; 503 window: %s", p.name, p.to.Sub(p.from).Round(time.Millisecond), n2xx, n5xx, window)
		if !p.strictFrom.IsZero() {
			t.Logf("  ISRs shrank %v after the kill; below min.insync.replicas for %v: %d requests sent and answered, %d not 503; restart to first accepted: see the 503 window",
				p.strictFrom.Sub(p.from).Round(time.Millisecond), belowTo.Sub(p.strictFrom).Round(time.Millisecond), strict, strict2xx)
		}
	}
	d.logReadyz(t, phases[0].from)

	raw := h.rawEnvelopes(t, len(accepted))
	onLog := map[string]int{}
	for _, e := range raw {
		onLog[e.EventID]++
		if want := stripeEvent(e.EventID); string(e.Payload) != string(want) {
			t.Errorf("%s: body on the log differs from the body sent:\n got %s\nwant %s", e.EventID, e.Payload, want)
		}
	}
	missing, dups := 0, 0
	for id := range accepted {
		if onLog[id] == 0 {
			missing++
			t.Errorf("%s was answered 2xx but is not on the raw topic", id)
		}
	}
	for _, n := range onLog {
		dups += n - 1
	}
	t.Logf("%d requests: %d events answered 2xx, %d answers 503, %d other; raw topic: %d records, %d distinct events, %d extra copies; answered 2xx but missing: %d",
		len(answers), len(accepted), n503, nOther, len(raw), len(onLog), dups, missing)
}

// drill controls the cluster3.sh brokers and watches the raw topic.
type drill struct {
	adm    *kadm.Client
	script string

	mu     sync.Mutex
	readyz []readyzSample
}

type readyzSample struct {
	at     time.Time
	status int
	body   string
}

func newDrill(t *testing.T, env *testenv.Env) *drill {
	return &drill{adm: kadm.NewClient(env.Client(t)), script: "../../deploy/local/kafka/cluster3.sh"}
}

func (d *drill) run(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(d.script, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("cluster3.sh %v: %v\n%s", args, err, out)
	}
	t.Logf("%s cluster3.sh %v: %s", time.Now().Format("15:04:05.000"), args, strings.TrimSpace(string(out)))
}

func (d *drill) kill(t *testing.T, broker int32)  { d.run(t, "kill", fmt.Sprint(broker)) }
func (d *drill) start(t *testing.T, broker int32) { d.run(t, "start-node", fmt.Sprint(broker)) }

func (d *drill) describe(topic string) (kadm.TopicDetail, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	td, err := d.adm.ListTopics(ctx, topic)
	if err != nil || td[topic].Err != nil {
		return kadm.TopicDetail{}, false
	}
	return td[topic], true
}

func (d *drill) leaderOf(t *testing.T, topic string, p int32) int32 {
	t.Helper()
	td, ok := d.describe(topic)
	if !ok {
		t.Fatalf("describe %s failed", topic)
	}
	return td.Partitions[p].Leader
}

// allLed: every partition has a leader other than dead.
func (d *drill) allLed(topic string, dead int32) bool {
	td, ok := d.describe(topic)
	if !ok {
		return false
	}
	for _, p := range td.Partitions {
		if p.Leader < 0 || p.Leader == dead {
			return false
		}
	}
	return true
}

func (d *drill) isrAll(topic string, n int) bool {
	td, ok := d.describe(topic)
	if !ok {
		return false
	}
	for _, p := range td.Partitions {
		if len(p.ISR) != n {
			return false
		}
	}
	return true
}

// checkRawTopic requires the production shape: 3 replicas, min.insync 2.
func (d *drill) checkRawTopic(t *testing.T, topic string) {
	t.Helper()
	td, ok := d.describe(topic)
	if !ok {
		t.Fatalf("describe %s failed", topic)
	}
	for _, p := range td.Partitions {
		if len(p.Replicas) != 3 {
			t.Fatalf("%s[%d] has replicas %v, want 3 (start cluster3.sh with its defaults)", topic, p.Partition, p.Replicas)
		}
	}
	cfgs, err := d.adm.DescribeTopicConfigs(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range cfgs {
		for _, c := range rc.Configs {
			if c.Key == "min.insync.replicas" && (c.Value == nil || *c.Value != "2") {
				t.Fatalf("%s: min.insync.replicas %v, want 2", topic, c.MaybeValue())
			}
		}
	}
}

// sampleReadyz records /readyz every 250 ms until the returned func is
// called.
func (d *drill) sampleReadyz(base string) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	cl := &http.Client{Timeout: 2 * time.Second}
	wg.Go(func() {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			s := readyzSample{at: time.Now()}
			if resp, err := cl.Get(base + "/readyz"); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				s.status, s.body = resp.StatusCode, strings.TrimSpace(string(b))
			} else {
				s.body = err.Error()
			}
			d.mu.Lock()
			d.readyz = append(d.readyz, s)
			d.mu.Unlock()
			select {
			case <-quit:
				return
			case <-tick.C:
			}
		}
	})
	return func() { close(quit); wg.Wait() }
}

// logReadyz logs each change of /readyz's answer.
func (d *drill) logReadyz(t *testing.T, since time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var last readyzSample
	var changes []string
	for _, s := range d.readyz {
		if s.status != last.status || s.body != last.body {
			changes = append(changes, fmt.Sprintf("%s %d %s", s.at.Format("15:04:05.000"), s.status, s.body))
			last = s
		}
	}
	t.Logf("/readyz changes (first kill at %s): %s", since.Format("15:04:05.000"), strings.Join(slices.Clip(changes), "; "))
}

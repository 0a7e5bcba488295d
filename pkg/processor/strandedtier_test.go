package processor

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/testenv"
	"github.com/inletdev/inlet/pkg/testenv/syncbuf"
)

// TestRetriesLeftOnATierNoLongerConfiguredAreReported: a retry topic of an
// earlier -retry-tiers (30s here, the processor now runs 1s,2s) that
// still holds records the group has not processed is named at error
// level. No processor reads it any more: its events waited there unseen
// until retention deleted them.
func TestRetriesLeftOnATierNoLongerConfiguredAreReported(t *testing.T) {
	env := testenv.Embedded(t)
	old := env.CreateTopics(t, nil) // the default tiers' topics: 30s, 2m, 15m
	h, _ := failureHarness(t, env, &downstream{})
	logs := &syncbuf.Buffer{}
	h.log = slog.New(slog.NewTextHandler(logs, nil))
	e := h.send("shop", "orders/updated", "wh-stranded", "2025-01", envelope.ChannelWebhook, shopOrder(5, time.Now(), "paid", true))
	raw := h.env.ReadAll(t, h.topics.Raw, 1, 300*time.Millisecond, 10*time.Second)
	// Written by a processor that ran the old tiers.
	rec := &kgo.Record{Topic: old.Retry[0], Key: []byte(e.IdempotencyKey), Value: raw[0].Value, Headers: raw[0].Headers}
	if err := h.prod.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	h.start("a", nil)
	testenv.Eventually(t, 20*time.Second, "an error naming "+old.Retry[0], func() bool {
		for l := range strings.Lines(logs.String()) {
			if strings.Contains(l, "level=ERROR") && strings.Contains(l, old.Retry[0]) {
				return true
			}
		}
		return false
	})
	// The line names the metric that shows the topic drained: the
	// processor's lag gauge is exported as inlet_consumer_lag (there is no
	// inlet_processor_lag).
	for l := range strings.Lines(logs.String()) {
		if strings.Contains(l, "level=ERROR") && strings.Contains(l, old.Retry[0]) && !strings.Contains(l, "inlet_consumer_lag{topic=") {
			t.Errorf("the error does not name inlet_consumer_lag for the topic: %s", l)
		}
	}
	// The configured tiers' own topics are not reported.
	for l := range strings.Lines(logs.String()) {
		for _, own := range h.topics.Retry {
			if strings.Contains(l, "level=ERROR") && strings.Contains(l, own+" ") {
				t.Errorf("a configured tier reported: %s", l)
			}
		}
	}
}

// TestStrandedLookNotPostponedByAFailedOne: the look for retry topics of
// other tiers runs every strandedEvery (5 min), first when the processor
// starts, before its group has committed anything. That first look must
// report, and a look that failed must not put the next one strandedEvery
// away: the report of the end-to-end test above came 5 minutes late, or
// not within its wait, when the first look failed (kfake answers a group
// it does not know with GROUP_ID_NOT_FOUND).
func TestStrandedLookNotPostponedByAFailedOne(t *testing.T) {
	setup := func(t *testing.T) (*Processor, *lagMeter, *syncbuf.Buffer, string) {
		t.Helper()
		env := testenv.Embedded(t)
		old := env.CreateTopics(t, nil) // the default tiers' topics: 30s, 2m, 15m
		h, _ := failureHarness(t, env, &downstream{})
		logs := &syncbuf.Buffer{}
		h.log = slog.New(slog.NewTextHandler(logs, nil))
		rec := &kgo.Record{Topic: old.Retry[0], Key: []byte("k"), Value: []byte("v")}
		if err := h.prod.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
		cfg := h.config()
		cfg.InstanceID = h.env.Prefix + "-a"
		p, err := New(cfg, h.deps(cfg))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.closeWorkers)
		// Not Run: its workers' group must not exist yet, as on a first
		// start (New's clients may join the configured one meanwhile).
		p.cfg.Group = h.env.Prefix + "-never-joined"
		return p, newLagMeter(env.Client(t)), logs, old.Retry[0]
	}
	reported := func(logs *syncbuf.Buffer, topic string) bool {
		for l := range strings.Lines(logs.String()) {
			if strings.Contains(l, "level=ERROR") && strings.Contains(l, "retry topic "+topic+" holds events") {
				return true
			}
		}
		return false
	}

	t.Run("a group that has committed nothing yet is no failed look", func(t *testing.T) {
		p, lm, logs, topic := setup(t)
		p.checkStranded(context.Background(), lm.adm, lm.opts, time.Now())
		if !reported(logs, topic) {
			t.Fatalf("the first look did not report %s:\n%s", topic, logs.String())
		}
	})

	t.Run("a failed look is tried again at the next tick", func(t *testing.T) {
		p, lm, logs, topic := setup(t)
		now := time.Now()
		dead, cancel := context.WithCancel(context.Background())
		cancel()
		p.checkStranded(dead, lm.adm, lm.opts, now)
		if reported(logs, topic) {
			t.Fatal("a look that could not list the topics reported")
		}
		p.checkStranded(context.Background(), lm.adm, lm.opts, now.Add(200*time.Millisecond))
		if !reported(logs, topic) {
			t.Fatalf("the look after a failed one did not report %s:\n%s", topic, logs.String())
		}
	})
}

package processor

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	otelmetric "go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/ops"
	"github.com/inletdev/inlet/pkg/retry"
	"github.com/inletdev/inlet/pkg/router"
	"github.com/inletdev/inlet/pkg/telemetry"
	"github.com/inletdev/inlet/pkg/telemetry/telemetrytest"
	"github.com/inletdev/inlet/pkg/testenv"
)

// TestMetricsEventTypeLimit: the option caches in front of the limiter give
// the labels the limiter alone gives, in any order of arrival, and stay
// bounded however many event types senders invent.
func TestMetricsEventTypeLimit(t *testing.T) {
	topics := kafka.TopicNames("t", kafka.DefaultRetryTiers)
	item := func(typ string, o Outcome) *item {
		it := &item{rec: &kgo.Record{Topic: topics.Raw}, outcome: o}
		if typ != "" { // "": undecodable, no envelope
			it.env = &envelope.Envelope{Source: "shop", EventType: typ, ReceivedAt: time.Now()}
		}
		return it
	}
	events := []string{"a", "b", "", "a", "c", "d", "a", "other", "c", "b", ""}
	m, r := manualMetrics(t, 2)
	for _, e := range events {
		m.observe(context.Background(), item(e, Processed), topics, time.Now())
		m.observe(context.Background(), item(e, Duplicate), topics, time.Now())
	}
	got := telemetrytest.Int64s(t, r, "inlet.events", "event_type", "outcome")
	// The reference: the limiter's answers, counted directly.
	lim := telemetry.NewLimiter(2)
	want := map[string]int64{}
	for _, e := range events {
		l := "unknown"
		if e != "" {
			l = lim.EventType("shop", e)
		}
		want[l+"|"+string(Processed)]++
		want[l+"|"+string(Duplicate)]++
	}
	if !maps.Equal(got, want) {
		t.Fatalf("counts %v, want %v", got, want)
	}

	m, err := newMetrics(nil, telemetry.NewLimiter(3))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		m.observe(context.Background(), item(fmt.Sprintf("type.%d", i), Processed), topics, time.Now())
	}
	if n, l := m.eventSets.Len(), m.latencySets.Len(); n != 4 || l != 4 {
		t.Fatalf("%d and %d cached label sets after 1000 event types with a limit of 3, want 4 and 4 (3 types and other)", n, l)
	}
	// Counts, which lives as long as the processor, is bounded the same
	// way: it kept a counter per type a sender invented.
	p := &Processor{metrics: m}
	for i := range 1000 {
		p.count.add(p.countKey(item(fmt.Sprintf("type.%d", i), Invalid)), 1)
	}
	p.count.add(p.countKey(item("", Invalid)), 1)
	if n, total := len(p.count.Snapshot()), p.count.Total(Invalid); n != 5 || total != 1001 {
		t.Fatalf("%d counters for %d events of 1000 types and one undecodable, want 5 (3 types, other, unknown) for 1001", n, total)
	}
}

type fakeDepths struct {
	n   []int
	err error
}

func (f *fakeDepths) Refresh(context.Context) ([]int, error) { return f.n, f.err }

// TestQueueDepthsAreNeverGuessed: the DLQ and invalid gauges say nothing
// until the queues were measured once, and a failed measurement leaves
// them at their last value (it reported both queues empty, which resolved
// InletFailureQueueUnresolved while millions of entries waited).
func TestQueueDepthsAreNeverGuessed(t *testing.T) {
	env := testenv.Embedded(t)
	m, r := manualMetrics(t, 10)
	p := &Processor{metrics: m, log: slog.New(slog.DiscardHandler), cfg: Config{Group: "depths-test"}, d: Deps{Topics: kafka.TopicNames("t", kafka.DefaultRetryTiers)}}
	lm := newLagMeter(env.Client(t))
	gauges := func() (map[string]int64, map[string]int64) {
		return telemetrytest.Int64s(t, r, "inlet.dlq.depth"), telemetrytest.Int64s(t, r, "inlet.invalid.depth")
	}
	ctx := context.Background()
	f := &fakeDepths{err: kafka.ErrIncomplete}
	p.measureDepths(ctx, lm, f)
	if d, i := gauges(); len(d) != 0 || len(i) != 0 {
		t.Fatalf("before any measurement: dlq %v, invalid %v; want no value", d, i)
	}
	f.n, f.err = []int{7, 2}, nil
	p.measureDepths(ctx, lm, f)
	if d, i := gauges(); d[""] != 7 || i[""] != 2 {
		t.Fatalf("measured: dlq %v, invalid %v; want 7, 2", d, i)
	}
	f.n, f.err = nil, kafka.ErrIncomplete
	p.measureDepths(ctx, lm, f)
	if d, i := gauges(); d[""] != 7 || i[""] != 2 {
		t.Fatalf("after a failed measurement: dlq %v, invalid %v; want the last values 7, 2", d, i)
	}
	// The lag failing (here: ctx already ended) does not keep the queues
	// from being measured.
	ended, cancel := context.WithCancel(ctx)
	cancel()
	f.n, f.err = []int{5, 1}, nil
	p.measureDepths(ended, lm, f)
	if d, i := gauges(); d[""] != 5 || i[""] != 1 {
		t.Fatalf("with the lag failing: dlq %v, invalid %v; want 5, 1", d, i)
	}
	// A value that could not be measured for staleDepths is withdrawn: one
	// instance stuck on it would hold max() across instances.
	p.metrics.mu.Lock()
	p.metrics.depths.queuesAt = time.Now().Add(-staleDepths - time.Minute)
	p.metrics.mu.Unlock()
	f.n, f.err = nil, kafka.ErrIncomplete
	p.measureDepths(ctx, lm, f)
	if d, i := gauges(); len(d) != 0 || len(i) != 0 {
		t.Fatalf("stale: dlq %v, invalid %v; want no value", d, i)
	}
}

// TestRetryDepthDrainsToZero: a retry tier the processor has drained reads
// 0, in inlet_retry_depth and inlet_consumer_lag alike. Retry copies are
// written in transactions, so each is followed by a commit marker that the
// group's offset (last record + 1) never passes: measured against the high
// watermark, every retry partition that ever held a record said 1 forever.
func TestRetryDepthDrainsToZero(t *testing.T) {
	sink := &downstream{script: []int{503}} // one retry, then delivered
	env := testenv.Embedded(t)
	h, _ := failureHarness(t, env, sink)
	reader := sdkmetric.NewManualReader()
	tel, err := telemetry.New(context.Background(), "test", telemetry.WithReader(reader))
	if err != nil {
		t.Fatal(err)
	}
	h.tel = tel
	r := h.start("a", nil)
	h.send("shop", "orders/updated", "wh-drain", "2025-01", envelope.ChannelWebhook,
		shopOrder(1, time.Date(2025, 1, 1, 0, 0, 1, 0, time.UTC), "paid", true))
	h.waitAll(1)
	if p, rt := h.total(Processed), h.total(Retried); p != 1 || rt != 1 {
		t.Fatalf("processed %d, retried %d; want 1, 1", p, rt)
	}
	tier, retryTopic := kafka.TierName(testTiers[0]), h.topics.Retry[0]

	// The case under test: the group's offset on the retry topic is one
	// short of the high watermark, the commit marker's offset.
	adm := kadm.NewClient(env.Client(t))
	testenv.Eventually(t, 10*time.Second, "an offset lag of 1 (the commit marker) on "+retryTopic, func() bool {
		lags, err := adm.Lag(context.Background(), h.config().Group)
		if err != nil || lags.Error() != nil {
			return false
		}
		return lags[h.config().Group].Lag.TotalByTopic()[retryTopic].Lag == 1
	})

	// Every tier and topic reads 0 in a measurement taken after the drain
	// (the depth loop ticks every 200ms here).
	drained := time.Now()
	zero := func(got map[string]int64, keys ...string) bool {
		for _, k := range keys {
			if n, ok := got[k]; !ok || n != 0 {
				return false
			}
		}
		return true
	}
	seen := "" // the last values logged
	testenv.Eventually(t, 10*time.Second, "a retry depth and lag of 0 on every tier and topic after the drain", func() bool {
		r.p.metrics.mu.Lock()
		at := r.p.metrics.depths.lagAt
		r.p.metrics.mu.Unlock()
		if !at.After(drained) {
			return false
		}
		retry := telemetrytest.Int64s(t, reader, "inlet.retry.depth", "tier")
		lag := telemetrytest.Int64s(t, reader, "inlet.consumer.lag", "topic")
		if zero(retry, tier, kafka.TierName(testTiers[1])) && zero(lag, h.topics.Raw, retryTopic, h.topics.Retry[1]) {
			return true
		}
		if now := fmt.Sprintf("retry depth %v, lag %v", retry, lag); now != seen {
			t.Log(now)
			seen = now
		}
		return false
	})
}

// TestLatencyNeverNegative: a sender's clock ahead of ours (business time
// up to max_future past receipt is accepted), or ingest's, records a
// latency of 0, never a negative one in the lowest bucket that pulls _sum
// down; future-dated events are counted by source.
func TestLatencyNeverNegative(t *testing.T) {
	topics := kafka.TopicNames("t", kafka.DefaultRetryTiers)
	m, r := manualMetrics(t, 10)
	now := time.Now()
	processed := func(src string, received, occurred time.Time) *item {
		return &item{rec: &kgo.Record{Topic: topics.Raw}, outcome: Processed,
			env: &envelope.Envelope{Source: src, EventType: "orders/updated", ReceivedAt: received},
			out: &router.Output{OccurredAt: occurred}}
	}
	// A fast sender clock (2 minutes), and ingest's clock 30s ahead of ours.
	m.observe(context.Background(), processed("shop", now.Add(30*time.Second), now.Add(2*time.Minute)), topics, now)
	// On time: 1s since receipt, 10s since it occurred.
	m.observe(context.Background(), processed("stripe", now.Add(-time.Second), now.Add(-10*time.Second)), topics, now)

	for _, c := range []struct {
		name string
		sum  float64
	}{{"inlet.end_to_end.latency", 10}, {"inlet.processing.latency", 1}} {
		n, sum, low := histogram(t, r, c.name)
		if n != 2 || low != 0 || math.Abs(sum-c.sum) > 1e-6 {
			t.Errorf("%s: count %d, sum %v, min %v; want 2, %v, 0", c.name, n, sum, low, c.sum)
		}
	}
	if got := telemetrytest.Int64s(t, r, "inlet.events.future_dated", "source"); !maps.Equal(got, map[string]int64{"shop": 1}) {
		t.Errorf("future-dated events %v, want shop: 1", got)
	}
}

// histogram collects r and returns the count, sum and minimum of the
// float64 histogram named name, over all its points.
func histogram(t *testing.T, r *sdkmetric.ManualReader, name string) (n uint64, sum, low float64) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	low = math.Inf(1)
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			h, ok := mt.Data.(metricdata.Histogram[float64])
			if mt.Name != name || !ok {
				continue
			}
			for _, dp := range h.DataPoints {
				n += dp.Count
				sum += dp.Sum
				if v, ok := dp.Min.Value(); ok {
					low = min(low, v)
				}
			}
		}
	}
	return n, sum, low
}

// TestLagFoldKeepsLastOnGroupError: kadm.Lag reports a failed describe or
// offset fetch of the group in its result, with a nil error. Folded in as
// a measurement it emptied the lag and retry depth gauges for a tick,
// restarting the `for: 10m` of InletProcessorLag and
// InletRetryBacklogGrowing; it is a failed measurement, which keeps the
// last values (until staleDepths).
func TestLagFoldKeepsLastOnGroupError(t *testing.T) {
	topics := kafka.TopicNames("t", kafka.DefaultRetryTiers)
	p := &Processor{log: slog.New(slog.DiscardHandler), cfg: Config{Group: "g"}, d: Deps{Topics: topics}}
	tier := kafka.TierName(topics.RetryTiers[0])
	at := time.Now().Add(-time.Minute)
	last := func() depths {
		return depths{retry: map[string]int64{tier: 4}, lag: map[string]int64{topics.Raw: 20000, topics.Retry[0]: 4}, known: true, lagAt: at}
	}
	now := time.Now()
	for _, c := range []struct {
		name string
		lag  kadm.DescribedGroupLag
	}{
		{"offset fetch failed", kadm.DescribedGroupLag{Group: "g", FetchErr: kerr.CoordinatorLoadInProgress}},
		{"describe failed", kadm.DescribedGroupLag{Group: "g", DescribeErr: kerr.CoordinatorNotAvailable}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := last()
			p.foldLag(context.Background(), &d, nil, kadm.DescribedGroupLags{"g": c.lag}, nil, now)
			if want := last(); !maps.Equal(d.retry, want.retry) || !maps.Equal(d.lag, want.lag) || !d.known || !d.lagAt.Equal(at) {
				t.Fatalf("after %s: %+v, want the last values %+v", c.name, d, want)
			}
			// Not measured for longer than staleDepths: withdrawn.
			d.lagAt = now.Add(-staleDepths - time.Minute)
			p.foldLag(context.Background(), &d, nil, kadm.DescribedGroupLags{"g": c.lag}, nil, now)
			if d.known {
				t.Fatalf("after %s, stale: still reported: %+v", c.name, d)
			}
		})
	}
	t.Run("a measurement replaces them", func(t *testing.T) {
		d := last()
		lags := kadm.DescribedGroupLags{"g": {Group: "g", Lag: kadm.GroupLag{
			topics.Raw:      {0: {Topic: topics.Raw, Partition: 0, Lag: 7}, 1: {Topic: topics.Raw, Partition: 1, Lag: -1, Err: kerr.UnknownTopicOrPartition}},
			topics.Retry[0]: {0: {Topic: topics.Retry[0], Partition: 0, Lag: 0}},
		}}}
		p.foldLag(context.Background(), &d, nil, lags, nil, now)
		if !d.known || !d.lagAt.Equal(now) || !maps.Equal(d.lag, map[string]int64{topics.Raw: 7, topics.Retry[0]: 0}) || !maps.Equal(d.retry, map[string]int64{tier: 0}) {
			t.Fatalf("after a measurement: %+v", d)
		}
	})
}

// TestLagMeterCountsCommittedRecords: behind a group's offset, the meter
// counts committed records only: not commit or abort markers, not an
// aborted batch's records; the same offsets again are not read twice;
// beyond exactLag the offset lag stands.
func TestLagMeterCountsCommittedRecords(t *testing.T) {
	env := testenv.Embedded(t)
	ctx := context.Background()
	topic := env.Prefix + ".lagmeter"
	adm := kadm.NewClient(env.Client(t))
	if _, err := adm.CreateTopic(ctx, 1, -1, nil, topic); err != nil {
		t.Fatal(err)
	}
	txn := env.Client(t, kgo.TransactionalID(env.Prefix+"-lagmeter"), kgo.DefaultProduceTopic(topic))
	batch := func(n int, end kgo.TransactionEndTry) {
		t.Helper()
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for range n {
			if err := txn.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := txn.EndTransaction(ctx, end); err != nil {
			t.Fatal(err)
		}
	}
	batch(2, kgo.TryCommit) // offsets 0, 1; commit marker 2
	batch(3, kgo.TryAbort)  // 3, 4, 5 aborted; abort marker 6
	var hw int64
	testenv.Eventually(t, 10*time.Second, "the high watermark past the abort marker", func() bool {
		l, err := adm.ListEndOffsets(ctx, topic)
		o, _ := l.Lookup(topic, 0)
		hw = o.Offset
		return err == nil && hw == 7
	})
	lagAt := func(commit int64) kadm.DescribedGroupLags {
		return kadm.DescribedGroupLags{"g": {Group: "g", Lag: kadm.GroupLag{topic: {0: {
			Topic: topic, Commit: kadm.Offset{Topic: topic, At: commit}, End: kadm.ListedOffset{Topic: topic, Offset: hw}, Lag: hw - commit,
		}}}}}
	}
	m := newLagMeter(env.Client(t))
	reads := 0 // each read makes a client of m.opts
	m.opts = append(m.opts, kgo.WithHooks(onNewClient(func() { reads++ })))
	for _, c := range []struct {
		commit, want int64
	}{{0, 2}, {1, 1}, {2, 0}, {6, 0}} {
		for _, again := range []bool{false, true} { // again: from what was counted, unread
			before := reads
			got, err := m.exact(ctx, lagAt(c.commit))
			if err != nil {
				t.Fatal(err)
			}
			if n, ok := got[topicPartition{topic, 0}]; !ok || n != c.want {
				t.Errorf("group at offset %d (offset lag %d, again %v): %d records behind (counted %v), want %d", c.commit, hw-c.commit, again, n, ok, c.want)
			}
			if read := reads > before; read == again {
				t.Errorf("group at offset %d (again %v): read the partition %v, want %v", c.commit, again, read, !again)
			}
		}
	}
	// Beyond exactLag the offset lag stands, unread.
	big := lagAt(0)
	l := big["g"].Lag[topic][0]
	l.Lag = exactLag + 1
	big["g"].Lag[topic][0] = l
	before := reads
	if got, err := m.exact(ctx, big); err != nil || len(got) != 0 || reads != before {
		t.Fatalf("offset lag %d: counted %v (error %v, %d reads), want nothing counted or read", l.Lag, got, err, reads-before)
	}
}

// onNewClient is a kgo hook that calls f for each client made.
type onNewClient func()

func (f onNewClient) OnNewClient(*kgo.Client) { f() }

// A healthy retry waits its tier's delay and a little more: a bucket bound
// just past each default delay keeps its p99 near the delay. With the bound
// on the delay, a 901 s wait fell in the bucket up to 3600 and p99 read
// about 3573 s on a healthy system.
func TestRetryWaitBucketsResolveEachTier(t *testing.T) {
	bounds := otelmetric.NewFloat64HistogramConfig(retryWaitBuckets).ExplicitBucketBoundaries()
	for _, d := range kafka.DefaultRetryTiers {
		delay := d.Seconds()
		ok := false
		for _, b := range bounds {
			ok = ok || (b > delay && b <= delay*1.05)
		}
		if !ok {
			t.Errorf("tier %v: no bucket bound in (%g, %g] s among %v", d, delay, delay*1.05, bounds)
		}
	}
}

// TestRequeuedLatencyCountsFromTheRequeue guards the latency histograms
// against entries requeued long after they failed: a month-old DLQ entry
// recorded a month of latency, holding p99 at the top bucket.
func TestRequeuedLatencyCountsFromTheRequeue(t *testing.T) {
	topics := kafka.TopicNames("t", kafka.DefaultRetryTiers)
	m, r := manualMetrics(t, 10)
	now := time.Now()
	month := now.Add(-30 * 24 * time.Hour)
	onTier := func(attempt string, received, occurred time.Time, requeued bool) *item {
		h := []kgo.RecordHeader{{Key: retry.HeaderAttempt, Value: []byte(attempt)}}
		h = retry.AppendError(h, retry.ErrorEntry{At: received.Add(time.Minute), Stage: "deliver", Error: "sink answered 400"})
		if requeued { // as pkg/ops writes a requeue
			h = retry.AppendError(h, retry.ErrorEntry{At: now.Add(-2 * time.Second), Stage: "requeue", Error: "requeued from t.dlq/0/1 by alice: fixed"})
		}
		return &item{rec: &kgo.Record{Topic: topics.Retry[0], Timestamp: now.Add(-time.Second), Headers: h}, outcome: Processed,
			env: &envelope.Envelope{Source: "shop", EventType: "orders/updated", ReceivedAt: received},
			out: &router.Output{OccurredAt: occurred}}
	}
	m.observe(context.Background(), onTier("1", month, month, true), topics, now)                                        // requeued 2s ago
	m.observe(context.Background(), onTier("2", month, month, true), topics, now)                                        // requeued 2s ago, failed again, retried
	m.observe(context.Background(), onTier("2", now.Add(-31*time.Second), now.Add(-32*time.Second), false), topics, now) // retried once
	for _, c := range []struct {
		name string
		sum  float64
	}{{"inlet.processing.latency", 2 + 2 + 31}, {"inlet.end_to_end.latency", 2 + 2 + 32}} {
		if n, sum, _ := histogram(t, r, c.name); n != 3 || math.Abs(sum-c.sum) > 1e-6 {
			t.Errorf("%s: count %d, sum %.0f s; want 3, %.0f", c.name, n, sum, c.sum)
		}
	}
}

// TestQueueDepthsCountNewPartitions: the DLQ depth (the processor's
// tracker, as its gauge reads it, and inletctl dlq depth) counts entries
// on partitions added after it first read the queue, once the client's
// metadata (at most franz-go's 5 s metadata min age old) lists them.
func TestQueueDepthsCountNewPartitions(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t))
	q, ctx := queues(t, h)
	tr := ops.NewTracker(q, h.topics.DLQ, h.topics.Invalid)
	for i := range 10 {
		h.env.DeadLetter(t, h.topics, h.codec, "stripe", "x", fmt.Sprintf("evt_%d", i), "boom")
	}
	if n, err := tr.Refresh(ctx); err != nil || n[0] != 10 {
		t.Fatalf("depth %v, %v; want 10", n, err)
	}
	resp, err := kadm.NewClient(h.env.Client(t)).CreatePartitions(ctx, 3, h.topics.DLQ)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	onNew := 0
	for i := range 20 {
		id := h.env.DeadLetter(t, h.topics, h.codec, "stripe", "x", fmt.Sprintf("evt_new_%d", i), "boom")
		if !strings.Contains(id, "/0/") && !strings.Contains(id, "/1/") && !strings.Contains(id, "/2/") {
			onNew++
		}
	}
	if onNew == 0 {
		t.Fatal("no entry was written to the new partitions")
	}
	testenv.Eventually(t, 15*time.Second, "the depths to count the new partitions' entries", func() bool {
		n, err := tr.Refresh(ctx)
		d, derr := q.Depth(ctx, h.topics.DLQ)
		return err == nil && derr == nil && n[0] == 30 && d == 30
	})
}

// TestRetryWaitNeverNegative: a retry record timestamped by a clock ahead
// of ours (another processor's, an operator's requeue) waited 0 s as far
// as we can tell, not a negative time in the lowest bucket pulling _sum
// down, as the latencies (TestLatencyNeverNegative).
func TestRetryWaitNeverNegative(t *testing.T) {
	topics := kafka.TopicNames("t", kafka.DefaultRetryTiers)
	m, r := manualMetrics(t, 10)
	now := time.Now()
	onTier := func(written time.Time) *item {
		return &item{rec: &kgo.Record{Topic: topics.Retry[0], Timestamp: written}, outcome: Processed,
			env: &envelope.Envelope{Source: "shop", EventType: "orders/updated", ReceivedAt: now.Add(-time.Minute)}}
	}
	m.observe(context.Background(), onTier(now.Add(10*time.Minute)), topics, now) // its writer's clock 10 min fast
	m.observe(context.Background(), onTier(now.Add(-31*time.Second)), topics, now)
	if n, sum, low := histogram(t, r, "inlet.retry.wait"); n != 2 || low != 0 || math.Abs(sum-31) > 1e-6 {
		t.Fatalf("inlet.retry.wait: count %d, sum %v, min %v; want 2, 31, 0", n, sum, low)
	}
}

// manualMetrics is the processor's metrics on a manual reader, event
// types limited to limit.
func manualMetrics(t *testing.T, limit int) (*metrics, *sdkmetric.ManualReader) {
	t.Helper()
	r := sdkmetric.NewManualReader()
	m, err := newMetrics(sdkmetric.NewMeterProvider(sdkmetric.WithReader(r)).Meter("t"), telemetry.NewLimiter(limit))
	if err != nil {
		t.Fatal(err)
	}
	return m, r
}

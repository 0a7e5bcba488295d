package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inletdev/inlet/pkg/history"
	"github.com/inletdev/inlet/pkg/retry"
	"github.com/inletdev/inlet/pkg/testenv"
)

// TestCorrelationOfOnASlowLink: over a link where every new connection
// takes over a second (a remote cluster behind TLS/SASL), the lookup still
// finds the event; it used to stop at the first poll that brought nothing
// within a second and say the event was never received.
func TestCorrelationOfOnASlowLink(t *testing.T) {
	env := testenv.Embedded(t)
	topics := env.CreateTopics(t, nil)
	ctx := context.Background()
	rec := &kgo.Record{Topic: topics.Raw, Key: []byte("stripe:evt_slow"), Value: []byte("x"),
		Headers: []kgo.RecordHeader{{Key: "correlation-id", Value: []byte("corr-slow")}}}
	if err := env.Client(t, kgo.ProducerLinger(0)).ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	slow := kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
		select {
		case <-time.After(1200 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		var d net.Dialer
		return d.DialContext(ctx, network, host)
	})
	found, err := deliveriesOf(ctx, []kgo.Opt{kgo.SeedBrokers(env.Brokers...), slow}, topics.Raw, "stripe:evt_slow", time.Time{}, nil, maxDeliveries, false)
	if err != nil || found.total != 1 || found.shown[0].corr != "corr-slow" {
		t.Fatalf("deliveriesOf = %+v, %v; want corr-slow", found, err)
	}
}

// adminTraces is an admin API answering any trace corr-ID with a stage of
// stripe's event ID, recording which correlation ids were asked for.
func adminTraces(t *testing.T) (string, *requestLog) {
	t.Helper()
	asked := &requestLog{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.add(r)
		corr := strings.TrimPrefix(r.URL.Path, "/v1/trace/")
		stage := map[string]any{"at": time.Now(), "stage": "received", "source": "stripe", "event_id": strings.TrimPrefix(corr, "corr-")}
		_ = json.NewEncoder(w).Encode(map[string]any{"correlation_id": corr, "stages": []any{stage}})
	}))
	t.Cleanup(srv.Close)
	return srv.URL, asked
}

// TestTraceEventSince: trace --event reads the raw topic from --since
// (default 30 days back), not from its start: the topic is kept forever,
// and reading it whole could not finish on a mature cluster.
func TestTraceEventSince(t *testing.T) {
	env := testenv.Embedded(t)
	topics := env.CreateTopics(t, nil)
	ctx := context.Background()
	now := time.Now()
	cl := env.Client(t, kgo.ProducerLinger(0))
	for _, r := range []struct {
		evt string
		at  time.Time
	}{{"evt_old", now.Add(-40 * 24 * time.Hour)}, {"evt_new", now.Add(-time.Hour)}} {
		rec := &kgo.Record{Topic: topics.Raw, Key: []byte("stripe:" + r.evt), Value: []byte("x"), Timestamp: r.at,
			Headers: []kgo.RecordHeader{{Key: "correlation-id", Value: []byte("corr-" + r.evt)}}}
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	admin, asked := adminTraces(t)
	flags := []string{"-kafka-brokers", strings.Join(env.Brokers, ","), "-topic-prefix", env.Prefix, "trace", "-admin-url", admin}
	for _, tc := range []struct {
		name, evt string
		since     []string
		code      int
		corr      string // asked of the admin API
	}{
		{"an event older than the default 30 days is not searched", "evt_old", nil, exitNotFound, ""},
		{"--since all searches the whole topic", "evt_old", []string{"--since", "all"}, exitOK, "corr-evt_old"},
		{"--since 0 too", "evt_old", []string{"--since=0"}, exitOK, "corr-evt_old"},
		{"--since a time before the event", "evt_old", []string{"--since", now.Add(-41 * 24 * time.Hour).UTC().Format(time.RFC3339)}, exitOK, "corr-evt_old"},
		{"--since in days", "evt_old", []string{"--since", "45d"}, exitOK, "corr-evt_old"},
		{"--since 72h leaves the old one out", "evt_old", []string{"--since", "72h"}, exitNotFound, ""},
		{"--since 72h finds a recent one", "evt_new", []string{"--since", "72h"}, exitOK, "corr-evt_new"},
		{"the default finds a recent one", "evt_new", nil, exitOK, "corr-evt_new"},
		{"--since must parse", "evt_new", []string{"--since", "last week"}, exitUsage, ""},
		{"a page's --since must parse", "evt_new", []string{"--since", "2026-01-01T00:00:00.000Z/x/1"}, exitUsage, ""},
		{"a page's --since from before the event", "evt_new", []string{"--since", now.Add(-2*time.Hour).UTC().Format("2006-01-02T15:04:05.000Z") + "/0/0"}, exitOK, "corr-evt_new"},
		{"--timeout must parse", "evt_new", []string{"--timeout", "-1s"}, exitUsage, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(asked.get())
			args := append(append(slices.Clone(flags), "--event", tc.evt, "--source", "stripe"), tc.since...)
			code, err := run(args, &bytes.Buffer{})
			if code != tc.code {
				t.Fatalf("exit %d (%v), want %d", code, err, tc.code)
			}
			if code == exitNotFound && (err == nil || !strings.Contains(err.Error(), "--since all")) {
				t.Errorf("not found: %v; want a hint at --since all", err)
			}
			got := asked.get()[before:]
			if tc.corr == "" && len(got) > 0 || tc.corr != "" && !slices.Equal(got, []string{"GET /v1/trace/" + tc.corr}) {
				t.Errorf("admin API asked %v, want %q", got, tc.corr)
			}
		})
	}
	t.Run("a source the sources file does not have", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "sources.yaml")
		if err := os.WriteFile(path, []byte("sources:\n  stripe:\n    kind: none\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		code, err := run(append(slices.Clone(flags), "--event", "evt_new", "--source", "strpe", "--sources", path), &bytes.Buffer{})
		if code != exitUsage || err == nil || !strings.Contains(err.Error(), `"strpe"`) || !strings.Contains(err.Error(), "its sources: stripe") {
			t.Fatalf("exit %d (%v), want %d naming the sources", code, err, exitUsage)
		}
		t.Setenv("INLET_SOURCES", path) // the same from the environment; a known source still finds its event
		if code, err := run(append(slices.Clone(flags), "--event", "evt_new", "--source", "strpe"), &bytes.Buffer{}); code != exitUsage {
			t.Fatalf("INLET_SOURCES: exit %d (%v), want %d", code, err, exitUsage)
		}
		if code, err := run(append(slices.Clone(flags), "--event", "evt_new", "--source", "stripe"), &bytes.Buffer{}); code != exitOK {
			t.Fatalf("known source: exit %d (%v)", code, err)
		}
	})
	t.Run("--since goes with --event", func(t *testing.T) {
		if code, _ := run(append(slices.Clone(flags), "--since", "72h", "corr-1"), &bytes.Buffer{}); code != exitUsage {
			t.Fatalf("exit %d, want %d", code, exitUsage)
		}
	})
}

// TestTraceEventTimeout: when --timeout runs out, trace says what it
// searched and what to change, not a bare "context deadline exceeded".
func TestTraceEventTimeout(t *testing.T) {
	env := testenv.Embedded(t)
	topics := env.CreateTopics(t, nil)
	rec := &kgo.Record{Topic: topics.Raw, Key: []byte("stripe:evt_1"), Value: []byte("x")}
	if err := env.Client(t, kgo.ProducerLinger(0)).ProduceSync(context.Background(), rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// Every fetch hangs, as on a topic too large to read in the budget.
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	k := env.Stack.Kafka
	k.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		k.KeepControl()
		k.SleepControl(func() { <-release })
		return nil, nil, false
	})
	args := []string{"-kafka-brokers", strings.Join(env.Brokers, ","), "-topic-prefix", env.Prefix,
		"trace", "--event", "evt_1", "--source", "stripe", "--since", "2025-01-31T00:00:00Z", "--timeout", "2s"}
	start := time.Now()
	code, err := run(args, &bytes.Buffer{})
	if code != exitError || err == nil {
		t.Fatalf("exit %d, %v", code, err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("took %v with --timeout 2s", took)
	}
	for _, want := range []string{"not found within --timeout 2s", "searched " + topics.Raw + " from 2025-01-31T00:00:00Z to now", "(the key's) in part", "narrow --since or raise --timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestTraceSharedCorrelationID: a correlation id shared by more events
// than its history keeps (a sender reusing X-Correlation-ID) says how many
// older entries were dropped; trace --event shows only that event's
// entries, and exits 3 when none of them are kept.
func TestTraceSharedCorrelationID(t *testing.T) {
	env := testenv.Embedded(t)
	topics := env.CreateTopics(t, nil)
	ctx := context.Background()
	cl := env.Client(t, kgo.ProducerLinger(0))
	for _, evt := range []string{"evt_gone", "evt_keep"} {
		rec := &kgo.Record{Topic: topics.Raw, Key: []byte("stripe:" + evt), Value: []byte("x"),
			Headers: []kgo.RecordHeader{{Key: "correlation-id", Value: []byte("corr-shared")}}}
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	rdb := env.Redis(t)
	hist := history.New(rdb, env.Prefix+":", 0)
	at := time.Date(2026, 11, 28, 17, 11, 21, 0, time.UTC)
	event := func(id string) []history.Entry {
		base := history.Entry{At: at, Source: "stripe", EventType: "payment_intent.succeeded", EventID: id}
		r, w, a := base, base, base
		r.Stage, r.Where = "received", "ingest (webhook)"
		w.Stage, w.Where = "written", "inlet.raw/0/1"
		a.Stage, a.Outcome, a.Attempt, a.Where = "attempt", "processed", 1, "inlet.processed key stripe:pi:1"
		return []history.Entry{r, w, a}
	}
	// evt_gone's 3 entries, 200 of 100 other events, evt_keep's 3, an
	// undecodable record's 2: 208, the 8 oldest dropped.
	appends := [][]history.Entry{event("evt_gone")}
	for i := range 100 {
		appends = append(appends, event(fmt.Sprint("evt_other_", i))[:2])
	}
	appends = append(appends, event("evt_keep"), []history.Entry{
		{At: at, Stage: "written", Undecodable: true, Where: "inlet.raw/2/9"},
		{At: at, Stage: "attempt", Outcome: "invalid", Attempt: 1, Undecodable: true, Where: "inlet.invalid", Error: "undecodable envelope: bad magic byte"},
	})
	for _, es := range appends {
		if err := hist.Append(ctx, map[string][]history.Entry{"corr-shared": es}); err != nil {
			t.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/trace/{id}", hist.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	flags := []string{"-kafka-brokers", strings.Join(env.Brokers, ","), "-topic-prefix", env.Prefix, "trace", "-admin-url", srv.URL}
	rows := func(out string) int { return strings.Count(out, "\n2026-11-28T") }

	t.Run("by correlation id: every entry kept and what was dropped", func(t *testing.T) {
		var out bytes.Buffer
		code, err := run(append(slices.Clone(flags), "corr-shared"), &out)
		if code != exitOK || rows(out.String()) != 200 || !strings.Contains(out.String(), "older entries dropped: 8") || !strings.Contains(out.String(), "inlet.raw/2/9 (undecodable)") {
			t.Fatalf("exit %d (%v), %d rows:\n%.600s", code, err, rows(out.String()), out.String())
		}
	})
	t.Run("by event: only its entries", func(t *testing.T) {
		var out bytes.Buffer
		code, err := run(append(slices.Clone(flags), "--event", "evt_keep", "--source", "stripe"), &out)
		if code != exitOK || rows(out.String()) != 3 || !strings.Contains(out.String(), "shared by other events") || !strings.Contains(out.String(), "older entries dropped: 8") {
			t.Fatalf("exit %d (%v), %d rows:\n%s", code, err, rows(out.String()), out.String())
		}
	})
	t.Run("by event as JSON", func(t *testing.T) {
		var out bytes.Buffer
		code, err := run(append(slices.Clone(flags), "--event", "evt_keep", "--source", "stripe", "-output", "json"), &out)
		var body struct {
			EventID string          `json:"event_id"`
			Stages  []history.Entry `json:"stages"`
			Dropped int64           `json:"dropped_entries"`
		}
		if code != exitOK || json.Unmarshal(out.Bytes(), &body) != nil || body.EventID != "evt_keep" || body.Dropped != 8 || len(body.Stages) != 3 {
			t.Fatalf("exit %d (%v): %.600s", code, err, out.String())
		}
		for _, e := range body.Stages {
			if e.EventID != "evt_keep" {
				t.Errorf("stage %+v is not evt_keep's", e)
			}
		}
	})
	t.Run("by event whose entries were all dropped", func(t *testing.T) {
		var out bytes.Buffer
		code, err := run(append(slices.Clone(flags), "--event", "evt_gone", "--source", "stripe"), &out)
		if code != exitNotFound || err == nil || !strings.Contains(err.Error(), "none of event evt_gone") || !strings.Contains(err.Error(), "8 older entries dropped") {
			t.Fatalf("exit %d (%v): %.600s", code, err, out.String())
		}
	})
}

// TestTraceEventNamesRecordsIngestDidNotWrite: a tombstone on the raw
// topic under the event's key (a deletion someone wrote, with kcat say)
// was traced as one more delivery with `no history is kept under the
// correlation id ""`, and an event only a tombstone is left of exited 3
// saying just that: neither said where the record is nor what it is.
func TestTraceEventNamesRecordsIngestDidNotWrite(t *testing.T) {
	env := testenv.Embedded(t)
	topics := env.CreateTopics(t, nil)
	ctx := context.Background()
	cl := env.Client(t, kgo.ProducerLinger(0))
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	hist, url, _ := historyAPI(t, env)
	produce := func(r *kgo.Record) string {
		t.Helper()
		r.Topic = topics.Raw
		res := cl.ProduceSync(ctx, r)
		if err := res.FirstErr(); err != nil {
			t.Fatal(err)
		}
		return retry.Coordinates(res[0].Record)
	}
	produce(&kgo.Record{Key: []byte("stripe:evt_1"), Value: []byte("x"), Timestamp: base, Headers: []kgo.RecordHeader{{Key: "correlation-id", Value: []byte("corr-1")}}})
	tomb1 := produce(&kgo.Record{Key: []byte("stripe:evt_1"), Timestamp: base.Add(time.Second)})
	tomb2 := produce(&kgo.Record{Key: []byte("stripe:evt_2"), Timestamp: base.Add(time.Second)})
	foreign := produce(&kgo.Record{Key: []byte("stripe:evt_3"), Value: []byte(`{"id":"evt_3"}`), Timestamp: base.Add(time.Second)})
	if err := hist.Append(ctx, map[string][]history.Entry{"corr-1": {{At: base, Source: "stripe", EventType: "invoice.paid", EventID: "evt_1", Stage: "received"}}}); err != nil {
		t.Fatal(err)
	}
	flags := []string{"-kafka-brokers", strings.Join(env.Brokers, ","), "-topic-prefix", env.Prefix, "trace", "-admin-url", url}
	var out bytes.Buffer
	code, err := run(append(slices.Clone(flags), "--event", "evt_1", "--source", "stripe"), &out)
	if code != exitOK || !strings.Contains(out.String(), tomb1+": a tombstone") {
		t.Errorf("evt_1: exit %d (%v), want its tombstone %s named as one:\n%s", code, err, tomb1, out.String())
	}
	for _, c := range []struct{ evt, where, what string }{{"evt_2", tomb2, "a tombstone"}, {"evt_3", foreign, "no correlation-id header"}} {
		out.Reset()
		code, err = run(append(slices.Clone(flags), "--event", c.evt, "--source", "stripe"), &out)
		if code != exitNotFound || err == nil || !strings.Contains(err.Error(), c.where+": "+c.what) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: exit %d (%v), want %d naming %s as %s on one line", c.evt, code, err, exitNotFound, c.where, c.what)
		}
	}
}

// TestTraceEventPagingRepeatsNothing: trace --event shows 20 deliveries
// and names the --since of the rest. That --since was the first unshown
// delivery's time, so a delivery shown with the same millisecond (an
// NDJSON batch repeating an event, a sender's retry storm) or a later
// timestamp at an earlier offset (ingest stamps the time a request came,
// before its produce) came back on the next page: with 23 deliveries in
// one millisecond, following next_since showed the first 20 for ever.
// Followed page by page, every delivery is shown exactly once.
func TestTraceEventPagingRepeatsNothing(t *testing.T) {
	env := testenv.Embedded(t)
	topics := env.CreateTopics(t, nil)
	ctx := context.Background()
	cl := env.Client(t, kgo.ProducerLinger(0))
	admin, _ := adminTraces(t)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for _, tc := range []struct {
		name string
		at   func(i int) time.Time
	}{
		{"one millisecond", func(int) time.Time { return base }},
		{"out of time order", func(i int) time.Time {
			// Offset order; every fifth stamped 30 s later than its place.
			d := time.Duration(i) * time.Second
			if i%5 == 4 {
				d += 30 * time.Second
			}
			return base.Add(d)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evt := "evt_" + strings.ReplaceAll(tc.name, " ", "_")
			const n = 2*maxDeliveries + 3
			want := map[string]int{}
			for i := range n {
				rec := &kgo.Record{Topic: topics.Raw, Key: []byte("stripe:" + evt), Value: []byte("x"), Timestamp: tc.at(i),
					Headers: []kgo.RecordHeader{{Key: "correlation-id", Value: []byte("corr-" + evt)}}}
				res := cl.ProduceSync(ctx, rec)
				if err := res.FirstErr(); err != nil {
					t.Fatal(err)
				}
				want[retry.Coordinates(res[0].Record)] = 0
			}
			flags := []string{"-kafka-brokers", strings.Join(env.Brokers, ","), "-topic-prefix", env.Prefix, "trace", "-admin-url", admin, "-output", "json", "--event", evt, "--source", "stripe"}
			since := base.Add(-time.Minute).UTC().Format(time.RFC3339)
			seen := map[string]int{}
			pages := 0
			for ; since != "" && pages < 5; pages++ {
				var out bytes.Buffer
				code, err := run(append(slices.Clone(flags), "--since", since), &out)
				var body traceAnswer
				if code != exitOK || json.Unmarshal(out.Bytes(), &body) != nil {
					t.Fatalf("--since %s: exit %d (%v): %.400s", since, code, err, out.String())
				}
				for _, d := range body.Deliveries {
					seen[d.Where]++
				}
				since = body.NextSince
			}
			var twice, missing []string
			for w := range want {
				switch seen[w] {
				case 0:
					missing = append(missing, w)
				case 1:
				default:
					twice = append(twice, fmt.Sprintf("%s ×%d", w, seen[w]))
				}
			}
			if len(twice) > 0 || len(missing) > 0 || since != "" {
				slices.Sort(twice)
				slices.Sort(missing)
				t.Fatalf("%d pages (next_since %q left): %d deliveries shown more than once %v, %d never %v", pages, since, len(twice), twice, len(missing), missing)
			}
		})
	}
}

// TestTraceEventAfterPartitionsWereAdded: an event delivered before
// partitions were added to the raw topic (its key hashed to partition p
// under the old count) and redelivered after (partition q under the new)
// was traced from partition q only: the first delivery, the processed one,
// was missing, the total too low, and nothing said a partition was left
// unread. Now trace says it read only the key's partition and names
// --all-partitions, which reads them all.
func TestTraceEventAfterPartitionsWereAdded(t *testing.T) {
	env := testenv.Embedded(t)
	topics := env.CreateTopics(t, nil)
	ctx := context.Background()
	adm := kadm.NewClient(env.Client(t))
	td, err := adm.ListTopics(ctx, topics.Raw)
	if err != nil {
		t.Fatal(err)
	}
	const added = 3
	before := len(td[topics.Raw].Partitions)
	part := func(key string, n int) int32 {
		return int32(kgo.StickyKeyPartitioner(nil).ForTopic(topics.Raw).Partition(&kgo.Record{Key: []byte(key)}, n))
	}
	// An event whose key moves when the partitions are added.
	evt := ""
	for i := 0; evt == ""; i++ {
		if e := fmt.Sprint("evt_moved_", i); part("stripe:"+e, before) != part("stripe:"+e, before+added) {
			evt = e
		}
	}
	key := "stripe:" + evt
	oldP, newP := part(key, before), part(key, before+added)
	produce := func(cl *kgo.Client, p int32, corr string) error {
		return cl.ProduceSync(ctx, &kgo.Record{Topic: topics.Raw, Partition: p, Key: []byte(key), Value: []byte("x"),
			Headers: []kgo.RecordHeader{{Key: "correlation-id", Value: []byte(corr)}}}).FirstErr()
	}
	if err := produce(env.Client(t, kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.ManualPartitioner())), oldP, "corr-first"); err != nil {
		t.Fatal(err)
	}
	resp, err := adm.CreatePartitions(ctx, added, topics.Raw)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	nc := env.Client(t, kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.MetadataMinAge(100*time.Millisecond), kgo.MetadataMaxAge(250*time.Millisecond))
	testenv.Eventually(t, 20*time.Second, "the redelivery written to the key's new partition", func() bool {
		return produce(nc, newP, "corr-again") == nil
	})
	// The first delivery was processed, the redelivery skipped as its
	// duplicate.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		corr := strings.TrimPrefix(r.URL.Path, "/v1/trace/")
		outcome := map[string]string{"corr-first": "processed", "corr-again": "duplicate"}[corr]
		stage := map[string]any{"at": time.Now(), "stage": "attempt", "outcome": outcome, "attempt": 1, "source": "stripe", "event_id": evt}
		_ = json.NewEncoder(w).Encode(map[string]any{"correlation_id": corr, "stages": []any{stage}})
	}))
	t.Cleanup(srv.Close)
	flags := []string{"-kafka-brokers", strings.Join(env.Brokers, ","), "-topic-prefix", env.Prefix, "trace", "-admin-url", srv.URL, "--event", evt, "--source", "stripe"}
	first := fmt.Sprintf("%s/%d/0", topics.Raw, oldP)

	t.Run("the key's partition only, saying so", func(t *testing.T) {
		var out bytes.Buffer
		code, err := run(slices.Clone(flags), &out)
		if code != exitOK || !strings.Contains(out.String(), "--all-partitions") || !strings.Contains(out.String(), fmt.Sprintf("partition %d", newP)) || !strings.Contains(out.String(), "no delivery shown was processed") {
			t.Fatalf("exit %d (%v); want a line naming the one partition read, that none shown was processed, and --all-partitions:\n%s", code, err, out.String())
		}
		var js bytes.Buffer
		var body struct {
			Found int    `json:"deliveries_found"`
			Note  string `json:"note"`
		}
		code, err = run(append(slices.Clone(flags), "-output", "json"), &js)
		if code != exitOK || json.Unmarshal(js.Bytes(), &body) != nil || body.Found != 1 || !strings.Contains(body.Note, "--all-partitions") {
			t.Fatalf("json: exit %d (%v); want 1 delivery found and a note naming --all-partitions:\n%s", code, err, js.String())
		}
	})
	for _, tc := range []struct{ name, output string }{{"--all-partitions", "table"}, {"--all-partitions as JSON", "json"}} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			code, err := run(append(slices.Clone(flags), "--all-partitions", "-output", tc.output), &out)
			if code != exitOK {
				t.Fatalf("exit %d (%v):\n%s", code, err, out.String())
			}
			if tc.output == "table" {
				if !strings.Contains(out.String(), "2 deliveries") || !strings.Contains(out.String(), "delivery 1 of 2: "+first) || !strings.Contains(out.String(), "processed") || strings.Contains(out.String(), "--all-partitions") {
					t.Fatalf("want both deliveries, the processed first, and no note:\n%s", out.String())
				}
				return
			}
			var body struct {
				traceAnswer
				Note *string `json:"note"`
			}
			if err := json.Unmarshal(out.Bytes(), &body); err != nil || body.DeliveriesFound != 2 || len(body.Deliveries) != 2 || body.Deliveries[0].Where != first || body.Note != nil {
				t.Fatalf("want both deliveries, the first at %s, no note (%v):\n%s", first, err, out.String())
			}
		})
	}
}

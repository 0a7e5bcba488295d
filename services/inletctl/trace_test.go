package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/admin"
	"github.com/inletdev/inlet/pkg/history"
	"github.com/inletdev/inlet/pkg/service"
	"github.com/inletdev/inlet/pkg/testenv"
)

// TestTraceAdminErrors: when the admin API cannot be asked, trace says
// where it asked and what sets it: a 401 names the token variables (and
// which one was sent), a refused connection the URL and -admin-url /
// INLET_ADMIN_URL. A bare "401 Unauthorized" from another stack on
// 127.0.0.1:9090 sent people checking a token that was right.
func TestTraceAdminErrors(t *testing.T) {
	unauthorized := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "missing or invalid bearer token"})
	}))
	t.Cleanup(unauthorized.Close)
	// Another listener's JSON 404, as ingest's: not "no history" (exit 3).
	ingestLike := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "no such endpoint: webhooks are POST /webhooks/{source}, batches POST /events or /events/{source}"})
	}))
	t.Cleanup(ingestLike.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there any more
	for _, c := range []struct {
		name        string
		read, write string // the token variables
		url         string
		want        []string
	}{
		{"401 without a token", "", "", unauthorized.URL,
			[]string{"401 Unauthorized: missing or invalid bearer token", "no token was sent to " + unauthorized.URL, admin.EnvReadToken, admin.EnvWriteToken, "INLET_ADMIN_URL"}},
		{"401 with the write token", "", "not-this-stacks", unauthorized.URL,
			[]string{"401 Unauthorized", "the token from " + admin.EnvWriteToken + " was refused by " + unauthorized.URL, admin.EnvReadToken, "INLET_ADMIN_URL"}},
		{"401 with the read token", "not-this-stacks", "w", unauthorized.URL,
			[]string{"the token from " + admin.EnvReadToken + " was refused by " + unauthorized.URL}},
		{"connection refused", "", "", refused,
			[]string{"nothing answers at " + refused, "connection refused", "-admin-url", "INLET_ADMIN_URL"}},
		{"another listener's 404", "", "", ingestLike.URL,
			[]string{ingestLike.URL + " answered 404 Not Found, not the admin API", "-admin-url"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(admin.EnvReadToken, c.read)
			t.Setenv(admin.EnvWriteToken, c.write)
			code, err := run([]string{"trace", "-admin-url", c.url, "corr-1"}, &bytes.Buffer{})
			if code != exitError || err == nil {
				t.Fatalf("exit %d, %v", code, err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "not-this-stacks") {
				t.Errorf("the error shows the token: %v", err)
			}
		})
	}
}

// historyAPI is the admin API's trace endpoint over a history store in
// the embedded Redis, recording what it was asked.
func historyAPI(t *testing.T, env *testenv.Env) (*history.Store, string, *requestLog) {
	t.Helper()
	hist := history.New(env.Redis(t), env.Prefix+":", 0)
	mux := http.NewServeMux()
	mux.Handle("GET /v1/trace/{id}", hist.Handler())
	asked := &requestLog{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.add(r)
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return hist, srv.URL, asked
}

// TestTraceBatchCorrelationID: the correlation id of an NDJSON batch's
// answer has no history of its own (each line's is under <id>-<line>):
// trace says so and names a line's id, instead of only "no history".
func TestTraceBatchCorrelationID(t *testing.T) {
	env := testenv.Embedded(t)
	hist, url, asked := historyAPI(t, env)
	at := time.Date(2026, 11, 28, 17, 11, 21, 0, time.UTC)
	line := func(corr, evt string) {
		e := history.Entry{At: at, Stage: "received", Where: "ingest (batch)", Source: "billing", EventID: evt}
		if err := hist.Append(context.Background(), map[string][]history.Entry{corr: {e}}); err != nil {
			t.Fatal(err)
		}
	}
	line("batch-a-1", "inv_1")
	line("batch-a-2", "inv_2")
	line("batch-b-2", "inv_3") // line 1 was rejected
	for _, c := range []struct {
		id, want string
		probes   int // requests after the first
	}{
		{"batch-a", "batch-a-1 has one", 1},
		{"batch-b", "batch-b-2 has one", 2},
		{"not-a-batch", "", batchProbe},
	} {
		t.Run(c.id, func(t *testing.T) {
			before := len(asked.get())
			code, err := run([]string{"trace", "-admin-url", url, c.id}, &bytes.Buffer{})
			if code != exitNotFound || err == nil || !strings.Contains(err.Error(), "no history for this correlation id") {
				t.Fatalf("exit %d, %v; want 3 and no history", code, err)
			}
			if c.want == "" {
				if strings.Contains(err.Error(), "batch") {
					t.Errorf("a batch hint without batch lines: %v", err)
				}
			} else {
				for _, w := range []string{"NDJSON batch's correlation id", c.id + "-1, " + c.id + "-2", c.want, "inletctl trace " + strings.TrimSuffix(c.want, " has one")} {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
			}
			if got := asked.get()[before:]; len(got) != 1+c.probes {
				t.Errorf("asked %v, want %d requests", got, 1+c.probes)
			}
		})
	}
	t.Run("flags after the id", func(t *testing.T) {
		var out bytes.Buffer
		code, err := run([]string{"trace", "batch-a-1", "-admin-url", url, "--output", "json"}, &out)
		var ans traceAnswer
		if code != exitOK || err != nil || json.Unmarshal(out.Bytes(), &ans) != nil || ans.CorrelationID != "batch-a-1" {
			t.Fatalf("trace <id> -admin-url U --output json: exit %d (%v), %q; want its history as JSON", code, err, out.String())
		}
	})
	t.Run("an id no history is kept under is a usage error", func(t *testing.T) {
		before := len(asked.get())
		for _, id := range []string{"bad id!", strings.Repeat("x", 129), "ünï"} {
			code, err := run([]string{"trace", "-admin-url", url, id}, &bytes.Buffer{})
			if code != exitUsage || err == nil || !strings.Contains(err.Error(), "printable ASCII") {
				t.Errorf("trace %q: exit %d (%v), want %d saying what an id is", id, code, err, exitUsage)
			}
		}
		if got := asked.get()[before:]; len(got) != 0 {
			t.Errorf("asked the admin API %v", got)
		}
	})
	t.Run("a line's id within 128 bytes", func(t *testing.T) {
		long := strings.Repeat("x", 128)
		if got := batchLineID(long, 12); len(got) != 128 || !strings.HasSuffix(got, "x-12") {
			t.Fatalf("batchLineID = %q (%d bytes)", got, len(got))
		}
		if got := batchLineID("abc", 1); got != "abc-1" {
			t.Fatalf("batchLineID = %q", got)
		}
	})
}

// TestTraceEventDeliveries: an event its sender delivered several times
// is on the raw topic once per delivery, each with its own correlation id:
// trace --event shows every delivery's history, oldest first (it showed
// only the latest's: a first delivery processed and a third a duplicate
// showed only the duplicate).
func TestTraceEventDeliveries(t *testing.T) {
	env := testenv.Embedded(t)
	topics := env.CreateTopics(t, nil)
	ctx := context.Background()
	cl := env.Client(t, kgo.ProducerLinger(0))
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	produce := func(evt, corr string, at time.Time) {
		t.Helper()
		rec := &kgo.Record{Topic: topics.Raw, Key: []byte("stripe:" + evt), Value: []byte("x"), Timestamp: at,
			Headers: []kgo.RecordHeader{{Key: "correlation-id", Value: []byte(corr)}}}
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	hist, url, _ := historyAPI(t, env)
	record := func(corr, evt string, outcome string, at time.Time) {
		t.Helper()
		b := history.Entry{At: at, Source: "stripe", EventType: "invoice.paid", EventID: evt}
		r, w, a := b, b, b
		r.Stage, r.Where = "received", "ingest (webhook)"
		w.Stage, w.Where = "written", topics.Raw+"/0/0"
		a.Stage, a.Outcome, a.Attempt = "attempt", outcome, 1
		if err := hist.Append(ctx, map[string][]history.Entry{corr: {r, w, a}}); err != nil {
			t.Fatal(err)
		}
	}
	// Delivered three times: processed, its history since expired, then a
	// duplicate.
	produce("evt_3x", "corr-first", base)
	produce("evt_3x", "corr-second", base.Add(time.Second))
	produce("evt_3x", "corr-third", base.Add(2*time.Second))
	record("corr-first", "evt_3x", "processed", base)
	record("corr-third", "evt_3x", "duplicate", base.Add(2*time.Second))
	flags := []string{"-kafka-brokers", strings.Join(env.Brokers, ","), "-topic-prefix", env.Prefix, "trace", "-admin-url", url}

	t.Run("table", func(t *testing.T) {
		var out bytes.Buffer
		code, err := run(append(slices.Clone(flags), "--event", "evt_3x", "--source", "stripe"), &out)
		if code != exitOK {
			t.Fatalf("exit %d (%v):\n%s", code, err, out.String())
		}
		s := out.String()
		want := []string{
			"event evt_3x of source stripe: 3 deliveries on " + topics.Raw + " since ",
			"delivery 1 of 3: " + topics.Raw + "/", "correlation id corr-first",
			"delivery 2 of 3: ", "correlation id corr-second", "no history for this correlation id",
			"delivery 3 of 3: ", "correlation id corr-third",
		}
		last := -1
		for _, w := range want {
			i := strings.Index(s, w)
			if i < 0 || i < last {
				t.Fatalf("no %q after the previous lines in:\n%s", w, s)
			}
			last = i
		}
		if i, j := strings.Index(s, "processed"), strings.Index(s, "duplicate"); i < 0 || j < i || strings.Index(s, "corr-second") > j {
			t.Errorf("want delivery 1 processed and delivery 3 a duplicate, in order:\n%s", s)
		}
	})
	t.Run("json", func(t *testing.T) {
		var out bytes.Buffer
		code, err := run(append(slices.Clone(flags), "--event", "evt_3x", "--source", "stripe", "-output", "json"), &out)
		var body traceAnswer
		if code != exitOK || json.Unmarshal(out.Bytes(), &body) != nil {
			t.Fatalf("exit %d (%v): %s", code, err, out.String())
		}
		var corrs []string
		for _, d := range body.Deliveries {
			corrs = append(corrs, d.CorrelationID)
		}
		if !slices.Equal(corrs, []string{"corr-first", "corr-second", "corr-third"}) || body.DeliveriesFound != 3 ||
			len(body.Deliveries[0].Stages) != 3 || len(body.Deliveries[1].Stages) != 0 || body.Deliveries[1].Error == "" ||
			len(body.Stages) != 6 || body.CorrelationID != "corr-third" || body.EventID != "evt_3x" {
			t.Fatalf("answer %s", out.String())
		}
	})
	t.Run("one correlation id for several deliveries", func(t *testing.T) {
		produce("evt_same", "corr-same", base)
		produce("evt_same", "corr-same", base.Add(time.Second))
		record("corr-same", "evt_same", "processed", base)
		var out bytes.Buffer
		code, err := run(append(slices.Clone(flags), "--event", "evt_same", "--source", "stripe"), &out)
		if code != exitOK || !strings.Contains(out.String(), "deliveries 1, 2 of 2: ") || strings.Count(out.String(), "\nAT ") != 1 {
			t.Fatalf("exit %d (%v):\n%s", code, err, out.String())
		}
	})
	t.Run("the first 20, and how to see the others", func(t *testing.T) {
		for i := range maxDeliveries + 3 {
			corr := "corr-many-" + string(rune('a'+i))
			produce("evt_many", corr, base.Add(time.Duration(i)*time.Second))
			record(corr, "evt_many", "duplicate", base)
		}
		var out bytes.Buffer
		code, err := run(append(slices.Clone(flags), "--event", "evt_many", "--source", "stripe"), &out)
		s := out.String()
		next := base.Add(maxDeliveries*time.Second).UTC().Format("2006-01-02T15:04:05.000Z07:00") + "/"
		if code != exitOK || !strings.Contains(s, ": 23 deliveries on") || !strings.Contains(s, "delivery 20 of 23") || strings.Contains(s, "delivery 21") ||
			!strings.Contains(s, "3 later deliveries not shown: trace them with --since "+next) {
			t.Fatalf("exit %d (%v):\n%s", code, err, s)
		}
		out.Reset()
		next = s[strings.Index(s, "--since ")+len("--since ") : len(s)-1]
		code, err = run(append(slices.Clone(flags), "--event", "evt_many", "--source", "stripe", "--since", next), &out)
		if s := out.String(); code != exitOK || !strings.Contains(s, ": 3 deliveries on") || !strings.Contains(s, "corr-many-u") || strings.Contains(s, "corr-many-t") {
			t.Fatalf("--since %s: exit %d (%v):\n%s", next, code, err, s)
		}
	})
}

// A correlation id shared by several events (a sender reusing one): the
// timeline says whose each stage is; for one event it stays as it was.
func TestTraceTableNamesEventsWhenShared(t *testing.T) {
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	one := []history.Entry{
		{At: at, Stage: "received", Source: "stripe", EventID: "evt_1"},
		{At: at, Stage: "attempt", Attempt: 1, Outcome: "processed", Source: "stripe", EventID: "evt_1"},
	}
	var out bytes.Buffer
	if err := table(&out, one); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "EVENT") {
		t.Errorf("one event's timeline has an EVENT column:\n%s", out.String())
	}
	shared := append(one, history.Entry{At: at, Stage: "attempt", Attempt: 1, Outcome: "duplicate", Source: "shop", EventID: "w-9"})
	out.Reset()
	if err := table(&out, shared); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], "EVENT") || !strings.Contains(lines[1], "stripe/evt_1") || !strings.Contains(lines[3], "shop/w-9") {
		t.Errorf("shared timeline:\n%s\nwant an EVENT column naming each stage's source/event id", out.String())
	}
}

// Ids a URL path cleans away ("." and ".."), one ServeMux does not route
// ("/"), or an empty one (a raw record
// without the header) have no history to ask for: each is "no history",
// which trace --event notes for that delivery and goes on, not an error
// that stops it. And a user or password in -admin-url never reaches a
// message.
func TestFetchTraceOddIDsAndURLs(t *testing.T) {
	ctx := context.Background()
	for _, id := range []string{"", ".", "..", "/"} {
		_, err := fetchTrace(ctx, "http://127.0.0.1:1", id)
		var nh *errNoHistory
		if !errors.As(err, &nh) {
			t.Errorf("id %q: %v, want no history", id, err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	for _, u := range []string{"http://ops:s3cr3t@" + addr, "ops:s3cr3t@" + addr, "https://ops:s3cr3t@" + addr + " x", "http://ops:s3cr3t@bad%zz"} {
		_, err = fetchTrace(ctx, u, "abc")
		if err == nil || strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "ops:") {
			t.Errorf("admin URL %q: %v; want an error without its credentials", u, err)
		}
	}
}

// An operator's decision shows in the timeline with who made it and why,
// in the DETAIL column where an attempt shows its error.
func TestTraceTableShowsDecisions(t *testing.T) {
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	var out bytes.Buffer
	err := table(&out, []history.Entry{
		{At: at, Stage: "attempt", Attempt: 3, Outcome: "dlq", Where: "inlet.dlq (attempts exhausted)", Error: "sink answered 503"},
		{At: at.Add(time.Hour), Stage: "decided", Outcome: "discarded", Where: "inlet.dlq/0/7", Note: "by alice: order cancelled"},
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[0], "DETAIL") || !strings.Contains(lines[1], "sink answered 503") ||
		!strings.Contains(lines[2], "discarded") || !strings.HasSuffix(lines[2], "by alice: order cancelled") {
		t.Errorf("timeline:\n%s\nwant the decision with who and why under DETAIL", out.String())
	}
}

// TestTraceWhileProcessorStarts: while the processor waits at start (on
// Kafka, the schema registry), its admin listener answers every path with
// 503; trace said only "admin API: 503 Service Unavailable: " (the
// answer's "status" is no "error"), not what the processor waits on.
func TestTraceWhileProcessorStarts(t *testing.T) {
	const waiting = "waiting on Kafka (kafka-0:9092): creating or finding the topics inlet.raw and the others"
	p := &service.StartProbes{}
	p.Waiting(waiting)
	srv := httptest.NewServer(p)
	defer srv.Close()
	_, err := fetchTrace(context.Background(), srv.URL, "abc")
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), waiting) {
		t.Fatalf("%v, want the 503 saying what the start waits on", err)
	}
}

// TestTraceSlowAdminAPIIsNotBlamedOnTheURL: the admin API serves four
// calls at once and queues the rest (up to a minute); trace gives up
// sooner. Connected but not answered in time, trace said "context
// deadline exceeded (set its address with -admin-url …)", sending the
// operator to check an address that was right.
func TestTraceSlowAdminAPIIsNotBlamedOnTheURL(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := fetchTrace(ctx, srv.URL, "abc")
	if err == nil || !strings.Contains(err.Error(), "did not answer") || !strings.Contains(err.Error(), "busy") || strings.Contains(err.Error(), "set its address") {
		t.Fatalf("fetchTrace from an API that does not answer in time: %v; want it said that it did not answer, busy perhaps, not that the address is wrong", err)
	}
}

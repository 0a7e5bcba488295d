package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/history"
	"github.com/inletdev/inlet/pkg/reconcile"
)

func TestReconcileCommand(t *testing.T) {
	t.Run("usage errors", func(t *testing.T) {
		t.Setenv("STRIPE_API_KEY", "sk_test_unused")
		for _, args := range [][]string{
			{"reconcile"},
			{"reconcile", "--source", "s"},
			{"reconcile", "--source", "s", "--sender-log", "f", "--stripe"},
			{"reconcile", "--source", "s", "--sender-log", "f", "--since", "yesterday"},
			// An empty window, refused before Stripe (nothing listens here) is asked.
			{"reconcile", "--source", "s", "--stripe", "--stripe-api-url", "http://127.0.0.1:1", "--since", "2026-11-01T00:00:00Z", "--until", "2026-11-01T00:00:00Z"},
			{"reconcile", "--source", "s", "--stripe", "--stripe-api-url", "http://127.0.0.1:1", "--since", "2026-11-02T00:00:00Z", "--until", "2026-11-01T00:00:00Z"},
		} {
			if code, err := run(args, &bytes.Buffer{}); code != exitUsage {
				t.Errorf("%v: exit %d (%v), want %d", args, code, err, exitUsage)
			}
		}
	})
	env, codec, flags := cliEnv(t)
	cl := env.Client(t, kgo.ProducerLinger(0))
	sendRaw(t, env, codec, cl, "evt_a", 1700000000)
	sendRaw(t, env, codec, cl, "evt_b", 1700000001)
	dir := t.TempDir()

	t.Run("gaps exit 4 with a JSON report", func(t *testing.T) {
		// No processor ran: both received events are stuck; one never came.
		logFile := filepath.Join(dir, "events.ndjson")
		now := time.Now().Unix()
		lines := ""
		for _, id := range []string{"evt_a", "evt_b", "evt_c"} {
			lines += `{"id":"` + id + `","object":"event","created":` + itoa(now) + "}\n"
		}
		if err := os.WriteFile(logFile, []byte(lines), 0o600); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		code, err := run(append(flags, "reconcile", "--source", "stripe", "--sender-log", logFile, "--output", "json"), &out)
		if code != exitGaps || err == nil {
			t.Fatalf("exit %d (%v), want %d", code, err, exitGaps)
		}
		var rep reconcile.Report
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatalf("%v: %s", err, out.String())
		}
		if rep.Total != 3 || rep.Counts[reconcile.Stuck] != 2 || rep.Counts[reconcile.NeverReceived] != 1 || rep.Gaps != 3 {
			t.Fatalf("report %+v", rep)
		}
	})
	t.Run("stripe API as the sender log", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer sk_test_1" || r.URL.Path != "/v1/events" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			_, _ = w.Write([]byte(`{"object":"list","data":[{"id":"evt_b","created":1700000001},{"id":"evt_a","created":1700000000}],"has_more":false}`))
		}))
		defer srv.Close()
		t.Setenv("STRIPE_API_KEY", "sk_test_1")
		t.Setenv("INLET_STRIPE_API_URL", srv.URL)
		var out bytes.Buffer
		code, _ := run(append(flags, "reconcile", "--source", "stripe", "--stripe"), &out)
		if code != exitGaps || !strings.Contains(out.String(), "2 sender events, 2 gaps") || !strings.Contains(out.String(), "evt_a") {
			t.Fatalf("exit %d: %s", code, out.String())
		}
	})
	// A log that leaves nothing to check was "0 sender events, 0 gaps",
	// exit 0: from cron, a failed or truncated export (empty) or a stale
	// one (nothing in --since) read as all clear. Exit 2, no report.
	t.Run("an empty sender log is refused, not reported clean", func(t *testing.T) {
		for name, content := range map[string]string{
			"empty":                "",
			"blank lines":          "\n\n  \r\n\n",
			"csv header only":      "id,created\n",
			"an empty JSON array":  "[]\n",
			"an empty Stripe page": `{"object":"list","data":[],"has_more":false}`,
		} {
			logFile := filepath.Join(dir, "empty.log")
			if err := os.WriteFile(logFile, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, output := range []string{"table", "json"} {
				var out bytes.Buffer
				code, err := run(append(flags, "reconcile", "--source", "stripe", "--sender-log", logFile, "--output", output), &out)
				if code != exitUsage || err == nil || !strings.Contains(err.Error(), "the sender log holds no events") || !strings.Contains(err.Error(), "failed or truncated export") || out.Len() != 0 {
					t.Errorf("%s, %s: exit %d (%v), want %d and no report: %s", name, output, code, err, exitUsage, out.String())
				}
			}
		}
	})
	t.Run("no sender event in --since is refused, not reported clean", func(t *testing.T) {
		logFile := filepath.Join(dir, "stale.ndjson")
		// Yesterday's export, read again: its events (received and
		// stuck) are all before --since.
		if err := os.WriteFile(logFile, []byte(`{"id":"evt_a","created":1700000000}`+"\n"+`{"id":"evt_b","created":1700000001}`+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		since := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
		for _, output := range []string{"table", "json"} {
			var out bytes.Buffer
			code, err := run(append(flags, "reconcile", "--source", "stripe", "--sender-log", logFile, "--since", since, "--output", output), &out)
			if code != exitUsage || err == nil || out.Len() != 0 {
				t.Fatalf("%s: exit %d (%v), want %d and no report: %s", output, code, err, exitUsage, out.String())
			}
			for _, want := range []string{"no sender event in --since/--until", "none of the log's 2 dated events is in --since " + since, "from 2023-11-14T22:13:20Z to 2023-11-14T22:13:21Z", "stale export"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%v\nwant %q in it", err, want)
				}
			}
		}
	})
	t.Run("the Stripe API listing no events is refused, not reported clean", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`{"object":"list","data":[],"has_more":false}`))
		}))
		defer srv.Close()
		t.Setenv("STRIPE_API_KEY", "sk_test_1")
		t.Setenv("INLET_STRIPE_API_URL", srv.URL)
		var out bytes.Buffer
		code, err := run(append(flags, "reconcile", "--source", "stripe", "--stripe", "--since", "2026-11-27T00:00:00Z"), &out)
		if code != exitUsage || err == nil || !strings.Contains(err.Error(), "the Stripe API listed no events since 2026-11-27T00:00:00Z") || out.Len() != 0 {
			t.Fatalf("exit %d (%v): %s", code, err, out.String())
		}
	})
	t.Run("trace by event id", func(t *testing.T) {
		hist := history.New(env.Redis(t), env.Prefix+":", 0)
		if err := hist.Append(t.Context(), map[string][]history.Entry{"corr-evt_a": {{At: time.Now(), Stage: "received", EventID: "evt_a"}}}); err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /v1/trace/{id}", hist.Handler())
		srv := httptest.NewServer(mux)
		defer srv.Close()
		var out bytes.Buffer
		code, err := run(append(flags, "trace", "--event", "evt_a", "--source", "stripe", "-admin-url", srv.URL, "-output", "json"), &out)
		if code != exitOK || !strings.Contains(out.String(), `"correlation_id": "corr-evt_a"`) {
			t.Fatalf("exit %d (%v): %s", code, err, out.String())
		}
		if code, _ := run(append(flags, "trace", "--event=evt_zzz", "--source=stripe", "-admin-url", srv.URL), &out); code != exitNotFound {
			t.Fatalf("unknown event: exit %d", code)
		}
		if code, _ := run(append(flags, "trace", "--event", "evt_a"), &out); code != exitUsage {
			t.Fatalf("event without source: exit %d", code)
		}
	})
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestReconcileEscapesSenderText: ids, statuses, places and correlation
// ids in a reconcile report come from the sender's log; their terminal
// escapes are printed as escapes, as in every other listing (they reached
// the terminal raw).
func TestReconcileEscapesSenderText(t *testing.T) {
	rep := &reconcile.Report{Source: "stripe", Total: 1, Gaps: 1, Counts: map[reconcile.Status]int{reconcile.NeverReceived: 1},
		Events: []reconcile.Result{{ID: "evt_1\x1b]0;owned\a", Status: "never_received\x1b[2J", Where: "inlet.dlq/0/1\r\u202e",
			CorrelationID: "corr\x9b31m\tx", Error: "sink answered 500: \x1b[31mred"}}}
	var out bytes.Buffer
	printReconcile(&out, rep)
	for _, r := range out.String() {
		if r == 0x1b || r == '\r' || r == '\a' || r == 0x202e || r == 0x9b {
			t.Fatalf("output holds %U raw:\n%q", r, out.String())
		}
	}
	if bytes.IndexByte(out.Bytes(), 0x9b) >= 0 || !strings.Contains(out.String(), `evt_1\x1b]0;owned\a`) || !strings.Contains(out.String(), `corr\x9b31m x`) {
		t.Fatalf("escapes not shown:\n%s", out.String())
	}
}

// TestReconcilePrintsDiscarded: a discarded event is its own status in the
// table, with its entry and the operator's decision, and the summary says
// it is not a gap.
func TestReconcilePrintsDiscarded(t *testing.T) {
	rep := &reconcile.Report{Source: "stripe", Total: 2, Counts: map[reconcile.Status]int{reconcile.Discarded: 1, reconcile.Processed: 1},
		Events: []reconcile.Result{{ID: "evt_1", Status: reconcile.Discarded, Where: "inlet.invalid/0/7", Error: "discard by alice at 2026-11-29T10:00:00Z: sender fixed it"}}}
	var out bytes.Buffer
	printReconcile(&out, rep)
	for _, want := range []string{"0 gaps", "discarded       1", "1 discarded by an operator", "not gaps", "listed below", "inlet.invalid/0/7", "discard by alice"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in\n%s", want, out.String())
		}
	}
	rep.Events = nil
	out.Reset()
	printReconcile(&out, rep)
	if !strings.Contains(out.String(), "--all lists them") {
		t.Errorf("without --all the summary does not say how to list them:\n%s", out.String())
	}
}

// TestReconcileRefusesANegativeSlack: --slack (INLET_RECONCILE_SLACK) is
// how far before --since the raw topic is read; a negative one is a usage
// error (exit 2). It was accepted: the raw topic was read from after
// --since, and an event on it was reported never_received.
func TestReconcileRefusesANegativeSlack(t *testing.T) {
	env, codec, flags := cliEnv(t)
	cl := env.Client(t, kgo.ProducerLinger(0))
	sendRaw(t, env, codec, cl, "evt_a", 1700000000)
	now := time.Now()
	logFile := filepath.Join(t.TempDir(), "events.ndjson")
	if err := os.WriteFile(logFile, []byte(`{"id":"evt_a","object":"event","created":`+itoa(now.Unix())+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append(flags, "reconcile", "--source", "stripe", "--sender-log", logFile, "--output", "json", "--since", now.Add(-time.Minute).UTC().Format(time.RFC3339))
	for _, c := range []struct {
		name string
		args []string
		env  string
	}{
		{"flag", []string{"--slack", "-1h"}, ""},
		{"environment", nil, "-1h"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("INLET_RECONCILE_SLACK", c.env) // restored after
			if c.env == "" {
				os.Unsetenv("INLET_RECONCILE_SLACK")
			}
			var out bytes.Buffer
			code, err := run(append(append([]string{}, args...), c.args...), &out)
			if code != exitUsage || err == nil || !strings.Contains(err.Error(), "--slack -1h0m0s") {
				t.Fatalf("exit %d (%v), want %d naming --slack\n%s", code, err, exitUsage, out.String())
			}
		})
	}
	// A slack of 0 or more reads evt_a (no processor ran: stuck).
	var out bytes.Buffer
	code, err := run(append(append([]string{}, args...), "--slack", "1h"), &out)
	var rep reconcile.Report
	if jerr := json.Unmarshal(out.Bytes(), &rep); code != exitGaps || jerr != nil || rep.Counts[reconcile.Stuck] != 1 {
		t.Fatalf("--slack 1h: exit %d (%v), report %+v; want evt_a stuck\n%s", code, err, rep.Counts, out.String())
	}
}

// TestReconcileUnknownSource: a --source that the sources file does not
// have, none of whose events was received, is a usage error naming the
// sources (every event read never_received, exit 4: "shopify", the kind,
// for the source shop); without a sources file the gaps say to check it.
func TestReconcileUnknownSource(t *testing.T) {
	env, codec, flags := cliEnv(t)
	sendRaw(t, env, codec, env.Client(t, kgo.ProducerLinger(0)), "evt_a", 1700000000)
	logFile := filepath.Join(t.TempDir(), "events.ndjson")
	if err := os.WriteFile(logFile, []byte(`{"id":"evt_a","object":"event","created":`+itoa(time.Now().Unix())+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	code, err := run(append(flags, "reconcile", "--source", "strip", "--sender-log", logFile), &out)
	if code != exitUsage || err == nil || !strings.Contains(err.Error(), "stripe") {
		t.Fatalf("--source strip: exit %d (%v), want %d naming the sources file's sources\n%s", code, err, exitUsage, out.String())
	}
	t.Setenv("INLET_SOURCES", "")
	code, err = run(append(flags, "reconcile", "--source", "strip", "--sender-log", logFile), &out)
	if code != exitGaps || err == nil || !strings.Contains(err.Error(), "--sources") {
		t.Fatalf("--source strip, no sources file: exit %d (%v), want %d and a hint to check --source", code, err, exitGaps)
	}
	if code, err := run(append(flags, "reconcile", "--source", "stripe", "--sender-log", logFile), &bytes.Buffer{}); code != exitGaps || strings.Contains(err.Error(), "--sources") {
		t.Fatalf("--source stripe: exit %d (%v), want %d (stuck) without the hint", code, err, exitGaps)
	}
}

// TestReconcileSenderLogAndStripeAreExclusive: both given is a usage error
// saying so, not that they are missing.
func TestReconcileSenderLogAndStripeAreExclusive(t *testing.T) {
	code, err := run([]string{"reconcile", "--source", "shop", "--sender-log", "/tmp/x.ndjson", "--stripe"}, &bytes.Buffer{})
	if code != exitUsage || err == nil || !strings.Contains(err.Error(), "--sender-log and --stripe are exclusive") {
		t.Fatalf("exit %d (%v), want %d saying they are exclusive", code, err, exitUsage)
	}
}

// TestReconcileSaysWhatToDo: a report with gaps said how many of each
// status there were, and listed them, but not what to do about any of
// them: that was only in docs/operations.md. Each gap status present
// gets its next step (and only those present).
func TestReconcileSaysWhatToDo(t *testing.T) {
	rep := &reconcile.Report{Source: "stripe", Group: "inlet-processor", Total: 4, Gaps: 3,
		Counts: map[reconcile.Status]int{reconcile.NeverReceived: 1, reconcile.Stuck: 1, reconcile.InDLQ: 1, reconcile.Processed: 1},
		Events: []reconcile.Result{
			{ID: "evt_1", Status: reconcile.NeverReceived},
			{ID: "evt_2", Status: reconcile.Stuck, Where: "inlet.raw/0/4"},
			{ID: "evt_3", Status: reconcile.InDLQ, Where: "inlet.dlq/0/7", Error: "sink answered 503"},
		}}
	var out bytes.Buffer
	printReconcile(&out, rep)
	s := out.String()
	for _, want := range []string{
		"never_received: not on the raw topic", "ask the sender to send them again",
		"stuck: ", "consumer group inlet-processor",
		"dlq: ", "inletctl dlq show inlet.dlq/0/7", "inletctl dlq requeue",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("no %q in\n%s", want, s)
		}
	}
	for _, not := range []string{"retry: ", "invalid: "} {
		if strings.Contains(s, not) {
			t.Errorf("a step for a status with no event, %q, in\n%s", not, s)
		}
	}
	out.Reset()
	printReconcile(&out, &reconcile.Report{Source: "stripe", Total: 1, Counts: map[reconcile.Status]int{reconcile.Processed: 1}, Events: []reconcile.Result{}})
	if strings.Contains(out.String(), "what to do") {
		t.Errorf("no gaps, yet steps:\n%s", out.String())
	}
}

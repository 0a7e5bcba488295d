package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

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
	corr, err := correlationOf(ctx, []kgo.Opt{kgo.SeedBrokers(env.Brokers...), slow}, topics.Raw, "stripe:evt_slow", time.Time{})
	if err != nil || corr != "corr-slow" {
		t.Fatalf("correlationOf = %q, %v; want corr-slow", corr, err)
	}
}

// adminTraces is an admin API answering any trace, recording which
// correlation ids were asked for.
func adminTraces(t *testing.T) (string, *requestLog) {
	t.Helper()
	asked := &requestLog{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.add(r)
		corr := strings.TrimPrefix(r.URL.Path, "/v1/trace/")
		_ = json.NewEncoder(w).Encode(map[string]any{"correlation_id": corr, "stages": []any{}})
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

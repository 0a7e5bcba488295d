package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/service/servicetest"
	"github.com/inletdev/inlet/pkg/testenv"
)

// Inlet's rule: secrets come only from the environment or files and are
// never logged. TestProcessorLeaksNoSecret proves it end to end for the
// processor: every secret it takes gets a canary (sink headers_env values,
// VAR and VAR_FILE, the alert webhook URL, the admin tokens), a sink that
// echoes its request (headers, path, query) in its failures sends events
// to the DLQ, an invalid event to the invalid queue, and everything the
// processor emits is searched for the canaries: its log from start to
// shutdown, -h and -check-config, every record of every topic (values,
// headers: the error history), every Redis key and value (the history),
// OTLP exports (span attributes, metrics), alert payloads, and the answers of /metrics, /readyz and the admin API
// (no token, a wrong one, a near miss, the read and write tokens).

// leakCapture records every request it gets; under /sink it answers with
// a failure quoting the request.
type leakCapture struct {
	mu   sync.Mutex
	seen bytes.Buffer
	hits map[string]int
}

func (c *leakCapture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	hdr, _ := json.Marshal(r.Header)
	c.mu.Lock()
	c.hits[strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 2)[0]]++
	if strings.HasPrefix(r.URL.Path, "/hooks/") {
		c.seen.Write(b) // an alert: its payload is output; its request line and headers are where it was sent
		c.seen.WriteString("\n")
	}
	c.mu.Unlock()
	if !strings.HasPrefix(r.URL.Path, "/sink/") {
		return
	}
	code := http.StatusInternalServerError
	if bytes.Contains(b, []byte(`"leak-permanent`)) {
		code = http.StatusUnauthorized
	}
	w.WriteHeader(code)
	fmt.Fprintf(w, "refused %s %s with headers %s", r.Method, r.RequestURI, hdr)
}

func (c *leakCapture) count(what string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits[what]
}

func TestProcessorLeaksNoSecret(t *testing.T) {
	env := testenv.Embedded(t)
	capture := &leakCapture{hits: map[string]int{}}
	otlp := servicetest.CaptureOTLP(t)
	srv := httptest.NewServer(capture)
	t.Cleanup(srv.Close)

	dir := t.TempDir()
	file := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sources := file("sources.yaml", `sources:
  github:
    kind: github
    secrets_env: [GITHUB_WEBHOOK_SECRET]
    retry: {tiers: [1s], max_attempts: 2}
    events:
      ping:
        contract: github/ping
        entity_key: "github:hook:{/hook_id}"
        natural_key: "{$event_id}"
        sink:
          url: `+srv.URL+`/sink/CANARY-sinkpath-7f3a?token=CANARY-sinkquery-7f3a
          headers_env: {Authorization: SINK_AUTH, X-Api-Key: SINK_KEY}
`)
	adminW, adminR := "CANARY-adminw/?#@:%-7f3a", "CANARY-adminr-7f3a"
	for k, v := range map[string]string{
		"GITHUB_WEBHOOK_SECRET":       "CANARY-github/?#@:%-7f3a", // the processor needs no signing secret; given anyway
		"SINK_AUTH":                   "Bearer CANARY-sinkauth/+?#@:%&<>-7f3a==",
		"SINK_KEY_FILE":               file("sinkkey", "CANARY-sinkkey-0123456789abcdef"),
		"INLET_ADMIN_TOKEN":           adminW,
		"INLET_ADMIN_READ_TOKEN_FILE": file("adminr", adminR),
		"INLET_ALERT_WEBHOOK_URL":     srv.URL + "/hooks/CANARY-alert-7f3a?key=CANARY-alertq%2F%3F-7f3a",
		"INLET_ALERT_WINDOW":          "100ms",
	} {
		t.Setenv(k, v)
	}
	var emitted bytes.Buffer
	for _, args := range [][]string{{"-h"}, {"-check-config", "-sources", sources}} {
		var out bytes.Buffer
		err := run(args, &out)
		emitted.WriteString(out.String())
		if err != nil {
			emitted.WriteString(err.Error())
		}
	}

	tiers := []time.Duration{time.Second}
	topics := env.CreateTopics(t, tiers)
	codec := env.Codec(t, topics)
	ping, err := os.ReadFile("../../schemas/contracts/github/ping/fixtures/v1/ping.repository.json")
	if err != nil {
		t.Fatal(err)
	}
	produce := func(eventID string, payload []byte) {
		ev := &envelope.Envelope{ID: "id-" + eventID, Source: "github", EventType: "ping", EventID: eventID,
			IdempotencyKey: envelope.IdempotencyKey("github", eventID), SchemaVersion: "v1", ReceivedAt: time.Now().UTC().Truncate(time.Microsecond),
			CorrelationID: "corr-" + eventID, Channel: envelope.ChannelWebhook, Headers: map[string]string{"X-Github-Event": "ping"},
			Payload: payload, ContentType: "application/json"}
		val, err := codec.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		res := env.Client(t, kgo.ProducerLinger(0)).ProduceSync(context.Background(), &kgo.Record{Topic: topics.Raw, Key: []byte(ev.IdempotencyKey), Value: val})
		if err := res.FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// The sink answers 500 (retried, then the DLQ) or 401 (the DLQ at once);
	// a payload off its contract goes to the invalid queue.
	produce("leak-retried", bytes.Replace(ping, []byte(`"zen"`), []byte(`"leak":"leak-retried","zen"`), 1))
	produce("leak-permanent", bytes.Replace(ping, []byte(`"zen"`), []byte(`"leak":"leak-permanent","zen"`), 1))
	produce("leak-invalid", []byte(`{"zen":"no hook"}`))

	s := servicetest.Start(t, "processor", func(stderr io.Writer) error {
		return run([]string{"-sources", sources, "-log-format", "json", "-log-level", "debug",
			"-kafka-brokers", strings.Join(env.Brokers, ","), "-topic-prefix", env.Prefix, "-retry-tiers", "1s",
			"-schema-registry-url", env.RegistryURL, "-redis-url", env.RedisURL, "-admin-addr", servicetest.AnyPort}, stderr)
	})
	adminAddr := s.Addr(t, "processor starting", "admin")
	s.Await(t, "processor running")
	dlq := env.ReadTopic(t, topics.DLQ, 2, 30*time.Second)
	if len(dlq) < 2 {
		t.Fatalf("%d DLQ records within 30s, want the 2 events the sink failed; log:\n%s", len(dlq), s.Log)
	}
	if inv := env.ReadTopic(t, topics.Invalid, 1, 10*time.Second); len(inv) < 1 {
		t.Fatalf("no invalid record within 10s; log:\n%s", s.Log)
	}
	s.Until(t, "alerts posted", func() bool { return capture.count("hooks") >= 2 })
	if n := capture.count("sink"); n < 3 {
		t.Fatalf("the sink was called %d times, want 3 at least (2 tries of one event, 1 of the other)", n)
	}

	for _, u := range []string{"/metrics", "/readyz", "/healthz"} {
		_, body := servicetest.Get(t, "http://"+adminAddr+u)
		emitted.WriteString(body)
	}
	for _, tok := range []string{"", "Bearer wrong", "Bearer " + adminW + "x", "Bearer " + adminR[:len(adminR)-1], "Basic " + base64.StdEncoding.EncodeToString([]byte("x:"+adminW)), "Bearer " + adminR, "Bearer " + adminW} {
		for _, r := range []struct{ method, path, body string }{
			{"GET", "/v1/dlq", ""}, {"GET", "/v1/dlq?group=true", ""}, {"GET", "/v1/invalid", ""}, {"GET", "/v1/depth", ""},
			{"GET", "/v1/trace/corr-leak-retried", ""}, {"GET", "/v1/nope", ""},
			{"POST", "/v1/dlq/requeue", `{"filter":{"source":"github"},"reason":"leak test","dry_run":true}`},
			{"POST", "/v1/invalid/discard", `{"ids":["nope"],"reason":"leak test","dry_run":true}`},
		} {
			req, err := http.NewRequest(r.method, "http://"+adminAddr+r.path, strings.NewReader(r.body))
			if err != nil {
				t.Fatal(err)
			}
			if tok != "" {
				req.Header.Set("Authorization", tok)
			}
			res, err := leakClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			emitted.WriteString(r.method + " " + r.path + ": " + res.Status + "\n")
			_ = res.Header.Write(&emitted)
			emitted.Write(b)
			emitted.WriteString("\n")
		}
	}
	for _, id := range dlq { // each entry shown whole, payload and history
		_, body := servicetest.Get(t, "http://"+adminAddr+"/v1/dlq?id="+fmt.Sprintf("%s/%d/%d", id.Topic, id.Partition, id.Offset))
		emitted.WriteString(body)
	}

	// Every record of every topic of this test, committed or not.
	cl := env.Client(t, kgo.ConsumeRegex(), kgo.ConsumeTopics("^"+strings.ReplaceAll(env.Prefix, ".", `\.`)+`\..*`),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	emitted.WriteString(servicetest.DumpRecords(t, cl, 6))

	// Every Redis key and value (processing history, dedup, locks).
	rdb := env.Redis(t)
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		emitted.WriteString(k + "\n")
		switch typ, _ := rdb.Type(ctx, k).Result(); typ {
		case "string":
			emitted.WriteString(rdb.Get(ctx, k).Val())
		case "hash":
			fmt.Fprint(&emitted, rdb.HGetAll(ctx, k).Val())
		case "list":
			fmt.Fprint(&emitted, rdb.LRange(ctx, k, 0, -1).Val())
		case "set":
			fmt.Fprint(&emitted, rdb.SMembers(ctx, k).Val())
		case "zset":
			fmt.Fprint(&emitted, rdb.ZRangeWithScores(ctx, k, 0, -1).Val())
		case "stream":
			fmt.Fprint(&emitted, rdb.XRange(ctx, k, "-", "+").Val())
		default:
			t.Errorf("redis key %s of type %q not read", k, typ)
		}
		emitted.WriteString("\n")
	}

	servicetest.SIGTERM(t)
	if err := s.Stopped(t, 30*time.Second); err != nil {
		emitted.WriteString(err.Error())
	}
	emitted.WriteString(s.Log.String())
	emitted.WriteString(otlp.Spans(t))
	capture.mu.Lock()
	emitted.WriteString(capture.seen.String())
	capture.mu.Unlock()

	if found := servicetest.Leaks(emitted.String()); len(found) > 0 {
		t.Errorf("the processor emitted secrets %q; everything it emitted:\n%s", found, emitted.String())
	}
}

var leakClient = &http.Client{Timeout: 5 * time.Second}

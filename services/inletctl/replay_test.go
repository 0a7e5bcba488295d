package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/registry/registrytest"
	"github.com/inletdev/inlet/pkg/replay"
	"github.com/inletdev/inlet/pkg/testenv"
)

const cliSources = `
sources:
  stripe:
    kind: stripe
    secrets_env: [T_STRIPE]
    events:
      "payment_intent.*":
        contract: stripe/payment_intent
        entity_key: "stripe:pi:{/data/object/id}"
        occurred_at: /created
`

// sendRaw writes a Stripe event to env's raw topic as ingest would.
func sendRaw(t *testing.T, env *testenv.Env, codec *envelope.Codec, cl *kgo.Client, evtID string, created int64) *envelope.Envelope {
	t.Helper()
	payload := fmt.Appendf(nil, `{"id":%q,"object":"event","api_version":"2024-06-20","created":%d,"type":"payment_intent.succeeded","livemode":false,"data":{"object":{"id":"pi_%s","object":"payment_intent","status":"succeeded","amount":1,"currency":"usd","customer":null,"metadata":{}}}}`, evtID, created, evtID)
	e := &envelope.Envelope{ID: "id-" + evtID, Source: "stripe", EventType: "payment_intent.succeeded", EventID: evtID,
		IdempotencyKey: envelope.IdempotencyKey("stripe", evtID), SchemaVersion: "2024-06-20", ReceivedAt: time.Now().UTC().Truncate(time.Microsecond),
		CorrelationID: "corr-" + evtID, Channel: envelope.ChannelWebhook, Headers: map[string]string{}, Payload: payload, ContentType: "application/json"}
	val, err := codec.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	rec := &kgo.Record{Topic: env.Prefix + ".raw", Key: []byte(e.IdempotencyKey), Value: val,
		Headers: []kgo.RecordHeader{{Key: "correlation-id", Value: []byte(e.CorrelationID)}, {Key: "inlet-source", Value: []byte("stripe")}}}
	if err := cl.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return e
}

// cliEnv is an embedded stack with topics, a sources file and the
// connection flags for it.
func cliEnv(t *testing.T) (*testenv.Env, *envelope.Codec, []string) {
	t.Helper()
	env := testenv.Embedded(t)
	topics := env.CreateTopics(t, nil)
	codec := env.Codec(t, topics)
	file := filepath.Join(t.TempDir(), "sources.yaml")
	if err := os.WriteFile(file, []byte(cliSources), 0o600); err != nil {
		t.Fatal(err)
	}
	flags := []string{"-kafka-brokers", strings.Join(env.Brokers, ","), "-schema-registry-url", env.RegistryURL, "-topic-prefix", env.Prefix}
	t.Setenv("INLET_SOURCES", file)
	t.Setenv("INLET_REDIS_URL", env.RedisURL)
	t.Setenv("INLET_REDIS_KEY_PREFIX", env.Prefix+":")
	return env, codec, flags
}

func TestReplayCommand(t *testing.T) {
	t.Run("usage errors", func(t *testing.T) {
		for _, args := range [][]string{
			{"replay"},
			{"replay", "--source", "s", "--mode", "nope", "--id", "x"},
			{"replay", "--source", "s", "--from", "yesterday", "--id", "x"},
			{"replay", "--source", "s"}, // open end without an id
		} {
			if code, err := run(args, &bytes.Buffer{}); code != exitUsage {
				t.Errorf("%v: exit %d (%v), want %d", args, code, err, exitUsage)
			}
		}
	})
	t.Run("usage errors name the flag", func(t *testing.T) {
		// Refused before anything is reached: no stack needed.
		missing := filepath.Join(t.TempDir(), "sources.yaml")
		to := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
		for _, c := range []struct {
			args []string
			want []string
		}{
			{[]string{"--workers", "0"}, []string{"-workers (INLET_PROCESSOR_WORKERS) 0"}},
			{[]string{"--sources", missing}, []string{"--sources (INLET_SOURCES)", missing}},
			{[]string{"--retry-tiers", "2m,30s"}, []string{"-retry-tiers (INLET_RETRY_TIERS)", "increase"}},
		} {
			args := append([]string{"replay", "--source", "stripe", "--id", "x", "--to", to}, c.args...)
			code, err := run(args, &bytes.Buffer{})
			if code != exitUsage {
				t.Errorf("%v: exit %d (%v), want %d", c.args, code, err, exitUsage)
			}
			for _, w := range c.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("%v: %v, want an error mentioning %q", c.args, err, w)
				}
			}
		}
	})
	t.Run("a --to or --from later than now is refused", func(t *testing.T) {
		// It was accepted: the replay read what the raw topic held, was
		// marked complete, and events arriving later inside its range were
		// never replayed (run again, it printed "complete (resumed)", read
		// 0), while its summary claimed the whole range.
		env, codec, flags := cliEnv(t)
		cl := env.Client(t, kgo.ProducerLinger(0))
		now := time.Now()
		from := now.Add(-time.Minute).UTC().Format(time.RFC3339)
		sendRaw(t, env, codec, cl, "evt_f", 1700000000)
		rdb := redis.NewClient(mustParseRedisURL(t, env.RedisURL))
		defer rdb.Close()
		for _, c := range []struct {
			name string
			args []string
			want []string
		}{
			{"to in the future", []string{"--from", from, "--to", now.Add(time.Minute).UTC().Format(time.RFC3339), "--id", "future-end"},
				[]string{"is later than now", "the raw topic holds nothing after now", "a replay once finished is not run again",
					"give a --to not later than now", "leave --to out"}},
			{"a wholly future range", []string{"--from", now.Add(time.Hour).UTC().Format(time.RFC3339), "--to", now.Add(2 * time.Hour).UTC().Format(time.RFC3339)},
				[]string{"--from", "--to", "is later than now"}},
			{"from in the future, open end", []string{"--from", now.Add(time.Hour).UTC().Format(time.RFC3339), "--id", "future-start"},
				[]string{"--from", "give a --from not later than now"}},
		} {
			t.Run(c.name, func(t *testing.T) {
				var out bytes.Buffer
				code, err := run(append(append(flags, "replay", "--source", "stripe"), c.args...), &out)
				if code != exitUsage || err == nil {
					t.Fatalf("exit %d (%v), want %d and an error\n%s", code, err, exitUsage, out.String())
				}
				for _, w := range c.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
			})
		}
		if keys, err := rdb.Keys(context.Background(), env.Prefix+":replay:*").Result(); err != nil || len(keys) != 0 {
			t.Fatalf("progress records %v (%v): a refused replay started", keys, err)
		}
		// A --to not later than now is taken.
		var out bytes.Buffer
		code, err := run(append(flags, "replay", "--source", "stripe", "--from", from, "--to", time.Now().UTC().Format(time.RFC3339Nano), "--id", "past-end", "--output", "json"), &out)
		var sum replay.Summary
		if code != exitOK || err != nil || json.Unmarshal(out.Bytes(), &sum) != nil || sum.Read != 1 || !sum.Complete {
			t.Fatalf("--to now: exit %d (%v), summary %+v\n%s", code, err, sum, out.String())
		}
	})
	t.Run("processor settings are read and checked as the processor's", func(t *testing.T) {
		// They were taken from a set never parsed: a malformed variable
		// left a zero (a transaction timeout of 0) and no error.
		t.Setenv("INLET_SOURCES", filepath.Join(t.TempDir(), "no-sources.yaml")) // never reached
		for _, c := range []struct {
			name string
			env  [2]string
			args []string
			want string
		}{
			{"malformed variable", [2]string{"INLET_TXN_TIMEOUT", "sixty"}, nil, "INLET_TXN_TIMEOUT"},
			{"no unit", [2]string{"INLET_BATCH_DEADLINE", "30"}, nil, "INLET_BATCH_DEADLINE"},
			{"not a number", [2]string{"INLET_PROCESSOR_WORKERS", "two"}, nil, "INLET_PROCESSOR_WORKERS"},
			{"transaction timeout under a batch", [2]string{}, []string{"--txn-timeout", "40s"}, "-txn-timeout"},
		} {
			t.Run(c.name, func(t *testing.T) {
				if c.env[0] != "" {
					t.Setenv(c.env[0], c.env[1])
				}
				args := append([]string{"replay", "--source", "stripe", "--id", "x"}, c.args...)
				code, err := run(args, &bytes.Buffer{})
				if code != exitUsage || err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("exit %d: %v; want a usage error mentioning %q", code, err, c.want)
				}
				if c.env[1] != "" && strings.Contains(err.Error(), c.env[1]) {
					t.Fatalf("the error shows the value: %v", err)
				}
			})
		}
	})
	t.Run("read-only registry credentials are refused at once", func(t *testing.T) {
		// A replay registers processed schemas as the processor does; it
		// used to connect fine and then wait on the refusal for good.
		env, _, flags := cliEnv(t)
		ro, _ := registrytest.ReadOnly(t, env.RegistryURL)
		done := make(chan struct{})
		var code int
		var err error
		go func() {
			defer close(done)
			code, err = run(append(withRegistry(flags, ro), "replay", "--source", "stripe", "--from", time.Now().Add(-time.Minute).UTC().Format(time.RFC3339), "--id", "ro-1"), &bytes.Buffer{})
		}()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("replay with read-only credentials did not stop")
		}
		if code != exitError || err == nil || !strings.Contains(err.Error(), "write access") {
			t.Fatalf("exit %d: %v; want an error saying replay needs write access", code, err)
		}
	})
	t.Run("fill applies never-processed events and prints a JSON summary", func(t *testing.T) {
		env, codec, flags := cliEnv(t)
		cl := env.Client(t, kgo.ProducerLinger(0))
		from := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
		sendRaw(t, env, codec, cl, "evt_a", 1700000000)
		sendRaw(t, env, codec, cl, "evt_b", 1700000001)
		var out bytes.Buffer
		code, err := run(append(flags, "replay", "--source", "stripe", "--from", from, "--id", "cli-1", "--output", "json"), &out)
		if code != exitOK || err != nil {
			t.Fatalf("exit %d: %v\n%s", code, err, out.String())
		}
		var sum replay.Summary
		if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
			t.Fatalf("%v: %s", err, out.String())
		}
		if sum.Read != 2 || sum.Applied != 2 || !sum.Complete {
			t.Fatalf("summary %+v", sum)
		}
		rdb := redis.NewClient(mustParseRedisURL(t, env.RedisURL))
		defer rdb.Close()
		if keys, err := rdb.Keys(context.Background(), env.Prefix+":trace:*").Result(); err != nil || len(keys) != 2 {
			t.Fatalf("history keys %v (%v), want one per replayed event", keys, err)
		}
		out.Reset()
		if code, err := run(append(flags, "replay", "--source", "stripe", "--from", from, "--id", "cli-1"), &out); code != exitOK || !strings.Contains(out.String(), "complete (resumed)") {
			t.Fatalf("again: exit %d %v: %s", code, err, out.String())
		}
	})
	t.Run("a second run of an id under way is refused with exit 2", func(t *testing.T) {
		// Two runs of one id at once (a second terminal, a retried Job
		// whose first pod still runs) shared the replay's group and both
		// waited forever. The first run's lock, as it writes it, names it.
		env, codec, flags := cliEnv(t)
		sendRaw(t, env, codec, env.Client(t, kgo.ProducerLinger(0)), "evt_l", 1700000000)
		rdb := redis.NewClient(mustParseRedisURL(t, env.RedisURL))
		defer rdb.Close()
		since := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
		holder, _ := json.Marshal(replay.Holder{Host: "replay-pod-1", PID: 4242, Since: since, Token: "tok-secret"})
		if err := rdb.Set(context.Background(), env.Prefix+":replay:cli-busy:lock", holder, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		from := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
		var out bytes.Buffer
		code, err := run(append(flags, "replay", "--source", "stripe", "--from", from, "--id", "cli-busy"), &out)
		if code != exitUsage || err == nil {
			t.Fatalf("exit %d (%v), want %d and an error\n%s", code, err, exitUsage, out.String())
		}
		for _, w := range []string{"cli-busy", "host replay-pod-1, pid 4242, since " + since.Format(time.RFC3339)} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not say %q", err, w)
			}
		}
		if strings.Contains(err.Error(), "tok-secret") {
			t.Errorf("error %q shows the lock's token", err)
		}
		if n, err := rdb.Exists(context.Background(), env.Prefix+":replay:cli-busy").Result(); err != nil || n != 0 {
			t.Fatalf("progress record exists: %d (%v): the refused run started", n, err)
		}
	})
	t.Run("history off as on the processor writes none", func(t *testing.T) {
		env, codec, flags := cliEnv(t)
		cl := env.Client(t, kgo.ProducerLinger(0))
		from := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
		sendRaw(t, env, codec, cl, "evt_c", 1700000002)
		var out bytes.Buffer
		if code, err := run(append(flags, "replay", "--source", "stripe", "--from", from, "--id", "cli-2", "--history-retention", "0", "--output", "json"), &out); code != exitOK {
			t.Fatalf("exit %d: %v", code, err)
		}
		// The event was processed: no history keys mean none written.
		var sum replay.Summary
		if err := json.Unmarshal(out.Bytes(), &sum); err != nil || sum.Applied != 1 || !sum.Complete {
			t.Fatalf("summary %+v (%v): want the event applied", sum, err)
		}
		rdb := redis.NewClient(mustParseRedisURL(t, env.RedisURL))
		defer rdb.Close()
		if keys, err := rdb.Keys(context.Background(), env.Prefix+":trace:*").Result(); err != nil || len(keys) != 0 {
			t.Fatalf("history keys %v (%v), want none", keys, err)
		}
		if code, _ := run(append(flags, "replay", "--source", "stripe", "--from", from, "--id", "cli-3", "--history-retention", "-1h"), &bytes.Buffer{}); code != exitUsage {
			t.Fatalf("negative retention: exit %d, want %d", code, exitUsage)
		}
	})
}

// TestReplayFillWarning: a fill whose range starts before the source's
// dedup window is told that events without a business time are processed
// again there (their claims expired; nothing else tells them apart).
func TestReplayFillWarning(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	week := 7 * 24 * time.Hour
	for _, c := range []struct {
		name string
		from time.Time
		want string
	}{
		{"inside the window", now.Add(-week + time.Minute), ""},
		{"before the window", now.Add(-week - time.Minute), "--from is before source stripe's dedup_window (168h0m0s)"},
		{"from the start of the topic", time.Time{}, "without --from"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := fillWarning("stripe", week, c.from, now)
			if c.want == "" && got != "" || !strings.Contains(got, c.want) || (c.want != "" && !strings.Contains(got, "without a business time")) {
				t.Fatalf("warning %q; want one containing %q", got, c.want)
			}
		})
	}
}

// TestReplaySummaryNamesKeptEntities: the table says which entities a
// rebuild kept, as the JSON summary does.
func TestReplaySummaryNamesKeptEntities(t *testing.T) {
	var out bytes.Buffer
	printReplay(&out, &replay.Summary{ID: "r", Mode: replay.Rebuild, Complete: true, DeletedEntities: 3, KeptEntities: 3, KeptSample: []string{"stripe:pi:pi_1", "stripe:pi:pi_2"}})
	if !strings.Contains(out.String(), "kept 3 entity states") || !strings.Contains(out.String(), "stripe:pi:pi_1, stripe:pi:pi_2 and 1 more") {
		t.Fatalf("summary:\n%s", out.String())
	}
	out.Reset()
	printReplay(&out, &replay.Summary{ID: "r", Mode: replay.Rebuild, Complete: true})
	if strings.Contains(out.String(), "kept") {
		t.Fatalf("nothing kept, yet:\n%s", out.String())
	}
}

// TestReplaySummarySaysDeletionCountsAreLowerBounds: a rebuild whose batch
// of deletions failed, or was killed, before its count was recorded says
// its counts are lower bounds, as the JSON summary does (deleted_at_least).
func TestReplaySummarySaysDeletionCountsAreLowerBounds(t *testing.T) {
	var out bytes.Buffer
	printReplay(&out, &replay.Summary{ID: "r", Mode: replay.Rebuild, Complete: true, DeletedClaims: 2, DeletedEntities: 1, DeletedAtLeast: true})
	if !strings.Contains(out.String(), "rebuild deleted at least 2 dedup claims and 1 entity states") {
		t.Fatalf("summary:\n%s", out.String())
	}
	out.Reset()
	printReplay(&out, &replay.Summary{ID: "r", Mode: replay.Rebuild, Complete: true, DeletedClaims: 3, DeletedEntities: 2})
	if !strings.Contains(out.String(), "rebuild deleted 3 dedup claims and 2 entity states") || strings.Contains(out.String(), "at least") {
		t.Fatalf("exact counts, yet:\n%s", out.String())
	}
}

// TestReplaySummarySaysWhatWasLeft: the table counts the source's records
// apart from every source's scanned, and entries an operator discarded
// apart from those still to requeue (a requeue of a discarded entry is
// refused: it was decided).
func TestReplaySummarySaysWhatWasLeft(t *testing.T) {
	var out bytes.Buffer
	printReplay(&out, &replay.Summary{ID: "r", Source: "shop", Mode: replay.Fill, Complete: true, Scanned: 15, SourceRecords: 3, Read: 0, OnFailureQueues: 1, LeftDiscarded: 2})
	for _, want := range []string{"read 0 of source shop's 3 raw records in range (15 raw records of all sources scanned)",
		"left 1 event whose DLQ or invalid entry is undecided (requeue it from there)",
		"left 2 events whose entry an operator discarded"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in\n%s", want, out.String())
		}
	}
	out.Reset()
	printReplay(&out, &replay.Summary{ID: "r", Source: "shop", Mode: replay.Fill, Complete: true, Scanned: 4, SourceRecords: 2, Read: 2})
	if strings.Contains(out.String(), "left") {
		t.Errorf("nothing left, yet:\n%s", out.String())
	}
}

func mustParseRedisURL(t *testing.T, u string) *redis.Options {
	t.Helper()
	o, err := redis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

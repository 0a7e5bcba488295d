package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/replay"
)

func TestReplayManageUsage(t *testing.T) {
	// Nothing listens there: refused before connecting, or it would fail
	// (exit 1) instead of exit 2.
	conn := []string{"-kafka-brokers", "127.0.0.1:1", "-schema-registry-url", "http://127.0.0.1:1"}
	t.Setenv("INLET_REDIS_URL", "redis://127.0.0.1:1/0")
	t.Run("malformed flags and ids are usage errors", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"rm"}, "takes one replay id"},
			{[]string{"rm", "a", "b"}, "takes one replay id"},
			{[]string{"rm", "../x"}, "1-100 of"},
			{[]string{"rm", ""}, "1-100 of"},
			{[]string{"rm", "*"}, "1-100 of"},
			{[]string{"rm", strings.Repeat("x", 300)}, "1-100 of"},
			{[]string{"rm", "a.retry.30s"}, ".retry."},
			{[]string{"rm", "--force", "x"}, "--reason"},
			{[]string{"rm", "--who", " ", "x"}, "--who"},
			{[]string{"rm", "--bogus", "x"}, "bogus"},
			{[]string{"rm", "--dry-run=maybe", "x"}, "dry-run"},
			{[]string{"rm", "--output", "yaml", "x"}, "--output"},
			{[]string{"ls", "--output", "yaml"}, "--output"},
			{[]string{"ls", "--force"}, "force"}, // rm's flag
			{[]string{"ls", "a/b"}, "1-100 of"},
			{[]string{"ls", "--redis-url", "http://x"}, "-redis-url"},
		} {
			var code int
			var err error
			stderrOf(t, func() {
				code, err = run(append(append(append([]string{}, conn...), "replay"), c.args...), &bytes.Buffer{})
			})
			if code != exitUsage || err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("replay %q: exit %d (%v), want %d and an error mentioning %q", c.args, code, err, exitUsage, c.want)
			}
		}
	})
	t.Run("help exits 0", func(t *testing.T) {
		for _, args := range [][]string{{"ls", "-h"}, {"rm", "--help"}, {"rm", "x", "-h"}} {
			var code int
			var err error
			usage := stderrOf(t, func() {
				code, err = run(append(append(append([]string{}, conn...), "replay"), args...), &bytes.Buffer{})
			})
			if code != exitOK || err != nil || !strings.Contains(usage, "replay rm [--dry-run]") || !strings.Contains(usage, "3 refused") {
				t.Errorf("replay %v: exit %d (%v), usage:\n%s", args, code, err, usage)
			}
		}
		usage := stderrOf(t, func() { run(append(append([]string{}, conn...), "replay", "-h"), &bytes.Buffer{}) })
		if !strings.Contains(usage, "inletctl replay ls") || !strings.Contains(usage, "inletctl replay rm <id>") {
			t.Errorf("replay -h does not point at ls and rm:\n%s", usage)
		}
	})
}

func TestReplayLsRm(t *testing.T) {
	env, codec, flags := cliEnv(t)
	cl := env.Client(t, kgo.ProducerLinger(0))
	from := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	sendRaw(t, env, codec, cl, "evt_r", 1700000000)
	if code, err := run(append(flags, "replay", "--source", "stripe", "--from", from, "--id", "cli-done", "--output", "json"), &bytes.Buffer{}); code != exitOK {
		t.Fatalf("replay: exit %d: %v", code, err)
	}
	rdb := redis.NewClient(mustParseRedisURL(t, env.RedisURL))
	defer rdb.Close()
	ctx := context.Background()
	// A run of another id under way, as its lock says.
	holder, _ := json.Marshal(replay.Holder{Host: "replay-pod-1", PID: 4242, Since: time.Now().UTC().Truncate(time.Second), Token: "tok-secret"})
	if err := rdb.Set(ctx, env.Prefix+":replay:cli-busy:lock", holder, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	topics := func() map[string]bool {
		// A client of its own each time: a client answers a listing
		// from the one it made in the last second.
		td, err := kadm.NewClient(env.Client(t)).ListTopics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for n := range td {
			out[n] = true
		}
		return out
	}
	replayTopic := env.Prefix + ".replay.cli-done"

	t.Run("ls lists the finished and the running replay", func(t *testing.T) {
		var out bytes.Buffer
		if code, err := run(append(flags, "replay", "ls"), &out); code != exitOK || err != nil {
			t.Fatalf("exit %d: %v", code, err)
		}
		for _, want := range []string{"ID", "STATUS", "PENDING", "cli-done", "finished", "stripe", "fill", "complete: 1/1 (100%)", replayTopic + " (Empty, 0 members)",
			"cli-busy", "running (run: host replay-pod-1, pid 4242"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("no %q in\n%s", want, out.String())
			}
		}
		if strings.Contains(out.String(), "tok-secret") {
			t.Errorf("ls shows the lock's token:\n%s", out.String())
		}
		out.Reset()
		if code, err := run(append(flags, "replay", "ls", "--output", "json"), &out); code != exitOK || err != nil {
			t.Fatalf("json: exit %d: %v", code, err)
		}
		var v struct {
			Count   int            `json:"count"`
			Replays []*replay.Info `json:"replays"`
		}
		if err := json.Unmarshal(out.Bytes(), &v); err != nil || v.Count != 2 || v.Replays[0].ID != "cli-busy" || v.Replays[1].Status != replay.StatusFinished || len(v.Replays[1].Topics) != 4 {
			t.Fatalf("json %s (%v)", out.String(), err)
		}
		out.Reset()
		if code, err := run(append(flags, "replay", "ls", "cli-done"), &out); code != exitOK || err != nil || !strings.Contains(out.String(), "topic "+replayTopic+": 3 partitions") {
			t.Fatalf("ls cli-done: exit %d (%v)\n%s", code, err, out.String())
		}
		if code, err := run(append(flags, "replay", "ls", "nosuch"), &bytes.Buffer{}); code != exitError || err == nil || !strings.Contains(err.Error(), "no replay nosuch") {
			t.Fatalf("ls nosuch: exit %d (%v), want 1 naming it", code, err)
		}
	})

	t.Run("rm of a running replay is refused with exit 3", func(t *testing.T) {
		for _, dry := range []string{"--dry-run=true", "--dry-run=false"} {
			var out bytes.Buffer
			code, err := run(append(flags, "replay", "rm", dry, "--force", "--reason", "x", "cli-busy"), &out)
			if code != exitRefused || err == nil || !strings.Contains(err.Error(), "host replay-pod-1, pid 4242") {
				t.Errorf("%s: exit %d (%v), want %d naming the run\n%s", dry, code, err, exitRefused, out.String())
			}
		}
	})

	t.Run("rm --dry-run lists and deletes nothing", func(t *testing.T) {
		before := topics()
		var out bytes.Buffer
		code, err := run(append(flags, "replay", "rm", "--dry-run", "cli-done"), &out)
		if code != exitOK || err != nil {
			t.Fatalf("exit %d: %v\n%s", code, err, out.String())
		}
		for _, want := range []string{"dry run, nothing deleted", "would delete group " + replayTopic, "would delete topic " + replayTopic + " (",
			"would delete topic " + replayTopic + ".retry.30s", "would delete Redis key " + env.Prefix + ":replay:cli-done"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("no %q in\n%s", want, out.String())
			}
		}
		if after := topics(); len(after) != len(before) || !after[replayTopic] {
			t.Fatalf("dry run deleted topics")
		}
	})

	t.Run("rm removes it; again, it is a no-op", func(t *testing.T) {
		before := topics()
		var out bytes.Buffer
		code, err := run(append(flags, "replay", "rm", "--who", "oncall", "--reason", "done", "cli-done"), &out)
		if code != exitOK || err != nil || !strings.Contains(out.String(), "replay cli-done (finished): removed") || !strings.Contains(out.String(), "audited as replay:cli-done:removed:") {
			t.Fatalf("exit %d (%v)\n%s", code, err, out.String())
		}
		after := topics()
		for n := range before {
			if !after[n] && !strings.HasPrefix(n, replayTopic) {
				t.Errorf("topic %s deleted", n)
			}
		}
		if len(before)-len(after) != 4 {
			t.Errorf("%d topics deleted, want the replay's 4", len(before)-len(after))
		}
		if n, _ := rdb.Exists(ctx, env.Prefix+":replay:cli-done").Result(); n != 0 {
			t.Errorf("progress record kept")
		}
		out.Reset()
		code, err = run(append(flags, "replay", "rm", "cli-done", "--output", "json"), &out)
		var v map[string]any
		if code != exitOK || err != nil || json.Unmarshal(out.Bytes(), &v) != nil || len(v["topics"].([]any)) != 0 || v["refused"] != nil {
			t.Fatalf("again: exit %d (%v)\n%s", code, err, out.String())
		}
		out.Reset()
		if code, err := run(append(flags, "replay", "rm", "cli-done"), &out); code != exitOK || err != nil || !strings.Contains(out.String(), "nothing to remove") {
			t.Fatalf("again (table): exit %d (%v)\n%s", code, err, out.String())
		}
	})
}

func TestBytesCell(t *testing.T) {
	for n, want := range map[int64]string{-1: "size unknown", 0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 5 << 30: "5.0 GiB"} {
		if got := bytesCell(n); got != want {
			t.Errorf("bytesCell(%d) = %q, want %q", n, got, want)
		}
	}
}

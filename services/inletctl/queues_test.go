package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/ops"
	"github.com/inletdev/inlet/pkg/retry"
	"github.com/inletdev/inlet/pkg/service/servicetest"
	"github.com/inletdev/inlet/pkg/testenv"
)

// dlqEntry is an embedded stack whose topics have retry tiers 5s and 1m
// and whose DLQ holds one entry (id returned), with the connection flags.
func dlqEntry(t *testing.T) (*testenv.Env, kafka.Topics, string, []string) {
	t.Helper()
	env := testenv.Embedded(t)
	topics := env.CreateTopics(t, []time.Duration{5 * time.Second, time.Minute})
	codec := env.Codec(t, topics)
	id := env.DeadLetter(t, topics, codec, "stripe", "payment_intent.succeeded", "evt_q1", "sink answered 503")
	flags := []string{"-kafka-brokers", strings.Join(env.Brokers, ","), "-schema-registry-url", env.RegistryURL, "-topic-prefix", env.Prefix}
	return env, topics, id, flags
}

// TestQueueRequeueUsesTheProcessorsTiers: with other retry tiers than the
// defaults, a requeue goes to the first of them (it went to a default
// tier's topic, which such a deployment does not have).
func TestQueueRequeueUsesTheProcessorsTiers(t *testing.T) {
	env, topics, id, flags := dlqEntry(t)
	if code, err := run(append(flags, "dlq", "requeue", id, "--reason", "test", "--retry-tiers", "soon"), &bytes.Buffer{}); code != exitUsage {
		t.Fatalf("--retry-tiers soon: exit %d (%v), want %d", code, err, exitUsage)
	}
	// Tiers that are not the processor's: their first topic does not
	// exist, and the error names it and the flag.
	code, err := run(append(flags, "dlq", "requeue", id, "--reason", "test", "--retry-tiers", "45s"), &bytes.Buffer{})
	if code != exitUsage || err == nil || !strings.Contains(err.Error(), topics.Raw[:len(topics.Raw)-len("raw")]+"retry.45s") || !strings.Contains(err.Error(), "--retry-tiers") {
		t.Fatalf("--retry-tiers 45s: exit %d (%v), want %d naming the topic and the flag", code, err, exitUsage)
	}
	var out bytes.Buffer
	if code, err := run(append(flags, "dlq", "requeue", id, "--reason", "sink fixed", "--retry-tiers", "5s,1m"), &out); code != exitOK {
		t.Fatalf("requeue: exit %d: %v\n%s", code, err, out.String())
	}
	got := env.ReadAll(t, topics.Retry[0], 1, 300*time.Millisecond, 10*time.Second)
	if len(got) != 1 || retry.Get(got[0].Headers, retry.HeaderAttempt) != "1" {
		t.Fatalf("%d records on %s, want the requeued one at attempt 1", len(got), topics.Retry[0])
	}
}

// TestQueueRequeueShowsSkippedEntries: a requeue by filter over an entry
// and one holding no copy of its event requeues the first and lists the
// other with the raw record to replay, in its dry run, its table and its
// JSON; the skipped entry stays unresolved. Named alone, it fails.
func TestQueueRequeueShowsSkippedEntries(t *testing.T) {
	env, topics, id, flags := dlqEntry(t)
	h := retry.AppendError(nil, retry.ErrorEntry{At: time.Now().UTC(), Stage: "deliver", Error: "sink answered 503"})
	h = retry.Set(h, retry.HeaderSource, "stripe")
	h = retry.Set(h, retry.HeaderOrigin, topics.Raw+"/2/42")
	h = retry.Set(h, retry.HeaderValueOmitted, "too large")
	res := env.Client(t).ProduceSync(context.Background(), &kgo.Record{Topic: topics.DLQ, Key: []byte("stripe:big"), Headers: h})
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	big := retry.Coordinates(res[0].Record)
	requeue := append(flags, "dlq", "requeue", "--source", "stripe", "--reason", "sink fixed", "--retry-tiers", "5s,1m")

	var out bytes.Buffer
	if code, err := run(append(requeue, "--dry-run"), &out); code != exitOK {
		t.Fatalf("dry run: exit %d: %v\n%s", code, err, out.String())
	}
	for _, want := range []string{"1 would be requeued", "1 would be skipped", "inletctl replay", big, topics.Raw + "/2/42"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("dry run: no %q in\n%s", want, out.String())
		}
	}
	out.Reset()
	if code, err := run(append(requeue, "--output", "json"), &out); code != exitOK {
		t.Fatalf("requeue: exit %d: %v\n%s", code, err, out.String())
	}
	var v struct {
		Count          int
		Entries        []map[string]any
		Skipped        int
		SkippedEntries []ops.Skip `json:"skipped_entries"`
		ReplayHint     string     `json:"replay_hint"`
	}
	if err := json.Unmarshal(out.Bytes(), &v); err != nil || v.Count != 1 || v.Entries[0]["id"] != id || v.Skipped != 1 ||
		len(v.SkippedEntries) != 1 || v.SkippedEntries[0] != (ops.Skip{ID: big, Origin: topics.Raw + "/2/42", Reason: ops.ReasonNoEvent}) || v.ReplayHint == "" {
		t.Fatalf("requeue --output json (%v):\n%s", err, out.String())
	}
	out.Reset()
	if code, err := run(append(flags, "dlq", "ls", "--output", "json"), &out); code != exitOK || !strings.Contains(out.String(), big) || strings.Contains(out.String(), id) {
		t.Fatalf("ls after the requeue: exit %d (%v), want %s alone:\n%s", code, err, big, out.String())
	}
	code, err := run(append(flags, "dlq", "requeue", big, "--reason", "sink fixed", "--retry-tiers", "5s,1m"), &bytes.Buffer{})
	if code != exitError || err == nil || !strings.Contains(err.Error(), "no copy of its event") {
		t.Fatalf("requeue %s alone: exit %d, %v; want %d and the refusal", big, code, err, exitError)
	}
}

func TestQueueCommands(t *testing.T) {
	_, _, id, flags := dlqEntry(t)
	t.Run("ls --group --output json counts, as the admin API does", func(t *testing.T) {
		var out bytes.Buffer
		if code, err := run(append(flags, "dlq", "ls", "--group", "--output", "json"), &out); code != exitOK {
			t.Fatalf("exit %d: %v", code, err)
		}
		var v struct{ Groups []ops.Group }
		if err := json.Unmarshal(out.Bytes(), &v); err != nil || len(v.Groups) != 1 || v.Groups[0].Count != 1 || v.Groups[0].Error != "sink answered 503" {
			t.Fatalf("%v: %s", err, out.String())
		}
	})
	t.Run("show of an id that is not there fails", func(t *testing.T) {
		var out bytes.Buffer
		if code, _ := run(append(flags, "dlq", "show", id), &out); code != exitOK || !strings.Contains(out.String(), "evt_q1") {
			t.Fatalf("show %s: exit %d\n%s", id, code, out.String())
		}
		missing := otherOffset(id)
		if code, _ := run(append(flags, "dlq", "show", missing), &bytes.Buffer{}); code != exitError {
			t.Fatalf("show %s: exit %d, want %d", missing, code, exitError)
		}
	})
	t.Run("ls pages", func(t *testing.T) {
		env, topics, _, flags := dlqEntry(t)
		env.DeadLetter(t, topics, env.Codec(t, topics), "stripe", "payment_intent.succeeded", "evt_q2", "sink answered 503")
		var out bytes.Buffer
		if code, err := run(append(flags, "dlq", "ls", "--limit", "1", "--output", "json"), &out); code != exitOK {
			t.Fatalf("exit %d: %v", code, err)
		}
		var page struct {
			Count   int
			Entries []map[string]any
			Next    string
		}
		if err := json.Unmarshal(out.Bytes(), &page); err != nil || page.Count != 2 || len(page.Entries) != 1 || page.Next == "" {
			t.Fatalf("first page (%v): %s", err, out.String())
		}
		first := page.Entries[0]["event_id"]
		out.Reset()
		if code, err := run(append(flags, "dlq", "ls", "--limit", "1", "--after", page.Next), &out); code != exitOK {
			t.Fatalf("exit %d: %v", code, err)
		}
		if want := map[any]string{"evt_q1": "evt_q2", "evt_q2": "evt_q1"}[first]; !strings.Contains(out.String(), want) || strings.Contains(out.String(), "next page") {
			t.Fatalf("second page after %v, want %s and no next page:\n%s", first, want, out.String())
		}
		// The time budget is --timeout's (2 minutes by default, and a
		// large decision stopped by it had no way to ask for more).
		if code, err := run(append(flags, "dlq", "ls", "--timeout", "1ns"), &bytes.Buffer{}); code != exitError || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("ls --timeout 1ns: exit %d, %v; want %d, deadline exceeded", code, err, exitError)
		}
		for _, bad := range [][]string{{"--after", "nonsense"}, {"--limit", "-2"}, {"--timeout", "0s"}, {"--timeout", "-1s"}, {"--timeout", "soon"}} {
			if code, _ := run(append(append(flags, "dlq", "ls"), bad...), &bytes.Buffer{}); code != exitUsage {
				t.Errorf("ls %v: exit %d, want %d", bad, code, exitUsage)
			}
		}
	})
	t.Run("malformed ids and show without ids are usage errors", func(t *testing.T) {
		for _, args := range [][]string{
			{"discard", "garbage", "--reason", "x"},
			{"discard", "inlet.dlq/a/b", "--reason", "x"},
			{"requeue", id, "inlet.dlq/0/-1", "--reason", "x"},
			{"show", "inlet.dlq/0"},
			{"show"},
			{"show", "--source", "shop"},
		} {
			code, err := run(append(append(flags, "dlq"), args...), &bytes.Buffer{})
			if code != exitUsage || err == nil {
				t.Errorf("dlq %v: exit %d (%v), want %d", args, code, err, exitUsage)
			}
		}
	})
	t.Run("--until alone is a filter", func(t *testing.T) {
		var out bytes.Buffer
		code, err := run(append(flags, "dlq", "discard", "--until", time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "--reason", "x", "--dry-run"), &out)
		if code != exitOK || err != nil || !strings.Contains(out.String(), id) {
			t.Fatalf("discard --until T --dry-run: exit %d (%v)\n%s", code, err, out.String())
		}
	})
	t.Run("-h is not a usage error", func(t *testing.T) {
		if code, err := run(append(flags, "dlq", "ls", "-h"), &bytes.Buffer{}); code != exitOK {
			t.Fatalf("exit %d: %v", code, err)
		}
	})
}

// TestTerminalEscapesAreShownNotObeyed: event text reaches the operator's
// terminal; escapes in it are printed as escapes.
func TestTerminalEscapesAreShownNotObeyed(t *testing.T) {
	e := &ops.Entry{ID: "inlet.dlq/0/1", Source: "open", EventType: "\x1b]0;owned\a\x1b[2J", EventID: "e1\rFAKE",
		Reason: "no handler", LastError: "sink answered 500: \x1b[31mred\u202e", Payload: []byte("{\n  \"x\": \"\x1b[2J\"\n}")}
	var out bytes.Buffer
	printTable(&out, []*ops.Entry{e})
	printEntry(&out, e)
	printGroups(&out, []ops.Group{{Count: 1, Source: "open", EventType: e.EventType, Error: e.LastError}})
	for _, r := range out.String() {
		if r == 0x1b || r == '\r' || r == '\a' || r == 0x202e {
			t.Fatalf("output holds %U raw:\n%q", r, out.String())
		}
	}
	if !strings.Contains(out.String(), `\x1b]0;owned`) || !strings.Contains(out.String(), "\n  \"x\"") {
		t.Errorf("escapes not shown, or the payload's lines lost:\n%s", out.String())
	}
	// A raw C1 byte (invalid UTF-8) and a tab, which would shift a table's
	// columns, in an error text.
	out.Reset()
	printTable(&out, []*ops.Entry{{ID: "inlet.dlq/0/2", LastError: "a\x9b2Jb\tc"}})
	if bytes.IndexByte(out.Bytes(), 0x9b) >= 0 || !strings.Contains(out.String(), `a\x9b2Jb c`) {
		t.Errorf("table: %q", out.String())
	}
}

// TestQueueDecisionByIDSaysWhatItDidNotDecide: a requeue or discard naming
// ids fails (exit 1) when any of them was not decided, and says which and
// why, in its dry run as in the real one: an id of the other queue, a
// mistyped offset, an entry already decided. It printed "0 discarded" and
// exited 0. A filter matching nothing is not a failure.
func TestQueueDecisionByIDSaysWhatItDidNotDecide(t *testing.T) {
	_, topics, id, flags := dlqEntry(t)
	typo := otherOffset(id)
	decide := func(args ...string) (int, string, error) {
		t.Helper()
		var out bytes.Buffer
		code, err := run(append(append([]string{}, flags...), args...), &out)
		return code, out.String(), err
	}
	for _, dry := range []string{"--dry-run", "--dry-run=false"} {
		code, out, err := decide("invalid", "discard", id, "--reason", "cancelled", dry)
		if code != exitError || err == nil || !strings.Contains(err.Error(), topics.Invalid) || !strings.Contains(err.Error(), id) {
			t.Fatalf("invalid discard %s (%s): exit %d, %v; want %d saying it is not on %s\n%s", id, dry, code, err, exitError, topics.Invalid, out)
		}
		if code, out, err := decide("dlq", "discard", typo, "--reason", "cancelled", dry); code != exitError || err == nil || !strings.Contains(err.Error(), typo) {
			t.Fatalf("dlq discard %s (%s): exit %d, %v\n%s", typo, dry, code, err, out)
		}
	}
	code, out, err := decide("dlq", "discard", id, typo, "--reason", "cancelled", "--dry-run")
	if code != exitError || err == nil || !strings.Contains(out, "1 would be discarded") || !strings.Contains(out, typo) || !strings.Contains(out, "not on this queue") {
		t.Fatalf("dry run of [real, typo]: exit %d, %v; want %d, 1 decided and %s listed\n%s", code, err, exitError, typo, out)
	}
	code, out, err = decide("dlq", "discard", id, typo, "--reason", "cancelled", "--output", "json")
	var v struct {
		Count     int
		Unmatched []struct{ ID, Reason string }
	}
	if jerr := json.Unmarshal([]byte(out), &v); code != exitError || err == nil || jerr != nil || v.Count != 1 || len(v.Unmatched) != 1 || v.Unmatched[0].ID != typo {
		t.Fatalf("[real, typo]: exit %d, %v (%v); want %d, 1 decided and %s unmatched\n%s", code, err, jerr, exitError, typo, out)
	}
	code, out, err = decide("dlq", "discard", id, "--reason", "cancelled again")
	if code != exitError || err == nil || !strings.Contains(err.Error(), "already decided") || !strings.Contains(out, "discard by") {
		t.Fatalf("discard of a decided entry: exit %d, %v; want %d saying who decided it\n%s", code, err, exitError, out)
	}
	t.Setenv("INLET_SOURCES", "") // no sources file: a source is not checked
	if code, out, err := decide("dlq", "discard", "--source", "nobody", "--reason", "cancelled"); code != exitOK || !strings.Contains(out, "0 matched") {
		t.Fatalf("a filter matching nothing: exit %d, %v\n%s", code, err, out)
	}
}

// queueSources writes a sources file with source stripe, whose runbook is
// runbook, and names it in INLET_SOURCES.
func queueSources(t *testing.T, runbook string) {
	t.Helper()
	t.Setenv("T_STRIPE", "s")
	file := filepath.Join(t.TempDir(), "sources.yaml")
	if err := os.WriteFile(file, []byte(cliSources+"    runbook: "+runbook+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("INLET_SOURCES", file)
}

// TestQueueFilterNamingAnUnknownSource: with a sources file, a filter
// naming a source it does not have that matches nothing is a usage error
// naming the known sources (it printed "0 requeued" and exited 0, as for
// a source with nothing to requeue); without one, it says "0 matched".
// A source the file does not have whose entries are on the queue (one
// since removed) is still decided.
func TestQueueFilterNamingAnUnknownSource(t *testing.T) {
	env, topics, _, flags := dlqEntry(t)
	env.DeadLetter(t, topics, env.Codec(t, topics), "retired", "orders/updated", "evt_r1", "sink answered 503")
	runq := func(args ...string) (int, string, error) {
		t.Helper()
		var out bytes.Buffer
		code, err := run(append(append([]string{}, flags...), args...), &out)
		return code, out.String(), err
	}
	t.Run("without a sources file: 0 matched", func(t *testing.T) {
		t.Setenv("INLET_SOURCES", "")
		code, out, err := runq("dlq", "requeue", "--source", "nosuch", "--reason", "x", "--retry-tiers", "5s,1m")
		if code != exitOK || !strings.Contains(out, "0 matched") || !strings.Contains(out, `--source "nosuch"`) || !strings.Contains(out, "INLET_SOURCES") {
			t.Fatalf("exit %d (%v):\n%s", code, err, out)
		}
	})
	queueSources(t, "https://runbooks.example.com/stripe")
	for _, args := range [][]string{
		{"dlq", "requeue", "--source", "nosuch", "--reason", "x", "--retry-tiers", "5s,1m"},
		{"dlq", "requeue", "--source", "nosuch", "--reason", "x", "--retry-tiers", "5s,1m", "--dry-run"},
		{"invalid", "discard", "--source", "nosuch", "--reason", "x", "--output", "json"},
		{"dlq", "ls", "--source", "nosuch"},
		{"dlq", "ls", "--source", "nosuch", "--group"},
	} {
		code, out, err := runq(args...)
		if code != exitUsage || err == nil || !strings.Contains(err.Error(), `"nosuch"`) || !strings.Contains(err.Error(), "stripe") {
			t.Errorf("%v: exit %d (%v), want %d naming the known sources\n%s", args, code, err, exitUsage, out)
		}
	}
	if code, out, err := runq("dlq", "requeue", "--source", "stripe", "--type", "nosuch", "--reason", "x", "--retry-tiers", "5s,1m"); code != exitOK || !strings.Contains(out, "0 matched") {
		t.Errorf("a known source, nothing matched: exit %d (%v)\n%s", code, err, out)
	}
	if code, out, err := runq("dlq", "discard", "--source", "retired", "--reason", "source retired"); code != exitOK || !strings.Contains(out, "1 discarded") {
		t.Errorf("a source no longer in the file, with an entry: exit %d (%v)\n%s", code, err, out)
	}
}

// TestQueueShowRunbook: show prints the runbook an entry carries, or else
// its source's from the sources file (entries written before invalid
// copies carried it); with neither, no empty "runbook:" line.
func TestQueueShowRunbook(t *testing.T) {
	env, topics, _, flags := dlqEntry(t)
	inv := topics
	inv.DLQ = topics.Invalid // DeadLetter writes to inv.DLQ: an invalid entry without a runbook header
	id := env.DeadLetter(t, inv, env.Codec(t, topics), "stripe", "payment_intent.succeeded", "evt_inv", "contract: /data/object/id missing")
	show := func() string {
		t.Helper()
		var out bytes.Buffer
		if code, err := run(append(append([]string{}, flags...), "invalid", "show", id), &out); code != exitOK {
			t.Fatalf("invalid show %s: exit %d (%v)\n%s", id, code, err, out.String())
		}
		return out.String()
	}
	t.Setenv("INLET_SOURCES", "")
	if out := show(); strings.Contains(out, "runbook:") {
		t.Errorf("no runbook known, yet:\n%s", out)
	}
	queueSources(t, "https://runbooks.example.com/stripe")
	if out := show(); !strings.Contains(out, "runbook:        https://runbooks.example.com/stripe\n") {
		t.Errorf("the source's runbook not shown:\n%s", out)
	}
}

// TestQueueShowPrintsKeptHeaders: show prints the request headers ingest
// kept in the envelope (the sender's API version among them: what an
// operator needs to tell a contract break from a bug), sorted, escapes shown
// and not obeyed, and its JSON carries them; listings do not. show printed
// none, though its usage and the invalid runbook said it did.
func TestQueueShowPrintsKeptHeaders(t *testing.T) {
	env, topics, bare, flags := dlqEntry(t)
	codec := env.Codec(t, topics)
	ev := &envelope.Envelope{ID: "id-evt_h1", Source: "shop", EventType: "orders/updated", EventID: "evt_h1",
		IdempotencyKey: envelope.IdempotencyKey("shop", "evt_h1"), SchemaVersion: "v1", ReceivedAt: time.Now().UTC().Truncate(time.Microsecond),
		CorrelationID: "corr-h1", Channel: envelope.ChannelWebhook,
		Headers: map[string]string{"X-Shopify-Topic": "orders/updated", "X-Shopify-Api-Version": "2025-01", "User-Agent": "Shopify-Captain-Hook\x1b[2J", "X-Trap": "a\u202eb\u009b[2J"},
		Payload: []byte(`{"id":1}`), ContentType: "application/json"}
	val, err := codec.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	h := retry.AppendError(nil, retry.ErrorEntry{At: time.Now().UTC(), Stage: "validate", Error: "no handler for shopify/order 2025-01"})
	h = retry.Set(h, retry.HeaderReason, "no handler")
	res := env.Client(t).ProduceSync(context.Background(), &kgo.Record{Topic: topics.Invalid, Key: []byte(ev.IdempotencyKey), Value: val, Headers: h})
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	id := retry.Coordinates(res[0].Record)
	t.Setenv("INLET_SOURCES", "")
	runq := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if code, err := run(append(append([]string{}, flags...), args...), &out); code != exitOK {
			t.Fatalf("%v: exit %d (%v)\n%s", args, code, err, out.String())
		}
		return out.String()
	}

	out := runq("invalid", "show", id)
	want := "headers:\n  User-Agent: Shopify-Captain-Hook\\x1b[2J\n  X-Shopify-Api-Version: 2025-01\n  X-Shopify-Topic: orders/updated\n"
	if !strings.Contains(out, want) || strings.ContainsRune(out, 0x1b) {
		t.Fatalf("invalid show %s: want the kept headers, sorted and escaped:\n%s\nin:\n%s", id, want, out)
	}
	var shown []struct{ Headers map[string]string }
	jsonOut := runq("invalid", "show", id, "--output", "json")
	if err := json.Unmarshal([]byte(jsonOut), &shown); err != nil || len(shown) != 1 ||
		shown[0].Headers["X-Shopify-Api-Version"] != "2025-01" {
		t.Fatalf("invalid show --output json (%v): %+v", err, shown)
	}
	// JSON escapes C0 controls, not C1 or bidi overrides, which a terminal
	// showing jq's output obeys: those are shown escaped.
	if strings.ContainsRune(jsonOut, 0x202e) || strings.ContainsRune(jsonOut, 0x9b) {
		t.Errorf("invalid show --output json passes a bidi override or a C1 control through:\n%s", jsonOut)
	}
	if out := runq("invalid", "ls", "--output", "json"); strings.Contains(out, "X-Shopify-Api-Version") {
		t.Errorf("ls carries the headers (show's alone, as the payload):\n%s", out)
	}
	// An entry whose envelope kept none prints no empty "headers:" line.
	if out := runq("dlq", "show", bare); strings.Contains(out, "headers:") {
		t.Errorf("dlq show %s: a headers line with none kept:\n%s", bare, out)
	}
}

// show lists entries in the order their ids were named, not the queue's.
func TestShowKeepsTheOrderNamed(t *testing.T) {
	es := []*ops.Entry{{ID: "q.dlq/1/2"}, {ID: "q.dlq/2/0"}, {ID: "q.dlq/0/7"}}
	inOrderNamed(es, []string{"q.dlq/2/0", "q.dlq/0/7", "q.dlq/2/0", "q.dlq/1/2"})
	var got []string
	for _, e := range es {
		got = append(got, e.ID)
	}
	if want := []string{"q.dlq/2/0", "q.dlq/0/7", "q.dlq/1/2"}; !slices.Equal(got, want) {
		t.Fatalf("%v, want %v", got, want)
	}
}

// TestQueueShowOfAnIDNamedTwice: show naming one entry twice finds it
// (exit 0); naming a missing id twice lists it once. It compared the
// entries found with the ids named, counting a repeated id twice: the
// entry found, it exited 1 and printed "not on <topic>: " naming no id.
func TestQueueShowOfAnIDNamedTwice(t *testing.T) {
	_, topics, id, flags := dlqEntry(t)
	var out bytes.Buffer
	var code int
	var err error
	stderr := stderrOf(t, func() { code, err = run(append(flags, "dlq", "show", id, id), &out) })
	if code != exitOK || !strings.Contains(out.String(), "evt_q1") || strings.Contains(stderr, "not on") {
		t.Fatalf("show %s %s: exit %d (%v), want %d and the entry: it was found\nstdout:\n%s\nstderr:\n%s", id, id, code, err, exitOK, out.String(), stderr)
	}
	missing := otherOffset(id)
	out.Reset()
	stderr = stderrOf(t, func() { code, err = run(append(flags, "dlq", "show", id, missing, id, missing), &out) })
	if want := "not on " + topics.DLQ + ": " + missing + "\n"; code != exitError || !strings.Contains(out.String(), "evt_q1") || !strings.Contains(stderr, want) {
		t.Fatalf("show %s %s twice each: exit %d (%v), want %d, the entry, and %q on stderr\nstdout:\n%s\nstderr:\n%s", id, missing, code, err, exitError, want, out.String(), stderr)
	}
}

// TestQueueShowOfTheOtherQueuesID: show of an id of the other queue says
// which queue holds it and how to show it (it said only "not on").
func TestQueueShowOfTheOtherQueuesID(t *testing.T) {
	_, _, id, flags := dlqEntry(t)
	var code int
	stderr := stderrOf(t, func() { code, _ = run(append(flags, "invalid", "show", id), &bytes.Buffer{}) })
	if code != exitError || !strings.Contains(stderr, "inletctl dlq show") {
		t.Fatalf("invalid show %s: exit %d, want %d and the command that shows it\n%s", id, code, exitError, stderr)
	}
}

// TestQueueDecisionRefusesABlankWho: every decision is audited with who
// made it. --who "" or " " (and the default where no user name can be
// found, as in a container running as an arbitrary uid with USER unset)
// is a usage error telling the operator to pass --who; nothing is
// decided. It was requeued or discarded, audited as by nobody.
func TestQueueDecisionRefusesABlankWho(t *testing.T) {
	_, _, id, flags := dlqEntry(t)
	for _, cmd := range []string{"requeue", "discard"} {
		for _, who := range []string{"", " "} {
			code, err := run(append(flags, "dlq", cmd, id, "--reason", "cancelled upstream", "--who", who, "--retry-tiers", "5s,1m"), &bytes.Buffer{})
			if code != exitUsage || !errors.Is(err, ops.ErrNoWho) || !strings.Contains(err.Error(), "pass --who") {
				t.Errorf("%s --who %q: exit %d (%v), want %d telling to pass --who", cmd, who, code, err, exitUsage)
			}
		}
	}
	// Nothing was decided: the entry is still unresolved.
	var out bytes.Buffer
	if code, err := run(append(flags, "dlq", "ls", "--output", "json"), &out); code != exitOK || !strings.Contains(out.String(), id) || strings.Contains(out.String(), `"decision"`) {
		t.Fatalf("ls after the refusals: exit %d (%v), want %s unresolved\n%s", code, err, id, out.String())
	}
}

// TestQueueDecisionFlagsAreCheckedBeforeConnecting: a requeue or discard
// without --reason, or with a blank --who, is a usage error (exit 2) also
// while Kafka and the registry are down (the 3 a.m. case). The reason was
// checked only once they answered: it exited 1 with the connection's
// error instead of saying --reason is missing.
func TestQueueDecisionFlagsAreCheckedBeforeConnecting(t *testing.T) {
	flags := []string{"-kafka-brokers", servicetest.ClosedAddr(t), "-schema-registry-url", "http://" + servicetest.ClosedAddr(t)}
	for _, cmd := range []string{"requeue", "discard"} {
		for _, c := range []struct {
			args []string
			is   error
		}{
			{nil, ops.ErrNoReason},
			{[]string{"--reason", " "}, ops.ErrNoReason},
			{[]string{"--reason", "sink fixed", "--who", ""}, ops.ErrNoWho},
		} {
			code, err := run(append(append(flags, "dlq", cmd, "inlet.dlq/0/17"), c.args...), &bytes.Buffer{})
			if code != exitUsage || !errors.Is(err, c.is) {
				t.Errorf("dlq %s %q: exit %d (%v), want %d and %v", cmd, c.args, code, err, exitUsage, c.is)
			}
		}
	}
}

// TestInletctlProcess is inletctl itself, with the arguments in
// INLETCTL_TEST_ARGS, when a test runs it as a process of its own.
func TestInletctlProcess(t *testing.T) {
	args := os.Getenv("INLETCTL_TEST_ARGS")
	if args == "" {
		t.Skip("run by other tests")
	}
	code, err := run(strings.Split(args, "\n"), os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "inletctl:", err)
	}
	os.Exit(code)
}

// TestQueueRequeueInterrupted: Ctrl-C stops a requeue as a failure midway
// does: it says what stands, and aborts its open transaction (killed, it
// said nothing and held back the retry tier's and audit topic's
// read_committed readers until the transaction timed out); run again, it
// requeues the rest, each entry once.
func TestQueueRequeueInterrupted(t *testing.T) {
	env, topics, _, flags := dlqEntry(t)
	tmpl := env.ReadAll(t, topics.DLQ, 1, 200*time.Millisecond, 10*time.Second)[0]
	const n = 20000
	recs := make([]*kgo.Record, 0, n-1)
	for range n - 1 {
		recs = append(recs, &kgo.Record{Topic: topics.DLQ, Key: tmpl.Key, Value: tmpl.Value, Headers: tmpl.Headers})
	}
	if err := env.Client(t).ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(env.Client(t))
	written := func(topic string) (hwm, lso int64) {
		h, err1 := adm.ListEndOffsets(context.Background(), topic)
		l, err2 := adm.ListCommittedOffsets(context.Background(), topic)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		h.Each(func(o kadm.ListedOffset) { hwm += o.Offset })
		l.Each(func(o kadm.ListedOffset) { lso += o.Offset })
		return hwm, lso
	}

	// Ctrl-C once the requeue has written into its open transaction: a
	// real SIGINT, to inletctl run as a process of its own.
	requeue := append(flags, "dlq", "requeue", "--source", "stripe", "--reason", "sink fixed", "--retry-tiers", "5s,1m")
	cmd := exec.Command(os.Args[0], "-test.run=^TestInletctlProcess$")
	cmd.Env = append(os.Environ(), "INLETCTL_TEST_ARGS="+strings.Join(requeue, "\n"))
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "records on the retry tier", func() bool { h, _ := written(topics.Retry[0]); return h > 0 })
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if cmd.ProcessState.ExitCode() != exitError || !strings.Contains(stderr.String(), "interrupted") || !strings.Contains(stderr.String(), "decided before it and stand") && !strings.Contains(stderr.String(), "nothing was done") {
		t.Fatalf("interrupted requeue: %v, want exit %d saying it was interrupted and what stands\n%s%s", err, exitError, out.String(), stderr.String())
	}
	// Nothing is left in an open transaction to hold back the processor's
	// read_committed reads of the retry tier and the audit topic.
	for _, topic := range []string{topics.Retry[0], topics.Audit} {
		if h, l := written(topic); h != l {
			t.Fatalf("%s: end offsets %d, stable offsets %d: a transaction was left open", topic, h, l)
		}
	}
	if code, err := run(requeue, &bytes.Buffer{}); code != exitOK {
		t.Fatalf("requeue again: exit %d (%v)", code, err)
	}
	if got := env.ReadAll(t, topics.Retry[0], n, 500*time.Millisecond, 30*time.Second); len(got) != n {
		t.Fatalf("%d requeued records, want %d: each entry once", len(got), n)
	}
}

// TestQueueUnknownCommandBeforeConnecting: a mistyped dlq/invalid command
// is a usage error also while the registry is down (it exited 1 with the
// registry's error).
func TestQueueUnknownCommandBeforeConnecting(t *testing.T) {
	flags := []string{"-kafka-brokers", servicetest.ClosedAddr(t), "-schema-registry-url", "http://" + servicetest.ClosedAddr(t)}
	for _, cmd := range []string{"bogus", "requeu"} {
		code, err := run(append(flags, "dlq", cmd, "inlet.dlq/0/17", "--reason", "x"), &bytes.Buffer{})
		if code != exitUsage || err == nil || !strings.Contains(err.Error(), "unknown command") {
			t.Errorf("dlq %s: exit %d (%v), want %d and unknown command", cmd, code, err, exitUsage)
		}
	}
}

// TestQueueFlagsACommandDoesNotRead: a flag the command does not read is a
// usage error before anything connects, not ignored: requeue --limit 1
// (one first) requeued every match, depth --source github counted the
// whole queue, and show with a filter said an entry outside it was not on
// the queue.
func TestQueueFlagsACommandDoesNotRead(t *testing.T) {
	flags := []string{"-kafka-brokers", servicetest.ClosedAddr(t), "-schema-registry-url", "http://" + servicetest.ClosedAddr(t)}
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"requeue", "--source", "shop", "--reason", "x", "--limit", "1"}, "dlq requeue does not take --limit"},
		{[]string{"discard", "inlet.dlq/0/1", "--reason", "x", "--group", "--after", "c"}, "dlq discard does not take --after, --group"},
		{[]string{"depth", "--source", "github"}, "dlq depth does not take --source"},
		{[]string{"depth", "inlet.dlq/0/1"}, "dlq depth counts the whole queue's unresolved entries and takes no ids"},
		{[]string{"show", "inlet.dlq/0/1", "--source", "github"}, "dlq show does not take --source"},
		{[]string{"ls", "--reason", "x"}, "dlq ls does not take --reason"},
		{[]string{"ls", "--group", "--limit", "5"}, "dlq ls --group counts every match at once and takes no --limit"},
		{[]string{"ls", "--group", "--after", "c", "--limit", "0"}, "takes no --limit or --after"},
	} {
		code, err := run(append(append([]string{}, flags...), append([]string{"dlq"}, c.args...)...), &bytes.Buffer{})
		if code != exitUsage || err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("dlq %q: exit %d (%v), want %d saying %q", c.args, code, err, exitUsage, c.says)
		}
	}
}

// TestOutputFormatIsChecked: dlq/invalid and trace refuse an --output that
// is neither table nor json, as replay and reconcile do (a script's
// --output jsno got a table).
func TestOutputFormatIsChecked(t *testing.T) {
	flags := []string{"-kafka-brokers", servicetest.ClosedAddr(t), "-schema-registry-url", "http://" + servicetest.ClosedAddr(t)}
	for _, args := range [][]string{
		{"dlq", "ls", "--output", "yaml"},
		{"invalid", "show", "inlet.invalid/0/1", "--output", "JSON"},
		{"dlq", "discard", "inlet.dlq/0/1", "--reason", "x", "--output", "jsno"},
		{"trace", "--output", "yaml", "-admin-url", "http://" + servicetest.ClosedAddr(t), "abc"},
	} {
		code, err := run(append(flags, args...), &bytes.Buffer{})
		if code != exitUsage || err == nil || !strings.Contains(err.Error(), "--output") {
			t.Errorf("%q: exit %d (%v), want %d naming --output", args, code, err, exitUsage)
		}
	}
}

// TestQueueSwappedRangeRefused: --since at or after --until is a usage
// error; it listed nothing, exit 0, which reads as "no such problem".
func TestQueueSwappedRangeRefused(t *testing.T) {
	flags := []string{"-kafka-brokers", servicetest.ClosedAddr(t), "-schema-registry-url", "http://" + servicetest.ClosedAddr(t)}
	for _, args := range [][]string{
		{"dlq", "ls", "--since", "2025-02-01T00:00:00Z", "--until", "2025-01-01T00:00:00Z"},
		{"invalid", "requeue", "--since", "2025-01-01T00:00:00Z", "--until", "2025-01-01T00:00:00Z", "--reason", "x"},
	} {
		code, err := run(append(flags, args...), &bytes.Buffer{})
		if code != exitUsage || err == nil || !strings.Contains(err.Error(), "--since") {
			t.Errorf("%q: exit %d (%v), want %d naming --since", args, code, err, exitUsage)
		}
	}
}

// otherOffset is id (topic/partition/offset) with an offset no test entry
// has: an id as ls prints them that names nothing.
func otherOffset(id string) string { return id[:strings.LastIndexByte(id, '/')+1] + "999" }

// TestQueueShowsWhatIsWrongWithAForeignRecord: records another producer
// wrote to the DLQ (a tombstone, plain JSON, a Confluent-framed value
// whose schema id the registry does not have) were listed with every
// column blank and shown with an empty payload: nothing said what they
// were, and show hid their value. ls says why on their line, show prints
// the value as stored, and both keep working for the good entry.
func TestQueueShowsWhatIsWrongWithAForeignRecord(t *testing.T) {
	env, topics, good, flags := dlqEntry(t)
	cl := env.Client(t, kgo.ProducerLinger(0))
	var ids []string
	for _, r := range []*kgo.Record{
		{Key: []byte("stripe:tomb")},
		{Key: []byte("k"), Value: []byte(`{"hello":"world"}`)},
		{Value: []byte("\x00\x00\x00\x27\x0f\x02ab")},
	} {
		r.Topic = topics.DLQ
		res := cl.ProduceSync(context.Background(), r)
		if err := res.FirstErr(); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, retry.Coordinates(res[0].Record))
	}
	cmd := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if code, err := run(append(append([]string{}, flags...), args...), &out); code != exitOK {
			t.Fatalf("%v: exit %d, %v\n%s", args, code, err, out.String())
		}
		return out.String()
	}
	ls := cmd("dlq", "ls")
	lines := map[string]string{}
	for l := range strings.Lines(ls) {
		lines[strings.Fields(l)[0]] = l
	}
	for i, want := range []string{"null", "not Confluent-framed", "unknown schema"} {
		if !strings.Contains(lines[ids[i]], want) {
			t.Errorf("ls: the line of %s does not say %q:\n%s", ids[i], want, ls)
		}
	}
	if !strings.Contains(lines[good], "evt_q1") {
		t.Errorf("ls: the good entry %s is not listed:\n%s", good, ls)
	}
	show := cmd("dlq", "show", ids[1])
	if !strings.Contains(show, "not an Inlet envelope") || !strings.Contains(show, `{"hello":"world"}`) {
		t.Errorf("show %s does not say what is wrong, or hides the value:\n%s", ids[1], show)
	}
	var js []map[string]any
	if err := json.Unmarshal([]byte(cmd("dlq", "show", "--output", "json", ids[0], ids[1])), &js); err != nil || len(js) != 2 {
		t.Fatalf("show --output json: %v", err)
	}
	if p, _ := js[0]["problem"].(string); !strings.Contains(p, "null") || js[0]["value"] != nil {
		t.Errorf("show --output json %s: %v; want a problem and a null value", ids[0], js[0])
	}
	if v, _ := js[1]["value"].(map[string]any); v["hello"] != "world" {
		t.Errorf("show --output json %s: %v; want its value", ids[1], js[1])
	}
	if g := cmd("dlq", "ls", "--group"); !strings.Contains(g, "not an Inlet envelope") {
		t.Errorf("ls --group does not say what is wrong with 3 entries:\n%s", g)
	}
}

// TestShowJSONEscapesTerminalControlsInPayload: show --output json printed
// a payload's C1 controls and bidi overrides raw (only the headers were
// escaped); they are \u escapes now, and the payload reads back as sent.
func TestShowJSONEscapesTerminalControlsInPayload(t *testing.T) {
	const hostile = "a\u202eb\u009b2J\x7fc"
	e := &ops.Entry{ID: "inlet.dlq/0/1", Source: "open", EventType: "t", Payload: []byte(`{"name":"` + hostile + `"}`)}
	var out bytes.Buffer
	if err := jsonEncode(&out, entriesJSON([]*ops.Entry{e}, true)); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsFunc(out.String(), func(r rune) bool { return r == 0x202e || r == 0x9b || r == 0x7f }) {
		t.Fatalf("output holds a control or bidi override raw:\n%q", out.String())
	}
	var shown []struct{ Payload map[string]string }
	if err := json.Unmarshal(out.Bytes(), &shown); err != nil || len(shown) != 1 || shown[0].Payload["name"] != hostile {
		t.Errorf("payload read back as %+v (%v), want it as sent", shown, err)
	}
}

// TestQueueDecisionFailureStillPrintsJSON: a requeue or discard that
// fails (one entry named alone that cannot be requeued, a decision
// stopped midway) printed nothing on stdout with --output json: a script
// reading the answer got no JSON to parse, and not the count that stands.
// It prints the answer (what was decided before the failure) as the
// refusals of ids not on the queue do, and still exits 1.
func TestQueueDecisionFailureStillPrintsJSON(t *testing.T) {
	env, topics, _, flags := dlqEntry(t)
	res := env.Client(t, kgo.ProducerLinger(0)).ProduceSync(context.Background(), &kgo.Record{Topic: topics.DLQ, Key: []byte("stripe:tomb")})
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	tomb := retry.Coordinates(res[0].Record)
	var out bytes.Buffer
	code, err := run(append(flags, "dlq", "requeue", tomb, "--reason", "sink fixed", "--retry-tiers", "5s,1m", "--output", "json"), &out)
	if code != exitError || err == nil || !strings.Contains(err.Error(), "not an event to requeue") {
		t.Fatalf("requeue %s alone: exit %d, %v; want %d and the refusal", tomb, code, err, exitError)
	}
	var v struct {
		Action string `json:"action"`
		Count  *int   `json:"count"`
	}
	if jerr := json.Unmarshal(out.Bytes(), &v); jerr != nil || v.Action != "requeue" || v.Count == nil || *v.Count != 0 {
		t.Fatalf("requeue --output json that failed: stdout %q (%v); want the answer, count 0", out.String(), jerr)
	}
}

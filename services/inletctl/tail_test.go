package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/testenv"
	"github.com/inletdev/inlet/pkg/testenv/syncbuf"
)

// Transaction markers take offsets: the last n offsets of a topic written
// one event per transaction hold about n/2 records. tail -n must still
// print the last n records.
func TestTailCountsRecordsNotOffsets(t *testing.T) {
	env := testenv.Embedded(t)
	topics := env.CreateTopics(t, nil)
	flags := []string{"-kafka-brokers", strings.Join(env.Brokers, ","), "-schema-registry-url", env.RegistryURL}
	cl := env.Client(t, kgo.TransactionalID("tail-test"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := context.Background()
	produce := func(part int32, v string) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topics.Processed, Partition: part, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
	tailValues := func(args ...string) []string {
		t.Helper()
		var out bytes.Buffer
		code, err := run(append(append(flags, "tail"), append(args, topics.Processed)...), &out)
		if err != nil || code != exitOK {
			t.Fatalf("tail %v: exit %d, %v", args, code, err)
		}
		var vals []string
		for line := range strings.Lines(out.String()) {
			var p struct {
				Partition int32
				Value     string
			}
			if err := json.Unmarshal([]byte(line), &p); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			vals = append(vals, p.Value)
		}
		return vals
	}

	var out bytes.Buffer
	if code, err := run(append(append(flags, "tail"), "no.such.topic"), &out); code != exitError || err == nil || !strings.Contains(err.Error(), "no.such.topic") {
		t.Fatalf("unknown topic: exit %d, err %v, want exit %d naming the topic", code, err, exitError)
	}
	if got := tailValues("-n", "5"); len(got) != 0 {
		t.Fatalf("empty topic printed %v", got)
	}
	for _, v := range []string{"a1", "a2", "a3", "a4", "a5"} {
		produce(0, v)
	}
	produce(1, "b1")
	cases := []struct {
		n    string
		want string
	}{
		{"1", "a5,b1"},
		{"3", "a3,a4,a5,b1"},
		{"5", "a1,a2,a3,a4,a5,b1"},
		{"50", "a1,a2,a3,a4,a5,b1"},
		{"all", "a1,a2,a3,a4,a5,b1"},
		{"0", ""}, // as tail -n 0: nothing (it once meant everything)
	}
	for _, c := range cases {
		if got := strings.Join(tailValues("-n", c.n), ","); got != c.want {
			t.Errorf("tail -n %s printed %s, want %s (per partition, by offset)", c.n, got, c.want)
		}
	}

	for _, args := range [][]string{{"-n", "-1"}, {"-n", "some"}, {topics.Processed, topics.Processed}} {
		code, err := run(append(append(flags, "tail"), args...), &out)
		if code != exitUsage {
			t.Errorf("tail %v: exit %d (%v), want %d", args, code, err, exitUsage)
		}
	}
	// Flags after the topic are read as before it.
	out.Reset()
	if code, err := run(append(append(flags, "tail"), topics.Processed, "-n", "1"), &out); code != exitOK || err != nil || strings.Count(out.String(), "\n") != 2 {
		t.Errorf("tail <topic> -n 1: exit %d (%v), %q; want the last record of each partition", code, err, out.String())
	}

	// -n 0 -follow prints only what arrives after the start, as tail -n 0 -f.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	followContext = func() (context.Context, context.CancelFunc) { return ctx, func() {} }
	t.Cleanup(func() {
		followContext = func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }
	})
	followed := &syncbuf.Buffer{}
	done := make(chan int, 1)
	go func() {
		code, _ := run(append(append(flags, "tail"), "-n", "0", "-follow", topics.Processed), followed)
		done <- code
	}()
	// New records until one shows: tail lists the ends when it starts,
	// and a record written before that is rightly not printed.
	n := 0
	testenv.Eventually(t, 30*time.Second, "tail -n 0 -follow to print a new record", func() bool {
		n++
		produce(int32(n%2), fmt.Sprintf("new%d", n))
		return strings.Contains(followed.String(), `"new`)
	})
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("tail -follow ended with exit %d, want 0 once its context ended", code)
	}
	for _, old := range []string{`"a1"`, `"a5"`, `"b1"`} {
		if strings.Contains(followed.String(), old) {
			t.Errorf("tail -n 0 -follow printed the old record %s:\n%s", old, followed.String())
		}
	}
}

// TestTailShowsRecordsAsStored: a tombstone printed as "value":"", as an
// empty value does; a header key given three times printed only its last
// value (Inlet reads the first); a header value that is not UTF-8 was
// printed as U+FFFD.
func TestTailShowsRecordsAsStored(t *testing.T) {
	env := testenv.Embedded(t)
	topics := env.CreateTopics(t, nil)
	flags := []string{"-kafka-brokers", strings.Join(env.Brokers, ","), "-schema-registry-url", env.RegistryURL}
	cl := env.Client(t, kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for _, r := range []*kgo.Record{
		{Key: []byte("shop:1")}, // a tombstone
		{Key: []byte("shop:2"), Value: []byte{}},
		{Key: []byte("shop:3"), Value: []byte("v"), Headers: []kgo.RecordHeader{
			{Key: "inlet-attempt", Value: []byte("1")}, {Key: "inlet-attempt", Value: []byte("2")}, {Key: "inlet-attempt", Value: []byte("abc")},
			{Key: "bin", Value: []byte("\xff\x00")}}},
	} {
		r.Topic = topics.Raw
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if code, err := run(append(flags, "tail", topics.Raw), &out); code != exitOK {
		t.Fatalf("exit %d: %v", code, err)
	}
	var recs []map[string]any
	for l := range strings.Lines(out.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		recs = append(recs, m)
	}
	if len(recs) != 3 {
		t.Fatalf("%d records printed, want 3:\n%s", len(recs), out.String())
	}
	if v, ok := recs[0]["value"]; !ok || v != nil {
		t.Errorf("tombstone: value %#v, want null", v)
	}
	if v := recs[1]["value"]; v != "" {
		t.Errorf("empty value: %#v, want \"\"", v)
	}
	hs, _ := recs[2]["headers"].(map[string]any)
	if got, _ := json.Marshal(hs["inlet-attempt"]); string(got) != `["1","2","abc"]` {
		t.Errorf("inlet-attempt given three times: %s, want every value in order", got)
	}
	if got, _ := json.Marshal(hs["bin"]); string(got) != `{"base64":"/wA="}` {
		t.Errorf("a header that is not UTF-8: %s, want its bytes", got)
	}
}

// TestTailJSONEscapesTerminalControls: JSON escapes C0 controls but not
// C1 (U+009B is a terminal's CSI), DEL or the bidirectional overrides,
// and tail printed a sender's payload and headers with them raw: a
// terminal showing the output (or jq's) obeyed them. They are written as
// \u escapes, the same JSON value.
func TestTailJSONEscapesTerminalControls(t *testing.T) {
	env := testenv.Embedded(t)
	topics := env.CreateTopics(t, nil)
	flags := []string{"-kafka-brokers", strings.Join(env.Brokers, ","), "-schema-registry-url", env.RegistryURL}
	cl := env.Client(t, kgo.ProducerLinger(0))
	const hostile = "a\u202eb\u009b2J\x7fc\u2066d"
	r := &kgo.Record{Topic: topics.Raw, Key: []byte("k"), Value: []byte(`{"name":"` + hostile + `"}`),
		Headers: []kgo.RecordHeader{{Key: "x-" + hostile, Value: []byte(hostile)}}}
	if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if code, err := run(append(flags, "tail", topics.Raw), &out); code != exitOK {
		t.Fatalf("exit %d: %v", code, err)
	}
	for _, c := range out.String() {
		if c == 0x202e || c == 0x9b || c == 0x7f || c == 0x2066 {
			t.Fatalf("output holds %U raw:\n%q", c, out.String())
		}
	}
	var p struct {
		Value   string
		Headers map[string]string
	}
	if err := json.Unmarshal(out.Bytes(), &p); err != nil || p.Value != string(r.Value) || p.Headers["x-"+hostile] != hostile {
		t.Errorf("the value and header read back as %+v (%v), want them as sent", p, err)
	}
}

// TestTailFollowsPartitionsAddedMeanwhile: -follow consumed the partitions
// the topic had when it started, so after an operator added partitions
// (scaling out) the records written to the new ones, about half of all
// after 3 → 6, were never printed. A partition that appears is followed
// from its first record: those written before tail noticed it are new too.
func TestTailFollowsPartitionsAddedMeanwhile(t *testing.T) {
	env := testenv.Embedded(t)
	topics := env.CreateTopics(t, nil)
	flags := []string{"-kafka-brokers", strings.Join(env.Brokers, ","), "-schema-registry-url", env.RegistryURL}
	cl := env.Client(t, kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	produce := func(part int32, v string) {
		t.Helper()
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topics.Processed, Partition: part, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	followContext = func() (context.Context, context.CancelFunc) { return ctx, func() {} }
	t.Cleanup(func() {
		followContext = func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }
	})
	produce(0, "before") // the topic is ready (on a real broker, not at once)
	followed := &syncbuf.Buffer{}
	done := make(chan int, 1)
	go func() {
		code, _ := run(append(append(flags, "tail"), "-n", "0", "-follow", topics.Processed), followed)
		done <- code
	}()
	n := 0
	testenv.Eventually(t, 30*time.Second, "tail -follow to print a new record", func() bool {
		n++
		produce(0, fmt.Sprintf("old-partition-%d", n))
		return strings.Contains(followed.String(), `"old-partition-`)
	})
	resp, err := kadm.NewClient(env.Client(t)).CreatePartitions(ctx, 2, topics.Processed)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	// Written once, at once: before tail can have seen the partition. A
	// new client: the first has not seen the partition either.
	nc := env.Client(t, kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.MetadataMinAge(100*time.Millisecond), kgo.MetadataMaxAge(250*time.Millisecond))
	testenv.Eventually(t, 20*time.Second, "a record written to the new partition", func() bool {
		return nc.ProduceSync(ctx, &kgo.Record{Topic: topics.Processed, Partition: 4, Value: []byte("new-partition-first")}).FirstErr() == nil
	})
	testenv.Eventually(t, 20*time.Second, "tail -follow to print a record of a partition added after it started", func() bool {
		return strings.Contains(followed.String(), `"new-partition-first"`)
	})
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("tail -follow ended with exit %d, want 0", code)
	}
}

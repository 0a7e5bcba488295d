package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/testenv"
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
		{"0", "a1,a2,a3,a4,a5,b1"}, // 0: everything
	}
	for _, c := range cases {
		if got := strings.Join(tailValues("-n", c.n), ","); got != c.want {
			t.Errorf("tail -n %s printed %s, want %s (per partition, by offset)", c.n, got, c.want)
		}
	}
}

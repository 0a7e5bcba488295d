package devstack

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/testenv/syncbuf"
)

// writeAndCommit writes n records to a fresh one-partition topic and
// commits group g past them, as a processor that read them would.
func writeAndCommit(t *testing.T, s *Stack, topic, g string, n int) {
	t.Helper()
	ctx := context.Background()
	if err := s.Kafka.CreateTopic(topic, 1, nil); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range n {
		// One batch each: a cut at the file's end loses the last one.
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(strings.Repeat("x", 200) + string(rune('a'+i)))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := kadm.NewClient(cl).CommitOffsets(ctx, g, kadm.OffsetsFromRecords(kgo.Record{Topic: topic, Partition: 0, Offset: int64(n - 1)}))
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestUncleanDataDirectory: after a crash cut the end off a partition's
// segment, the start says so at error level, and a group that had read
// past the new end is moved back to it (new records written at the
// offsets it had passed were never processed); with the registry's file
// gone while Kafka holds records, the start is refused (schema IDs would
// be given to other schemas).
func TestUncleanDataDirectory(t *testing.T) {
	dir := t.TempDir()
	s, err := Start(Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	writeAndCommit(t, s, "t.raw", "g", 3)
	s.Close()

	segs, _ := filepath.Glob(filepath.Join(dir, "kafka", "partitions", "t.raw-0", "*.dat"))
	if len(segs) != 1 {
		t.Fatalf("segments %v: the test knows kfake's layout as kafka/partitions/<topic>-<partition>/<base>.dat", segs)
	}
	st, err := os.Stat(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(segs[0], st.Size()-100); err != nil { // the last batch cut short
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	s, err = Start(Config{DataDir: dir, Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(context.Background(), "t.raw")
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup("t.raw", 0)
	if end.Offset >= 3 {
		t.Fatalf("the log ends at %d: the cut lost nothing", end.Offset)
	}
	for _, want := range []string{"level=ERROR msg=\"embedded kafka: partition t.raw-0", "corrupt bytes", "level=ERROR msg=\"embedded kafka: records the group had read are gone", "group=g",
		fmt.Sprintf("t.raw/0 (group at 3, log ends at %d)", end.Offset)} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the start's log does not say %q:\n%s", want, logs.String())
		}
	}
	offs, err := adm.FetchOffsets(context.Background(), "g")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup("t.raw", 0); !ok || o.At != end.Offset {
		t.Fatalf("group g at %+v, want moved back to %d, the log's end", o, end.Offset)
	}
	s.Close()

	if err := os.Remove(filepath.Join(dir, "registry.json")); err != nil {
		t.Fatal(err)
	}
	if s, err := Start(Config{DataDir: dir}); err == nil || !strings.Contains(err.Error(), "registry.json is missing while the embedded Kafka holds records") {
		if s != nil {
			s.Close()
		}
		t.Fatalf("start without registry.json: %v, want it refused", err)
	}
}

package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/retry"
	"github.com/inletdev/inlet/pkg/testenv"
	"github.com/inletdev/inlet/pkg/testenv/syncbuf"
)

// TestAbortResumesHeldRetryPartitions: a batch holds a retry partition at
// its first record not due (paused until it is) and processes the due
// ones before it; Redis is down, the batch is abandoned and the session
// rewinds the partition to those due records. They are processed as soon
// as Redis is back, not once the held record's timer fires (here a
// minute; on the 15 min tier, up to 15 min).
func TestAbortResumesHeldRetryPartitions(t *testing.T) {
	env := testenv.Embedded(t)
	h := newHarnessWith(t, env, testSources, []time.Duration{2 * time.Minute}, nil)
	now := time.Now()
	// One key: one partition, in this order.
	var recs []*kgo.Record
	for i, due := range []time.Time{now, now, now.Add(time.Minute)} {
		id := fmt.Sprintf("evt_ab%d", i)
		rec, err := h.rawRecord(id, paymentIntent(id, "pi_"+id, "succeeded", int64(1700000000+i)))
		if err != nil {
			t.Fatal(err)
		}
		rec.Topic, rec.Key = h.topics.Retry[0], []byte("held")
		rec.Headers = retry.Set(rec.Headers, retry.HeaderAttempt, "2")
		rec.Headers = retry.Set(rec.Headers, retry.HeaderDueAt, strconv.FormatInt(due.UnixMilli(), 10))
		rec.Headers = retry.Set(rec.Headers, retry.HeaderOrigin, h.topics.Raw+"/0/"+strconv.Itoa(i))
		recs = append(recs, rec)
	}
	// Written before the processor starts, so its first poll has all
	// three and its first batch holds the partition at the third.
	if err := h.prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	env.Stack.Miniredis.Close()
	logs := &syncbuf.Buffer{}
	h.log = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.start("a", func(c *Config) { c.Workers, c.BatchDeadline = 1, time.Second })
	h.log = nil
	testenv.Eventually(t, 20*time.Second, "a batch to be abandoned while Redis is down", func() bool {
		for _, l := range logs.Lines() {
			if strings.Contains(l, "batch abandoned before writing") {
				return true
			}
		}
		return false
	})
	if err := env.Stack.Miniredis.Restart(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "the two due retries to be processed", func() bool { return h.total(Processed) >= 2 })
	if p := h.total(Processed); p != 2 {
		t.Fatalf("processed %d, want 2 (the third is not due for a minute)", p)
	}
}

// TestFetchErrorLinesAreLimited: one line per partition and error a
// minute, the next one counting those left out.
func TestFetchErrorLinesAreLimited(t *testing.T) {
	var l fetchErrLog
	at := time.Unix(1700000000, 0)
	e1, e2 := errors.New("UNKNOWN_TOPIC_ID"), errors.New("NOT_LEADER")
	if n, ok := l.allow("raw", 0, e1, at); !ok || n != 0 {
		t.Fatalf("first: %d, %v", n, ok)
	}
	for range 5 {
		if _, ok := l.allow("raw", 0, e1, at.Add(time.Second)); ok {
			t.Fatal("a repeat within the minute logged")
		}
	}
	if _, ok := l.allow("raw", 1, e1, at.Add(time.Second)); !ok {
		t.Fatal("another partition's first not logged")
	}
	if _, ok := l.allow("raw", 0, e2, at.Add(time.Second)); !ok {
		t.Fatal("another error's first not logged")
	}
	if n, ok := l.allow("raw", 0, e1, at.Add(fetchErrEvery)); !ok || n != 5 {
		t.Fatalf("after the minute: %d, %v; want 5 left out, logged", n, ok)
	}
}

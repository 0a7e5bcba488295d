package processor

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/retry"
)

const testRetryTopic = "inlet.retry.15m"

// newTestPauser is a pauser over a client that connects to nothing: hold
// and release only pause, resume and set offsets, which a client consuming
// nothing records or skips.
func newTestPauser(t *testing.T) *pauser {
	t.Helper()
	cl, err := kgo.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	p := newPauser(cl)
	t.Cleanup(func() { p.stop(); cl.Close() })
	return p
}

// testTierDelay is a processor's retryDelay with one 15 min tier.
func testTierDelay(topic string) (time.Duration, bool) {
	if topic == testRetryTopic {
		return 15 * time.Minute, true
	}
	return 0, false
}

func retryAt(offset int64, written time.Time, dueAt *string) *kgo.Record {
	r := &kgo.Record{Topic: testRetryTopic, Offset: offset, Timestamp: written}
	if dueAt != nil {
		r.Headers = retry.Set(r.Headers, retry.HeaderDueAt, *dueAt)
	}
	return r
}

func offsets(recs []*kgo.Record) []int64 {
	out := []int64{}
	for _, r := range recs {
		out = append(out, r.Offset)
	}
	return out
}

// TestHoldWithoutDueAt: a retry record whose due-at header is missing or
// not a time waits its tier's delay after it was written, as any other on
// its tier. Read as a zero due time, it was retried at once, and a tier
// meant to let a struggling downstream recover for 15 min retried it
// without a pause.
func TestHoldWithoutDueAt(t *testing.T) {
	written := time.Now().Truncate(time.Millisecond)
	str := func(s string) *string { return &s }
	for _, c := range []struct {
		name  string
		dueAt *string
	}{
		{"missing", nil},
		{"garbled", str("in a minute")},
		{"negative", str("-1700000000000")},
		{"zero", str("0")},
		{"overflowing", str("9223372036854775808")},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newTestPauser(t)
			due := str(fmt.Sprint(written.UnixMilli()))
			recs := []*kgo.Record{retryAt(10, written, due), retryAt(11, written, c.dueAt), retryAt(12, written, due)}
			now := written.Add(time.Second)
			if got := offsets(p.hold(recs, testTierDelay, now)); !slices.Equal(got, []int64{10}) {
				t.Fatalf("a second after it was written: kept %v, want [10] (11 held for its tier)", got)
			}
			if paused := p.cl.PauseFetchPartitions(nil); !slices.Equal(paused[testRetryTopic], []int32{0}) {
				t.Fatalf("paused %v, want the partition paused", paused)
			}
			if got := offsets(p.hold(recs[1:], testTierDelay, written.Add(15*time.Minute-time.Millisecond))); len(got) != 0 {
				t.Fatalf("just before its tier's delay: kept %v, want none", got)
			}
			if got := offsets(p.hold(recs[1:], testTierDelay, written.Add(15*time.Minute))); !slices.Equal(got, []int64{11, 12}) {
				t.Fatalf("after its tier's delay: kept %v, want [11 12]", got)
			}
		})
	}
	t.Run("far in the future is still bounded by the tier", func(t *testing.T) {
		p := newTestPauser(t)
		recs := []*kgo.Record{retryAt(11, written, str(fmt.Sprint(int64(math.MaxInt64))))}
		held := written.Add(time.Second)
		if got := p.hold(recs, testTierDelay, held); len(got) != 0 {
			t.Fatalf("kept %v, want it held", offsets(got))
		}
		if got := offsets(p.hold(recs, testTierDelay, held.Add(15*time.Minute))); !slices.Equal(got, []int64{11}) {
			t.Fatalf("a tier after it was first held: kept %v, want [11]", got)
		}
	})
}

// TestReleaseResumesHeldPartitions: release resumes every partition hold
// paused, at once, and cancels their timers; the next hold of a record
// still not due pauses it again, due when it was before.
func TestReleaseResumesHeldPartitions(t *testing.T) {
	p := newTestPauser(t)
	written := time.Now().Truncate(time.Millisecond)
	later := fmt.Sprint(written.Add(10 * time.Minute).UnixMilli())
	recs := []*kgo.Record{retryAt(15, written, &later)}
	if got := p.hold(recs, testTierDelay, written); len(got) != 0 {
		t.Fatalf("kept %v, want it held", offsets(got))
	}
	if paused := p.cl.PauseFetchPartitions(nil); len(paused[testRetryTopic]) != 1 {
		t.Fatalf("paused %v, want the retry partition", paused)
	}
	p.release()
	if paused := p.cl.PauseFetchPartitions(nil); len(paused) != 0 {
		t.Fatalf("paused %v after release, want none", paused)
	}
	p.mu.Lock()
	timers := len(p.timers)
	p.mu.Unlock()
	if timers != 0 {
		t.Fatalf("%d timers left after release", timers)
	}
	// Polled again after the rewind: held again, and due when it was.
	if got := p.hold(recs, testTierDelay, written.Add(time.Minute)); len(got) != 0 {
		t.Fatalf("kept %v after release, want it held again", offsets(got))
	}
	if paused := p.cl.PauseFetchPartitions(nil); len(paused[testRetryTopic]) != 1 {
		t.Fatalf("paused %v, want the retry partition paused again", paused)
	}
	if got := offsets(p.hold(recs, testTierDelay, written.Add(10*time.Minute))); !slices.Equal(got, []int64{15}) {
		t.Fatalf("at its due time: kept %v, want [15]", got)
	}
}

// TestHoldBoundsEveryRecordOfAFastWriter: retry records stamped by a
// writer whose clock is ten minutes fast are all due a tier after this
// processor first fetched them, not only the partition's head: bounded
// from when each became the head, a burst of them drained one record per
// tier delay (a record a minute on the 1 min tier here, a record every 15
// min on the last default one) until the writer's clock was reached.
func TestHoldBoundsEveryRecordOfAFastWriter(t *testing.T) {
	p := newTestPauser(t)
	const tier = 15 * time.Minute
	written := time.Now().Truncate(time.Millisecond)
	fast := fmt.Sprint(written.Add(10*time.Minute + tier).UnixMilli())
	var recs []*kgo.Record
	for off := range int64(5) {
		recs = append(recs, retryAt(20+off, written.Add(10*time.Minute), &fast))
	}
	if got := p.hold(recs[:3], testTierDelay, written); len(got) != 0 {
		t.Fatalf("fetched at once: kept %v, want all held", offsets(got))
	}
	// A minute on (rewound after an aborted batch), 23 and 24 come too:
	// first fetched now, they wait a tier from now.
	if got := p.hold(recs, testTierDelay, written.Add(time.Minute)); len(got) != 0 {
		t.Fatalf("a minute on: kept %v, want all held", offsets(got))
	}
	if got := offsets(p.hold(recs, testTierDelay, written.Add(tier))); !slices.Equal(got, []int64{20, 21, 22}) {
		t.Fatalf("a tier after the first fetch: kept %v, want [20 21 22]", got)
	}
	if got := offsets(p.hold(recs[3:], testTierDelay, written.Add(time.Minute+tier))); !slices.Equal(got, []int64{23, 24}) {
		t.Fatalf("a tier after the second fetch: kept %v, want [23 24]", got)
	}
}

package retry

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

// FuzzHeaders reads the attempt, due-at and error-history headers a
// hostile or broken producer may write (bad numbers, huge or broken JSON,
// invalid UTF-8, a key repeated with another value), then writes a
// failure as the processor does. Invariants: never a panic; Attempt is at
// least 1, and reads back what Set wrote; Due is never the zero time and,
// for a due-at Set wrote, is that time; AppendError keeps what History
// read (up to maxHistory entries, the first one always), ends it with the
// new entry, its text cut as MaxErrorText says, and writes a header that
// History reads back the same.
func FuzzHeaders(f *testing.F) {
	hist := Get(AppendError(AppendError(nil, ErrorEntry{At: time.UnixMilli(1700000000000).UTC(), Stage: "deliver", Error: "503"}),
		ErrorEntry{At: time.UnixMilli(1700000001000).UTC(), Stage: StageRequeue, Error: "requeued by sre"}), HeaderErrors)
	for _, c := range []struct{ attempt, due, errs string }{
		{"3", "1700000000123", hist},
		{"garbage", "soon", "not json"},
		{"0", "0", "[]"},
		{"-1", "-1700000000000", "null"},
		{"9223372036854775807", "9223372036854775807", `[{"at":"9999-12-31T23:59:59Z","stage":"s","error":"e"}]`},
		{"99999999999999999999", "99999999999999999999999999", `[{"at":"0000-01-01T00:00:00+01:00","stage":"s","error":"e"}]`},
		{"1e3", "1700000000000.5", `[{"at":"bad"},5,{"stage":"\ud800"}]`},
		{" 2", "+1700000000000", `{"at":1}`},
		{"\xff", "\xff", "[{\"error\":\"\xff\xfe\"}]"},
		{"2", "1", "[" + strings.Repeat(`{"stage":"s","error":"`+strings.Repeat("x", 100)+`"},`, 40) + "{}]"},
	} {
		f.Add([]byte(c.attempt), []byte(c.due), []byte(c.errs), "sink answered 502: <html>\x01\xff", int64(1700000000000), true)
	}
	f.Fuzz(func(t *testing.T, attempt, due, errs []byte, text string, ts int64, dup bool) {
		hs := []kgo.RecordHeader{{Key: HeaderAttempt, Value: attempt}, {Key: HeaderDueAt, Value: due}, {Key: HeaderErrors, Value: errs}}
		if dup { // a second copy of each, which Get never reads
			hs = append(hs, kgo.RecordHeader{Key: HeaderAttempt, Value: []byte("7")},
				kgo.RecordHeader{Key: HeaderDueAt, Value: []byte("1")}, kgo.RecordHeader{Key: HeaderErrors, Value: []byte("[]")})
		}
		n := Attempt(hs)
		if n < 1 {
			t.Fatalf("Attempt(%q) = %d", attempt, n)
		}
		if v, err := strconv.Atoi(string(attempt)); err == nil && v > 0 && n != v {
			t.Fatalf("Attempt(%q) = %d, want %d", attempt, n, v)
		}
		if got := Attempt(Set(Clone(hs), HeaderAttempt, strconv.Itoa(n+1))); n+1 > 0 && got != n+1 {
			t.Fatalf("Set attempt %d, read %d", n+1, got)
		}
		now := time.UnixMilli(1700000000000)
		r := &kgo.Record{Headers: hs, Timestamp: time.UnixMilli(ts)}
		if d := Due(r, 30*time.Second, now); d.IsZero() {
			t.Fatalf("Due(due-at %q, timestamp %d) is the zero time", due, ts)
		}
		if ts > 0 {
			r.Headers = Set(Clone(hs), HeaderDueAt, strconv.FormatInt(ts, 10))
			if d := Due(r, 30*time.Second, now); d.UnixMilli() != ts {
				t.Fatalf("due-at %d read as %v", ts, d)
			}
		}

		before := History(hs)
		e := ErrorEntry{At: now.UTC(), Stage: "deliver", Error: text}
		out := AppendError(Clone(hs), e)
		after := History(out)
		want := len(before) + 1
		if want > maxHistory {
			want = maxHistory
		}
		if len(after) != want {
			t.Fatalf("history of %d entries, %d after one more (header %.200q)", len(before), len(after), errs)
		}
		if len(before) > 0 && !sameEntry(after[0], before[0]) {
			t.Fatalf("first entry %+v became %+v", before[0], after[0])
		}
		last := after[len(after)-1]
		if !last.At.Equal(e.At) || last.Stage != e.Stage || !utf8.ValidString(last.Error) || escapedLen(last.Error) > MaxErrorText {
			t.Fatalf("appended %+v, read back %+v", e, last)
		}
		if again := History(Set(nil, HeaderErrors, Get(out, HeaderErrors))); !slices.EqualFunc(again, after, sameEntry) {
			t.Fatalf("history does not read back the same:\n%+v\n%+v", after, again)
		}
		if shrunk := History(ShrinkHistory(out, 256)); len(shrunk) != 1 || escapedLen(shrunk[0].Error) > 256 {
			t.Fatalf("shrunk history: %+v", shrunk)
		}
	})
}

// sameEntry compares entries by their time's instant, not its zone.
func sameEntry(a, b ErrorEntry) bool {
	return a.At.Equal(b.At) && a.Stage == b.Stage && a.Error == b.Error
}

// escapedLen is the bytes encodeHistory writes for s, without the quotes.
func escapedLen(s string) int {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return b.Len() - len(`""`+"\n")
}

// FuzzFitEscaped cuts arbitrary text as the history header and the
// operator tools do. Invariants: fitEscaped's text takes at most limit
// bytes once JSON-escaped and is valid UTF-8; Truncate's is at most limit
// bytes (at least 3) and a valid UTF-8 text stays valid; either returns
// its input untouched when it fits (fitEscaped: unless it holds \b or
// \f, which it overcounts).
func FuzzFitEscaped(f *testing.F) {
	for _, s := range []string{"short", "abcdef", "ab\ncd", "\x01\x01", "a\xffb", "ééé", "<a href=\"x\">&amp;</a>", "\u2028\u2029", ""} {
		f.Add(s, 5)
	}
	f.Fuzz(func(t *testing.T, s string, limit int) {
		limit = 3 + abs(limit)%2048
		fit := fitEscaped(s, limit)
		if !utf8.ValidString(fit) || escapedLen(fit) > limit {
			t.Fatalf("fitEscaped(%q, %d) = %q: %d bytes escaped", s, limit, fit, escapedLen(fit))
		}
		// escapedWidth counts \b and \f as six bytes (\u0008): since Go
		// 1.22 encoding/json writes two, so text holding them may be cut
		// shorter than it need be, never longer.
		if utf8.ValidString(s) && !strings.ContainsAny(s, "\b\f") && escapedLen(s) <= limit && fit != s {
			t.Fatalf("fitEscaped(%q, %d) = %q, but it fits", s, limit, fit)
		}
		tr := Truncate(s, limit)
		if len(tr) > limit || (utf8.ValidString(s) && !utf8.ValidString(tr)) || (len(s) <= limit && tr != s) {
			t.Fatalf("Truncate(%q, %d) = %q", s, limit, tr)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -(n + 1) // no overflow at the smallest int
	}
	return n
}

// FuzzCoordinates round-trips record coordinates. Invariants: what
// Coordinates writes for a topic name (Kafka's have no slash) parses back
// exactly; what ParseCoordinates accepts writes back to a string that
// parses to the same coordinates.
func FuzzCoordinates(f *testing.F) {
	for _, s := range []string{"inlet.dlq/3/17", "a.b-c_d/0/0", "inlet.dlq/x/17", "/3/17", "inlet.dlq/3/17/4", "t/+3/-1", "t/2147483648/1"} {
		f.Add(s, "inlet.dlq", int32(3), int64(17))
	}
	f.Fuzz(func(t *testing.T, s, topic string, p int32, off int64) {
		if !strings.Contains(topic, "/") {
			id := Coordinates(&kgo.Record{Topic: topic, Partition: p, Offset: off})
			if gt, gp, goff, ok := ParseCoordinates(id); !ok || gt != topic || gp != p || goff != off {
				t.Fatalf("%q parsed as %q %d %d %v", id, gt, gp, goff, ok)
			}
		}
		gt, gp, goff, ok := ParseCoordinates(s)
		if !ok {
			return
		}
		id := Coordinates(&kgo.Record{Topic: gt, Partition: gp, Offset: goff})
		if t2, p2, o2, ok2 := ParseCoordinates(id); !ok2 || t2 != gt || p2 != gp || o2 != goff {
			t.Fatalf("%q parsed as %q %d %d, written %q, parsed as %q %d %d %v", s, gt, gp, goff, id, t2, p2, o2, ok2)
		}
	})
}

// FuzzDecide routes failures under arbitrary policies, as a sources
// file's retry settings make them. Invariants: never a panic for an
// attempt of 1 or more (what Attempt returns); a permanent error or a
// spent budget dead-letters; otherwise the tier is one of the policy's,
// the delay at most that tier's, the Retry-After honoured up to it, and
// the next attempt one more.
func FuzzDecide(f *testing.F) {
	f.Add(int64(30e9), int64(120e9), int64(900e9), 4, 1, int64(90e9), false)
	f.Add(int64(120e9), int64(30e9), int64(900e9), 4, 2, int64(60e9), false)
	f.Add(int64(1e9), int64(0), int64(0), 5, 3, int64(0), true)
	f.Add(int64(0), int64(-1), int64(1<<62), 0, 1, int64(-5), false)
	f.Fuzz(func(t *testing.T, t0, t1, t2 int64, maxAttempts, attempt int, after int64, permanent bool) {
		if attempt < 1 {
			attempt = 1
		}
		var tiers []time.Duration
		for _, d := range []int64{t0, t1, t2} {
			if d > 0 { // the loader refuses negative durations, 0 ends the list
				tiers = append(tiers, time.Duration(d))
			}
		}
		p := Policy{Tiers: tiers, MaxAttempts: maxAttempts}
		var err error = Retryable(errTest, time.Duration(after))
		if permanent {
			err = Permanent(err)
		}
		d := p.Decide(attempt, err)
		switch {
		case permanent || attempt >= maxAttempts || len(tiers) == 0:
			if !d.DeadLetter || d.Reason == "" {
				t.Fatalf("%+v attempt %d: %+v, want a dead letter", p, attempt, d)
			}
			return
		case d.DeadLetter || d.Tier < 0 || d.Tier >= len(tiers) || d.Delay > tiers[d.Tier] || d.Delay <= 0 || d.NextAttempt != attempt+1:
			t.Fatalf("%+v attempt %d after %v: %+v", p, attempt, time.Duration(after), d)
		case time.Duration(after) > d.Delay && d.Delay != tiers[d.Tier]:
			t.Fatalf("%+v: Retry-After %v cut to %v, short of tier %d", p, time.Duration(after), d.Delay, d.Tier)
		}
	})
}

type testError struct{}

func (testError) Error() string { return "503 from sink" }

var errTest error = testError{}

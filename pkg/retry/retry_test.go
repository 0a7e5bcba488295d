package retry

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestDecide(t *testing.T) {
	p := Policy{Tiers: []time.Duration{30 * time.Second, 2 * time.Minute, 15 * time.Minute}, MaxAttempts: 4}
	transient := errors.New("503 from sink")
	cases := []struct {
		attempt int
		err     error
		want    Decision
	}{
		{1, transient, Decision{Tier: 0, Delay: 30 * time.Second, NextAttempt: 2}},
		{2, transient, Decision{Tier: 1, Delay: 2 * time.Minute, NextAttempt: 3}},
		{3, transient, Decision{Tier: 2, Delay: 15 * time.Minute, NextAttempt: 4}},
		{4, transient, Decision{DeadLetter: true, Reason: "retry budget exhausted"}},
		{1, Permanent(transient), Decision{DeadLetter: true, Reason: "permanent error"}},
		{1, fmt.Errorf("wrapped: %w", Permanent(transient)), Decision{DeadLetter: true, Reason: "permanent error"}},
		// A Retry-After past the tier moves the record to a tier that
		// covers it, due when asked (no later than the records after it)...
		{1, Retryable(transient, 90*time.Second), Decision{Tier: 1, Delay: 90 * time.Second, NextAttempt: 2}},
		{1, Retryable(transient, 2*time.Minute), Decision{Tier: 1, Delay: 2 * time.Minute, NextAttempt: 2}},
		{2, Retryable(transient, 5*time.Minute), Decision{Tier: 2, Delay: 5 * time.Minute, NextAttempt: 3}},
		// ... and past the longest tier it is cut to it: a record due
		// later than its tier's delay would hold its partition back.
		{1, Retryable(transient, time.Hour), Decision{Tier: 2, Delay: 15 * time.Minute, NextAttempt: 2}},
		{3, Retryable(transient, 24*time.Hour), Decision{Tier: 2, Delay: 15 * time.Minute, NextAttempt: 4}},
		{2, Retryable(transient, time.Second), Decision{Tier: 1, Delay: 2 * time.Minute, NextAttempt: 3}},
	}
	for _, c := range cases {
		if got := p.Decide(c.attempt, c.err); got != c.want {
			t.Errorf("attempt %d, %v: %+v, want %+v", c.attempt, c.err, got, c.want)
		}
	}
	// A source's tiers need not be in order; never an earlier one.
	unordered := Policy{Tiers: []time.Duration{2 * time.Minute, 30 * time.Second, 15 * time.Minute}, MaxAttempts: 4}
	if d := unordered.Decide(2, Retryable(transient, time.Minute)); d.Tier != 2 || d.Delay != time.Minute {
		t.Errorf("unordered tiers: %+v, want tier 2 (15m) due in 1m", d)
	}
	long := Policy{Tiers: []time.Duration{time.Second}, MaxAttempts: 5}
	if d := long.Decide(3, transient); d.Tier != 0 || d.NextAttempt != 4 {
		t.Errorf("past the last tier: %+v", d)
	}
}

func TestHeaders(t *testing.T) {
	var hs []kgo.RecordHeader
	if _, ok := dueAt(hs); Attempt(hs) != 1 || ok || len(History(hs)) != 0 {
		t.Fatal("defaults")
	}
	hs = Set(hs, HeaderAttempt, "3")
	hs = Set(hs, HeaderDueAt, "1700000000123")
	for i := range 40 {
		hs = AppendError(hs, ErrorEntry{Stage: "deliver", Error: fmt.Sprint(i)})
	}
	h := History(hs)
	due, _ := dueAt(hs)
	if Attempt(hs) != 3 || due.UnixMilli() != 1700000000123 || len(h) != maxHistory || h[0].Error != "0" || h[len(h)-1].Error != "39" {
		t.Fatalf("attempt %d due %v history %d (%v … %v)", Attempt(hs), due, len(h), h[0], h[len(h)-1])
	}
	hs = Set(hs, HeaderAttempt, "garbage")
	if Attempt(hs) != 1 {
		t.Fatal("garbage attempt header must read as 1")
	}
}

// TestDue: a retry record is due at its due-at header; one whose header is
// missing or not a time is due its tier's delay after it was written (its
// timestamp), never at once: a zero due time retried a 15 min tier with no
// wait at all.
func TestDue(t *testing.T) {
	const tier = 15 * time.Minute
	written := time.UnixMilli(1700000000000)
	now := written.Add(time.Second)
	record := func(header *string) *kgo.Record {
		r := &kgo.Record{Topic: "inlet.retry.15m", Timestamp: written}
		if header != nil {
			r.Headers = Set(r.Headers, HeaderDueAt, *header)
		}
		return r
	}
	str := func(s string) *string { return &s }
	t.Run("valid header", func(t *testing.T) {
		want := written.Add(3 * time.Minute)
		r := record(str(fmt.Sprint(want.UnixMilli())))
		if got, ok := dueAt(r.Headers); !ok || !got.Equal(want) {
			t.Errorf("dueAt: %v %v, want %v true", got, ok, want)
		}
		if got := Due(r, tier, now); !got.Equal(want) {
			t.Errorf("Due: %v, want %v", got, want)
		}
	})
	for _, c := range []struct {
		name  string
		dueAt *string
	}{
		{"missing", nil},
		{"empty", str("")},
		{"garbled", str("soon")},
		{"garbled digits", str("1700000000000ms")},
		{"fractional", str("1700000000000.5")},
		{"zero", str("0")},
		{"negative", str("-1700000000000")},
		{"overflowing int64", str("9223372036854775808")},
		{"far past int64", str("99999999999999999999999999")},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := record(c.dueAt)
			if got, ok := dueAt(r.Headers); ok {
				t.Errorf("dueAt: %v, ok; want not ok", got)
			}
			if got, want := Due(r, tier, now), written.Add(tier); !got.Equal(want) {
				t.Errorf("Due: %v, want the timestamp plus the tier (%v)", got, want)
			}
		})
	}
	t.Run("no header and no timestamp", func(t *testing.T) {
		r := record(str("soon"))
		r.Timestamp = time.UnixMilli(-1)
		if got, want := Due(r, tier, now), now.Add(tier); !got.Equal(want) {
			t.Errorf("Due: %v, want a tier from now (%v)", got, want)
		}
	})
}

// TestHistoryBounded: however long the errors and however many the
// attempts, the history header stays within the room raw records keep for
// failure headers, and the texts are cut at a rune.
func TestHistoryBounded(t *testing.T) {
	var hs []kgo.RecordHeader
	long := strings.Repeat("é", 50_000) // a quoted response body
	for range 100 {
		hs = AppendError(hs, ErrorEntry{At: time.Now(), Stage: "deliver", Error: long})
	}
	h := Get(hs, HeaderErrors)
	if len(h) > 40<<10 {
		t.Fatalf("history header is %d bytes", len(h))
	}
	for _, e := range History(hs) {
		if len(e.Error) > MaxErrorText || !utf8.ValidString(e.Error) || !strings.HasSuffix(e.Error, "…") {
			t.Fatalf("entry of %d bytes, valid UTF-8 %v: %q…", len(e.Error), utf8.ValidString(e.Error), e.Error[:20])
		}
	}
	hs = ShrinkHistory(hs, 100)
	if got := History(hs); len(got) != 1 || len(got[0].Error) > 100 || !utf8.ValidString(got[0].Error) {
		t.Fatalf("shrunk history: %v", got)
	}
	// The bound is on the text as the header writes it: HTML stays as it
	// is, a run of broken UTF-8 becomes one U+FFFD, control characters
	// take their escapes' six bytes.
	for name, body := range map[string]string{
		"html":               strings.Repeat("<a href=\"x\">&amp;</a>", 500),
		"broken utf-8":       strings.Repeat("\xffa", 5000),
		"control characters": strings.Repeat("\x01", 5000),
		"quotes and lines":   strings.Repeat("\"\\\n", 5000),
	} {
		var hs []kgo.RecordHeader
		for range 100 {
			hs = AppendError(hs, ErrorEntry{At: time.Now(), Stage: "deliver", Error: "sink answered 502: " + body})
		}
		if h := Get(hs, HeaderErrors); len(h) > 40<<10 {
			t.Errorf("%s: history header is %d bytes", name, len(h))
		}
		es := History(hs)
		if len(es) != maxHistory || !utf8.ValidString(es[1].Error) || !strings.HasPrefix(es[1].Error, "sink answered 502: ") || !strings.HasSuffix(es[1].Error, "…") {
			t.Errorf("%s: %d entries, the second %q…", name, len(es), es[1].Error[:min(40, len(es[1].Error))])
		}
	}
	if h := Get(AppendError(nil, ErrorEntry{Error: "<b>&</b>"}), HeaderErrors); !strings.Contains(h, `"<b>&</b>"`) {
		t.Errorf("HTML escaped in the header: %s", h)
	}
	for _, c := range []struct {
		s     string
		limit int
		want  string
	}{
		{"short", 10, "short"},
		{"abcdef", 5, "ab…"},
		{"ab\ncd", 6, "ab\ncd"}, // \n is 2 bytes escaped: 6 in all
		{"ab\ncd", 5, "ab…"},
		{"\x01\x01", 12, "\x01\x01"},
		{"\x01\x01", 11, "\x01…"},
		{"\x01\x01", 8, "…"},
		{"a\xffb", 5, "a\uFFFDb"},
	} {
		if got := fitEscaped(c.s, c.limit); got != c.want {
			t.Errorf("fitEscaped(%q, %d) = %q, want %q", c.s, c.limit, got, c.want)
		}
	}
	for _, c := range []struct {
		s     string
		limit int
		want  string
	}{
		{"short", 10, "short"},
		{"abcdef", 5, "ab…"},
		{"ééé", 5, "é…"}, // not half an é
		{"ééé", 6, "ééé"},
		{"abc", 2, "…"},
	} {
		if got := Truncate(c.s, c.limit); got != c.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", c.s, c.limit, got, c.want)
		}
	}
}

// TestParseCoordinates: what Coordinates writes, split back; anything
// else refused.
func TestParseCoordinates(t *testing.T) {
	for id, want := range map[string]struct {
		topic string
		p     int32
		off   int64
		ok    bool
	}{
		"inlet.dlq/3/17":   {"inlet.dlq", 3, 17, true},
		"a.b-c_d/0/0":      {"a.b-c_d", 0, 0, true},
		"inlet.dlq/x/17":   {},
		"inlet.dlq/17":     {},
		"17":               {},
		"inlet.dlq/3/":     {},
		"inlet.dlq/3/1e9":  {},
		"/3/17":            {"", 3, 17, true},
		"inlet.dlq/3/17/4": {"inlet.dlq/3", 17, 4, true}, // not a queue of ours: ignored by decide
	} {
		topic, p, off, ok := ParseCoordinates(id)
		if topic != want.topic || p != want.p || off != want.off || ok != want.ok {
			t.Errorf("%q: %q %d %d %v, want %+v", id, topic, p, off, ok, want)
		}
	}
}

// TestHistoryKeepsWhatItCannotRead: an entry that does not decode (a bad
// "at") dropped the whole history, and the next failure's append wrote it
// back without it; a header that is no JSON array is kept as one entry.
func TestHistoryKeepsWhatItCannotRead(t *testing.T) {
	hs := Set(nil, HeaderErrors, `[{"at":"2026-11-30T10:00:00Z","stage":"deliver","error":"first"},{"at":"yesterday","stage":"deliver","error":"second"},{"at":"2026-11-30T10:02:00Z","stage":"deliver","error":"third"}]`)
	h := History(hs)
	if len(h) != 3 || h[0].Error != "first" || h[1].Stage != "unreadable" || !strings.Contains(h[1].Error, `"second"`) || h[2].Error != "third" {
		t.Fatalf("History = %+v; want first, the unreadable second quoted, third", h)
	}
	after := History(AppendError(hs, ErrorEntry{At: time.Now(), Stage: "deliver", Error: "fourth"}))
	if len(after) != 4 || after[0].Error != "first" || after[2].Error != "third" || after[3].Error != "fourth" {
		t.Fatalf("after an append: %+v", after)
	}
	if h := History(Set(nil, HeaderErrors, "sink down")); len(h) != 1 || !strings.Contains(h[0].Error, "sink down") {
		t.Fatalf("History of a plain-text header = %+v", h)
	}
}

// TestParseCoordinatesRefusesNegatives: no partition or offset is below 0.
func TestParseCoordinatesRefusesNegatives(t *testing.T) {
	for _, s := range []string{"inlet.dlq/-1/5", "inlet.dlq/0/-5"} {
		if _, _, _, ok := ParseCoordinates(s); ok {
			t.Errorf("ParseCoordinates(%q) ok", s)
		}
	}
	if topic, p, o, ok := ParseCoordinates("inlet.dlq/2/7"); !ok || topic != "inlet.dlq" || p != 2 || o != 7 {
		t.Errorf("ParseCoordinates(inlet.dlq/2/7) = %q %d %d %v", topic, p, o, ok)
	}
}

package retry

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Record header names (DESIGN.md "Record headers carried through every
// stage").
const (
	HeaderCorrelationID = "correlation-id"
	HeaderTraceparent   = "traceparent"
	HeaderAttempt       = "inlet-attempt"
	HeaderDueAt         = "inlet-due-at"
	HeaderErrors        = "inlet-errors"
	HeaderOrigin        = "inlet-origin"
	HeaderSource        = "inlet-source"
	HeaderEventType     = "inlet-event-type"
	HeaderReason        = "inlet-reason"
	HeaderRunbook       = "inlet-runbook"
	// HeaderRecordName, on processed and state records, is the full name
	// of the Avro record the value is written with: the record-name part
	// of its registry subject, one per contract. A consumer that wants one
	// contract from the mixed topic filters on it without decoding.
	HeaderRecordName = "inlet-record-name"
	// HeaderReplay names the replay (inletctl replay --id) that wrote a
	// record, on the replay topic's copies and on the outputs processed
	// from them: a reprocessed event is otherwise identical to the
	// original output.
	HeaderReplay = "inlet-replay"
	// HeaderReplayApplied, on a fill replay's copy, holds that replay's
	// id: when copied, the event was its entity's stored state, and that
	// replay's processor counts it a duplicate, claim or no claim
	// (processor.Deps.FillReplay; docs/operations.md, Replay).
	HeaderReplayApplied = "inlet-replay-applied"
	// HeaderValueOmitted marks a dead-letter or invalid copy written
	// without its value, which did not fit a Kafka record with the
	// failure headers; it says where the event is (the raw record its
	// inlet-origin names).
	HeaderValueOmitted = "inlet-value-omitted"
)

// StageRequeue is the Stage of the entry an operator's requeue appends to
// the history (pkg/ops); the processor's latencies count from it.
const StageRequeue = "requeue"

// ErrorEntry is one failure in a record's history.
type ErrorEntry struct {
	At    time.Time `json:"at"`
	Stage string    `json:"stage"`
	Error string    `json:"error"`
}

// Coordinates names a record as topic/partition/offset: the value of
// HeaderOrigin, and the id of a DLQ or invalid entry.
func Coordinates(r *kgo.Record) string {
	return r.Topic + "/" + strconv.FormatInt(int64(r.Partition), 10) + "/" + strconv.FormatInt(r.Offset, 10)
}

// ParseCoordinates splits what Coordinates writes: topic/partition/offset
// (topic names have no slash).
func ParseCoordinates(s string) (topic string, p int32, off int64, ok bool) {
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return "", 0, 0, false
	}
	j := strings.LastIndexByte(s[:i], '/')
	if j < 0 {
		return "", 0, 0, false
	}
	pn, err1 := strconv.ParseInt(s[j+1:i], 10, 32)
	o, err2 := strconv.ParseInt(s[i+1:], 10, 64)
	if err1 != nil || err2 != nil || pn < 0 || o < 0 {
		return "", 0, 0, false
	}
	return s[:j], int32(pn), o, true
}

// Get returns the value of header k, or "".
func Get(hs []kgo.RecordHeader, k string) string {
	for _, h := range hs {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

// Set replaces (or adds) header k.
func Set(hs []kgo.RecordHeader, k, v string) []kgo.RecordHeader {
	for i := range hs {
		if hs[i].Key == k {
			hs[i].Value = []byte(v)
			return hs
		}
	}
	return append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)})
}

// Attempt is the record's attempt number; 1 when it has none.
func Attempt(hs []kgo.RecordHeader) int {
	if n, err := strconv.Atoi(Get(hs, HeaderAttempt)); err == nil && n > 0 {
		return n
	}
	return 1
}

// dueAt is the time the due-at header names; ok is false when the header
// is missing or not a time: unparsable, zero or negative, or past int64.
// A retry record is due at Due, not at a zero time when ok is false.
func dueAt(hs []kgo.RecordHeader) (due time.Time, ok bool) {
	if ms, err := strconv.ParseInt(Get(hs, HeaderDueAt), 10, 64); err == nil && ms > 0 {
		return time.UnixMilli(ms), true
	}
	return time.Time{}, false
}

// Due is when retry record r, on the retry topic of the tier whose delay
// is delay, may be processed: at its due-at header, or, when that is
// missing or not a time (see dueAt), at its timestamp plus delay, so that
// it waits its tier as any other and is never retried at once. A record
// without a timestamp either (zero or negative: written with no time) is
// due delay after now.
func Due(r *kgo.Record, delay time.Duration, now time.Time) time.Time {
	if due, ok := dueAt(r.Headers); ok {
		return due
	}
	if r.Timestamp.UnixMilli() > 0 {
		return r.Timestamp.Add(delay)
	}
	return now.Add(delay)
}

// History is the record's error history, oldest first. A header or an
// entry that does not decode (another producer's, a damaged one) is kept
// as an entry quoting it, stage "unreadable": decoded whole, one bad "at"
// dropped the whole history, and the next failure's append wrote it back
// without what it said.
func History(hs []kgo.RecordHeader) []ErrorEntry {
	raw := Get(hs, HeaderErrors)
	if raw == "" {
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal([]byte(raw), &items); err != nil {
		return []ErrorEntry{unreadable("error history", raw)}
	}
	out := make([]ErrorEntry, 0, len(items))
	for _, it := range items {
		var e ErrorEntry
		if err := json.Unmarshal(it, &e); err != nil {
			e = unreadable("error history entry", string(it))
		}
		out = append(out, e)
	}
	return out
}

func unreadable(what, raw string) ErrorEntry {
	return ErrorEntry{Stage: "unreadable", Error: fitEscaped(what+" not readable as Inlet writes it: "+raw, MaxErrorText)}
}

// maxHistory bounds the history header; the oldest entries beyond it are
// dropped (the first is kept: it says how it started).
const maxHistory = 32

// MaxErrorText bounds one entry's error text as the history header
// writes it (JSON-escaped, cut at a rune and marked with "…"): with
// maxHistory it keeps the header within about 40 KiB, inside the room raw
// records leave for failure headers (kafka.FailureHeadroom). An error can
// quote a whole response body, and a body of control characters or broken
// UTF-8 takes up to six bytes a byte once escaped, so the bound is on the
// escaped text, not the raw one.
const MaxErrorText = 1024

// AppendError returns hs with e appended to the error history.
func AppendError(hs []kgo.RecordHeader, e ErrorEntry) []kgo.RecordHeader {
	e.Error = fitEscaped(e.Error, MaxErrorText)
	hist := append(History(hs), e)
	if len(hist) > maxHistory {
		hist = append(hist[:1], hist[len(hist)-maxHistory+1:]...)
	}
	return Set(hs, HeaderErrors, encodeHistory(hist))
}

// ShrinkHistory keeps only the newest entry of the error history, its text
// cut to limit escaped bytes: the last resort for a record that would not
// fit Kafka with its whole history.
func ShrinkHistory(hs []kgo.RecordHeader, limit int) []kgo.RecordHeader {
	hist := History(hs)
	if len(hist) == 0 {
		return hs
	}
	last := hist[len(hist)-1]
	last.Error = fitEscaped(last.Error, limit)
	return Set(hs, HeaderErrors, encodeHistory([]ErrorEntry{last}))
}

// encodeHistory writes the history header. HTML characters stay as they
// are: the header is read by Kafka tools and inletctl, not a browser, and
// an error quoting an HTML page stays readable and a sixth of the size.
func encodeHistory(hist []ErrorEntry) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(hist) // a slice of strings and times cannot fail
	return strings.TrimSuffix(b.String(), "\n")
}

// fitEscaped returns s with each run of broken UTF-8 replaced by U+FFFD
// (JSON would write an escaped one for each byte) and cut, at a rune,
// so that its JSON-escaped form (encodeHistory's) takes at most limit
// bytes, ending with "…" when it was cut.
func fitEscaped(s string, limit int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	const mark = "…"
	width, cut := 0, 0
	for i, r := range s {
		if width+len(mark) <= limit {
			cut = i // s[:i] and the mark fit
		}
		width += escapedWidth(r)
		if width > limit {
			return s[:cut] + mark
		}
	}
	return s
}

// escapedWidth is the bytes encoding/json (HTML escaping off) writes for r
// inside a string.
func escapedWidth(r rune) int {
	switch {
	case r == '"' || r == '\\' || r == '\n' || r == '\r' || r == '\t':
		return 2
	case r < 0x20 || r == '\u2028' || r == '\u2029':
		return 6
	default:
		return utf8.RuneLen(r)
	}
}

// Truncate cuts s to at most limit bytes (at least the 3 of "…"), at a
// rune boundary, ending it with "…" when it was cut.
func Truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	const mark = "…"
	cut := max(limit-len(mark), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// Clone copies headers so a record's headers can be changed without
// touching the consumed record's.
func Clone(hs []kgo.RecordHeader) []kgo.RecordHeader {
	out := make([]kgo.RecordHeader, len(hs))
	copy(out, hs)
	return out
}

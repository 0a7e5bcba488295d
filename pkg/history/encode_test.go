package history

import (
	"encoding/json"
	"testing"
	"time"
)

func entriesForEncoding() []Entry {
	at := time.Date(2026, 11, 29, 9, 54, 13, 123456789, time.UTC)
	return []Entry{
		{At: at, Stage: "received", Source: "shop", EventType: "orders/updated", EventID: "evt_1", Where: "ingest (webhook)"},
		{At: at.Round(time.Second), Stage: "attempt", Outcome: "processed", Attempt: 1, Where: "inlet.processed key shop:order:1"},
		{At: at.In(time.FixedZone("x", -5*3600)), Stage: "attempt", Outcome: "dlq", Attempt: 4, Error: `sink: 503 "busy" <html>`},
		{At: at.In(time.FixedZone("y", 5*3600+1800)), Stage: "attempt", Outcome: "processed", Attempt: 1},
		{At: at.In(time.FixedZone("day", 24*3600)), Stage: "received"},
		{At: at, Stage: "written", Where: "inlet.raw/3/17", EventID: "évt\u2028\x00\xff"},
		{Stage: "requeued"},
		{At: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Stage: "received"},
		{At: time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC), Stage: "received"},
		{At: at, Stage: "attempt", Attempt: -2},
		{At: at, Stage: "written", Undecodable: true, Where: "inlet.raw/0/9"},
		// The fast path wrote no note: a decision lost who made it and why.
		{At: at, Stage: "decided", Outcome: "discarded", Where: "inlet.dlq/0/4", Note: "by alice: bad data"},
		{At: at, Stage: "decided", Note: "by <bob> & \"carol\""},
	}
}

// appendEntry writes what json.Marshal writes, on the fast path and off it.
func TestAppendEntryIsJSONMarshal(t *testing.T) {
	for _, e := range entriesForEncoding() {
		checkAppendEntry(t, e)
	}
}

func checkAppendEntry(t *testing.T, e Entry) {
	t.Helper()
	got := appendEntry(nil, &e)
	want, err := json.Marshal(&e)
	if err != nil {
		// A year json cannot write: the entry keeps its stage, without time.
		c := e
		c.At = time.Time{}
		want, _ = json.Marshal(&c)
	}
	if string(got) != string(want) {
		t.Fatalf("appendEntry(%+v)\n got %s\nwant %s", e, got, want)
	}
	var back Entry
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("%s does not decode: %v", got, err)
	}
}

func FuzzAppendEntry(f *testing.F) {
	for _, e := range entriesForEncoding() {
		_, off := e.At.Zone()
		f.Add(e.At.UnixNano(), off, e.Stage, e.Outcome, e.Source, e.EventType, e.EventID, e.Undecodable, e.Where, e.Error, e.Attempt, e.Note)
	}
	f.Add(int64(0), 24*3600, "received", "", "s", "t", "e", false, "", "", 0, "")
	f.Fuzz(func(t *testing.T, nanos int64, offset int, stage, outcome, source, eventType, eventID string, undecodable bool, where, errText string, attempt int, note string) {
		at := time.Unix(0, nanos).In(time.FixedZone("z", offset))
		checkAppendEntry(t, Entry{At: at, Stage: stage, Outcome: outcome, Source: source, EventType: eventType, EventID: eventID, Undecodable: undecodable, Attempt: attempt, Where: where, Error: errText, Note: note})
	})
}

// The three entries of a processed event: appendEntry against json.Marshal.
func BenchmarkEncodeEntries(b *testing.B) {
	es := entriesForEncoding()[:2]
	es = append(es, es[0])
	b.Run("appendEntry", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for i := range es {
				_ = appendEntry(make([]byte, 0, 256), &es[i])
			}
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for i := range es {
				_, _ = json.Marshal(&es[i])
			}
		}
	})
}

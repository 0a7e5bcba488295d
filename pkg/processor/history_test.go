package processor

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/history"
	"github.com/inletdev/inlet/pkg/retry"
	"github.com/inletdev/inlet/pkg/testenv"
	"github.com/inletdev/inlet/pkg/testenv/syncbuf"
)

// stages names each entry as stage[:outcome].
func stages(es []history.Entry) string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Stage
		if e.Outcome != "" {
			s[i] += ":" + e.Outcome
		}
	}
	return strings.Join(s, ",")
}

// TestTraceOfAnUndecodableRecord: a record whose envelope cannot be
// decoded goes to the invalid topic and its history says so, under its
// correlation-id header: where it was written and the invalid attempt with
// the reason, marked undecodable, without the fields of another event
// sharing the correlation id.
func TestTraceOfAnUndecodableRecord(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t))
	h.hist = history.New(h.rdb, h.prefix, time.Hour)
	h.start("a", nil)
	ok := h.send("shop", "orders/updated", "wh-ok", "2025-01", envelope.ChannelWebhook, shopOrder(7, time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC), "paid", true))
	h.waitAll(1)
	ctx := context.Background()
	for _, corr := range []string{"corr-undecodable", ok.CorrelationID} {
		rec := &kgo.Record{Topic: h.topics.Raw, Key: []byte("shop:wh-bad"), Value: []byte("not an envelope"),
			Headers: []kgo.RecordHeader{{Key: retry.HeaderCorrelationID, Value: []byte(corr)}}}
		if err := h.prod.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	h.waitAll(3)
	if n := h.total(Invalid); n != 2 {
		t.Fatalf("%d invalid, want the 2 undecodable records", n)
	}
	checkUndecodable := func(t *testing.T, es []history.Entry) {
		t.Helper()
		w, a := es[0], es[1]
		if !strings.HasPrefix(w.Where, h.topics.Raw+"/") || !w.Undecodable || w.At.IsZero() {
			t.Errorf("written %+v: want the raw record's coordinates, marked undecodable", w)
		}
		if a.Where != h.topics.Invalid || !strings.Contains(a.Error, "undecodable envelope") || a.Attempt != 1 || !a.Undecodable {
			t.Errorf("attempt %+v: want %s, the reason, attempt 1, marked undecodable", a, h.topics.Invalid)
		}
		for _, e := range es {
			if e.Source != "" || e.EventType != "" || e.EventID != "" {
				t.Errorf("entry %+v: an undecodable record has no source, type or event id", e)
			}
		}
	}
	t.Run("its own correlation id", func(t *testing.T) {
		es, err := h.hist.Get(ctx, "corr-undecodable")
		if err != nil {
			t.Fatal(err)
		}
		if got := stages(es); got != "written,attempt:invalid" {
			t.Fatalf("stages %q, want written,attempt:invalid", got)
		}
		checkUndecodable(t, es)
	})
	t.Run("a correlation id shared with a decoded event", func(t *testing.T) {
		es, err := h.hist.Get(ctx, ok.CorrelationID)
		if err != nil {
			t.Fatal(err)
		}
		if got := stages(es); got != "received,written,attempt:processed,written,attempt:invalid" {
			t.Fatalf("stages %q", got)
		}
		if es[2].EventID != "wh-ok" {
			t.Errorf("the decoded event's attempt %+v lost its id", es[2])
		}
		checkUndecodable(t, es[3:])
	})
}

// TestTraceOfAReplayedEvent: a replay's copy of an event (inlet-replay,
// inlet-origin, on the replay topic that takes the raw topic's place in
// the replay's processor) adds one "replayed" stage naming the replay and
// the raw record, then its attempt; not a second receipt with the
// original time and a write to the replay topic.
func TestTraceOfAReplayedEvent(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t))
	h.hist = history.New(h.rdb, h.prefix, time.Hour)
	first := h.start("a", nil)
	e := h.send("shop", "orders/updated", "wh-rp", "2025-01", envelope.ChannelWebhook, shopOrder(8, time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC), "paid", true))
	h.waitAll(1)
	first.stop(t)
	raws := h.env.ReadTopic(t, h.topics.Raw, 1, 30*time.Second)
	if len(raws) != 1 {
		t.Fatalf("%d raw records", len(raws))
	}
	raw := raws[0]

	// What replay.run.copy and process do: the copy, stamped now, on the
	// replay's topic, read by a processor whose raw topic that is.
	ctx := context.Background()
	const id = "fill-27th"
	replayTopic := strings.TrimSuffix(h.topics.Raw, ".raw") + ".replay." + id
	if _, err := kadm.NewClient(h.env.Client(t)).CreateTopic(ctx, 1, -1, nil, replayTopic); err != nil {
		t.Fatal(err)
	}
	hdrs := retry.Set(retry.Set(retry.Clone(raw.Headers), retry.HeaderOrigin, retry.Coordinates(raw)), retry.HeaderReplay, id)
	copied := time.Now().Truncate(time.Millisecond)
	if err := h.prod.ProduceSync(ctx, &kgo.Record{Topic: replayTopic, Key: raw.Key, Value: raw.Value, Headers: hdrs, Timestamp: copied}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	h.topics.Raw = replayTopic
	h.start("replay", func(c *Config) { c.Group = h.env.Prefix + "-replay-" + id })
	h.waitAll(2)

	es, err := h.hist.Get(ctx, e.CorrelationID)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := stages(es), "received,written,attempt:processed,replayed,attempt:duplicate"; got != want {
		t.Fatalf("stages %q, want %q", got, want)
	}
	rp := es[3]
	if want := "replay " + id + " of " + retry.Coordinates(raw); rp.Where != want || !rp.At.Equal(copied) || rp.EventID != "wh-rp" {
		t.Fatalf("replayed %+v: want where %q at %v", rp, want, copied)
	}
	// (received and written are stamped by different clocks, to the
	// microsecond and the millisecond.)
	for i := 3; i < len(es); i++ {
		if es[i].At.Before(es[i-1].At) {
			t.Errorf("entry %d (%s at %v) before the one it follows (%v)", i, es[i].Stage, es[i].At, es[i-1].At)
		}
	}
}

// TestHistoryOfAnEnvelopeWithoutCorrelationID: envelopes written by a
// producer other than ingest may carry no correlation id. Every such
// event's history went to one list under "" (merged, cut to its last 200
// entries, asked for by no trace). The record's correlation-id header is
// taken instead, and without one there is no history.
func TestHistoryOfAnEnvelopeWithoutCorrelationID(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t))
	h.hist = history.New(h.rdb, h.prefix, time.Hour)
	h.start("a", nil)
	ctx := context.Background()
	for i, hdr := range []string{"hdr-corr", ""} {
		id := fmt.Sprintf("evt_nc%d", i)
		e := &envelope.Envelope{ID: "nc-" + id, Source: "stripe", EventType: "payment_intent.succeeded", EventID: id,
			IdempotencyKey: envelope.IdempotencyKey("stripe", id), SchemaVersion: "2024-06-20", ReceivedAt: time.Now().UTC().Truncate(time.Microsecond),
			Channel: envelope.ChannelWebhook, Headers: map[string]string{}, ContentType: "application/json",
			Payload: paymentIntent(id, "pi_nc"+id, "succeeded", int64(1700000000+i))}
		val, err := h.codec.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		rec := &kgo.Record{Topic: h.topics.Raw, Key: []byte(e.IdempotencyKey), Value: val}
		if hdr != "" {
			rec.Headers = []kgo.RecordHeader{{Key: retry.HeaderCorrelationID, Value: []byte(hdr)}}
		}
		if err := h.prod.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	h.waitAll(2)
	if n := h.total(Processed); n != 2 {
		t.Fatalf("%d processed, want 2", n)
	}
	es, err := h.hist.Get(ctx, "hdr-corr")
	if err != nil {
		t.Fatal(err)
	}
	if got := stages(es); got != "received,written,attempt:processed" || es[2].EventID != "evt_nc0" {
		t.Errorf("history under the header's id: %q %+v", got, es)
	}
	if n, err := h.rdb.Exists(ctx, h.prefix+"trace:").Result(); err != nil || n != 0 {
		t.Errorf("a history under the empty id: %d, %v", n, err)
	}
}

// TestHistoryBoundsALongEntityKey: an entity key is as long as the payload
// value it is built from (a body of up to a few MiB), and every attempt's
// history entry named it whole: each duplicate of such an event, which
// otherwise costs Redis nothing, kept another copy of the key in Redis
// for the history's retention (7 days by default). The entry names it cut
// to maxHistoryKey bytes.
func TestHistoryBoundsALongEntityKey(t *testing.T) {
	h := newHarness(t, testenv.Embedded(t))
	h.hist = history.New(h.rdb, h.prefix, time.Hour)
	var logs syncbuf.Buffer
	h.log = bufLog(&logs)
	h.start("a", nil)
	long := strings.Repeat("x", 256<<10)
	payload := []byte(`{"type":"invoice.paid","timestamp":"2025-01-01T00:00:00Z","data":{"id":"` + long + `"}}`)
	first := h.send("billing", "invoice.paid", "msg_long", "v1", envelope.ChannelWebhook, payload)
	h.waitAll(1)
	again := h.send("billing", "invoice.paid", "msg_long", "v1", envelope.ChannelWebhook, payload)
	h.waitAll(2)
	if h.total(Processed) != 1 || h.total(Duplicate) != 1 {
		t.Fatalf("processed %d, duplicates %d: want 1 and 1", h.total(Processed), h.total(Duplicate))
	}
	ctx := context.Background()
	for _, e := range []*envelope.Envelope{first, again} {
		es, err := h.hist.Get(ctx, e.CorrelationID)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			t.Fatalf("no history for %s", e.CorrelationID)
		}
		for _, entry := range es {
			if len(entry.Where) > maxHistoryKey+len(h.topics.Processed)+len(" key ") {
				t.Errorf("%s %s: where is %d bytes", e.CorrelationID, stages([]history.Entry{entry}), len(entry.Where))
			}
		}
		if last := es[len(es)-1]; !strings.Contains(last.Where, "billing:"+long[:64]) {
			t.Errorf("where %.100q: want the key's start", last.Where)
		}
	}
	// The outcome's log line names it cut too: a line per attempt was
	// as long as the key.
	done := linesWith(t, &logs, "event done")
	if len(done) != 2 {
		t.Fatalf("%d event done lines, want 2", len(done))
	}
	for _, l := range done {
		if k, _ := l["entity_key"].(string); len(k) > maxHistoryKey || !strings.HasPrefix(k, "billing:"+long[:64]) {
			t.Errorf("entity_key in the log: %d bytes, %.80q", len(k), k)
		}
	}
}

package processor

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/history"
	"github.com/inletdev/inlet/pkg/telemetry"
	"github.com/inletdev/inlet/pkg/telemetry/telemetrytest"
	"github.com/inletdev/inlet/pkg/testenv"
	"github.com/inletdev/inlet/pkg/testenv/syncbuf"
)

func TestObservability(t *testing.T) {
	sink := &downstream{script: []int{200, 400}}
	env := testenv.Embedded(t)
	h, _ := failureHarness(t, env, sink)
	reader := sdkmetric.NewManualReader()
	spans, logs := observe(t, h, telemetry.WithReader(reader))
	h.start("a", nil)

	ts := func(sec int) time.Time { return time.Date(2025, 1, 1, 0, 0, sec, 0, time.UTC) }
	steps := []struct {
		id      string
		payload []byte
		outcome Outcome
	}{
		{"wh-p", shopOrder(1, ts(10), "paid", true), Processed},
		{"wh-d", shopOrder(1, ts(10), "paid", true), Duplicate}, // same natural key
		{"wh-s", shopOrder(1, ts(5), "paid", true), Stale},      // older update
		{"wh-i", []byte(`{"id":2}`), Invalid},
		{"wh-x", shopOrder(3, ts(1), "paid", true), DeadLetter}, // sink answers 400
	}
	for i, s := range steps {
		h.send("shop", "orders/updated", s.id, "2025-01", envelope.ChannelWebhook, s.payload)
		h.waitAll(int64(i + 1))
	}

	t.Run("each outcome increments exactly its series", func(t *testing.T) {
		got := telemetrytest.Int64s(t, reader, "inlet.events", "source", "event_type", "outcome")
		want := map[string]int64{}
		for _, s := range steps {
			want["shop|orders/updated|"+string(s.outcome)]++
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %d, want %d", k, got[k], v)
			}
		}
		if len(got) != len(want) {
			t.Errorf("series %v, want exactly %v", got, want)
		}
	})

	t.Run("depth gauges count the unresolved DLQ and invalid records", func(t *testing.T) {
		testenv.Eventually(t, 10*time.Second, "dlq and invalid depth 1", func() bool {
			d := telemetrytest.Int64s(t, reader, "inlet.dlq.depth")
			i := telemetrytest.Int64s(t, reader, "inlet.invalid.depth")
			return d[""] == 1 && i[""] == 1
		})
	})

	t.Run("the sender's trace runs through processing and onto the output", func(t *testing.T) {
		out := h.processed(1)
		tp, _ := out[0]["_h_traceparent"].(string)
		if !strings.HasPrefix(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-") || strings.Contains(tp, "00f067aa0ba902b7") {
			t.Fatalf("processed traceparent %q: want the sender's trace id and the processor's span", tp)
		}
		var found bool
		for _, s := range spans.Ended() {
			if s.Name() == "process" && s.SpanContext().TraceID().String() == "4bf92f3577b34da6a3ce929d0e0e4736" {
				found = true
				if s.Parent().SpanID().String() != "00f067aa0ba902b7" {
					t.Errorf("process span parent %s, want the raw record's span", s.Parent().SpanID())
				}
			}
		}
		if !found {
			t.Fatal("no process span in the sender's trace")
		}
	})

	t.Run("every log line about an event carries its correlation id", func(t *testing.T) {
		n := 0
		for _, line := range logs.Lines() {
			for _, s := range steps {
				if !strings.Contains(line, `"`+s.id+`"`) {
					continue
				}
				n++
				var m map[string]any
				_ = json.Unmarshal([]byte(line), &m)
				if m["correlation_id"] != "corr-"+s.id || m["source"] != "shop" || m["event_type"] != "orders/updated" || m["outcome"] == nil {
					t.Errorf("log line lacks correlation_id/source/event_type/outcome: %s", line)
				}
			}
		}
		if n < len(steps) {
			t.Fatalf("%d log lines about the events, want at least %d", n, len(steps))
		}
	})

	t.Run("trace lookup lists the stages in order", func(t *testing.T) {
		for _, c := range []struct {
			id   string
			want []string
		}{
			{"wh-p", []string{"received", "written", "attempt:processed"}},
			{"wh-x", []string{"received", "written", "attempt:dlq"}},
			{"wh-i", []string{"received", "written", "attempt:invalid"}},
		} {
			es, err := h.hist.Get(context.Background(), "corr-"+c.id)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range es {
				s := e.Stage
				if e.Outcome != "" {
					s += ":" + e.Outcome
				}
				got = append(got, s)
			}
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Errorf("%s: stages %v, want %v", c.id, got, c.want)
			}
		}
	})
}

// A retried-then-processed event's history shows each attempt.
func TestTraceOfARetriedEvent(t *testing.T) {
	sink := &downstream{script: []int{503}}
	h, _ := failureHarness(t, testenv.Embedded(t), sink)
	h.hist = history.New(h.rdb, h.prefix, time.Hour)
	h.start("a", nil)
	h.send("shop", "orders/updated", "wh-rt", "2025-01", envelope.ChannelWebhook, shopOrder(5, time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC), "paid", true))
	h.waitAll(1)
	es, err := h.hist.Get(context.Background(), "corr-wh-rt")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Stage+":"+e.Outcome)
	}
	want := "received:,written:,attempt:retried,attempt:processed"
	if strings.Join(got, ",") != want {
		t.Fatalf("stages %v, want %s", got, want)
	}
	if !strings.Contains(es[2].Error, "503") || !strings.Contains(es[2].Where, "retry.1s") || es[3].Attempt != 2 {
		t.Fatalf("retry stage %+v, final %+v", es[2], es[3])
	}
}

// observe gives h's processors telemetry (opts, and spans recorded in the
// returned recorder), an event history and debug logs as JSON lines in the
// returned buffer.
func observe(t *testing.T, h *harness, opts ...telemetry.Option) (*tracetest.SpanRecorder, *syncbuf.Buffer) {
	t.Helper()
	spans := tracetest.NewSpanRecorder()
	tel, err := telemetry.New(context.Background(), "test", append(opts, telemetry.WithSpanProcessor(spans))...)
	if err != nil {
		t.Fatal(err)
	}
	h.tel = tel
	h.hist = history.New(h.rdb, h.prefix, time.Hour)
	logs := &syncbuf.Buffer{}
	h.log = bufLog(logs)
	return spans, logs
}

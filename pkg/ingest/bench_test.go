package ingest

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/testenv"
)

// BenchmarkWebhookStripe1KiB runs the webhook handler in process (no TCP)
// against embedded Kafka with acks=all, 32 requests at a time, so producer
// batches form as under load. It is for comparing the handler's cost and
// allocations across changes; loadtest/benchingest measures the service
// end to end.
func BenchmarkWebhookStripe1KiB(b *testing.B) {
	h := newHarness(b, testenv.Embedded(b), nil)
	src, _ := h.sources.Get("stripe")
	handler := h.srv.Handler()
	const n = 1024 // distinct events, so keys spread over partitions
	type signed struct {
		body []byte
		hdr  http.Header
	}
	events := make([]signed, n)
	for i := range events {
		body := benchStripeEvent(i, 1024)
		hdr := http.Header{"Content-Type": {"application/json"}}
		if err := src.Provider().Sign(hdr, body, time.Now()); err != nil {
			b.Fatal(err)
		}
		events[i] = signed{body, hdr}
	}
	var next atomic.Int64
	var failed atomic.Int64
	b.SetParallelism(16) // × GOMAXPROCS goroutines
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU(b)
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{hdr: http.Header{}}
		for pb.Next() {
			ev := events[next.Add(1)%n]
			req, err := http.NewRequest(http.MethodPost, "/webhooks/stripe", bytes.NewReader(ev.body))
			if err != nil {
				b.Error(err)
				return
			}
			req.Header = ev.hdr
			clear(w.hdr)
			w.status = 0
			handler.ServeHTTP(w, req)
			if w.status != http.StatusAccepted {
				failed.Add(1)
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d requests not accepted", f)
	}
}

// processCPU is the CPU time the process used so far (handler, kfake, GC):
// unlike ns/op, CPU per op barely moves when other processes share the
// machine.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchStripeEvent is a Stripe-shaped event of about size bytes.
func benchStripeEvent(i, size int) []byte {
	head := fmt.Sprintf(`{"id":"evt_bench_%06d","object":"event","api_version":"2024-06-20","created":1730000000,"data":{"object":{"id":"pi_%06d","object":"payment_intent","amount":2000,"currency":"usd","description":"`, i, i)
	tail := `"}},"livemode":false,"type":"payment_intent.succeeded"}`
	return []byte(head + strings.Repeat("x", max(0, size-len(head)-len(tail))) + tail)
}

type discardWriter struct {
	hdr    http.Header
	status int
}

func (w *discardWriter) Header() http.Header { return w.hdr }
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(p), nil
}
func (w *discardWriter) WriteHeader(code int) { w.status = code }

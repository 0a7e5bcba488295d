package processor

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/alert"
	"github.com/inletdev/inlet/pkg/retry"
	"github.com/inletdev/inlet/pkg/testenv"
)

// undecodableItem is a raw record whose envelope could not be decoded: the
// record's correlation-id header is all that names its event.
func undecodableItem() *item {
	rec := &kgo.Record{Topic: "inlet.raw", Partition: 1, Offset: 7, Value: []byte("not an envelope"),
		Headers: []kgo.RecordHeader{{Key: retry.HeaderCorrelationID, Value: []byte("corr-undecodable")}}}
	return &item{rec: rec, outcome: Invalid, reason: errors.New("undecodable envelope: bad magic byte")}
}

// TestUndecodableLogLineHasCorrelationID: the history keeps an
// undecodable record under its correlation-id header (and its span has
// it), so the invalid line must carry it too, or the SRE grepping logs for
// the id `inletctl trace` shows finds nothing.
func TestUndecodableLogLineHasCorrelationID(t *testing.T) {
	var buf bytes.Buffer
	p := &Processor{log: slog.New(slog.NewJSONHandler(&buf, nil))}
	p.logOutcome(undecodableItem())
	lines := logLines(t, &buf)
	if len(lines) != 1 {
		t.Fatalf("%d lines, want 1:\n%s", len(lines), buf.String())
	}
	if got := lines[0]["correlation_id"]; got != "corr-undecodable" {
		t.Fatalf("correlation_id %v, want corr-undecodable (the record's header), in: %s", got, buf.String())
	}
}

// TestUndecodableAlertHasCorrelationID: the invalid alert of an
// undecodable record names its correlation id, as its history does.
func TestUndecodableAlertHasCorrelationID(t *testing.T) {
	rcv := &alerts{}
	srv := httptest.NewServer(rcv)
	t.Cleanup(srv.Close)
	al := alert.New(alert.Config{WebhookURL: srv.URL, Window: 50 * time.Millisecond})
	p := &Processor{d: Deps{Alerter: al}}
	p.alert(undecodableItem())
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { al.Run(ctx); close(done) }()
	testenv.Eventually(t, 5*time.Second, "the alert", func() bool { return len(rcv.got()) == 1 })
	cancel()
	<-done
	if got := rcv.got()[0]; got.CorrelationID != "corr-undecodable" {
		t.Fatalf("alert correlation_id %q, want corr-undecodable (the record's header): %+v", got.CorrelationID, got.Alert)
	}
}

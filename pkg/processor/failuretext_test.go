package processor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"

	"github.com/inletdev/inlet/pkg/contract"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/retry"
	"github.com/inletdev/inlet/pkg/router"
	"github.com/inletdev/inlet/pkg/source"
)

// TestFailureTextRedactsSecretValues: the contract reader quotes the value
// it found ("got string \"4242…\""); where the field's name looks secret,
// the alert, history and log text say only its kind. Other values stay:
// they are what tells the integration's owner what changed.
func TestFailureTextRedactsSecretValues(t *testing.T) {
	const card, key = "4242424242424242", "sk_live_abcdef"
	ce := &contract.ValidationError{Contract: "stripe/payment_intent", Version: "v1", Fields: []contract.FieldError{
		{Path: "/payment_method/card/number", Expected: "long", Actual: fmt.Sprintf("string %q", card)},
		{Path: "/amount", Expected: "long", Actual: `string "12"`},
		{Path: "/card_token", Expected: "string", Actual: "missing"},
	}}
	rv := &router.ValidationError{Reason: "entity_key cannot be built", Fields: []router.FieldProblem{
		{Path: "/data/apiKey", Expected: "a string or number", Actual: "number 42.5 (" + key + ")"},
	}}
	for _, err := range []error{ce, fmt.Errorf("handler: %w", ce), rv, fmt.Errorf("wrapped: %w", rv)} {
		got := failureText(err)
		for _, secret := range []string{card, key} {
			if strings.Contains(got, secret) {
				t.Errorf("%q quotes a secret value", got)
			}
		}
		if errors.As(err, new(*contract.ValidationError)) {
			for _, want := range []string{"/payment_method/card/number: expected long, got string (redacted)", `/amount: expected long, got string "12"`, "/card_token: expected string, got missing"} {
				if !strings.Contains(got, want) {
					t.Errorf("%q does not say %q", got, want)
				}
			}
		} else if !strings.Contains(got, "/data/apiKey: expected a string or number, got number (redacted)") {
			t.Errorf("%q: want the field's kind only", got)
		}
	}
	// The wrapping text stays around the redacted error.
	if got := failureText(fmt.Errorf("handler: %w", ce)); !strings.HasPrefix(got, "handler: contract stripe/payment_intent") {
		t.Errorf("%q: want the wrapping text kept", got)
	}
	if got, want := failureText(errors.New("plain")), "plain"; got != want {
		t.Errorf("failureText(plain) = %q", got)
	}
}

// TestFailureTextIsBounded: a handler error quoting a whole response body
// reached the alert webhook (and each history entry) whole.
func TestFailureTextIsBounded(t *testing.T) {
	got := failureText(errors.New(strings.Repeat("é", 100000)))
	if len(got) > retry.MaxErrorText+len("…") {
		t.Fatalf("%d bytes, want at most %d", len(got), retry.MaxErrorText)
	}
}

// TestRouteMeasuresTheRawRecord: a raw record as large as ingest writes
// fails, is retried, and carries failure headers on its retry copy; its
// next failure must take the next tier, not the dead-letter topic as "too
// large for a retry copy" (the headers it carries are replaced in the
// copy, bounded). A record too large without them still goes there.
func TestRouteMeasuresTheRawRecord(t *testing.T) {
	tiers := []time.Duration{30 * time.Second, 2 * time.Minute, 15 * time.Minute}
	p := &Processor{policies: map[string]retry.Policy{"shop": {Tiers: tiers, MaxAttempts: 4}}}
	src := &source.Source{Name: "shop"}
	// record's raw size (without failure headers) is size.
	record := func(size int, failed bool) *kgo.Record {
		r := &kgo.Record{Topic: "inlet.retry.30s", Key: []byte("shop:evt_1")}
		if failed {
			r.Headers = retry.Set(r.Headers, retry.HeaderOrigin, "inlet.raw/0/7")
			r.Headers = retry.Set(r.Headers, retry.HeaderAttempt, "2")
			r.Headers = retry.Set(r.Headers, retry.HeaderDueAt, "1700000000000")
			r.Headers = retry.AppendError(r.Headers, retry.ErrorEntry{At: time.Now(), Stage: "deliver", Error: strings.Repeat("x", retry.MaxErrorText)})
		}
		r.Value = bytes.Repeat([]byte{'x'}, size-rawSize(r))
		return r
	}
	for _, c := range []struct {
		name string
		rec  *kgo.Record
		dlq  bool
	}{
		{"as large as ingest writes, after one failure", record(kafka.MaxRawRecordBytes, true), false},
		{"as large as ingest writes, first failure", record(kafka.MaxRawRecordBytes, false), false},
		{"larger than ingest writes", record(kafka.MaxRawRecordBytes+1, false), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.rec.Headers != nil && kafka.RecordSize(c.rec) <= kafka.MaxRawRecordBytes+1024 {
				t.Fatalf("setup: %d bytes with its failure headers; want them to count", kafka.RecordSize(c.rec))
			}
			it := &item{rec: c.rec, src: src, ev: &router.Event{Attempt: 2}, failure: errors.New("downstream 503")}
			p.route([]*item{it})
			if got := it.outcome == DeadLetter; got != c.dlq {
				t.Fatalf("outcome %v (%s), want dead letter %v", it.outcome, it.next.Reason, c.dlq)
			}
			if !c.dlq && it.tier != tiers[1] {
				t.Fatalf("tier %v, want %v", it.tier, tiers[1])
			}
		})
	}
}

// TestFailureHistoryRedactsSecretValues: the error history a failed event's
// copy carries (inlet-errors) is what inletctl and the admin API list for
// an invalid or dead-lettered entry, without its payload: it goes through
// failureText too.
func TestFailureHistoryRedactsSecretValues(t *testing.T) {
	const card = "4242424242424242"
	p := &Processor{propagator: propagation.TraceContext{}}
	it := &item{ctx: context.Background(), rec: &kgo.Record{Topic: "inlet.raw", Partition: 1, Offset: 7}}
	err := &contract.ValidationError{Contract: "stripe/payment_intent", Version: "v1", Fields: []contract.FieldError{
		{Path: "/card/number", Expected: "long", Actual: fmt.Sprintf("string %q", card)},
	}}
	hist := retry.History(p.failureHeaders(it, "validate", err))
	if len(hist) != 1 || strings.Contains(hist[0].Error, card) || !strings.Contains(hist[0].Error, "/card/number") {
		t.Fatalf("history %+v: want one entry naming the field, not its value", hist)
	}
}

package source

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

// TestParseRefusesNegativeMaxLines: it was accepted, and every batch
// request then panicked making a channel of that size.
func TestParseRefusesNegativeMaxLines(t *testing.T) {
	_, err := Parse([]byte("sources:\n  s:\n    kind: none\n    batch: {tokens_env: [T_TOK], max_lines: -1}\n"))
	if err == nil || !strings.Contains(err.Error(), "batch.max_lines must be positive") {
		t.Errorf("max_lines -1: error %v", err)
	}
}

// TestParseRefusesSubMillisecondDedupWindow: Redis keeps expiries in
// milliseconds; a shorter window passed the check and then failed every
// confirm, letting redeliveries through.
func TestParseRefusesSubMillisecondDedupWindow(t *testing.T) {
	parse := func(w string) error {
		_, err := Parse([]byte("sources:\n  s:\n    kind: none\n    dedup_window: "+w+"\n"), WithoutSecrets())
		return err
	}
	for _, w := range []string{"500us", "999999ns"} {
		if err := parse(w); err == nil || !strings.Contains(err.Error(), "dedup_window") {
			t.Errorf("dedup_window %s: %v, want it refused", w, err)
		}
	}
	for _, w := range []string{"1ms", "24h"} {
		if err := parse(w); err != nil {
			t.Errorf("dedup_window %s: %v", w, err)
		}
	}
}

// TestParseBoundsMaxLines: batch.max_lines had no upper bound, and every
// authenticated batch made room for that many acknowledgements up front.
func TestParseBoundsMaxLines(t *testing.T) {
	parse := func(n int) error {
		_, err := Parse([]byte(fmt.Sprintf("sources:\n  s:\n    kind: none\n    batch: {tokens_env: [T_TOK], max_lines: %d}\n", n)), WithoutSecrets())
		return err
	}
	if err := parse(MaxBatchLines); err != nil {
		t.Errorf("max_lines %d: %v, want it accepted", MaxBatchLines, err)
	}
	for _, n := range []int{MaxBatchLines + 1, 1 << 40} {
		if err := parse(n); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("batch.max_lines must be positive and at most %d", MaxBatchLines)) {
			t.Errorf("max_lines %d: error %v, want the bound named", n, err)
		}
	}
}

func TestCheckMeta(t *testing.T) {
	for _, c := range []struct {
		v  string
		ok bool
	}{
		{"invoice.paid", true},
		{"commande.payée", true},
		{"bad\xff", false},
		{strings.Repeat("x", 256), true},
		{strings.Repeat("x", 257), false},
		{"\x1b]0;owned\a\x1b[2J", false}, // terminal escapes
		{"e1\rFAKE", false},
		{"tab\there", false},
		{"del\x7f", false},
		{"c1\u009b2J", false},
		{"spaces are fine", true},
	} {
		if err := CheckMeta(c.v); (err == nil) != c.ok {
			t.Errorf("CheckMeta(%q): %v, want ok %v", c.v, err, c.ok)
		}
	}
}

func TestParseTime(t *testing.T) {
	want := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, in := range []string{`"2025-01-02T03:04:05Z"`, `"2025-01-02t03:04:05z"`, `"2025-01-02T04:04:05+01:00"`, `1735787045`, `"1735787045"`, `1735787045000`,
		`1735787045000000`, `"1735787045000000000"`, `1735787045000000000`} {
		got := ParseTime(gjson.Parse(in))
		if got == nil || !got.Equal(want) {
			t.Errorf("%s: %v, want %v", in, got, want)
		}
	}
	if got := ParseTime(gjson.Parse(`1735787045.25`)); got == nil || !got.Equal(want.Add(250*time.Millisecond)) {
		t.Errorf("fractional seconds: %v, want %v", got, want.Add(250*time.Millisecond))
	}
	for _, in := range []string{`"yesterday"`, `5`, `0`, `-1735787045`, `"1900-01-01T00:00:00Z"`, `"NaN"`, `"Inf"`, `1e300`, `null`, `{}`} {
		if got := ParseTime(gjson.Parse(in)); got != nil {
			t.Errorf("%s: %v, want nil", in, got)
		}
	}
}

// TestShopifyBusinessTimeFromTheSignedBody: Shopify signs the body only; a
// replayed delivery with a fresh X-Shopify-Triggered-At must not win
// newest-wins with it.
func TestShopifyBusinessTimeFromTheSignedBody(t *testing.T) {
	t.Setenv("T_SHOP", "s")
	f, err := Parse([]byte("sources:\n  shop:\n    kind: shopify\n    secrets_env: [T_SHOP]\n"))
	if err != nil {
		t.Fatal(err)
	}
	src, _ := f.Get("shop")
	h := http.Header{}
	h.Set("X-Shopify-Topic", "orders/updated")
	h.Set("X-Shopify-Webhook-Id", "wh-1")
	h.Set("X-Shopify-Triggered-At", "2030-01-01T00:00:00Z")
	m, err := src.Extract(h, []byte(`{"id":1,"updated_at":"2025-01-10T12:00:00-05:00"}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2025, 1, 10, 17, 0, 0, 0, time.UTC); m.OccurredAt == nil || !m.OccurredAt.Equal(want) {
		t.Fatalf("occurred_at %v, want the body's updated_at %v", m.OccurredAt, want)
	}
	// A body without updated_at (orders/delete) keeps the header's time:
	// without one, a late older update would bring the order back.
	m, err = src.Extract(h, []byte(`{"id":1}`))
	if want := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC); err != nil || m.OccurredAt == nil || !m.OccurredAt.Equal(want) {
		t.Fatalf("occurred_at %v (%v), want the header's %v", m.OccurredAt, err, want)
	}
}

// TestParseRefusesWithoutSecrets: what is wrong with a source is found by
// every process that loads the file, also those that read no secrets (the
// processor, inletctl): their --check-config passed a file ingest refused.
func TestParseRefusesWithoutSecrets(t *testing.T) {
	for name, c := range map[string]struct{ src, why string }{
		"unknown kind":                 {"kind: slak", "kind \"slak\""},
		"kind in capitals":             {"kind: Stripe", "kind \"Stripe\""},
		"no kind":                      {"secrets_env: [X]", "kind \"\""},
		"hmac without a header":        {"kind: hmac\n    secrets_env: [X]", "hmac.header"},
		"event without a contract":     {"kind: stripe\n    secrets_env: [X]\n    events:\n      \"invoice.*\": {entity_key: \"x:{/id}\"}", "contract:"},
		"signed batch with kind none":  {"kind: none\n    batch: {signed: true}", "batch.signed"},
		"batch body over the bound":    {"kind: stripe\n    secrets_env: [X]\n    batch: {tokens_env: [T], max_body: 1GiB}", "batch.max_body"},
		"sink url that is not http(s)": {"kind: stripe\n    secrets_env: [X]\n    events:\n      \"*\": {contract: stripe/invoice, sink: {url: \"ftp://user:pw@host/x\"}}", "sink.url"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte("sources:\n  s:\n    "+c.src+"\n"), WithoutSecrets())
			if err == nil || !strings.Contains(err.Error(), c.why) {
				t.Fatalf("%v, want an error about %s", err, c.why)
			}
			if strings.Contains(err.Error(), "pw@") {
				t.Errorf("the error quotes a credential: %v", err)
			}
		})
	}
	if _, err := Parse([]byte("sources:\n  s:\n    kind: stripe\n    secrets_env: [X]\n    batch: {tokens_env: [T], max_body: 64MiB}\n"), WithoutSecrets()); err != nil {
		t.Fatalf("a valid source: %v", err)
	}
}

// TestExtractErrorsNameTheField: CheckMeta's errors ("metadata value
// longer than 256 bytes") did not say which value failed; the unpaired
// surrogate's did.
func TestExtractErrorsNameTheField(t *testing.T) {
	f, err := Parse([]byte("sources:\n  s:\n    kind: none\n    schema_version: {header: X-Version}\n"))
	if err != nil {
		t.Fatal(err)
	}
	src, _ := f.Get("s")
	for _, c := range []struct {
		body, version, field, says string
	}{
		{`{"id":"e1","type":"` + strings.Repeat("x", 257) + `"}`, "", "event_type", "longer than 256 bytes"},
		{`{"id":"e1\u001b[2J","type":"t"}`, "", "event_id", "control character (U+001B)"},
		{"{\"id\":\"e1\xff\",\"type\":\"t\"}", "", "event_id", "not valid UTF-8"},
		{`{"id":"e1","type":"t"}`, "v\u00851", "schema_version", "control character (U+0085)"},
	} {
		h := http.Header{}
		if c.version != "" {
			h.Set("X-Version", c.version)
		}
		_, err := src.Extract(h, []byte(c.body))
		if err == nil || !strings.HasPrefix(err.Error(), c.field+": ") || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s %q: error %v, want it to start with %q and say %q", c.body, c.version, err, c.field+": ", c.says)
		}
	}
}

// TestParseErrorsNameTheirSource: a source's errors are joined one a line,
// and each line names the source; the batch tokens' came on a line of
// their own without it.
func TestParseErrorsNameTheirSource(t *testing.T) {
	t.Setenv("T_PE_SECRET", "")
	t.Setenv("T_PE_TOKEN", "")
	_, err := Parse([]byte("sources:\n  billing:\n    kind: standard-webhooks\n    secrets_env: [T_PE_SECRET]\n    batch: {tokens_env: [T_PE_TOKEN]}\n" +
		"  shop:\n    kind: shopify\n    secrets_env: [T_PE_SECRET]\n    events:\n      \"orders/*\": {entity_key: \"x:{\"}\n"))
	if err == nil {
		t.Fatal("no error without the secrets")
	}
	lines := strings.Split(err.Error(), "\n")
	for _, want := range []string{"batch: none of the token variables [T_PE_TOKEN] is set", "none of the secret variables [T_PE_SECRET]", "contract:", "entity_key:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("no %q in:\n%v", want, err)
		}
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, `source "billing": `) && !strings.HasPrefix(l, `source "shop": `) {
			t.Errorf("line %q does not name its source; error:\n%v", l, err)
		}
	}
}

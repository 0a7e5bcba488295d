package source

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/inletdev/inlet/pkg/webhook"
)

// TestParseRefusesNegativeMaxLines: it was accepted, and every batch
// request then panicked making a channel of that size.
func TestParseRefusesNegativeMaxLines(t *testing.T) {
	_, err := Parse([]byte("sources:\n  s:\n    kind: none\n    batch: {tokens_env: [T_TOK], max_lines: -1}\n"))
	if err == nil || !strings.Contains(err.Error(), "batch.max_lines: line 4: -1: must be at least 1") {
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

// TestParseTimeTakesASpaceForT: RFC 3339 lets a space stand for the T
// (section 5.6), and Python's str(datetime) and SQL dumps write it so:
// "2025-01-02 03:04:05+00:00" was no time, and its event went to invalid
// (or, from a source's own occurred_at, took no business time).
func TestParseTimeTakesASpaceForT(t *testing.T) {
	want := time.Date(2025, 1, 2, 3, 4, 5, 500_000_000, time.UTC)
	for _, in := range []string{`"2025-01-02 03:04:05.5Z"`, `"2025-01-02 03:04:05.5+00:00"`, `"2025-01-02 04:04:05.5+01:00"`} {
		if got := ParseTime(gjson.Parse(in)); got == nil || !got.Equal(want) {
			t.Errorf("%s: %v, want %v", in, got, want)
		}
	}
	for _, in := range []string{`"2025-01-02  03:04:05Z"`, `"2025-01-02 03:04:05"`, `" 2025-01-02T03:04:05Z"`, `"2025-01-02_03:04:05Z"`} {
		if got := ParseTime(gjson.Parse(in)); got != nil {
			t.Errorf("%s: %v, want no time", in, got)
		}
	}
}

// TestParseTimeReadsNumbersExactly: a Unix time was read through a
// float64, about 16 digits: 1700000000123.8 and 1700000000123.2
// (milliseconds, as Python's time.time()*1000 writes them) both read as
// ...123 ms, so newest-wins applied the older over the newer;
// 1700000000.000001 read as 953 ns, and nanoseconds were off by up to 128.
func TestParseTimeReadsNumbersExactly(t *testing.T) {
	base := time.Unix(1700000000, 0).UTC()
	for in, want := range map[string]time.Time{
		`1700000000.000001`:     base.Add(time.Microsecond),
		`"1700000000.000001"`:   base.Add(time.Microsecond),
		`1700000000.123456789`:  base.Add(123456789),
		`1700000000123.5`:       base.Add(123500 * time.Microsecond),
		`"1700000000123.25"`:    base.Add(123250 * time.Microsecond),
		`1700000000123456.5`:    base.Add(123456500),
		`1700000000123456789`:   base.Add(123456789),
		`"1700000000123456789"`: base.Add(123456789),
	} {
		if got := ParseTime(gjson.Parse(in)); got == nil || !got.Equal(want) {
			t.Errorf("%s: %v, want %v", in, got, want)
		}
	}
	// Newest-wins compares microseconds: two updates 0.6 ms apart must
	// not tie.
	older, newer := ParseTime(gjson.Parse(`1700000000123.2`)), ParseTime(gjson.Parse(`1700000000123.8`))
	if !newer.After(*older) {
		t.Errorf("1700000000123.8 (%v) is not after 1700000000123.2 (%v)", newer, older)
	}
}

// TestParseTimeReadsExponentsExactly: a number with an exponent was read
// through a float64 and, in milliseconds or microseconds, cut to the
// unit: Java's Double.toString (Jackson) writes 1700000000123.8 ms as
// 1.7000000001238E12, and it and 1.7000000001232E12 were one time, so
// newest-wins applied the older of two updates 0.6 ms apart over the newer.
func TestParseTimeReadsExponentsExactly(t *testing.T) {
	base := time.Unix(1700000000, 0).UTC()
	for in, want := range map[string]time.Time{
		`1.7000000001238E12`:      base.Add(123800 * time.Microsecond),
		`"1.7000000001238E12"`:    base.Add(123800 * time.Microsecond),
		`1.7000000001232e+12`:     base.Add(123200 * time.Microsecond),
		`17000000001238e-1`:       base.Add(123800 * time.Microsecond),
		`1.7000000001234567E9`:    base.Add(123456700),
		`1.7000000001234565E15`:   base.Add(123456500),
		`1.700000000123456789E18`: base.Add(123456789),
		`0.00017000000001238E16`:  base.Add(123800 * time.Microsecond),
		`1700000000123800000e-6`:  base.Add(123800 * time.Microsecond),
		`1.7E9`:                   base,
		`"1700000000.000001E0"`:   base.Add(time.Microsecond),
	} {
		if got := ParseTime(gjson.Parse(in)); got == nil || !got.Equal(want) {
			t.Errorf("%s: %v, want %v", in, got, want)
		}
	}
	older, newer := ParseTime(gjson.Parse(`1.7000000001232E12`)), ParseTime(gjson.Parse(`1.7000000001238E12`))
	if newer == nil || older == nil || newer.Truncate(time.Microsecond).Compare(older.Truncate(time.Microsecond)) <= 0 {
		t.Errorf("1.7000000001238E12 (%v) is not after 1.7000000001232E12 (%v) to the microsecond newest-wins compares", newer, older)
	}
	for _, in := range []string{`1e-70`, `1e70`, `-1.7E9`, `"1.7E9x"`} {
		if got := ParseTime(gjson.Parse(in)); got != nil {
			t.Errorf("%s: %v, want nil", in, got)
		}
	}
}

// TestParseTimeBoundsTheInstant: the 1971 to 9999 bound was checked on
// the wall clock of the offset written, so 9999-12-31T23:30:00-01:00 (year
// 10000, which RFC 3339 cannot write back) was taken, and the same
// instant as 1970-12-31T23:30:00-01:00 refused.
func TestParseTimeBoundsTheInstant(t *testing.T) {
	for _, in := range []string{`"9999-12-31T23:30:00-01:00"`, `"1971-01-01T00:30:00+01:00"`} {
		if got := ParseTime(gjson.Parse(in)); got != nil {
			t.Errorf("%s: %v, want nil (outside 1971 to 9999 in UTC)", in, got)
		}
	}
	if got := ParseTime(gjson.Parse(`"1970-12-31T23:30:00-01:00"`)); got == nil || !got.Equal(time.Date(1971, 1, 1, 0, 30, 0, 0, time.UTC)) {
		t.Errorf("1970-12-31T23:30:00-01:00: %v, want 1971-01-01T00:30:00Z", got)
	}
}

// TestParseTimeLeapSecond: RFC 3339 allows a leap second, 23:59:60, which
// Go's parser refuses: an event stamped in one went to the invalid topic.
// It reads as the end of the second before, never before that second nor
// after the next minute starts.
func TestParseTimeLeapSecond(t *testing.T) {
	before := time.Date(2016, 12, 31, 23, 59, 59, 500_000_000, time.UTC)
	after := time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, in := range []string{`"2016-12-31T23:59:60Z"`, `"2016-12-31T23:59:60.25Z"`, `"2017-01-01T08:59:60+09:00"`, `"2016-12-31t23:59:60z"`} {
		got := ParseTime(gjson.Parse(in))
		if got == nil || !got.After(before) || !got.Before(after) {
			t.Errorf("%s: %v, want a time after %v and before %v", in, got, before, after)
		}
	}
	for _, in := range []string{`"2016-12-31T23:59:61Z"`, `"2016-12-31T23:60:00Z"`} {
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

// TestParseValueErrorsNameTheirPlace: a duration or size that did not
// parse was reported as the parser's error alone ("time: invalid
// duration "abc""), naming neither the source, the setting nor the line.
func TestParseValueErrorsNameTheirPlace(t *testing.T) {
	for name, c := range map[string]struct{ settings, want string }{
		"tolerance":      {"tolerance: 5 minutes", `source "stripe": tolerance: line 4: `},
		"max_body":       {"max_body: 1 MBx", `source "stripe": max_body: line 4: `},
		"dedup_window":   {"dedup_window: abc", `source "stripe": dedup_window: line 4: `},
		"max_future":     {"max_future: -1h", `source "stripe": max_future: line 4: `},
		"batch.max_body": {"batch:\n      tokens_env: [T]\n      max_body: ten", `source "stripe": batch.max_body: line 6: `},
		"retry tier":     {"retry: {tiers: [1s, soon]}", `source "stripe": retry.tiers[1]: line 4: `},
		"sink.timeout":   {"events:\n      \"invoice.*\":\n        contract: stripe/invoice\n        sink: {url: \"https://h/x\", timeout: 1 minute}", `source "stripe": events["invoice.*"].sink.timeout: line 7: `},
		"not a scalar":   {"tolerance: [5m]", `source "stripe": tolerance: line 4: `},
	} {
		t.Run(name, func(t *testing.T) {
			doc := "sources:\n  stripe:\n    kind: stripe\n    " + c.settings + "\n    secrets_env: [X]\n  other:\n    kind: none\n"
			_, err := Parse([]byte(doc), WithoutSecrets())
			if err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("error %v, want it to start with %q", err, c.want)
			}
		})
	}
}

// TestParseRefusesZeroAndOverflowingSizes: max_body: 0 silently meant the
// 1 MiB default, and a size past int64 wrapped around (17179869184GiB is
// 2^64 bytes: 0, so the default again).
func TestParseRefusesZeroAndOverflowingSizes(t *testing.T) {
	parse := parseNone
	for name, c := range map[string]struct{ settings, says string }{
		"zero":               {"max_body: 0", `max_body: line 4: size "0": must be at least 1 byte`},
		"zero with a unit":   {"max_body: 0KiB", `max_body: line 4: size "0KiB": must be at least 1 byte`},
		"negative":           {"max_body: -1", `max_body: line 4: size "-1": must be at least 1 byte`},
		"batch zero":         {"batch: {tokens_env: [T], max_body: 0}", `batch.max_body: line 4: size "0": must be at least 1 byte`},
		"wraps to zero":      {"max_body: 17179869184GiB", `max_body: line 4: size "17179869184GiB" is too large`},
		"wraps to negative":  {"max_body: 8589934592GiB", `max_body: line 4: size "8589934592GiB" is too large`},
		"past int64":         {"max_body: 9223372036854775808", `max_body: line 4: size "9223372036854775808" is too large`},
		"batch wraps":        {"batch: {tokens_env: [T], max_body: 17179869184GiB}", `batch.max_body: line 4: size "17179869184GiB" is too large`},
		"wraps to the bound": {"max_body: 17592186044417MiB", `max_body: line 4: size "17592186044417MiB" is too large`},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := parse(c.settings); err == nil || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("error %v, want it to say %q", err, c.says)
			}
		})
	}
	for settings, want := range map[string]ByteSize{"max_body: 1": 1, "max_body: 1 MB": 1e6, "max_body: 2MiB": 2 << 20, "max_body: 1048576": 1 << 20} {
		if s, err := parse(settings); err != nil || s.MaxBody != want {
			t.Errorf("%s: max_body %v (%v), want %d", settings, s, err, want)
		}
	}
	if s, err := parse("json: true"); err != nil || s.MaxBody != DefaultMaxBody || s.Batch.MaxBody != DefaultBatchMaxBody {
		t.Errorf("sizes left out: %v, want the defaults", err)
	}
}

// TestParseRefusesZeroDurations: a duration of 0 silently took the
// default: dedup_window: 0s was 7 days (where 500us is refused), and
// max_future: 0s an hour.
func TestParseRefusesZeroDurations(t *testing.T) {
	for _, setting := range []string{"dedup_window: 0s", "max_future: 0s", "tolerance: 0s", "max_future: 0"} {
		_, err := Parse([]byte("sources:\n  s:\n    kind: none\n    "+setting+"\n"), WithoutSecrets())
		name := setting[:strings.IndexByte(setting, ':')]
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v, want it refused", setting, err)
		}
	}
}

// TestParseChecksHMACSettings: hmac.algorithm and hmac.encoding were
// checked only when ingest built the verifier, so the processor's
// --check-config passed a typo.
func TestParseChecksHMACSettings(t *testing.T) {
	parse := func(hmac string, opts ...LoadOpt) error {
		_, err := Parse([]byte("sources:\n  s:\n    kind: hmac\n    secrets_env: [T_HMAC_SECRET]\n    hmac: {header: X-Sig, "+hmac+"}\n"), opts...)
		return err
	}
	t.Setenv("T_HMAC_SECRET", "s")
	for hmac, want := range map[string]string{
		"algorithm: sha265": `source "s": hmac.algorithm "sha265": want sha256 or sha512`,
		"algorithm: md5":    `source "s": hmac.algorithm "md5": want sha256 or sha512`,
		"encoding: b64":     `source "s": hmac.encoding "b64": want hex or base64`,
		"encoding: base32":  `source "s": hmac.encoding "base32": want hex or base64`,
	} {
		t.Run(hmac, func(t *testing.T) {
			err := parse(hmac, WithoutSecrets())
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("without secrets: %v, want %q", err, want)
			}
			// With the secrets, the one error, not webhook's too.
			if err := parse(hmac); err == nil || !strings.HasPrefix(err.Error(), want) || strings.Count(err.Error(), "\n") != 0 {
				t.Fatalf("with secrets: %v, want only %q", err, want)
			}
		})
	}
	for _, hmac := range []string{"prefix: x", "algorithm: sha256", "algorithm: SHA512", "encoding: hex", "encoding: Base64", "algorithm: sha512, encoding: base64"} {
		if err := parse(hmac); err != nil {
			t.Errorf("%s: %v", hmac, err)
		}
	}
}

// TestParseRefusesBadPointerEscapes: RFC 6901 has two escapes, ~0 and ~1;
// "/a~2" was accepted and read as the member "a~2".
func TestParseRefusesBadPointerEscapes(t *testing.T) {
	for name, c := range map[string]struct{ settings, field, ptr string }{
		"event_type":        {"event_type: {pointer: /a~2}", "event_type", "/a~2"},
		"trailing tilde":    {"event_id: {pointer: /id~}", "event_id", "/id~"},
		"fallback":          {"event_id: {fallback: [/a, /b~x]}", "event_id.fallback[1]", "/b~x"},
		"event occurred_at": {"events:\n      \"*\": {contract: c, occurred_at: /t~~}", `events["*"]: occurred_at`, "/t~~"},
		"entity_key":        {"events:\n      \"*\": {contract: c, entity_key: \"k:{/a~2b}\"}", `events["*"]: entity_key`, "/a~2b"},
		"natural_key":       {"events:\n      \"*\": {contract: c, natural_key: \"{/id}:{/~}\"}", `events["*"]: natural_key`, "/~"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte("sources:\n  s:\n    kind: none\n    "+c.settings+"\n"), WithoutSecrets())
			if err == nil || !strings.HasPrefix(err.Error(), `source "s": `+c.field+": ") || !strings.Contains(err.Error(), fmt.Sprintf("JSON pointer %q: ~ must be followed by 0 or 1", c.ptr)) {
				t.Fatalf("error %v, want %s and the pointer %q named", err, c.field, c.ptr)
			}
		})
	}
	ok := "event_type: {pointer: /a~0b~1c}\n    event_id: {fallback: [/x~1, /~0]}\n    events:\n      \"*\": {contract: c, entity_key: \"k:{/a~1b}\", occurred_at: /t~0}"
	if _, err := Parse([]byte("sources:\n  s:\n    kind: none\n    "+ok+"\n"), WithoutSecrets()); err != nil {
		t.Errorf("~0 and ~1: %v", err)
	}
	if _, err := ParseTemplate("k:{/a~3}"); err == nil {
		t.Error("ParseTemplate accepted ~3")
	}
}

// TestEmptyFileSaysSo: an empty file (or one of comments only) was refused
// with a bare "EOF".
func TestEmptyFileSaysSo(t *testing.T) {
	for name, doc := range map[string]string{"empty": "", "blank": "\n  \n", "comments": "# sources go here\n\n# later\n", "document marker": "---\n"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sources.yaml")
			if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path, WithoutSecrets())
			if err == nil || !strings.HasPrefix(err.Error(), path+": no sources defined") || strings.Contains(err.Error(), "EOF") {
				t.Fatalf("error %v, want it to name %s and say it defines no sources", err, path)
			}
		})
	}
}

// TestParseRefusesEmptySecretNames: secrets_env: [""] read no variable
// (or "_FILE"), and was reported as "none of the secret variables [] is
// set", or not at all beside a set one; the processor, reading no
// secrets, took it.
func TestParseRefusesEmptySecretNames(t *testing.T) {
	t.Setenv("T_ES_SECRET", "s")
	t.Setenv("T_ES_TOKEN", "es-token-0123456789")
	for name, c := range map[string]struct{ settings, says string }{
		"only secret":  {"secrets_env: [\"\"]", `source "s": secrets_env[0]: empty environment variable name`},
		"beside one":   {"secrets_env: [T_ES_SECRET, \"\"]", `source "s": secrets_env[1]: empty environment variable name`},
		"blank":        {"secrets_env: [\" \", T_ES_SECRET]", `source "s": secrets_env[0]: empty environment variable name`},
		"batch token":  {"secrets_env: [T_ES_SECRET]\n    batch: {tokens_env: [T_ES_TOKEN, \"\"]}", `source "s": batch.tokens_env[1]: empty environment variable name`},
		"sink header":  {"secrets_env: [T_ES_SECRET]\n    events:\n      \"*\": {contract: c, sink: {url: \"https://h\", headers_env: {Authorization: \"\"}}}", `source "s": events["*"]: sink.headers_env["Authorization"]: empty environment variable name`},
		"null in list": {"secrets_env: [T_ES_SECRET, ~]", `source "s": secrets_env[1]: empty environment variable name`},
	} {
		t.Run(name, func(t *testing.T) {
			for _, opts := range [][]LoadOpt{nil, {WithoutSecrets()}} {
				_, err := Parse([]byte("sources:\n  s:\n    kind: stripe\n    "+c.settings+"\n"), opts...)
				if err == nil || !strings.Contains(err.Error(), c.says) {
					t.Fatalf("with %d options: error %v, want %q", len(opts), err, c.says)
				}
			}
		})
	}
}

// TestParseReportsAnUnknownKindOnce: with the secrets read, an unknown
// kind was reported by the kind check and again by webhook.New.
func TestParseReportsAnUnknownKindOnce(t *testing.T) {
	t.Setenv("T_UK_SECRET", "s")
	for _, kind := range []string{"slak", `""`} {
		_, err := Parse([]byte("sources:\n  s:\n    kind: " + kind + "\n    secrets_env: [T_UK_SECRET]\n"))
		if err == nil || strings.Count(err.Error(), "kind") != 1 {
			t.Errorf("kind %s: error %v, want the kind reported once", kind, err)
		}
	}
}

// TestParseChecksSinks: a sink's method and retryable statuses were not
// checked; an event went to a GET without its body, and a status no
// server answers could never be retried.
func TestParseChecksSinks(t *testing.T) {
	parse := func(sink string) error {
		_, err := Parse([]byte("sources:\n  s:\n    kind: none\n    events:\n      \"*\": {contract: c, sink: {url: \"https://h/x\", "+sink+"}}\n"), WithoutSecrets())
		return err
	}
	for sink, says := range map[string]string{
		"method: GET":                  `sink.method "GET": want one of POST, PUT, PATCH`,
		"method: DELETE":               `sink.method "DELETE": want one of POST, PUT, PATCH`,
		"method: post":                 `sink.method "post": want one of POST, PUT, PATCH`,
		"method: \"POST \"":            `sink.method "POST ": want one of POST, PUT, PATCH`,
		"retryable_status: [429, 99]":  `sink.retryable_status[1]: 99 is not an HTTP status`,
		"retryable_status: [600]":      `sink.retryable_status[0]: 600 is not an HTTP status`,
		"retryable_status: [0]":        `sink.retryable_status[0]: 0 is not an HTTP status`,
		"retryable_status: [-503]":     `sink.retryable_status[0]: -503 is not an HTTP status`,
		"retryable_status: [50300]":    `sink.retryable_status[0]: 50300 is not an HTTP status`,
		"method: GET, timeout: 1s":     `sink.method "GET"`,
		"method: PATCH, timeout: 1s":   "",
		"method: PUT":                  "",
		"method: POST":                 "",
		"timeout: 1s":                  "",
		"retryable_status: [100, 599]": "",
	} {
		t.Run(sink, func(t *testing.T) {
			err := parse(sink)
			switch {
			case says == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case says != "" && (err == nil || !strings.HasPrefix(err.Error(), `source "s": events["*"]: `+says)):
				t.Fatalf("error %v, want %q", err, says)
			}
		})
	}
}

// TestParseRefusesSeveralDocuments: the decoder read the file's first YAML
// document and dropped everything after a "---" without a word, sources
// and mistakes alike (a second document's kind "nonsense" passed every
// --check-config). A "---" before the one document, or a trailing one
// with nothing after it, is still one document.
func TestParseRefusesSeveralDocuments(t *testing.T) {
	const one = "sources:\n  s:\n    kind: none\n"
	for name, c := range map[string]struct {
		doc, says string
	}{
		"second document":           {one + "---\nsources:\n  t:\n    kind: nonsense\n", "(the second starts at line 4)"},
		"second document after ...": {one + "...\n---\nx: 1\n", "(the second starts at line 5)"},
		"second document a scalar":  {one + "--- \nfoo\n", "(the second starts at line 4)"},
	} {
		t.Run(name, func(t *testing.T) {
			for _, opts := range [][]LoadOpt{nil, {WithoutSecrets()}} {
				f, err := Parse([]byte(c.doc), opts...)
				if !errors.Is(err, ErrSeveralDocuments) || !strings.Contains(err.Error(), c.says) {
					t.Fatalf("with %d options: sources %v, error %v; want ErrSeveralDocuments saying %q", len(opts), f, err, c.says)
				}
			}
		})
	}
	// The parser reads the whole stream first: a second document that
	// does not parse is refused, naming its line.
	if _, err := Parse([]byte(one + "---\nsources: [\n")); err == nil || !strings.Contains(err.Error(), "[5:10]") {
		t.Errorf("a second document that does not parse: %v, want its line named", err)
	}
	for name, doc := range map[string]string{
		"leading marker":         "---\n" + one,
		"trailing marker":        one + "---\n",
		"trailing marker, notes": one + "---\n# nothing here\n",
		"comment, then marker":   "# sources\n---\n" + one,
	} {
		if _, err := Parse([]byte(doc)); err != nil {
			t.Errorf("%s: %v, want it accepted", name, err)
		}
	}
}

// TestParseRefusesTheSameWithAndWithoutSecrets: whether a file is valid
// does not depend on whether its secrets are read. Kind none with
// secrets, a signing kind without secrets_env, an hmac.header that is no
// HTTP header name and an hmac.prefix leaving no room for the MAC were
// checked only while reading the secrets or building the verifier, so the
// processor's and inletctl's --check-config (WithoutSecrets) passed files
// ingest then refused.
func TestParseRefusesTheSameWithAndWithoutSecrets(t *testing.T) {
	t.Setenv("T_WS_SECRET", "s3cret")
	// The signature header's bound is 4 KiB; a sha512 hex MAC is 128 bytes.
	room := strings.Repeat("p", webhook.MaxHeaderBytes-128)
	for name, c := range map[string]struct{ src, says string }{
		"kind none with secrets_env": {"kind: none\n    secrets_env: [T_WS_SECRET]", `source "s": kind none takes no secrets`},
		"stripe without secrets_env": {"kind: stripe", `source "s": secrets_env: name at least one environment variable`},
		"github, empty secrets_env":  {"kind: github\n    secrets_env: []", `source "s": secrets_env: name at least one environment variable`},
		"hmac without secrets_env":   {"kind: hmac\n    hmac: {header: X-Sig}", `source "s": secrets_env: name at least one environment variable`},
		"hmac header with a space":   {"kind: hmac\n    secrets_env: [T_WS_SECRET]\n    hmac: {header: \"X Sig\"}", `source "s": hmac.header "X Sig": not a valid HTTP header name`},
		"hmac header with a colon":   {"kind: hmac\n    secrets_env: [T_WS_SECRET]\n    hmac: {header: \"X-Sig:\"}", `source "s": hmac.header "X-Sig:": not a valid HTTP header name`},
		"hmac header not ASCII":      {"kind: hmac\n    secrets_env: [T_WS_SECRET]\n    hmac: {header: X-Signatür}", `source "s": hmac.header "X-Signatür": not a valid HTTP header name`},
		"hmac prefix too long":       {"kind: hmac\n    secrets_env: [T_WS_SECRET]\n    hmac: {header: X-Sig, algorithm: sha512, prefix: " + room + "p}", `source "s": hmac.prefix: 3969 bytes, too long`},
		"hmac prefix too long, b64":  {"kind: hmac\n    secrets_env: [T_WS_SECRET]\n    hmac: {header: X-Sig, encoding: base64, prefix: " + strings.Repeat("p", webhook.MaxHeaderBytes-43) + "}", `source "s": hmac.prefix: 4053 bytes, too long`},
	} {
		t.Run(name, func(t *testing.T) {
			y := []byte("sources:\n  s:\n    " + c.src + "\n")
			for _, opts := range [][]LoadOpt{{WithoutSecrets()}, nil} {
				_, err := Parse(y, opts...)
				if err == nil || !strings.HasPrefix(err.Error(), c.says) {
					t.Fatalf("with %d options: error %v, want %q", len(opts), err, c.says)
				}
				// Once, not again by webhook.New.
				if n := strings.Count(err.Error(), "\n"); n != 0 {
					t.Errorf("with %d options: %d more errors: %v", len(opts), n, err)
				}
			}
		})
	}
	for name, src := range map[string]string{
		"kind none":          "kind: none",
		"stripe":             "kind: stripe\n    secrets_env: [T_WS_SECRET]",
		"hmac, odd header":   "kind: hmac\n    secrets_env: [T_WS_SECRET]\n    hmac: {header: \"X-Sig_v2.b!#$%&'*+^`|~\"}",
		"hmac, full prefix":  "kind: hmac\n    secrets_env: [T_WS_SECRET]\n    hmac: {header: X-Sig, algorithm: sha512, prefix: " + room + "}",
		"hmac, base64 bound": "kind: hmac\n    secrets_env: [T_WS_SECRET]\n    hmac: {header: X-Sig, encoding: base64, prefix: " + strings.Repeat("p", webhook.MaxHeaderBytes-44) + "}",
	} {
		y := []byte("sources:\n  s:\n    " + src + "\n")
		for _, opts := range [][]LoadOpt{nil, {WithoutSecrets()}} {
			if _, err := Parse(y, opts...); err != nil {
				t.Errorf("%s, with %d options: %v, want it accepted", name, len(opts), err)
			}
		}
	}
}

// TestParseRefusesBlankSecrets: a secret variable holding only whitespace
// was taken as the signing key (a _FILE holding only whitespace was
// refused), and a blank batch token as a token. The error names the
// variable, never the value.
func TestParseRefusesBlankSecrets(t *testing.T) {
	t.Setenv("T_BS_BLANK", " \t ")
	t.Setenv("T_BS_SECRET", "s3cret")
	t.Setenv("T_BS_TOKEN", "t0ken-0123456789")
	for name, c := range map[string]struct{ src, says string }{
		"only secret":    {"kind: github\n    secrets_env: [T_BS_BLANK]", `source "s": secrets_env: environment variable T_BS_BLANK holds only whitespace`},
		"beside one set": {"kind: stripe\n    secrets_env: [T_BS_SECRET, T_BS_BLANK]", `source "s": secrets_env: environment variable T_BS_BLANK holds only whitespace`},
		"hmac":           {"kind: hmac\n    secrets_env: [T_BS_BLANK]\n    hmac: {header: X-Sig}", `source "s": secrets_env: environment variable T_BS_BLANK holds only whitespace`},
		"batch token":    {"kind: none\n    batch: {tokens_env: [T_BS_TOKEN, T_BS_BLANK]}", `source "s": batch.tokens_env: environment variable T_BS_BLANK holds only whitespace`},
		"only token":     {"kind: none\n    batch: {tokens_env: [T_BS_BLANK]}", `source "s": batch.tokens_env: environment variable T_BS_BLANK holds only whitespace`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte("sources:\n  s:\n    " + c.src + "\n"))
			if err == nil || err.Error() != c.says {
				t.Fatalf("error %v, want only %q", err, c.says)
			}
			if strings.Contains(err.Error(), "\t") {
				t.Errorf("the error quotes the value: %q", err)
			}
		})
	}
	// Whitespace around a secret is the sender's business.
	t.Setenv("T_BS_PADDED", " s3cret ")
	if _, err := Parse([]byte("sources:\n  s:\n    kind: github\n    secrets_env: [T_BS_PADDED]\n")); err != nil {
		t.Errorf("a secret with spaces around it: %v", err)
	}
}

// TestParseRefusesAFixedEventID: event_id.default gave every event
// without an id the same one, so on the compacted raw topic each
// overwrote the one before, and each read as the one before's duplicate.
func TestParseRefusesAFixedEventID(t *testing.T) {
	for _, opts := range [][]LoadOpt{nil, {WithoutSecrets()}} {
		t.Setenv("T_FIXED", "s")
		_, err := Parse([]byte("sources:\n  s:\n    kind: hmac\n    secrets_env: [T_FIXED]\n    hmac: {header: X-Sig}\n    event_id: {pointer: /id, default: same}\n"), opts...)
		if err == nil || !strings.Contains(err.Error(), "event_id.default") {
			t.Errorf("event_id with a default: %v, want it refused naming event_id.default", err)
		}
	}
	if _, err := Parse([]byte("sources:\n  s:\n    kind: hmac\n    secrets_env: [T_FIXED]\n    hmac: {header: X-Sig}\n    event_type: {pointer: /type, default: blob}\n")); err != nil {
		t.Errorf("event_type with a default: %v", err)
	}
}

// TestSourceNamesHoldNoColon guards the raw topic key, "source:event-id":
// event ids may hold ":", so only a source name without one keeps source
// "a:b" with id "c" and source "a" with id "b:c" apart.
func TestSourceNamesHoldNoColon(t *testing.T) {
	for _, name := range []string{"a:b", "a%3Ab", "A", "a b", ""} {
		if _, err := Parse([]byte("sources:\n  \"" + name + "\":\n    kind: none\n")); err == nil {
			t.Errorf("source name %q accepted", name)
		}
	}
	if _, err := Parse([]byte("sources:\n  stripe-eu_2:\n    kind: none\n")); err != nil {
		t.Errorf("a plain name refused: %v", err)
	}
}

// TestParseErrorsInAStableOrder: a source's events entries, and each
// entry's two key templates, were checked in map order, so the same file
// was refused with its lines in another order on every run (found by
// FuzzParse).
func TestParseErrorsInAStableOrder(t *testing.T) {
	doc := []byte("sources:\n  s:\n    kind: none\n    events:\n      \"orders/*\": {contract: c, entity_key: \"x:{\", natural_key: \"{/a}{/b}\"}\n" +
		"      \"b\": {entity_key: \"{/x\"}\n      \"a\": {entity_key: \"{/y\"}\n")
	_, first := Parse(doc, WithoutSecrets())
	if first == nil {
		t.Fatal("accepted")
	}
	for range 50 {
		if _, err := Parse(doc, WithoutSecrets()); err == nil || err.Error() != first.Error() {
			t.Fatalf("the same file refused with:\n%v\nthen with:\n%v", first, err)
		}
	}
}

// TestParseRefusesZeroAndFractionalCounts: retry.max_attempts: 0, meant
// as "no retries", ran the full budget, and batch.max_lines: 0 was 10,000;
// the YAML decoder truncated 0.5 to 0 (the default again) and 10.9 to 10.
// Each is refused naming the setting and its line; left out, the default.
func TestParseRefusesZeroAndFractionalCounts(t *testing.T) {
	parse := parseNone
	for settings, says := range map[string]string{
		"retry: {max_attempts: 0}":                      "retry.max_attempts: line 4: 0: must be at least 1",
		"retry: {max_attempts: 0.5}":                    `retry.max_attempts: line 4: "0.5" is not a whole number`,
		"retry: {max_attempts: -1}":                     "retry.max_attempts: line 4: -1: must be at least 1",
		"batch: {tokens_env: [T], max_lines: 0}":        "batch.max_lines: line 4: 0: must be at least 1",
		"batch: {tokens_env: [T], max_lines: 10.9}":     `batch.max_lines: line 4: "10.9" is not a whole number`,
		"batch: {tokens_env: [T], max_lines: -0.5}":     `batch.max_lines: line 4: "-0.5" is not a whole number`,
		"batch: {tokens_env: [T], max_lines: [1]}":      "batch.max_lines: line 4",
		"batch: {tokens_env: [T], max_lines: lots}":     `"lots" is not a whole number`,
		"retry: {max_attempts: 99999999999999999999}":   "is not a whole number",
		"batch: {tokens_env: [T], max_lines: 10000001}": "batch.max_lines must be positive and at most",
	} {
		if _, err := parse(settings); err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("%s: %v, want it refused saying %q", settings, err, says)
		}
	}
	s, err := parse("retry: {max_attempts: 2}\n    batch: {tokens_env: [T], max_lines: 5}")
	if err != nil || s.Retry.MaxAttempts != 2 || s.Batch.MaxLines != 5 {
		t.Fatalf("2 and 5: %+v %+v, %v", s.Retry, s.Batch, err)
	}
	if s, err := parse("json: true"); err != nil || s.Retry.MaxAttempts != 0 || s.Batch.MaxLines != DefaultBatchMaxLines {
		t.Fatalf("left out: %v, want max_attempts unset (the processor's budget) and max_lines %d", err, DefaultBatchMaxLines)
	}
}

// TestParseRefusesHMACSettingsOnOtherKinds: the hmac block is read by
// kind hmac alone; on a github source (hmac: {algorithm: sha1, header:
// X-Hub-Signature}, meant for the legacy SHA-1 signature) it was accepted
// and ignored, the source verified as the kind does.
func TestParseRefusesHMACSettingsOnOtherKinds(t *testing.T) {
	for _, kind := range []string{"github", "stripe", "none"} {
		_, err := Parse([]byte("sources:\n  s:\n    kind: "+kind+"\n    hmac: {algorithm: sha1, header: X-Hub-Signature}\n"), WithoutSecrets())
		if err == nil || !strings.Contains(err.Error(), "hmac: settings read by kind hmac only; kind "+kind) {
			t.Errorf("kind %s: %v, want the hmac block refused", kind, err)
		}
	}
}

// TestParseNamesABadSecretByItsVariable: a standard-webhooks secret that
// is not whsec_ and base64 is named by its variable and its place in
// secrets_env. The provider counts only the secrets that are set: after a
// rotation with the new variable unset, "secrets[0]" named the wrong one.
func TestParseNamesABadSecretByItsVariable(t *testing.T) {
	t.Setenv("T_SW_NEW", "")
	t.Setenv("T_SW_OLD", "whsec_not*base64")
	_, err := Parse([]byte("sources:\n  s:\n    kind: standard-webhooks\n    secrets_env: [T_SW_NEW, T_SW_OLD]\n"))
	if err == nil || !strings.Contains(err.Error(), "secrets_env[1] (T_SW_OLD): is not whsec_ followed by base64") {
		t.Fatalf("%v, want the error to name T_SW_OLD at secrets_env[1]", err)
	}
	if strings.Contains(err.Error(), "not*base64") {
		t.Errorf("the error shows the secret: %v", err)
	}
}

// parseNone parses a file of one source "s" of kind none with settings
// (indented as its other keys), without secrets, and returns the source.
func parseNone(settings string) (*Source, error) {
	f, err := Parse([]byte("sources:\n  s:\n    kind: none\n    "+settings+"\n"), WithoutSecrets())
	if err != nil {
		return nil, err
	}
	s, _ := f.Get("s")
	return s, nil
}

// TestParseRefusesShortBatchTokens: a batch bearer token is all that
// stands between the internet and a source's events, and any length was
// taken: the Kubernetes Secret example's REPLACE_ME, deployed as it is,
// let anyone who reaches ingest write events for the source. (That value
// is now refused as the placeholder first: TestParseRefusesPlaceholderSecrets.)
func TestParseRefusesShortBatchTokens(t *testing.T) {
	t.Setenv("T_ST_SECRET", "whsec_dGVzdC1zZWNyZXQ=")
	t.Setenv("T_ST_SHORT", "tooshort!!")
	t.Setenv("T_ST_LONG", "0123456789abcdef")
	file := "sources:\n  s:\n    kind: standard-webhooks\n    secrets_env: [T_ST_SECRET]\n    batch: {tokens_env: [%s]}\n"
	_, err := Parse([]byte(fmt.Sprintf(file, "T_ST_LONG, T_ST_SHORT")))
	if err == nil {
		t.Fatal("a 10-byte batch token was taken")
	}
	if want := `source "s": batch.tokens_env[1] (T_ST_SHORT) is 10 bytes long: a batch token must have at least 16`; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if strings.Contains(err.Error(), "tooshort!!") {
		t.Errorf("error quotes the token: %q", err)
	}
	f, err := Parse([]byte(fmt.Sprintf(file, "T_ST_LONG")))
	if err != nil {
		t.Fatalf("a 16-byte token was refused: %v", err)
	}
	if s, _ := f.Get("s"); len(s.BatchTokens()) != 1 {
		t.Errorf("tokens = %d, want 1", len(s.BatchTokens()))
	}
}

// TestParseRefusesPlaceholderSecrets: the Kubernetes Secret example ships
// REPLACE_ME values; applied as it is, ingest took "REPLACE_ME" as a
// webhook secret and accepted events anyone signed with it. A secret or
// batch token that is the placeholder (trimmed, any case) or starts with
// it is refused, naming the variable and never the value.
func TestParseRefusesPlaceholderSecrets(t *testing.T) {
	for _, c := range []struct {
		name, file, value, want string
	}{
		{"github secret", "kind: github\n    secrets_env: [T_PH]", "REPLACE_ME", "secrets_env[0] (T_PH)"},
		{"any case, spaces around", "kind: shopify\n    secrets_env: [T_PH]", "  replace_me\t", "secrets_env[0] (T_PH)"},
		{"the example's stripe value", "kind: stripe\n    secrets_env: [T_OK, T_PH]", "REPLACE_ME_whsec_...", "secrets_env[1] (T_PH)"},
		{"hmac secret", "kind: hmac\n    secrets_env: [T_PH]\n    hmac: {header: X-Sig}", "Replace_Me-with-the-real-one", "secrets_env[0] (T_PH)"},
		{"batch token past 16 bytes", "kind: standard-webhooks\n    secrets_env: [T_SW]\n    batch: {tokens_env: [T_PH]}", "REPLACE_ME_0123456789abcdef", "batch.tokens_env[0] (T_PH)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("T_OK", "whsec_a_real_secret")
			t.Setenv("T_SW", "whsec_dGVzdC1zZWNyZXQ=")
			t.Setenv("T_PH", c.value)
			_, err := Parse([]byte("sources:\n  s:\n    " + c.file + "\n"))
			if err == nil {
				t.Fatalf("%q taken as a secret", c.value)
			}
			want := `source "s": ` + c.want + " holds the placeholder of the Kubernetes Secret example"
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
			if strings.Contains(strings.ToUpper(err.Error()), "REPLACE_ME") {
				t.Errorf("error quotes the value: %q", err)
			}
		})
	}
	// Only a value that starts with it: a real secret may hold the word.
	t.Setenv("T_PH", "secret-REPLACE_ME-0123456789")
	if _, err := Parse([]byte("sources:\n  s:\n    kind: github\n    secrets_env: [T_PH]\n")); err != nil {
		t.Errorf("a secret holding the placeholder after its start was refused: %v", err)
	}
}

// TestShortSecretsMeasureTheKey: ShortSecrets names each secret whose
// HMAC key is under MinSecretLen bytes by its variable: a Standard
// Webhooks secret by the key it decodes to (whsec_ and base64 made an
// 8-byte key look 18 bytes long), the others by their bytes.
func TestShortSecretsMeasureTheKey(t *testing.T) {
	t.Setenv("T_GH_NEW", "0123456789abcdef") // 16 bytes: long enough
	t.Setenv("T_GH_OLD", "hunter2")
	t.Setenv("T_SW", "whsec_"+base64.StdEncoding.EncodeToString([]byte("8-bytes!")))
	f, err := Parse([]byte(`sources:
  gh:
    kind: github
    secrets_env: [T_GH_NEW, T_GH_OLD]
  sw:
    kind: standard-webhooks
    secrets_env: [T_SW]
`))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]ShortSecret{"gh": {{Env: "T_GH_OLD", Len: 7}}, "sw": {{Env: "T_SW", Len: 8}}} {
		src, _ := f.Get(name)
		if got := src.ShortSecrets(); !slices.Equal(got, want) {
			t.Errorf("%s: ShortSecrets %+v, want %+v", name, got, want)
		}
	}
}

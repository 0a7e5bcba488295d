package source

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzParseTemplate parses arbitrary key templates and renders each one
// that parses against an arbitrary payload and envelope fields.
// Invariants:
//
//   - ParseTemplate never panics, and an error names the template (quoted)
//     unless the template is empty;
//   - a template that parses renders the same key, or the same error, every
//     time for the same input;
//   - a key is never empty, and a failure is a *TemplateError naming one of
//     the template's placeholders;
//   - with valid UTF-8 in the template, the fields and the payload, the key
//     is valid UTF-8.
func FuzzParseTemplate(f *testing.F) {
	payload := `{"id":123,"a/b":{"c~d":"x"},"status":"paid","empty":"","obj":{"k":1},"flag":true,"sur":"ord-\ud800","pair":"\ud83d\ude00","repl":"\ufffd","path":"p/q:50%","big":1e400}`
	for _, tmpl := range []string{
		"shopify:order:{/id}", "{/id}:{/status}", "{$source}:{$event_type}:{$event_id}@{$schema_version}",
		"{/a~1b/c~0d}", "{/flag}", "k:{/nope}", "k:{/empty}", "k:{/obj}", "k:{/sur}", "k:{/pair}", "k:{/repl}",
		"shop:{/path}/v1", "{/path}:suffix", "{/path}:{/id}%", "{/id}:{/path}%", "k:{/big}",
		"", "a}b", "{/x", "{x}", "{/}", "{$nope}", "a{/x}}", "{/a}{/b}", "k:{/a}{$event_id}", "{/a}%{/b}",
		"{/a}é{/b}", "{/a}\xc3{/b}", "{/a~2}", "{/a~}", "{/00}:{/0}",
	} {
		f.Add(tmpl, []byte(payload), "shop", "orders/paid", "evt_1", "2024-07")
	}
	f.Fuzz(func(t *testing.T, tmpl string, payload []byte, src, eventType, eventID, version string) {
		tm, err := ParseTemplate(tmpl)
		if err != nil {
			if tmpl != "" && !strings.Contains(err.Error(), strconv.Quote(tmpl)) {
				t.Fatalf("ParseTemplate(%q): error does not name the template: %v", tmpl, err)
			}
			return
		}
		fields := &TemplateFields{Source: src, EventType: eventType, EventID: eventID, SchemaVersion: version}
		key, err := tm.Render(payload, fields)
		key2, err2 := tm.Render(payload, fields)
		if key != key2 || (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("%q renders %q (%v), then %q (%v)", tmpl, key, err, key2, err2)
		}
		if err != nil {
			var te *TemplateError
			if !errors.As(err, &te) || !strings.Contains(tmpl, "{"+te.Pointer+"}") {
				t.Fatalf("%q: error %v, want a *TemplateError naming one of its placeholders", tmpl, err)
			}
			return
		}
		if key == "" {
			t.Fatalf("%q rendered an empty key", tmpl)
		}
		if utf8.ValidString(tmpl) && utf8.Valid(payload) && utf8.ValidString(src+eventType+eventID+version) && !utf8.ValidString(key) {
			t.Fatalf("%q: key %q is not valid UTF-8", tmpl, key)
		}
	})
}

// FuzzTemplateKeysDoNotCollide renders two pairs of values through a
// template with a fuzzed separator and tail. Invariant: different values
// render different keys (a natural key shared by two events drops one of
// them as a duplicate), and the same values the same key.
func FuzzTemplateKeysDoNotCollide(f *testing.F) {
	for _, c := range [][5]string{
		{":", "x:y", "z", "x", "y:z"},
		{":", "50%", "1", "50%25", "1"},
		{"é", "café", "ê", "caf", "éê"},
		{"é", "crêpe", "é", "crêpeé", ""},
		{"→", "a→b", "c", "a", "b→c"},
		{"3", "A3", "x", "A", "3x"},
		{"%3A", "a", "b", "a%3A", "b"},
		{":", "1", "2", "1", "2"},
	} {
		f.Add(c[0], "/v1", c[1], c[2], c[3], c[4])
	}
	f.Fuzz(func(t *testing.T, sep, tail, a1, b1, a2, b2 string) {
		if !utf8.ValidString(a1) || !utf8.ValidString(b1) || !utf8.ValidString(a2) || !utf8.ValidString(b2) || strings.ContainsAny(sep+tail, "{}") {
			t.Skip() // JSON strings hold valid UTF-8; braces make placeholders
		}
		tm, err := ParseTemplate("k:{/a}" + sep + "{/b}" + tail)
		if err != nil {
			return // no separator, or one starting with %
		}
		render := func(a, b string) (string, bool) {
			payload, _ := json.Marshal(map[string]string{"a": a, "b": b})
			key, err := tm.Render(payload, &TemplateFields{})
			return key, err == nil
		}
		k1, ok1 := render(a1, b1)
		k2, ok2 := render(a2, b2)
		if !ok1 || !ok2 {
			return // an empty value, or a lone surrogate: refused
		}
		if same := a1 == a2 && b1 == b2; same != (k1 == k2) {
			t.Fatalf("separator %q: a=%q b=%q renders %q, a=%q b=%q renders %q", sep, a1, b1, k1, a2, b2, k2)
		}
	})
}

// FuzzPointer evaluates arbitrary JSON pointers against arbitrary bodies.
// Invariants: never a panic; Get and peek (the copying and the aliasing
// lookups) agree; and on a valid JSON body the gjson path a pointer
// compiles to reads what RFC 6901 says, the token-at-a-time walk (which
// has no path syntax to get wrong) being the reference.
func FuzzPointer(f *testing.F) {
	doc := `{"a":[10,20,30],"o":{"01":"zero-one","1":"one","":"empty"},"":{"x":"under empty"},"a/b":{"m~n":"esc"},"n":null,"k.d":{"*":1,"#":2,"@this":3,"a|b":4,"x?":5,"!":6,"=":7}}`
	for _, ptr := range []string{
		"/a/1", "/a/0", "/a/01", "/a/00", "/a/-", "/a/+1", "/a/3", "/o/01", "/o/1", "/o/", "/", "//x",
		"/a~1b/m~0n", "/a/1/x", "/n/x", "", "a", "/k.d/*", "/k.d/#", "/k.d/@this", "/k.d/a|b", "/k.d/x?", "/k.d/!", "/k.d/=",
		"/a/#", "/a/99999999999999999999", "/a/1e0",
	} {
		f.Add(ptr, []byte(doc))
	}
	f.Add("/a", []byte(`{"a":1,"a":2}`))
	f.Add("/a\\b", []byte(`{"a\\b":1}`))
	f.Add("/\u00e9", []byte(`{"\u00e9":1}`))
	f.Fuzz(func(t *testing.T, ptr string, body []byte) {
		p := CompilePointer(ptr)
		got, peeked := p.Get(body), p.peek(body)
		if got.Exists() != peeked.Exists() || got.Raw != peeked.Raw || got.Type != peeked.Type {
			t.Fatalf("%q in %q: Get %q, peek %q", ptr, body, got.Raw, peeked.Raw)
		}
		if p.path == "" || p.steps != nil || !json.Valid(body) {
			return
		}
		tokens := strings.Split(ptr[1:], "/")
		for i, tk := range tokens {
			tokens[i] = strings.ReplaceAll(strings.ReplaceAll(tk, "~1", "/"), "~0", "~")
		}
		want := CompiledPointer{path: ptr, steps: tokens}.Get(body)
		if got.Exists() != want.Exists() || got.Raw != want.Raw || got.Type != want.Type {
			t.Fatalf("%q in %s: path %q reads %q (exists %v), RFC 6901 %q (exists %v)", ptr, body, p.path, got.Raw, got.Exists(), want.Raw, want.Exists())
		}
	})
}

// fuzzSources are sources whose fields read headers, pointers, fallbacks
// and defaults in every order Extract knows.
const fuzzSources = `sources:
  stripe:
    kind: stripe
    secrets_env: [X]
  github:
    kind: github
    secrets_env: [X]
  shop:
    kind: shopify
    secrets_env: [X]
  std:
    kind: standard-webhooks
    secrets_env: [X]
  parts:
    kind: none
    event_id: {pointer: /id, fallback: [/a, /b]}
    schema_version: {header: X-Version, pointer: /v, default: v9}
  blobs:
    kind: none
    json: false
    event_id: {hash_body: false}
`

// FuzzExtract reads event metadata from arbitrary bodies and headers with
// each kind's defaults. Invariants: never a panic; the same delivery gives
// the same metadata (or error) every time; what Extract accepts passes
// CheckMeta (at most maxMetaLen bytes, valid UTF-8, no control
// characters: it becomes keys, headers and metric labels), and a business
// time is in UTC between 1971 and 9999.
func FuzzExtract(f *testing.F) {
	file, err := Parse([]byte(fuzzSources), WithoutSecrets())
	if err != nil {
		f.Fatal(err)
	}
	names := file.Names()
	for i, c := range []struct{ body, hdr string }{
		{`{"id":"evt_1","type":"invoice.paid","api_version":"2024-06-20","created":1719411023}`, ""},
		{`{"ref":"refs/heads/main"}`, "push"},
		{`{"id":1,"updated_at":"2025-01-10T12:00:00-05:00"}`, "orders/updated"},
		{`{"type":"user.created","timestamp":"2025-01-02T03:04:05Z","data":{}}`, "msg_1"},
		{`{"type":"t","a":"x:y","b":7}`, "v2"},
		{`{"type":"t","id":1e400}`, ""},
		{`{"type":"t","id":"ord-\ud800"}`, ""},
		{`{"type":"t","id":NaN}`, ""},
		{`{"type":"t\u0000","id":"1"}`, "\x1b[31m"},
		{`{"type":"` + strings.Repeat("x", 300) + `","id":"1"}`, strings.Repeat("é", 200)},
		{"not json", "\xff"},
	} {
		f.Add(uint8(i), []byte(c.body), c.hdr)
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte, hdr string) {
		src, _ := file.Get(names[int(which)%len(names)])
		h := http.Header{}
		for _, k := range []string{"X-Github-Event", "X-Github-Delivery", "X-Shopify-Topic", "X-Shopify-Webhook-Id",
			"X-Shopify-Api-Version", "X-Shopify-Triggered-At", "Webhook-Id", "X-Event-Type", "X-Event-Id", "X-Version"} {
			h.Set(k, hdr)
		}
		m, err := src.Extract(h, body)
		m2, err2 := src.Extract(h, body)
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) ||
			m.EventType != m2.EventType || m.EventID != m2.EventID || m.SchemaVersion != m2.SchemaVersion ||
			(m.OccurredAt == nil) != (m2.OccurredAt == nil) || (m.OccurredAt != nil && !m.OccurredAt.Equal(*m2.OccurredAt)) {
			t.Fatalf("%s: %+v (%v), then %+v (%v)", src.Name, m, err, m2, err2)
		}
		if err != nil {
			return
		}
		for name, v := range map[string]string{"event_type": m.EventType, "event_id": m.EventID, "schema_version": m.SchemaVersion} {
			if err := CheckMeta(v); err != nil || (name != "schema_version" && v == "") {
				t.Fatalf("%s: %s %q accepted: %v", src.Name, name, v, err)
			}
		}
		if at := m.OccurredAt; at != nil && (at.Location().String() != "UTC" || at.Year() < 1971 || at.Year() > 9999) {
			t.Fatalf("%s: occurred_at %v", src.Name, at)
		}
	})
}

// FuzzParse loads arbitrary sources files. Invariants: never a panic;
// the same file is accepted or refused the same way every time (a
// map-ordered check could flip between runs), with the same error but
// for which of several unknown fields the YAML decoder names; Load names the file in
// every error; an accepted file holds only sources whose name, templates
// and pointers the loader's own checks accept.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"../../deploy/sources.example.yaml"} {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	for _, doc := range []string{
		fuzzSources, "", "# only a comment\n", "sources: {}\n", "sources:\n  s:\n",
		"sources:\n  s:\n    kind: none\n---\nsources:\n  t:\n    kind: none\n",
		"sources:\n  s:\n    kind: none\n    batch: {tokens_env: [T_TOK], max_lines: -1}\n",
		"sources:\n  s:\n    kind: none\n    dedup_window: 500us\n",
		"sources:\n  s:\n    kind: none\n    max_body: 17179869184GiB\n",
		"sources:\n  stripe:\n    kind: stripe\n    tolerance: 5 minutes\n    secrets_env: [X]\n",
		"sources:\n  stripe:\n    kind: stripe\n    secrets_env: [X]\n    retry: {tiers: [1s, soon]}\n",
		"sources:\n  s:\n    kind: hmac\n    secrets_env: [X]\n    hmac: {header: \"bad header\", algorithm: md5}\n",
		"sources:\n  s:\n    kind: none\n    event_id: {pointer: /a~2, default: fixed}\n",
		"sources:\n  s:\n    kind: none\n    events:\n      \"orders/*\": {contract: c, entity_key: \"x:{\", natural_key: \"{/a}{/b}\"}\n",
		"sources:\n  s:\n    kind: none\n    events:\n      \"i.*\":\n        contract: c\n        sink: {url: \"https://h/x\", timeout: 1 minute, method: GET}\n",
		"sources:\n  s:\n    kind: none\n    keep_headers: &h [a, b]\n  t:\n    kind: none\n    keep_headers: *h\n",
		"sources:\n  S:\n    kind: nope\n",
		"a: " + strings.Repeat("[", maxNesting+1) + "\n",
		"sources:\n" + strings.Repeat("- ", maxNesting+1) + "x\n",
		"a: x \"y\nb: " + strings.Repeat("[", maxRawNesting+1) + "\n",
	} {
		f.Add([]byte(doc))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		// A hung Parse would only stall the fuzzer: crash the worker, so
		// that the input is kept as a failure.
		hung := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("Parse still running after 10s on %q", b)) })
		defer hung.Stop()
		file, err := Parse(b, WithoutSecrets())
		_, err2 := Parse(b, WithoutSecrets())
		// Of several unknown fields, the YAML decoder names one, not
		// always the same: only Parse's own errors must read the same.
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error() && !strings.Contains(err.Error(), "unknown field")) {
			t.Fatalf("parsed twice: %v, then %v", err, err2)
		}
		if err != nil {
			path := filepath.Join(dir, "sources.yaml")
			if werr := os.WriteFile(path, b, 0o600); werr != nil {
				t.Fatal(werr)
			}
			if _, lerr := Load(path, WithoutSecrets()); lerr == nil || !strings.HasPrefix(lerr.Error(), path+": ") {
				t.Fatalf("Load: %v, want the error of Parse after the file's name", lerr)
			}
			return
		}
		if len(file.Sources) == 0 {
			t.Fatal("accepted a file without sources")
		}
		for _, name := range file.Names() {
			s, _ := file.Get(name)
			if !validName.MatchString(s.Name) || s.MaxBody <= 0 || s.Batch.MaxLines <= 0 || s.Batch.MaxLines > MaxBatchLines {
				t.Fatalf("accepted source %q: %+v", name, s)
			}
			for pattern, ev := range s.Events {
				for _, tmpl := range []string{ev.EntityKey, ev.NaturalKey} {
					if _, err := ParseTemplate(tmpl); tmpl != "" && err != nil {
						t.Fatalf("source %q events[%q]: accepted template %q: %v", name, pattern, tmpl, err)
					}
				}
			}
		}
	})
}

// FuzzParseTimeText reads arbitrary text as a business time. Invariants:
// never a panic; a time is in UTC between 1971 and 9999; a number is read
// as its float64 value in the unit its size says (see UnixTime), within
// the float's rounding and the nanosecond cut.
func FuzzParseTimeText(f *testing.F) {
	for _, s := range []string{"1700000000", "1700000000.000001", "1700000000123.5", "1700000000123456789", "-1700000000",
		"1.7e9", "0x1p30", "2025-01-02T03:04:05Z", "2016-12-31T23:59:60.5Z", "9999-12-31T23:30:00-01:00", "2025-01-02t03:04:05z", "NaN"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseTimeText(s)
		if !ok {
			return
		}
		if got.Location() != time.UTC || got.Year() < 1971 || got.Year() > 9999 {
			t.Fatalf("%q: %v", s, got)
		}
		if fl, err := strconv.ParseFloat(s, 64); err == nil {
			want := fl / math.Pow10(unixScale(math.Abs(fl)))
			sec := float64(got.Unix()) + float64(got.Nanosecond())/1e9
			if d := math.Abs(sec - want); d > 1e-6+math.Abs(want)*1e-15 {
				t.Fatalf("%q: %v, %gs from the number's %g s", s, got, d, want)
			}
		}
	})
}

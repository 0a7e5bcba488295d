package source

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"
	"unicode/utf8"
)

func TestTemplateRender(t *testing.T) {
	payload := []byte(`{"id":123,"a/b":{"c~d":"x"},"status":"paid","empty":"","obj":{"k":1},"flag":true,"sur":"ord-\ud800","pair":"\ud83d\ude00","repl":"\ufffd","path":"p/q:50%"}`)
	fields := &TemplateFields{Source: "shop", EventType: "orders/paid", EventID: "evt_1", SchemaVersion: "2024-07"}
	cases := []struct {
		tmpl, want string
		missing    string // pointer named by the *TemplateError, "" for success
	}{
		{"shopify:order:{/id}", "shopify:order:123", ""},
		{"{/id}:{/status}", "123:paid", ""},
		{"{$source}:{$event_type}:{$event_id}@{$schema_version}", "shop:orders/paid:evt_1@2024-07", ""},
		{"{/a~1b/c~0d}", "x", ""}, // RFC 6901 escapes
		{"{/flag}", "true", ""},
		{"k:{/nope}", "", "/nope"},
		{"k:{/empty}", "", "/empty"}, // an empty key part would merge events
		{"k:{/obj}", "", "/obj"},     // not a scalar
		{"k:{/sur}", "", "/sur"},     // "\ud800" and "\udbff" would both be U+FFFD
		{"k:{/pair}", "k:\U0001F600", ""},
		{"k:{/repl}", "k:\ufffd", ""}, // a real U+FFFD is its own value
		// Only a value another placeholder follows is escaped: text after
		// the last one is fixed, so it cannot tell two values apart.
		{"shop:{/path}/v1", "shop:p/q:50%/v1", ""},
		{"{/path}:suffix", "p/q:50%:suffix", ""},
		{"{/path}:{/id}%", "p/q%3A50%25:123%", ""},
		{"{/id}:{/path}%", "123:p/q:50%%", ""},
	}
	for _, c := range cases {
		tm, err := ParseTemplate(c.tmpl)
		if err != nil {
			t.Fatalf("%s: %v", c.tmpl, err)
		}
		got, err := tm.Render(payload, fields)
		var te *TemplateError
		switch {
		case c.missing == "" && (err != nil || got != c.want):
			t.Errorf("%s: got %q, %v; want %q", c.tmpl, got, err, c.want)
		case c.missing != "" && (!errors.As(err, &te) || te.Pointer != c.missing):
			t.Errorf("%s: err %v, want a TemplateError for %s", c.tmpl, err, c.missing)
		}
	}
	if _, err := (&Template{parts: []templatePart{{pointer: "$source"}}}).Render(payload, &TemplateFields{}); err == nil {
		t.Error("an empty envelope field rendered")
	}
}

func TestParseTemplateRejects(t *testing.T) {
	for _, s := range []string{"", "a}b", "{/x", "{x}", "{/}", "{$nope}", "a{/x}}", "{/a}{/b}", "k:{/a}{$event_id}", "{/a}%{/b}"} {
		if _, err := ParseTemplate(s); err == nil {
			t.Errorf("%q parsed", s)
		}
	}
	// Only text a placeholder follows separates values; the rest is fixed
	// and may start with %.
	for _, s := range []string{"{/a}:{/b}%", "{/a}%", "%{/a}:{/b}%25"} {
		if _, err := ParseTemplate(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
}

// TestTemplateKeysDoNotCollide: different values render different keys,
// even when they hold the separators, the escape character, the hex digits
// an escape writes, or characters and lone bytes sharing a separator's
// first bytes (é, ê and è all start with 0xC3): every pair of values over
// such alphabets is rendered through templates whose separators are ASCII,
// a hex digit and multi-byte characters. The keys are valid UTF-8, and
// stay distinct when read as text, as any consumer decoding them does; a
// value with lone bytes is refused.
func TestTemplateKeysDoNotCollide(t *testing.T) {
	values := keyWords([]string{":", "-", "%", "3", "A", "é"}, 3)
	values = append(values, keyWords([]string{"é", "ê", "è", "→", "↑", "\xC3", "\xA9", "\xE2\x86", "%", ":"}, 2)...)
	slices.Sort(values)
	values = slices.Compact(values)
	for _, tmpl := range []string{"k:{/a}:{/b}", "{/a}-x{/b}!", "{/a}3{/b}", "{/a}é{/b}", "{/a}→{/b}/v1"} {
		tm, err := ParseTemplate(tmpl)
		if err != nil {
			t.Fatal(err)
		}
		seen := make(map[string][2]int, len(values)*len(values))
		read := make(map[string][2]int, len(values)*len(values))
		for i, a := range values {
			for j, b := range values {
				// No value holds '"' or '\', so it goes into JSON as it is,
				// lone bytes included.
				payload := []byte(`{"a":"` + a + `","b":"` + b + `"}`)
				key, err := tm.Render(payload, &TemplateFields{})
				if !utf8.ValidString(a) || !utf8.ValidString(b) {
					// Lone bytes are refused; joined, they make valid values.
					if !errors.Is(err, ErrInvalidUTF8) {
						t.Fatalf("%s: a=%q b=%q: rendered %q, %v; want ErrInvalidUTF8", tmpl, a, b, key, err)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if prev, ok := seen[key]; ok {
					t.Fatalf("%s: a=%q b=%q and a=%q b=%q both render %q", tmpl, values[prev[0]], values[prev[1]], a, b, key)
				}
				seen[key] = [2]int{i, j}
				text := string([]rune(key))
				if prev, ok := read[text]; ok {
					t.Fatalf("%s: a=%q b=%q and a=%q b=%q render keys that read as the same text %q", tmpl, values[prev[0]], values[prev[1]], a, b, text)
				}
				read[text] = [2]int{i, j}
				if !utf8.ValidString(key) {
					t.Fatalf("%s: a=%q b=%q render %q, not valid UTF-8", tmpl, a, b, key)
				}
			}
		}
	}
	// What an operator sees: only the first character of a value's
	// separator and % are escaped, and the last value is written as it is.
	for _, c := range []struct{ tmpl, a, b, want string }{
		{"{/a}:{/b}", "x:y", "z", "x%3Ay:z"},
		{"{/a}:{/b}", "x", "y:z", "x:y:z"},
		{"{/a}:{/b}", "50%", "2024-06-01T12:00:00Z", "50%25:2024-06-01T12:00:00Z"},
		{"{/a}:{/b}", "a/b-c", "%", "a/b-c:%"},
		{"{/a}é{/b}", "café", "ê", "caf%C3%A9éê"},
		{"{/a}é{/b}", "crêpe", "é", "crêpeéé"},
		{"{/a}→{/b}", "a→b", "c", "a%E2%86%92b→c"},
	} {
		tm, err := ParseTemplate(c.tmpl)
		if err != nil {
			t.Fatal(err)
		}
		payload, _ := json.Marshal(map[string]string{"a": c.a, "b": c.b})
		if got, err := tm.Render(payload, &TemplateFields{}); err != nil || got != c.want {
			t.Errorf("%s: a=%q b=%q: got %q, %v; want %q", c.tmpl, c.a, c.b, got, err, c.want)
		}
	}
}

// TestTemplateRefusesNonFiniteNumbers: a number past a 64-bit float
// rendered "+Inf", so 1e400 and 2e400 made one natural key and one of the
// two events was dropped as the other's duplicate.
func TestTemplateRefusesNonFiniteNumbers(t *testing.T) {
	tm, err := ParseTemplate("k:{/a}:{/b}")
	if err != nil {
		t.Fatal(err)
	}
	for _, payload := range []string{`{"a":1e400,"b":"x"}`, `{"a":"x","b":2e400}`, `{"a":"x","b":-1e400}`} {
		key, err := tm.Render([]byte(payload), &TemplateFields{})
		var te *TemplateError
		if !errors.As(err, &te) || !errors.Is(err, ErrNonFiniteNumber) {
			t.Errorf("%s: rendered %q, %v; want a *TemplateError wrapping ErrNonFiniteNumber", payload, key, err)
		}
	}
	if key, err := tm.Render([]byte(`{"a":1e2,"b":1.5}`), &TemplateFields{}); err != nil || key != "k:100:1.5" {
		t.Errorf("finite numbers: %q, %v", key, err)
	}
}

// keyWords returns every non-empty concatenation of at most n units.
func keyWords(units []string, n int) []string {
	words := []string{""}
	var all []string
	for range n {
		var next []string
		for _, w := range words {
			for _, u := range units {
				next = append(next, w+u)
			}
		}
		all = append(all, next...)
		words = next
	}
	return all
}

func BenchmarkTemplateRender(b *testing.B) {
	payload := []byte(`{"id":"msg_2Lh9KsVHmhmxtesqA35bWj","type":"invoice.paid","timestamp":"2024-06-01T12:00:00Z","data":{"invoice":{"id":"inv_42","status":"paid","amount":1200}}}`)
	tm, err := ParseTemplate("billing:invoice:{/data/invoice/id}:{/data/invoice/status}")
	if err != nil {
		b.Fatal(err)
	}
	fields := &TemplateFields{Source: "billing"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tm.Render(payload, fields); err != nil {
			b.Fatal(err)
		}
	}
}

// TestTemplateFieldNames: every name ParseTemplate accepts renders its own
// envelope field, so the list and TemplateFields.get cannot drift apart.
func TestTemplateFieldNames(t *testing.T) {
	fields := &TemplateFields{Source: "s", EventType: "t", EventID: "i", SchemaVersion: "v"}
	seen := map[string]bool{}
	for _, name := range templateFieldNames {
		tm, err := ParseTemplate("{" + name + "}")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := tm.Render(nil, fields)
		if err != nil || got == "" {
			t.Fatalf("%s renders %q, %v", name, got, err)
		}
		if seen[got] {
			t.Fatalf("%s renders %q, as another name does", name, got)
		}
		seen[got] = true
	}
	if len(seen) != 4 {
		t.Fatalf("%d names for the 4 fields of TemplateFields", len(seen))
	}
}

// TestTemplateRenderOwnsItsKey: Render reads the payload without copying
// values, so the key it returns must still be its own copy.
func TestTemplateRenderOwnsItsKey(t *testing.T) {
	payload := []byte(`{"id":"inv_42","n":7}`)
	tm, err := ParseTemplate("{/id}:{/n}")
	if err != nil {
		t.Fatal(err)
	}
	key, err := tm.Render(payload, &TemplateFields{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range payload {
		payload[i] = 'x'
	}
	if key != "inv_42:7" {
		t.Fatalf("key changed with the payload: %q", key)
	}
	if p := CompilePointer("/t"); p.PeekTime([]byte(`{"t":"2024-06-01T12:00:00+02:00"}`)).Format(time.RFC3339) != "2024-06-01T10:00:00Z" {
		t.Fatal("PeekTime did not parse the time")
	}
}

// TestTemplateRefusesInvalidUTF8: a value whose bytes are not UTF-8 (a
// webhook body may hold them) rendered as they were, so the processed
// record's entity_key was no Avro string: fastavro, the data teams' reader,
// failed on the record ("'utf-8' codec can't decode byte 0xff"), and its
// data, read as U+FFFD, named another id than its key.
func TestTemplateRefusesInvalidUTF8(t *testing.T) {
	tm, err := ParseTemplate("k:{/a}:{/b}")
	if err != nil {
		t.Fatal(err)
	}
	for _, payload := range []string{"{\"a\":\"x\xff\",\"b\":\"y\"}", "{\"a\":\"x\",\"b\":\"\xc3\"}", "{\"a\":\"x\",\"b\":\"\\u00e9\xed\xa0\x80\"}"} {
		key, err := tm.Render([]byte(payload), &TemplateFields{})
		var te *TemplateError
		if !errors.As(err, &te) || !errors.Is(err, ErrInvalidUTF8) {
			t.Errorf("%q: rendered %q, %v; want a *TemplateError wrapping ErrInvalidUTF8", payload, key, err)
		}
	}
	if key, err := tm.Render([]byte(`{"a":"é","b":"\ufffd"}`), &TemplateFields{}); err != nil || key != "k:é:\ufffd" {
		t.Errorf("valid UTF-8: %q, %v", key, err)
	}
}

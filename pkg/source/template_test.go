package source

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestTemplateRender(t *testing.T) {
	payload := []byte(`{"id":123,"a/b":{"c~d":"x"},"status":"paid","empty":"","obj":{"k":1},"flag":true,"sur":"ord-\ud800","pair":"\ud83d\ude00","repl":"\ufffd"}`)
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
}

// TestTemplateKeysDoNotCollide: different values render different keys,
// even when they hold the separators or the escape character: every pair
// of values over an alphabet of both, up to 3 bytes each, is rendered
// through templates whose separators are ':', "-x" and a multi-byte rune.
func TestTemplateKeysDoNotCollide(t *testing.T) {
	var values []string
	alphabet := []string{":", "-", "%", "3", "A", "é"}
	var grow func(string, int)
	grow = func(v string, n int) {
		if v != "" {
			values = append(values, v)
		}
		if n == 0 {
			return
		}
		for _, c := range alphabet {
			grow(v+c, n-1)
		}
	}
	grow("", 3)
	quoted := make([][]byte, len(values))
	for i, v := range values {
		quoted[i], _ = json.Marshal(v)
	}
	for _, tmpl := range []string{"k:{/a}:{/b}", "{/a}-x{/b}!", "{/a}é{/b}"} {
		tm, err := ParseTemplate(tmpl)
		if err != nil {
			t.Fatal(err)
		}
		seen := make(map[string][2]int, len(values)*len(values))
		for i := range values {
			for j := range values {
				payload := slices.Concat([]byte(`{"a":`), quoted[i], []byte(`,"b":`), quoted[j], []byte(`}`))
				key, err := tm.Render(payload, &TemplateFields{})
				if err != nil {
					t.Fatal(err)
				}
				if prev, ok := seen[key]; ok {
					t.Fatalf("%s: a=%q b=%q and a=%q b=%q both render %q", tmpl, values[prev[0]], values[prev[1]], values[i], values[j], key)
				}
				seen[key] = [2]int{i, j}
			}
		}
	}
	// What an operator sees: only a value's separator and % are escaped,
	// and the last value is written as it is.
	tm, err := ParseTemplate("{/a}:{/b}")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ a, b, want string }{
		{"x:y", "z", "x%3Ay:z"},
		{"x", "y:z", "x:y:z"},
		{"50%", "2024-06-01T12:00:00Z", "50%25:2024-06-01T12:00:00Z"},
		{"a/b-c", "%", "a/b-c:%"},
	} {
		payload, _ := json.Marshal(map[string]string{"a": c.a, "b": c.b})
		if got, err := tm.Render(payload, &TemplateFields{}); err != nil || got != c.want {
			t.Errorf("a=%q b=%q: got %q, %v; want %q", c.a, c.b, got, err, c.want)
		}
	}
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

package source

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// TestPointerRFC6901 checks the pointer cases where a gjson path alone
// reads something else: array indexes with leading zeros, members named
// "" or like numbers, and the escapes.
func TestPointerRFC6901(t *testing.T) {
	doc := []byte(`{"a":[10,20,30],"o":{"01":"zero-one","1":"one","":"empty"},"":{"x":"under empty"},"a/b":{"m~n":"esc"},"n":null}`)
	cases := []struct {
		ptr, want string // want "" = no value
	}{
		{"/a/1", "20"},
		{"/a/0", "10"},
		{"/a/01", ""}, // RFC 6901: no leading zeros in an array index
		{"/a/00", ""},
		{"/a/-", ""}, // the element after the last: never a value
		{"/a/+1", ""},
		{"/a/3", ""},
		{"/o/01", `"zero-one"`}, // in an object "01" is just a name
		{"/o/1", `"one"`},
		{"/o/", `"empty"`},
		{"/", `{"x":"under empty"}`},
		{"//x", `"under empty"`},
		{"/a~1b/m~0n", `"esc"`},
		{"/a/1/x", ""},
		{"/n/x", ""},
		{"", ""},
		{"a", ""},
	}
	for _, c := range cases {
		p := CompilePointer(c.ptr)
		for name, r := range map[string]string{"Get": p.Get(doc).Raw, "peek": p.peek(doc).Raw} {
			if r != c.want {
				t.Errorf("%s(%q) = %q, want %q", name, c.ptr, r, c.want)
			}
		}
	}
}

// TestFieldPointerFallback: a source field reads its pointer and fallbacks
// with the same rules.
func TestFieldPointerFallback(t *testing.T) {
	f := Field{Pointer: "/items/01/id", Fallback: []string{"/items/0/id", "/o/01"}}
	f.compile()
	body := []byte(`{"items":[{"id":"a"},{"id":"b"}],"o":{"01":"z"}}`)
	if got, _ := lookup(f, http.Header{}, body, jsonBody); got != "a:z" {
		t.Errorf("lookup = %q, want the fallbacks joined, %q (a leading-zero index is not item 1)", got, "a:z")
	}
}

// TestFallbackKeysDoNotCollide: fallback values are joined so that
// different values give different event ids, as a template's are.
func TestFallbackKeysDoNotCollide(t *testing.T) {
	f := Field{Fallback: []string{"/a", "/b", "/c"}}
	f.compile()
	seen := map[string]string{}
	for _, body := range []string{
		`{"a":"x:y","b":"z","c":"1"}`,
		`{"a":"x","b":"y:z","c":"1"}`,
		`{"a":"x","b":"y","c":"z:1"}`,
		`{"a":"x%3Ay","b":"z","c":"1"}`,
		`{"a":"x","b":"y%3Az","c":"1"}`,
	} {
		got, _ := lookup(f, http.Header{}, []byte(body), jsonBody)
		if prev, ok := seen[got]; ok {
			t.Fatalf("%s and %s both give %q", prev, body, got)
		}
		seen[got] = body
	}
	if got, _ := lookup(f, http.Header{}, []byte(`{"a":"acct_1","b":7,"c":"2024-06-01T12:00:00Z"}`), jsonBody); got != "acct_1:7:2024-06-01T12:00:00Z" {
		t.Errorf("plain values: %q, want them joined unchanged", got)
	}
}

// TestFallbackEmptyPartIsNoID: a fallback value that is empty makes no id
// (the body's SHA-256 is the id), as an empty pointer value does; joined,
// every event lacking it shared one id ("acct_1:") and all but one were lost.
func TestFallbackEmptyPartIsNoID(t *testing.T) {
	f, err := Parse([]byte("sources:\n  s:\n    kind: none\n    event_id: {pointer: /id, fallback: [/account, /seq]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	src, _ := f.Get("s")
	seen := map[string]string{}
	for _, body := range []string{
		`{"type":"t","account":"acct_1","seq":"","n":1}`,
		`{"type":"t","account":"acct_1","seq":"","n":2}`,
		`{"type":"t","account":"","seq":"","n":1}`,
		`{"type":"t","account":"","seq":"","n":2}`,
		`{"type":"t","account":" ","seq":"7","n":1}`,
		`{"type":"t","account":" ","seq":"7","n":2}`,
	} {
		m, err := src.Extract(http.Header{}, []byte(body))
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if prev, ok := seen[m.EventID]; ok {
			t.Fatalf("%s and %s share the event id %q", prev, body, m.EventID)
		}
		seen[m.EventID] = body
	}
	if m, _ := src.Extract(http.Header{}, []byte(`{"type":"t","account":"acct_1","seq":"7"}`)); m.EventID != "acct_1:7" {
		t.Errorf("event id %q, want acct_1:7", m.EventID)
	}
}

// jsonBody tells lookup the body is JSON.
func jsonBody() bool { return true }

// TestExtractRefusesUnpairedSurrogates: JSON readers decode a \u escape of
// an unpaired UTF-16 surrogate as U+FFFD, so "ord-\ud800" and "ord-\udbff"
// were one event id and one of the two events was lost to dedup. Such
// metadata is refused, naming the field; the same escapes elsewhere in the
// body, and proper pairs, are not.
func TestExtractRefusesUnpairedSurrogates(t *testing.T) {
	f, err := Parse([]byte("sources:\n  open:\n    kind: none\n  parts:\n    kind: none\n    event_id: {fallback: [/a, /b]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	open, _ := f.Get("open")
	parts, _ := f.Get("parts")
	for _, c := range []struct {
		src        *Source
		body       string
		field, why string // field "" = accepted
	}{
		{open, `{"id":"ord-\ud800","type":"t"}`, "event_id", "lone high surrogate"},
		{open, `{"id":"ord-\udbff","type":"t"}`, "event_id", "another lone high surrogate"},
		{open, `{"id":"ord-\uDC00","type":"t"}`, "event_id", "lone low surrogate, upper-case hex"},
		{open, `{"id":"ord-\ud800\u0041","type":"t"}`, "event_id", "high surrogate before a non-surrogate"},
		{open, `{"id":"ord-\ud800\ud800\udc00","type":"t"}`, "event_id", "high surrogate before a pair"},
		{open, `{"id":"ord-1","type":"order.\udfff"}`, "event_type", "in the event type"},
		{parts, `{"a":"x\ud800","b":"y","type":"t"}`, "event_id", "in a fallback part"},
		{open, `{"id":"ord-\ud83d\ude00","type":"t"}`, "", "a proper pair"},
		{open, `{"id":"ord-\ufffd","type":"t"}`, "", "U+FFFD itself"},
		{open, `{"id":"ord-\\ud800","type":"t"}`, "", "an escaped backslash, then text"},
		{open, `{"id":"ord-1","type":"t","data":{"note":"\ud800"}}`, "", "elsewhere in the body"},
	} {
		t.Run(c.why, func(t *testing.T) {
			m, err := c.src.Extract(http.Header{}, []byte(c.body))
			if c.field == "" {
				if err != nil {
					t.Fatalf("%s: %v, want it accepted", c.body, err)
				}
				return
			}
			if !errors.Is(err, ErrUnpairedSurrogate) || !strings.HasPrefix(err.Error(), c.field+": ") {
				t.Fatalf("%s: meta %+v, error %v; want ErrUnpairedSurrogate naming %s", c.body, m, err, c.field)
			}
		})
	}
}

// TestHMACEventIDFromTheSignedBody: kind hmac signs only the body, so a
// captured delivery replayed with a fresh X-Event-Id (or another
// X-Event-Type) was a new event; the body's /id and /type now win, and the
// headers serve bodies without them, or not JSON.
func TestHMACEventIDFromTheSignedBody(t *testing.T) {
	t.Setenv("T_HMAC", "secret")
	f, err := Parse([]byte(`sources:
  in:
    kind: hmac
    secrets_env: [T_HMAC]
    hmac: {header: X-Signature}
  blobs:
    kind: hmac
    secrets_env: [T_HMAC]
    hmac: {header: X-Signature}
    json: false
  open:
    kind: none
  own:
    kind: hmac
    secrets_env: [T_HMAC]
    hmac: {header: X-Signature}
    event_id: {header: X-Event-Id}
`))
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("X-Event-Id", "replay-42")
	h.Set("X-Event-Type", "refund.issued")
	for _, c := range []struct {
		src, body, wantID, wantType string
	}{
		{"in", `{"id":"pay-1","type":"payment.captured"}`, "pay-1", "payment.captured"},
		{"open", `{"id":"pay-1","type":"payment.captured"}`, "pay-1", "payment.captured"},
		{"in", `{"amount":1}`, "replay-42", "refund.issued"},                                 // the body has neither: the headers
		{"in", `{"id":{"n":1},"type":7}`, "replay-42", "7"},                                  // an object is no id
		{"blobs", `{"id":"pay-1"`, "replay-42", "refund.issued"},                             // not JSON: the headers
		{"blobs", `{"id":"pay-1","type":"t"}`, "pay-1", "t"},                                 // JSON on a json: false source
		{"own", `{"id":"pay-1","type":"payment.captured"}`, "replay-42", "payment.captured"}, // header: as configured
	} {
		src, _ := f.Get(c.src)
		m, err := src.Extract(h, []byte(c.body))
		if err != nil || m.EventID != c.wantID || m.EventType != c.wantType {
			t.Errorf("%s %s: id %q type %q (%v); want %q, %q", c.src, c.body, m.EventID, m.EventType, err, c.wantID, c.wantType)
		}
	}
	src, _ := f.Get("in")
	if m, err := src.Extract(http.Header{}, []byte(`{"amount":1}`)); !errors.Is(err, ErrNoEventType) {
		t.Errorf("no type in body or header: %+v %v, want ErrNoEventType", m, err)
	}
}

// TestExtractTakesNumbersAsWritten: an id read from the body is taken as
// it is (README), but numbers were rendered as the nearest 64-bit float:
// 1.0 and 1 were one event id, and 1e400 and 2e400 both "+Inf", so one of
// two events was lost to compaction and dedup. A number is now its text
// as written; one that is not finite as a float is refused, naming the
// field; strings read as before.
func TestExtractTakesNumbersAsWritten(t *testing.T) {
	f, err := Parse([]byte("sources:\n  open:\n    kind: none\n  parts:\n    kind: none\n    event_id: {fallback: [/a, /b]}\n  blobs:\n    kind: none\n    json: false\n"))
	if err != nil {
		t.Fatal(err)
	}
	open, _ := f.Get("open")
	parts, _ := f.Get("parts")
	blobs, _ := f.Get("blobs")
	for _, c := range []struct {
		src              *Source
		body             string
		wantID, wantType string // wantID "" = refused with ErrNonFiniteNumber
		field            string
	}{
		{open, `{"type":"t","id":1}`, "1", "t", ""},
		{open, `{"type":"t","id":1.0}`, "1.0", "t", ""},
		{open, `{"type":"t","id":1e0}`, "1e0", "t", ""},
		{open, `{"type":"t","id":-0}`, "-0", "t", ""},
		{open, `{"type":"t","id":9007199254740993.0}`, "9007199254740993.0", "t", ""},
		{open, `{"type":"t","id":12345678901234567890123}`, "12345678901234567890123", "t", ""},
		{open, `{"type":"t","id":1e-400}`, "1e-400", "t", ""},
		{open, `{"type":2.50,"id":"e1"}`, "e1", "2.50", ""},
		{open, `{"type":"t","id":" 1.0 "}`, "1.0", "t", ""}, // a string: trimmed, as before
		{parts, `{"type":"t","a":1.0,"b":2e1}`, "1.0:2e1", "t", ""},
		{open, `{"type":"t","id":1e400}`, "", "", "event_id"},
		{open, `{"type":"t","id":-2e400}`, "", "", "event_id"},
		{open, `{"type":1e999,"id":"e1"}`, "", "", "event_type"},
		{parts, `{"type":"t","a":1e400,"b":"x"}`, "", "", "event_id"},
		{blobs, `{"type":NaN,"id":"e1"}`, "", "", "event_type"},
		{blobs, `{"type":Infinity,"id":"e1"}`, "", "", "event_type"},
	} {
		m, err := c.src.Extract(http.Header{}, []byte(c.body))
		if c.wantID == "" {
			if !errors.Is(err, ErrNonFiniteNumber) || !strings.HasPrefix(err.Error(), c.field+": ") {
				t.Errorf("%s %s: meta %+v, error %v; want ErrNonFiniteNumber naming %s", c.src.Name, c.body, m, err, c.field)
			}
			continue
		}
		if err != nil || m.EventID != c.wantID || m.EventType != c.wantType {
			t.Errorf("%s %s: id %q type %q (%v); want %q, %q", c.src.Name, c.body, m.EventID, m.EventType, err, c.wantID, c.wantType)
		}
	}
}

// TestExtractOwnsItsValues: the body's buffer may be reused once Extract
// returns (and a value kept, an event type in the metric limiter, must not
// hold the body): the values read from it are copies.
func TestExtractOwnsItsValues(t *testing.T) {
	f, err := Parse([]byte("sources:\n  open:\n    kind: none\n    schema_version: {pointer: /v}\n  parts:\n    kind: none\n    event_id: {fallback: [/a, /b]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ src, body, wantType, wantID, wantVersion string }{
		{"open", `{"type":"order.created","id":"ord_1","v":"2024-01"}`, "order.created", "ord_1", "2024-01"},
		{"open", `{"type":"t","id":12345}`, "t", "12345", "v1"},
		{"parts", `{"type":"t","a":"x","b":"y"}`, "t", "x:y", "v1"},
	} {
		src, _ := f.Get(c.src)
		body := []byte(c.body)
		m, err := src.Extract(http.Header{}, body)
		if err != nil {
			t.Fatal(err)
		}
		for i := range body {
			body[i] = '#'
		}
		if m.EventType != c.wantType || m.EventID != c.wantID || m.SchemaVersion != c.wantVersion {
			t.Errorf("%s %s: after the body changed, type %q id %q version %q; want %q %q %q", c.src, c.body, m.EventType, m.EventID, m.SchemaVersion, c.wantType, c.wantID, c.wantVersion)
		}
	}
}

// BenchmarkExtractStripe1KiB is the metadata read of a Stripe event of
// about 1 KiB, the webhook path's per-request lookups.
func BenchmarkExtractStripe1KiB(b *testing.B) {
	f, err := Parse([]byte("sources:\n  stripe:\n    kind: stripe\n    secrets_env: [S]\n"), WithoutSecrets())
	if err != nil {
		b.Fatal(err)
	}
	src, _ := f.Get("stripe")
	head := `{"id":"evt_1","object":"event","api_version":"2024-06-20","created":1730000000,"data":{"object":{"id":"pi_1","object":"payment_intent","amount":2000,"currency":"usd","description":"`
	tail := `"}},"livemode":false,"type":"payment_intent.succeeded"}`
	body := []byte(head + strings.Repeat("x", 1024-len(head)-len(tail)) + tail)
	h := http.Header{"Content-Type": {"application/json"}}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := src.Extract(h, body); err != nil {
			b.Fatal(err)
		}
	}
}

// TestNonJSONBodyIdIsNotGuessed: a json: false source read its event id
// through pointers from bodies that are not JSON, where the JSON reader
// guesses, and different bodies got one id (one raw key: one of them lost
// to deduplication and compaction). Such a body's id is its X-Event-Id,
// else its hash; a JSON body's is read as before.
func TestNonJSONBodyIdIsNotGuessed(t *testing.T) {
	f, err := Parse([]byte("sources:\n  blobs:\n    kind: none\n    json: false\n    event_type: {default: blob}\n  parts:\n    kind: none\n    json: false\n    event_type: {default: blob}\n    event_id: {fallback: [/a, /b]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	blobs, _ := f.Get("blobs")
	parts, _ := f.Get("parts")
	ids := map[string]string{}
	for _, c := range []struct {
		src  *Source
		body string
	}{
		{blobs, `garbage {"id":"x"}`},
		{blobs, `garbage {"id":"x"} more`},
		{blobs, "{\"id\":\"x\",\"n\":1}\n{\"id\":\"y\"}\n"},
		{blobs, "{\"id\":\"x\",\"n\":2}\n{\"id\":\"z\"}\n"},
		{blobs, `{"id":"x", oops`},
		{parts, `{"a":"1","b":"2"} trailing`},
		{parts, `{"a":"1","b":"2"} other`},
	} {
		m, err := c.src.Extract(http.Header{}, []byte(c.body))
		if err != nil {
			t.Fatalf("%q: %v", c.body, err)
		}
		if !strings.HasPrefix(m.EventID, "sha256:") {
			t.Errorf("%q: id %q read from a body that is not JSON", c.body, m.EventID)
		}
		if other, ok := ids[m.EventID]; ok {
			t.Errorf("%q and %q share id %s", other, c.body, m.EventID)
		}
		ids[m.EventID] = c.body
	}
	// A header still names it; a JSON body is read as before.
	if m, err := blobs.Extract(http.Header{"X-Event-Id": {"h1"}}, []byte("not json")); err != nil || m.EventID != "h1" {
		t.Errorf("header: %q, %v", m.EventID, err)
	}
	if m, err := blobs.Extract(http.Header{}, []byte(`{"id":"x"}`)); err != nil || m.EventID != "x" {
		t.Errorf("JSON body: %q, %v", m.EventID, err)
	}
	if m, err := parts.Extract(http.Header{}, []byte(`{"a":"1","b":"2"}`)); err != nil || m.EventID != "1:2" {
		t.Errorf("JSON body, fallbacks: %q, %v", m.EventID, err)
	}
}

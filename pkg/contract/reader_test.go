package contract_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"

	"github.com/inletdev/inlet/pkg/contract"
	"github.com/inletdev/inlet/schemas/contracts"
)

func shipped(t testing.TB) *contract.Registry {
	t.Helper()
	r, err := contract.Load(contracts.FS)
	if err != nil {
		t.Fatalf("Load(contracts.FS): %v", err)
	}
	return r
}

// fixture returns a shipped fixture decoded, for editing.
func fixture(t testing.TB, file string) map[string]any {
	t.Helper()
	b, err := fs.ReadFile(contracts.FS, file)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func encode(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// validationError asserts err is a *ValidationError and returns it.
func validationError(t *testing.T, err error) *contract.ValidationError {
	t.Helper()
	var ve *contract.ValidationError
	if !errors.As(err, &ve) || !contract.IsValidation(err) {
		t.Fatalf("error = %v (%T), want *ValidationError", err, err)
	}
	return ve
}

func TestReadWidget(t *testing.T) {
	r := testRegistry(t)
	v := version(t, r, "test/widget", "v1")
	got, err := v.Read([]byte(widgetOK))
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	want := map[string]any{
		"id":      int64(9007199254740993), // beyond float64's exact integers
		"count":   -3,
		"ratio":   float64(5),
		"weight":  float32(1.5),
		"ok":      true,
		"name":    "gear",
		"color":   "green",
		"size":    "m",
		"tags":    []any{"a", "b"},
		"attrs":   map[string]any{"x": int64(1), "a/b~c": int64(2)},
		"note":    nil,
		"parts":   []any{map[string]any{"id": "p1", "qty": int64(2)}},
		"owner":   map[string]any{"test.widget.Owner": map[string]any{"login": "mara"}},
		"extra":   `{"a":[true,null,"<&>"],"b":1}`,
		"nothing": nil,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Read =\n%#v\nwant\n%#v", got, want)
	}
	c, _ := r.Contract("test/widget")
	if _, err := avro.Marshal(c.Canonical(), got); err != nil {
		t.Errorf("encode with Canonical(): %v", err)
	}
}

func TestReadDefaults(t *testing.T) {
	v := version(t, testRegistry(t), "test/widget", "v1")
	got, err := v.Read([]byte(`{"id": 1, "count": 2, "ratio": 0.5, "weight": 0, "ok": false, "name": "", "color": "purple", "size": "s", "parts": [], "nothing": null}`))
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	for k, want := range map[string]any{
		"color": "other", // unknown symbol → the enum's default
		"tags":  []any{},
		"attrs": map[string]any{},
		"note":  nil,
		"owner": nil,
		"extra": nil,
	} {
		if !reflect.DeepEqual(got[k], want) {
			t.Errorf("%s = %#v, want %#v", k, got[k], want)
		}
	}
}

func TestReadFieldErrors(t *testing.T) {
	r := shipped(t)
	pi := version(t, r, "stripe/payment_intent", "2024-06-20")
	push := version(t, r, "github/push", "v1")
	widget := version(t, testRegistry(t), "test/widget", "v1")

	// pi edits the payment_intent.succeeded fixture.
	pi0 := func(edit func(event, obj map[string]any)) []byte {
		m := fixture(t, "stripe/payment_intent/fixtures/v1/payment_intent.succeeded.json")
		edit(m, m["data"].(map[string]any)["object"].(map[string]any))
		return encode(t, m)
	}
	widgetWith := func(k string, v any) []byte {
		var m map[string]any
		dec := json.NewDecoder(strings.NewReader(widgetOK))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return encode(t, m)
	}
	rawNumber := func(field, num string) []byte {
		return widgetWith(field, json.Number(num)) // marshals as the literal
	}

	for _, tc := range []struct {
		name    string
		v       *contract.Version
		payload []byte
		want    []contract.FieldError
	}{
		{"missing required", pi, pi0(func(_, o map[string]any) { delete(o, "amount") }),
			[]contract.FieldError{{Path: "/data/object/amount", Expected: "long", Actual: "missing"}}},
		{"missing record", pi, pi0(func(e, _ map[string]any) { delete(e, "data") }),
			[]contract.FieldError{{Path: "/data", Expected: "object", Actual: "missing"}}},
		{"numeric string not coerced", pi, pi0(func(_, o map[string]any) { o["amount"] = "2000" }),
			[]contract.FieldError{{Path: "/data/object/amount", Expected: "long", Actual: `string "2000"`}}},
		{"float for long", pi, pi0(func(_, o map[string]any) { o["amount"] = 20.5 }),
			[]contract.FieldError{{Path: "/data/object/amount", Expected: "long", Actual: "number 20.5 (not an integer)"}}},
		{"null for non-nullable", pi, pi0(func(_, o map[string]any) { o["currency"] = nil }),
			[]contract.FieldError{{Path: "/data/object/currency", Expected: "string", Actual: "null"}}},
		{"wrong type in nullable", pi, pi0(func(_, o map[string]any) { o["customer"] = map[string]any{"id": "cus_1"} }),
			[]contract.FieldError{{Path: "/data/object/customer", Expected: "null or string", Actual: "object"}}},
		{"object for string", pi, pi0(func(e, _ map[string]any) { e["type"] = []any{"x"} }),
			[]contract.FieldError{{Path: "/type", Expected: "string", Actual: "array"}}},
		{"wrong map value", pi, pi0(func(_, o map[string]any) { o["metadata"] = map[string]any{"n": 1} }),
			[]contract.FieldError{{Path: "/data/object/metadata/n", Expected: "string", Actual: "number 1"}}},
		{"unknown enum symbol", pi, pi0(func(_, o map[string]any) { o["status"] = "requires_source" }),
			[]contract.FieldError{{Path: "/data/object/status",
				Expected: "enum [requires_payment_method requires_confirmation requires_action processing requires_capture canceled succeeded]",
				Actual:   `string "requires_source"`}}},
		{"several at once", pi, pi0(func(e, o map[string]any) { e["created"] = true; delete(o, "id"); o["amount"] = -1.0e100 }),
			[]contract.FieldError{
				{Path: "/created", Expected: "long", Actual: "boolean true"},
				{Path: "/data/object/amount", Expected: "long", Actual: "number -1e+100 (not an integer)"},
				{Path: "/data/object/id", Expected: "string", Actual: "missing"}, // missing: after the object's members
			}},
		{"array element", push, func() []byte {
			m := fixture(t, "github/push/fixtures/v1/push.main.json")
			m["commits"].([]any)[2].(map[string]any)["id"] = 7
			return encode(t, m)
		}(), []contract.FieldError{{Path: "/commits/2/id", Expected: "string", Actual: "number 7"}}},
		{"array element missing field", push, func() []byte {
			m := fixture(t, "github/push/fixtures/v1/push.main.json")
			delete(m["commits"].([]any)[1].(map[string]any), "timestamp")
			return encode(t, m)
		}(), []contract.FieldError{{Path: "/commits/1/timestamp", Expected: "string", Actual: "missing"}}},
		{"pointer escaping", widget, widgetWith("attrs", map[string]any{"a/b~c": "x"}),
			[]contract.FieldError{{Path: "/attrs/a~1b~0c", Expected: "long", Actual: `string "x"`}}},
		{"closed enum", widget, widgetWith("size", "xl"),
			[]contract.FieldError{{Path: "/size", Expected: "enum [s m l]", Actual: `string "xl"`}}},
		{"nullable record wrong kind", widget, widgetWith("owner", "mara"),
			[]contract.FieldError{{Path: "/owner", Expected: "null or object", Actual: `string "mara"`}}},
		{"inside nullable record", widget, widgetWith("owner", map[string]any{}),
			[]contract.FieldError{{Path: "/owner/login", Expected: "string", Actual: "missing"}}},
		{"null type", widget, widgetWith("nothing", 0),
			[]contract.FieldError{{Path: "/nothing", Expected: "null", Actual: "number 0"}}},
		{"null type missing", widget, widgetWith("nothing", nil), nil},
		{"int out of range", widget, rawNumber("count", "2147483648"),
			[]contract.FieldError{{Path: "/count", Expected: "int", Actual: "number 2147483648 (out of range)"}}},
		{"long out of range", widget, rawNumber("id", "9223372036854775808"),
			[]contract.FieldError{{Path: "/id", Expected: "long", Actual: "number 9223372036854775808 (out of range)"}}},
		{"exponent for long", widget, rawNumber("id", "1e3"),
			[]contract.FieldError{{Path: "/id", Expected: "long", Actual: "number 1e3 (not an integer)"}}},
		{"float out of range", widget, rawNumber("weight", "1e39"),
			[]contract.FieldError{{Path: "/weight", Expected: "float", Actual: "number 1e39 (out of range)"}}},
		{"double out of range", widget, rawNumber("ratio", "1e309"),
			[]contract.FieldError{{Path: "/ratio", Expected: "double", Actual: "number 1e309 (out of range)"}}},
		{"long string truncated", widget, widgetWith("ok", strings.Repeat("é", 100)),
			[]contract.FieldError{{Path: "/ok", Expected: "boolean", Actual: `string "` + strings.Repeat("é", 20) + `…"`}}},
		{"duplicate member", pi, []byte(`{"id": "evt_1", "id": "evt_2"}`), []contract.FieldError{
			{Path: "/id", Expected: `one member "id"`, Actual: "a duplicate member"},
			{Path: "/type", Expected: "string", Actual: "missing"},
			{Path: "/created", Expected: "long", Actual: "missing"},
			{Path: "/livemode", Expected: "boolean", Actual: "missing"},
			{Path: "/data", Expected: "object", Actual: "missing"},
		}},
		{"escaped member names", widget, []byte(strings.Replace(widgetOK, `"name": "gear"`, `"n\u0061me": 5`, 1)),
			[]contract.FieldError{{Path: "/name", Expected: "string", Actual: "number 5"}}},
		{"not an object", pi, []byte(`[1, 2]`),
			[]contract.FieldError{{Path: "", Expected: "object", Actual: "array"}}},
		{"JSON null", pi, []byte(`null`),
			[]contract.FieldError{{Path: "", Expected: "object", Actual: "null"}}},
		{"invalid JSON", pi, []byte(`{"id": "evt_1",`),
			[]contract.FieldError{{Path: "", Expected: "JSON", Actual: "invalid JSON: unexpected end of JSON input"}}},
		{"empty", pi, nil,
			[]contract.FieldError{{Path: "", Expected: "JSON", Actual: "invalid JSON: unexpected end of JSON input"}}},
		{"trailing data", pi, []byte(`{} {}`),
			[]contract.FieldError{{Path: "", Expected: "JSON", Actual: "invalid JSON: invalid character '{' after top-level value"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.v.Read(tc.payload)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Read: %v", err)
				}
				return
			}
			if got != nil {
				t.Errorf("Read returned a value with an error: %#v", got)
			}
			ve := validationError(t, err)
			if ve.Contract != tc.v.Contract().Name() || ve.Version != tc.v.Name() {
				t.Errorf("error names %s %s", ve.Contract, ve.Version)
			}
			if !reflect.DeepEqual(ve.Fields, tc.want) {
				t.Errorf("Fields =\n%#v\nwant\n%#v", ve.Fields, tc.want)
			}
		})
	}
}

// TestReadRefusesDuplicateMembers: an object naming a member twice is
// invalid in a map and anywhere inside an "inlet.json": "raw" value, as in
// a record, with the path of the second member (names compared decoded, so
// "i\u0064" repeats "id"). Key templates and occurred_at pointers read the
// first of equal members (gjson); a map and a raw value's text kept the
// last silently, so billing's "billing:{/type}:{/data/id}" filed data
// {"id":"inv_A","id":"inv_B"} under inv_A with the record saying inv_B
// (Stripe metadata is such a map).
func TestReadRefusesDuplicateMembers(t *testing.T) {
	widget := version(t, testRegistry(t), "test/widget", "v1")
	event := version(t, shipped(t), "standardwebhooks/event", "v1")
	// with is a valid widget payload plus member (attrs, extra).
	with := func(member string) []byte {
		return []byte(`{"id": 1, "count": 1, "ratio": 1, "weight": 1, "ok": true, "name": "n", "color": "red", "size": "s", "parts": [], "nothing": null, ` + member + `}`)
	}
	dup := func(path, name string) contract.FieldError {
		return contract.FieldError{Path: path, Expected: `one member "` + name + `"`, Actual: "a duplicate member"}
	}
	for _, tc := range []struct {
		name    string
		v       *contract.Version
		payload []byte
		want    []contract.FieldError // nil: valid
	}{
		{"map", widget, with(`"attrs": {"x": 1, "x": 2}`), []contract.FieldError{dup("/attrs/x", "x")}},
		{"map, escaped name", widget, with(`"attrs": {"x": 1, "\u0078": 2}`), []contract.FieldError{dup("/attrs/x", "x")}},
		{"map, second value not read", widget, with(`"attrs": {"a/b": 1, "a/b": "not a long"}`), []contract.FieldError{dup("/attrs/a~1b", "a/b")}},
		{"raw object", widget, with(`"extra": {"a": 1, "b": 2, "a": 3}`), []contract.FieldError{dup("/extra/a", "a")}},
		{"raw, nested and escaped", widget, with(`"extra": [true, {"k": {"id": 1, "i\u0064": 2}}]`), []contract.FieldError{dup("/extra/1/k/id", "id")}},
		{"raw, each duplicate", widget, with(`"extra": {"a": 1, "a": 2, "b": {"c": [], "c": {}}, "a": 4}`),
			[]contract.FieldError{dup("/extra/a", "a"), dup("/extra/b/c", "c"), dup("/extra/a", "a")}},
		{"raw, billing data", event, []byte(`{"type": "invoice.paid", "timestamp": "2025-01-01T00:00:00Z", "data": {"id": "inv_A", "id": "inv_B"}}`),
			[]contract.FieldError{dup("/data/id", "id")}},
		{"equal names in different objects", widget, with(`"attrs": {"x": 1, "X": 2}, "extra": {"a": {"a": 1}, "b": {"a": [{"a": 1}, {"a": 1}]}}`), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.v.Read(tc.payload)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Read: %v", err)
				}
				return
			}
			ve := validationError(t, err)
			if !reflect.DeepEqual(ve.Fields, tc.want) {
				t.Errorf("Fields =\n%#v\nwant\n%#v\n(value %v)", ve.Fields, tc.want, got)
			}
		})
	}
}

// TestReadIgnoresUnknown: fields the contract does not list, at any depth,
// with any type, do not matter.
func TestReadIgnoresUnknown(t *testing.T) {
	pi := version(t, shipped(t), "stripe/payment_intent", "2024-06-20")
	m := fixture(t, "stripe/payment_intent/fixtures/v1/payment_intent.succeeded.json")
	m["brand_new_top_level"] = map[string]any{"nested": []any{1, "two", nil, map[string]any{}}}
	obj := m["data"].(map[string]any)["object"].(map[string]any)
	obj["amount_details"] = "now a string"
	obj["new_field_2026"] = 1.5
	before, err := pi.Read(encode(t, fixture(t, "stripe/payment_intent/fixtures/v1/payment_intent.succeeded.json")))
	if err != nil {
		t.Fatal(err)
	}
	after, err := pi.Read(encode(t, m))
	if err != nil {
		t.Fatalf("Read with unknown fields: %v", err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Errorf("unknown fields changed the result:\n%#v\n%#v", before, after)
	}
}

func TestReadDepth(t *testing.T) {
	pi := version(t, shipped(t), "stripe/payment_intent", "2024-06-20")
	valid := encode(t, fixture(t, "stripe/payment_intent/fixtures/v1/payment_intent.succeeded.json"))
	// with adds an ignored field nested levels deep (the payload object is one
	// more level).
	with := func(levels int) []byte {
		deep := strings.Repeat(`[`, levels) + strings.Repeat(`]`, levels)
		return []byte(`{"deep":` + deep + `,` + string(valid[1:]))
	}
	if _, err := pi.Read(with(contract.MaxDepth - 1)); err != nil {
		t.Fatalf("Read at depth %d: %v", contract.MaxDepth, err)
	}
	for name, payload := range map[string][]byte{
		"one too deep": with(contract.MaxDepth),
		"very deep":    with(100000),
		"unterminated": []byte(strings.Repeat(`{"a":`, 100000)),
		"objects in data": func() []byte {
			m := fixture(t, "stripe/payment_intent/fixtures/v1/payment_intent.succeeded.json")
			var deep any = map[string]any{}
			for range contract.MaxDepth {
				deep = map[string]any{"a": deep}
			}
			m["data"].(map[string]any)["object"].(map[string]any)["amount_details"] = deep
			return encode(t, m)
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := pi.Read(payload)
			ve := validationError(t, err)
			// Past 10000 levels encoding/json's syntax check says so first.
			if len(ve.Fields) != 1 || (ve.Fields[0].Expected != fmt.Sprintf("nesting depth <= %d", contract.MaxDepth) &&
				!strings.HasSuffix(ve.Fields[0].Actual, "exceeded max depth")) {
				t.Errorf("error = %v, want a nesting depth error", err)
			}
		})
	}
	t.Run("brackets inside strings do not count", func(t *testing.T) {
		payload := []byte(`{"x":"` + strings.Repeat(`[{\"`, 1000) + `",` + string(valid[1:]))
		if _, err := pi.Read(payload); err != nil {
			t.Fatalf("Read: %v", err)
		}
	})
}

// TestReadTooDeepRawIsNotRewritten: a raw value nested past MaxDepth is
// refused without being rewritten. Its canonical text was built all the
// same, only to be dropped, and each unsorted object of it copies what it
// holds: 9,990 levels of {"b":…,"a":1} around a 3 MiB string took 3 s to
// refuse (a valid 3 MiB payload: 20 ms), holding its whole batch. The
// rewrite allocates at least the value's size; the refusal need not.
func TestReadTooDeepRawIsNotRewritten(t *testing.T) {
	event := version(t, shipped(t), "standardwebhooks/event", "v1")
	const depth = 9990 // encoding/json's syntax check stops at 10000
	data := strings.Repeat(`{"b":`, depth) + `"` + strings.Repeat("x", 2<<20) + `"` + strings.Repeat(`,"a":1}`, depth)
	payload := []byte(`{"type":"t","timestamp":"2025-01-01T00:00:00Z","data":` + data + `}`)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := event.Read(payload)
	runtime.ReadMemStats(&after)
	ve := validationError(t, err)
	if len(ve.Fields) != 1 || ve.Fields[0].Expected != fmt.Sprintf("nesting depth <= %d", contract.MaxDepth) {
		t.Fatalf("error = %v, want a nesting depth error", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > uint64(len(payload)/2) {
		t.Errorf("refusing a %d-byte payload allocated %d bytes: the raw value was rewritten", len(payload), n)
	}
}

func TestReadBoundsErrors(t *testing.T) {
	push := version(t, shipped(t), "github/push", "v1")
	m := fixture(t, "github/push/fixtures/v1/push.main.json")
	commits := make([]any, 100)
	for i := range commits {
		commits[i] = map[string]any{"id": i} // 3 errors each
	}
	m["commits"] = commits
	_, err := push.Read(encode(t, m))
	ve := validationError(t, err)
	if len(ve.Fields) != contract.MaxFieldErrors || ve.Omitted != 300-contract.MaxFieldErrors {
		t.Errorf("got %d fields, %d omitted; want %d, %d", len(ve.Fields), ve.Omitted, contract.MaxFieldErrors, 300-contract.MaxFieldErrors)
	}
	if !strings.HasSuffix(err.Error(), fmt.Sprintf("; and %d more", ve.Omitted)) {
		t.Errorf("Error() = %q", err)
	}
}

func TestValidationErrorText(t *testing.T) {
	err := error(&contract.ValidationError{
		Contract: "stripe/payment_intent", Version: "v1",
		Fields: []contract.FieldError{
			{Path: "/data/object/amount", Expected: "long", Actual: `string "12"`},
			{Path: "", Expected: "JSON", Actual: "invalid JSON: EOF"},
		},
	})
	want := `contract stripe/payment_intent v1: invalid payload: /data/object/amount: expected long, got string "12"; /: expected JSON, got invalid JSON: EOF`
	if err.Error() != want {
		t.Errorf("Error() =\n%s\nwant\n%s", err, want)
	}
	if !contract.IsValidation(fmt.Errorf("processor: %w", err)) {
		t.Error("IsValidation(wrapped) = false")
	}
	if contract.IsValidation(errors.New("x")) || contract.IsValidation(nil) {
		t.Error("IsValidation(other) = true")
	}
}

// TestReadConcurrent: one Version read from many goroutines (run with -race).
func TestReadConcurrent(t *testing.T) {
	r := shipped(t)
	pi := version(t, r, "stripe/payment_intent", "2024-06-20")
	order := version(t, r, "shopify/order", "2024-07")
	p1 := encode(t, fixture(t, "stripe/payment_intent/fixtures/v1/payment_intent.succeeded.json"))
	p2 := encode(t, fixture(t, "shopify/order/fixtures/v1/orders.create.2024-07.json"))
	done := make(chan error)
	for i := 0; i < 8; i++ {
		go func() {
			var err error
			for j := 0; j < 50 && err == nil; j++ {
				if _, err = pi.Read(p1); err == nil {
					_, err = order.Read(p2)
				}
			}
			done <- err
		}()
	}
	for i := 0; i < 8; i++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// TestUpcastLargeString: a value over hamba's default 1 MiB string limit
// upcasts (a payload may be as large as a raw record); refused, a valid
// event would go through every retry tier to the DLQ.
func TestUpcastLargeString(t *testing.T) {
	v := version(t, testRegistry(t), "test/widget", "v1")
	big := `"` + strings.Repeat("x", 1<<20+1) + `"`
	p := `{"id": 1, "count": 1, "ratio": 1, "weight": 1, "ok": true, "name": "n", "color": "red", "size": "s", "parts": [], "nothing": null, "extra": {"blob": ` + big + `}}`
	if _, err := v.Read([]byte(p)); err != nil {
		t.Fatalf("payload of %d bytes: %v", len(p), err)
	}
}

// TestUpcastIntoUnion: a v2 that makes a required field a union (the
// provider started sending null, or an expanded object for an id) is
// backward compatible, and a v1 payload upcast to it must be a value of the
// canonical schema in Read's form: a record, enum, array or map branch, and
// any branch of a union that has one, as {"<type name>": value}. Avro
// resolution read the bare value, which the processed record's encoder
// refused ("avro: unknown union type x": every v1 event invalid).
func TestUpcastIntoUnion(t *testing.T) {
	rec := func(fields string) string {
		return `{"type":"record","name":"Evo","namespace":"test.evo","fields":[` + fields + `]}`
	}
	const o = `{"type":"record","name":"O","fields":[{"name":"x","type":"string"}]}`
	cases := []struct {
		name, v1, v2, payload, plain string
	}{
		{"record", `{"name":"n","type":` + o + `}`, `{"name":"n","type":["null",` + o + `],"default":null}`, `{"n":{"x":"a"}}`, `{"n":{"x":"a"}}`},
		{"enum", `{"name":"n","type":{"type":"enum","name":"E","symbols":["a"]}}`, `{"name":"n","type":["null",{"type":"enum","name":"E","symbols":["a","b"]}],"default":null}`, `{"n":"a"}`, `{"n":"a"}`},
		{"array", `{"name":"n","type":{"type":"array","items":"int"}}`, `{"name":"n","type":["null",{"type":"array","items":"long"}],"default":null}`, `{"n":[1]}`, `{"n":[1]}`},
		{"map", `{"name":"n","type":{"type":"map","values":"long"}}`, `{"name":"n","type":["null",{"type":"map","values":"long"}],"default":null}`, `{"n":{"k":1}}`, `{"n":{"k":1}}`},
		{"record in array item", `{"name":"n","type":{"type":"array","items":{"type":"record","name":"I","fields":[{"name":"o","type":` + o + `}]}}}`,
			`{"name":"n","type":{"type":"array","items":{"type":"record","name":"I","fields":[{"name":"o","type":["null",` + o + `],"default":null}]}}}`, `{"n":[{"o":{"x":"a"}}]}`, `{"n":[{"o":{"x":"a"}}]}`},
		{"record in nullable record", `{"name":"n","type":["null",{"type":"record","name":"I","fields":[{"name":"o","type":` + o + `}]}],"default":null}`,
			`{"name":"n","type":["null",{"type":"record","name":"I","fields":[{"name":"o","type":["null",` + o + `],"default":null}]}],"default":null}`, `{"n":{"o":{"x":"a"}}}`, `{"n":{"o":{"x":"a"}}}`},
		{"string to expandable", `{"name":"n","type":"string"}`, `{"name":"n","type":["null","string",` + o + `],"default":null}`, `{"n":"a"}`, `{"n":"a"}`},
		{"long to long or array", `{"name":"n","type":"int"}`, `{"name":"n","type":["null","long",{"type":"array","items":"long"}],"default":null}`, `{"n":1}`, `{"n":1}`},
		{"record in map", `{"name":"n","type":{"type":"map","values":` + o + `}}`, `{"name":"n","type":{"type":"map","values":["null",` + o + `]}}`, `{"n":{"k":{"x":"a"}}}`, `{"n":{"k":{"x":"a"}}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := contract.Load(mapFS(map[string]string{
				"test/evo/manifest.yaml": "name: test/evo\ncanonical: v2\nversions:\n  - name: v1\n    source_versions: [\"a\"]\n  - name: v2\n    source_versions: [\"b\"]\n    compatibility: backward\n",
				"test/evo/v1.avsc":       rec(tc.v1),
				"test/evo/v2.avsc":       rec(tc.v2),
			}))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			c, _ := r.Contract("test/evo")
			got, err := version(t, r, "test/evo", "a").Read([]byte(tc.payload))
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			b, err := avro.Marshal(c.ProcessedSchema(), &contract.Processed{Data: got})
			if err != nil {
				t.Fatalf("v1 payload upcast to v2 does not encode as a processed record: %v (Read = %#v)", err, got)
			}
			var back contract.Processed
			if err := avro.Unmarshal(c.ProcessedSchema(), b, &back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back.Data, got) {
				t.Errorf("Read = %#v, want the canonical form %#v", got, back.Data)
			}
			if plain, _ := json.Marshal(contract.Plain(c.Canonical(), got)); string(plain) != tc.plain {
				t.Errorf("Plain = %s, want %s", plain, tc.plain)
			}
		})
	}
}

package contract

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/inletdev/inlet/schemas/contracts"
)

// refRead is the reference for walker.read: the same rules applied to a
// value decoded by encoding/json (with UseNumber). It is simple and slow;
// FuzzWalker checks the walker agrees with it.
func refRead(n *node, j any, p *pathSeg, st *readState) any {
	switch n.kind {
	case kindUnion:
		if j == nil {
			if n.nullable {
				return nil
			}
			st.fail(p, n.expected, "null")
			return nil
		}
		k := refKind(j)
		if n.branches[k] == nil {
			st.fail(p, n.expected, refDescribe(j))
			return nil
		}
		return map[string]any{n.names[k]: refRead(n.branches[k], j, p, st)}
	case kindRaw:
		if j == nil && n.nullable {
			return nil
		}
		b, _ := json.Marshal(j)
		text, _ := rawJSON(b) // from a decoded value: no duplicates
		return text
	}
	switch x := j.(type) {
	case map[string]any:
		switch n.kind {
		case kindRecord:
			out := make(map[string]any)
			for _, f := range n.fields {
				fp := &pathSeg{parent: p, key: f.name}
				v, ok := x[f.name]
				switch {
				case ok:
					out[f.name] = refRead(f.node, v, fp, st)
				case f.hasDefault:
				case f.nullable:
					out[f.name] = nil
				default:
					st.fail(fp, f.node.expected, "missing")
				}
			}
			return out
		case kindMap:
			out := make(map[string]any)
			for k, v := range x {
				out[k] = refRead(n.elem, v, &pathSeg{parent: p, key: k}, st)
			}
			return out
		}
	case []any:
		if n.kind == kindArray {
			out := make([]any, len(x))
			for i, v := range x {
				out[i] = refRead(n.elem, v, &pathSeg{parent: p, index: i, isIdx: true}, st)
			}
			return out
		}
	case string:
		switch n.kind {
		case kindString:
			return x
		case kindEnum:
			if _, ok := n.symbols[x]; ok {
				return x
			}
			if n.enumDefault != "" {
				return n.enumDefault
			}
		}
	case json.Number:
		if n.jsonKind() == jsonNumber {
			if v, ok := n.readNumber(string(x)); ok {
				return v
			}
			st.fail(p, n.expected, "number "+truncate(string(x))+" ("+numberProblem(n.kind, string(x))+")")
			return nil
		}
	case bool:
		if n.kind == kindBoolean {
			return x
		}
	case nil:
		if n.kind == kindNull {
			return nil
		}
	}
	st.fail(p, n.expected, refDescribe(j))
	return nil
}

func refKind(j any) jsonKind {
	switch j.(type) {
	case nil:
		return jsonNull
	case bool:
		return jsonBoolean
	case json.Number:
		return jsonNumber
	case string:
		return jsonString
	case []any:
		return jsonArray
	}
	return jsonObject
}

func refDescribe(j any) string {
	switch x := j.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean " + strconv.FormatBool(x)
	case json.Number:
		return "number " + truncate(string(x))
	case string:
		return "string " + strconv.Quote(truncate(x))
	case []any:
		return "array"
	}
	return "object"
}

// FuzzWalker: for valid JSON within MaxDepth and without duplicate member
// names the contract reads, the walker returns what refRead returns, with
// the same field errors (in any order; the walker's follows the payload).
func FuzzWalker(f *testing.F) {
	plans := walkerPlans(f)
	seedCorpus(f, len(plans),
		`{"a\u0062c": "\ud83d\ude00\u00e9\"\\\/", "x": [ 1 , {"y" : "]}\"" } ] }`,
		"{\"type\":\"\xff\xfeok\",\"timestamp\":\"t\",\"data\":[1,2.5e3,\"\\u0000\"]}",
		`{"ref": "r", "before": "b", "after": "a", "repository": {"full_name": 5}, "pusher": {}, "commits": [{}, null, "x"]}`,
		`{"id": 1, "name": "#1", "created_at": "c", "updated_at": "u", "currency": "EUR", "total_price": 1, "line_items": [{"id": 1.5}]}`,
	)
	f.Fuzz(func(t *testing.T, which uint8, payload []byte) {
		plan := plans[int(which)%len(plans)]
		if !json.Valid(payload) {
			return
		}
		var wst readState
		w := walker{b: payload, st: &wst}
		got := w.read(plan, nil)
		if w.tooDeep || slices.ContainsFunc(wst.errs, func(e FieldError) bool { return e.Actual == "a duplicate member" }) {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(payload))
		dec.UseNumber()
		var doc any
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("json.Valid but Decode: %v", err)
		}
		var rst readState
		want := refRead(plan, doc, nil, &rst)
		if wst.omitted+len(wst.errs) != rst.omitted+len(rst.errs) {
			t.Fatalf("walker found %d errors, reference %d:\n%v\n%v", wst.omitted+len(wst.errs), rst.omitted+len(rst.errs), wst.errs, rst.errs)
		}
		if len(wst.errs) > 0 {
			if wst.omitted == 0 && !sameErrors(wst.errs, rst.errs) {
				t.Fatalf("errors differ:\nwalker    %v\nreference %v", wst.errs, rst.errs)
			}
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("values differ:\nwalker    %#v\nreference %#v", got, want)
		}
	})
}

func sameErrors(a, b []FieldError) bool {
	key := func(e FieldError) string { return e.Path + "\x00" + e.Expected + "\x00" + e.Actual }
	ka, kb := make([]string, len(a)), make([]string, len(b))
	for i := range a {
		ka[i] = key(a[i])
	}
	for i := range b {
		kb[i] = key(b[i])
	}
	slices.Sort(ka)
	slices.Sort(kb)
	return slices.Equal(ka, kb)
}

func walkerPlans(tb testing.TB) []*node {
	r, err := Load(contracts.FS)
	if err != nil {
		tb.Fatal(err)
	}
	var plans []*node
	for _, c := range r.Contracts() {
		for _, v := range c.versions {
			plans = append(plans, v.plan)
		}
	}
	return plans
}

// TestWalkerStrings: strings decode as encoding/json decodes them.
func TestWalkerStrings(t *testing.T) {
	for _, raw := range []string{
		`"plain"`, `""`, `"\""`, `"\\"`, `"a\\\"b"`, `"\\\\"`, `"\u00e9\ud83d\ude00"`, `"\ud800"`,
		"\"\xff\xfe\"", `"\/\b\f\n\r\t"`, `"]},{["`,
	} {
		var want string
		if err := json.Unmarshal([]byte(raw), &want); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		payload := []byte(`{"k":` + raw + `, "after": 1}`)
		w := walker{b: payload, st: &readState{}}
		var got string
		w.members(func(key []byte) {
			if string(key) == "k" {
				got = w.str()
			} else {
				w.skip()
			}
		})
		if got != want || w.i != len(payload) {
			t.Errorf("%s: got %q (cursor %d/%d), want %q", raw, got, w.i, len(payload), want)
		}
	}
	if got := escapePointer("a/b~c"); got != "a~1b~0c" {
		t.Errorf("escapePointer = %s", got)
	}
	if text, dup := rawJSON([]byte(`{"b":"<&>","a":1.50}`)); text != `{"a":1.50,"b":"<&>"}` || dup {
		t.Errorf("rawJSON = %s, %v", text, dup)
	}
}

package contract_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/inletdev/inlet/pkg/contract"
)

// plainV1 has every branch kind hamba's generic form wraps in a union, and
// a raw field.
const plainV1 = `{
  "type": "record", "name": "P", "namespace": "test.plain",
  "fields": [
    {"name": "owner", "type": ["null", {"type": "record", "name": "Owner", "fields": [
      {"name": "login", "type": "string"},
      {"name": "team", "type": ["null", {"type": "record", "name": "Team", "fields": [{"name": "slug", "type": "string"}]}], "default": null}
    ]}], "default": null},
    {"name": "state", "type": ["null", {"type": "enum", "name": "State", "symbols": ["open", "closed"]}], "default": null},
    {"name": "labels", "type": ["null", {"type": "array", "items": ["null", {"type": "record", "name": "Label", "fields": [{"name": "name", "type": "string"}]}]}], "default": null},
    {"name": "counts", "type": ["null", {"type": "map", "values": "long"}], "default": null},
    {"name": "note", "type": ["null", "string"], "default": null},
    {"name": "extra", "type": ["null", "string"], "inlet.json": "raw", "default": null},
    {"name": "gone", "type": ["null", {"type": "record", "name": "Gone", "fields": [{"name": "x", "type": "long"}]}], "default": null}
  ]
}`

// TestPlainUnwrapsUnions: a sink's body is plain JSON. Marshalled as Read
// returns it, an optional record reached the sink as
// {"owner": {"test.plain.Owner": {...}}} and a raw field as a string of
// JSON.
func TestPlainUnwrapsUnions(t *testing.T) {
	r, err := contract.Load(mapFS(map[string]string{
		"test/plain/manifest.yaml": "name: test/plain\ncanonical: v1\nversions:\n  - name: v1\n    source_versions: [\"v1\"]\n",
		"test/plain/v1.avsc":       plainV1,
	}))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := r.Contract("test/plain")
	payload := `{"owner": {"login": "mara", "team": {"slug": "core"}}, "state": "open",
	  "labels": [{"name": "bug"}, null], "counts": {"a": 1}, "note": "hi",
	  "extra": {"b": [1, true]}, "gone": null}`
	got, err := c.CanonicalVersion().Read([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	before, _ := json.Marshal(got)
	body, err := json.Marshal(contract.Plain(c.Canonical(), got))
	if err != nil {
		t.Fatal(err)
	}
	var have, want any
	if err := json.Unmarshal(body, &have); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal([]byte(payload), &want)
	if !reflect.DeepEqual(have, want) {
		t.Fatalf("Plain = %s\nwant the payload's shape %s", body, payload)
	}
	if again, _ := json.Marshal(got); string(again) != string(before) {
		t.Fatalf("Plain modified its argument: %s, was %s", again, before)
	}
}

// TestPlainUnwrapsPrimitiveOfMixedUnion: in a union with a record, enum,
// array or map branch, hamba's generic form wraps the primitive branches
// too ({"string": "cus_1"}), and a sink's body carried that wrapper for a
// field such as Stripe's expandable customer (an id, or the object).
func TestPlainUnwrapsPrimitiveOfMixedUnion(t *testing.T) {
	r, err := contract.Load(mapFS(map[string]string{
		"test/plain/manifest.yaml": "name: test/plain\ncanonical: v1\nversions:\n  - name: v1\n    source_versions: [\"v1\"]\n",
		"test/plain/v1.avsc": `{"type":"record","name":"P","namespace":"test.plain","fields":[
			{"name":"customer","type":["null","string",{"type":"record","name":"Customer","fields":[{"name":"id","type":"string"}]}],"default":null},
			{"name":"amount","type":["null","long",{"type":"array","items":"long"}],"default":null},
			{"name":"ok","type":["null","boolean",{"type":"map","values":"string"}],"default":null}]}`,
	}))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := r.Contract("test/plain")
	for _, payload := range []string{
		`{"amount":5,"customer":"cus_1","ok":true}`,
		`{"amount":[1,2],"customer":{"id":"cus_1"},"ok":{"a":"b"}}`,
		`{"amount":null,"customer":null,"ok":null}`,
	} {
		got, err := c.CanonicalVersion().Read([]byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		body, err := json.Marshal(contract.Plain(c.Canonical(), got))
		if err != nil {
			t.Fatal(err)
		}
		if string(body) != payload {
			t.Errorf("Plain = %s, want the payload's shape %s", body, payload)
		}
	}
}

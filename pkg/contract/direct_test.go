package contract

import (
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/inletdev/inlet/schemas/contracts"
)

// directV1 has every type a direct plan may hold: no unions, no defaults.
const directV1 = `{
  "type": "record", "name": "Flat", "namespace": "test.direct",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "count", "type": "int"},
    {"name": "ratio", "type": "double"},
    {"name": "weight", "type": "float"},
    {"name": "ok", "type": "boolean"},
    {"name": "name", "type": "string"},
    {"name": "color", "type": {"type": "enum", "name": "Color", "symbols": ["red", "green", "other"], "default": "other"}},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "attrs", "type": {"type": "map", "values": "long"}},
    {"name": "parts", "type": {"type": "array", "items": {"type": "record", "name": "Part", "fields": [
      {"name": "id", "type": "string"},
      {"name": "qty", "type": "int"}
    ]}}},
    {"name": "extra", "type": "string", "inlet.json": "raw"},
    {"name": "nothing", "type": "null"}
  ]
}`

const directOK = `{
  "id": 9007199254740993, "count": -3, "ratio": 5, "weight": 1.5, "ok": true, "name": "gear",
  "color": "blue", "tags": ["a", "b"], "attrs": {"x": 1, "a/b~c": 2},
  "parts": [{"id": "p1", "qty": 2, "ignored": {"deep": [1, 2, {"x": null}]}}],
  "extra": {"b": 1, "a": [true, null, "<&>"]}, "unknown": "ignored"
}`

// directVersions returns the direct versions of the test contract and the
// shipped ones; all, every version.
func directVersions(t testing.TB) (direct, all []*Version) {
	t.Helper()
	test, err := Load(fstest.MapFS{
		"test/direct/manifest.yaml": {Data: []byte("name: test/direct\ncanonical: v1\nversions:\n  - name: v1\n    source_versions: [\"v1\"]\n")},
		"test/direct/v1.avsc":       {Data: []byte(directV1)},
	})
	if err != nil {
		t.Fatal(err)
	}
	shipped, err := Load(contracts.FS)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*Registry{test, shipped} {
		for _, c := range r.Contracts() {
			for _, v := range c.Versions() {
				all = append(all, v)
				if v.direct {
					direct = append(direct, v)
				}
			}
		}
	}
	return direct, all
}

// TestDirect: which versions skip the Avro round trip. A canonical version
// with a union or a defaulted field, and any older version, must not.
func TestDirect(t *testing.T) {
	_, all := directVersions(t)
	got := map[string]bool{}
	for _, v := range all {
		got[v.contract.name+"@"+v.name] = v.direct
	}
	for name, want := range map[string]bool{
		"test/direct@v1":            true,
		"standardwebhooks/event@v1": true,
		"shopify/order@v1":          false, // not canonical: upcast to v2
		"shopify/order@v2":          false, // nullable fields are unions
		"stripe/payment_intent@v1":  false,
	} {
		if d, ok := got[name]; !ok || d != want {
			t.Errorf("%s: direct %v (exists %v), want %v", name, d, ok, want)
		}
	}
}

// FuzzDirect: for a direct version, Read gives exactly the value the Avro
// round trip (encode with the version, decode with Canonical()) gives.
func FuzzDirect(f *testing.F) {
	versions, _ := directVersions(f)
	seedCorpus(f, len(versions),
		directOK, `{"type": "a", "timestamp": "t", "data": [1, {"b": "\u00e9", "a": 1e3}]}`,
		`{"type": "\xff", "timestamp": "", "data": null}`, strings.Repeat("[", 70),
	)
	f.Fuzz(func(t *testing.T, which uint8, payload []byte) {
		v := versions[int(which)%len(versions)]
		got, err := v.Read(payload)
		if err != nil {
			return
		}
		var st readState
		want, err := v.upcast(v.readJSON(payload, &st))
		if err != nil {
			t.Fatalf("%s %s: upcast of a value Read accepted: %v", v.contract.name, v.name, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s %s: direct read\n%#v\nround trip\n%#v", v.contract.name, v.name, got, want)
		}
	})
}

package contract_test

import (
	"testing"
	"testing/fstest"

	"github.com/inletdev/inlet/pkg/contract"
)

// widgetV1 exercises every type the reader supports.
const widgetV1 = `{
  "type": "record", "name": "Widget", "namespace": "test.widget",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "count", "type": "int"},
    {"name": "ratio", "type": "double"},
    {"name": "weight", "type": "float"},
    {"name": "ok", "type": "boolean"},
    {"name": "name", "type": "string"},
    {"name": "color", "type": {"type": "enum", "name": "Color", "symbols": ["red", "green", "other"], "default": "other"}},
    {"name": "size", "type": {"type": "enum", "name": "Size", "symbols": ["s", "m", "l"]}},
    {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []},
    {"name": "attrs", "type": {"type": "map", "values": "long"}, "default": {}},
    {"name": "note", "type": ["null", "string"], "default": null},
    {"name": "parts", "type": {"type": "array", "items": {"type": "record", "name": "Part", "fields": [
      {"name": "id", "type": "string"},
      {"name": "qty", "type": "long"}
    ]}}},
    {"name": "owner", "type": ["null", {"type": "record", "name": "Owner", "fields": [{"name": "login", "type": "string"}]}], "default": null},
    {"name": "extra", "type": ["null", "string"], "inlet.json": "raw", "default": null},
    {"name": "nothing", "type": "null"}
  ]
}`

// widgetOK is a valid widget payload, with fields the contract ignores.
const widgetOK = `{
  "id": 9007199254740993, "count": -3, "ratio": 5, "weight": 1.5, "ok": true, "name": "gear",
  "color": "green", "size": "m", "tags": ["a", "b"], "attrs": {"x": 1, "a/b~c": 2},
  "note": null, "parts": [{"id": "p1", "qty": 2, "ignored": {"deep": [1, 2, {"x": null}]}}],
  "owner": {"login": "mara", "id": 5}, "extra": {"b": 1, "a": [true, null, "<&>"]},
  "nothing": null, "unknown": "ignored"
}`

// mapFS builds a contract tree from path → content.
func mapFS(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for p, c := range files {
		fsys[p] = &fstest.MapFile{Data: []byte(c)}
	}
	return fsys
}

// testRegistry loads test/widget.
func testRegistry(t testing.TB) *contract.Registry {
	t.Helper()
	r, err := contract.Load(mapFS(map[string]string{
		"test/widget/manifest.yaml": "name: test/widget\ncanonical: v1\nversions:\n  - name: v1\n    source_versions: [\"v1\"]\n",
		"test/widget/v1.avsc":       widgetV1,
	}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return r
}

func version(t testing.TB, r *contract.Registry, name, source string) *contract.Version {
	t.Helper()
	c, ok := r.Contract(name)
	if !ok {
		t.Fatalf("no contract %s", name)
	}
	v, ok := c.VersionFor(source)
	if !ok {
		t.Fatalf("%s: no version for %q", name, source)
	}
	return v
}

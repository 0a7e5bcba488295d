package contract_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/inletdev/inlet/pkg/contract"
)

const (
	recV1 = `{"type":"record","name":"R","namespace":"t","fields":[{"name":"id","type":"long"}]}`
	// recV2Added adds a field with a default: fully compatible with recV1.
	recV2Added = `{"type":"record","name":"R","namespace":"t","fields":[{"name":"id","type":"long"},{"name":"note","type":["null","string"],"default":null}]}`
	// recV2Required adds a required field: not backward compatible.
	recV2Required = `{"type":"record","name":"R","namespace":"t","fields":[{"name":"id","type":"long"},{"name":"color","type":"string"}]}`
	// recV2Retyped changes id's type: compatible with nothing.
	recV2Retyped = `{"type":"record","name":"R","namespace":"t","fields":[{"name":"id","type":"string"}]}`
)

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func twoVersions(canonical, compat, v2 string) map[string]string {
	return map[string]string{
		"test/thing/manifest.yaml": "name: test/thing\ncanonical: " + canonical + "\nversions:\n" +
			"  - name: v1\n    source_versions: [\"1\"]\n" +
			"  - name: v2\n    source_versions: [\"2\"]\n" + compat,
		"test/thing/v1.avsc": recV1,
		"test/thing/v2.avsc": v2,
	}
}

func TestLoadCompatibility(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string // substrings of the error; nil = Load succeeds
	}{
		{"backward ok", twoVersions("v2", "    compatibility: backward\n", recV2Added), nil},
		{"full ok", twoVersions("v2", "    compatibility: full\n", recV2Added), nil},
		{"forward ok, canonical older", twoVersions("v1", "    compatibility: forward\n", recV2Required), nil},
		{
			"breaking change declared backward",
			twoVersions("v2", "    compatibility: backward\n", recV2Required),
			[]string{"test/thing/manifest.yaml", "contract test/thing", "v2 declares backward compatibility with v1",
				"v2 (reader) cannot read data written with v1 (writer)", "color", "no default"},
		},
		{
			"full fails forward half",
			twoVersions("v1", "    compatibility: full\n", recV2Required),
			[]string{"contract test/thing", "v2 declares full compatibility with v1", "v2 (reader) cannot read data written with v1", "color"},
		},
		{
			// hamba's error names the types only ("reader schema double not
			// compatible with writer schema long"): in a schema of many
			// longs, the path is what says which field changed.
			"retyped nested field named by its path",
			map[string]string{
				"test/thing/manifest.yaml": "name: test/thing\ncanonical: v2\nversions:\n" +
					"  - name: v1\n    source_versions: [\"1\"]\n" +
					"  - name: v2\n    source_versions: [\"2\"]\n    compatibility: backward\n",
				"test/thing/v1.avsc": `{"type":"record","name":"R","namespace":"t","fields":[{"name":"id","type":"long"},{"name":"items","type":{"type":"array","items":{"type":"record","name":"I","fields":[{"name":"qty","type":"long"},{"name":"sku","type":"string"}]}}}]}`,
				"test/thing/v2.avsc": `{"type":"record","name":"R","namespace":"t","fields":[{"name":"id","type":"long"},{"name":"items","type":{"type":"array","items":{"type":"record","name":"I","fields":[{"name":"qty","type":"long"},{"name":"sku","type":"long"}]}}}]}`,
			},
			[]string{"v2 declares backward compatibility with v1", "field /items/[]/sku", "string"},
		},
		{
			"none still needs an upcast",
			twoVersions("v2", "    compatibility: none\n    reason: id became an opaque string\n", recV2Retyped),
			[]string{"contract test/thing", "v1 cannot be upcast to canonical v2", "string", "long"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := contract.Load(mapFS(tc.files))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			if !errors.Is(err, contract.ErrIncompatible) {
				t.Fatalf("Load error = %v, want ErrIncompatible", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestLoadCompatibilityFresh guards against hamba's verdict cache: it keys
// on canonical-form fingerprints, which leave out aliases, so v3 (v2 less
// its alias) resolving v1 reused v2's "compatible" and v1 payloads upcast
// with the renamed required field empty.
func TestLoadCompatibilityFresh(t *testing.T) {
	rec := func(field string) string {
		return `{"type":"record","name":"R","namespace":"t","fields":[` + field + `]}`
	}
	_, err := contract.Load(mapFS(map[string]string{
		"test/thing/manifest.yaml": "name: test/thing\ncanonical: v3\nversions:\n" +
			"  - name: v1\n    source_versions: [\"1\"]\n" +
			"  - name: v2\n    source_versions: [\"2\"]\n    compatibility: backward\n" +
			"  - name: v3\n    source_versions: [\"3\"]\n    compatibility: backward\n",
		"test/thing/v1.avsc": rec(`{"name":"status","type":"string"}`),
		"test/thing/v2.avsc": rec(`{"name":"state","type":"string","aliases":["status"]}`),
		"test/thing/v3.avsc": rec(`{"name":"state","type":"string"}`),
	}))
	if !errors.Is(err, contract.ErrIncompatible) || !strings.Contains(err.Error(), "v1 cannot be upcast to canonical v3") {
		t.Fatalf("Load = %v, want v1 cannot be upcast to canonical v3", err)
	}
}

// TestLoadProcessedNamesCollide: two contracts whose processed records
// share a full name ("-" and "_" both sanitize to "_") would share one
// registry subject and one inlet-record-name.
func TestLoadProcessedNamesCollide(t *testing.T) {
	manifest := func(name string) string {
		return "name: " + name + "\ncanonical: v1\nversions:\n  - name: v1\n    source_versions: [\"1\"]\n"
	}
	_, err := contract.Load(mapFS(map[string]string{
		"acme/order-item/manifest.yaml": manifest("acme/order-item"),
		"acme/order-item/v1.avsc":       recV1,
		"acme/order_item/manifest.yaml": manifest("acme/order_item"),
		"acme/order_item/v1.avsc":       recV2Retyped,
	}))
	if !errors.Is(err, contract.ErrManifest) || !strings.Contains(err.Error(), "inlet.processed.acme.order_item") {
		t.Fatalf("Load = %v, want both contracts named for inlet.processed.acme.order_item", err)
	}
}

func TestLoadManifestErrors(t *testing.T) {
	const dir = "test/thing/"
	ok := "name: test/thing\ncanonical: v1\nversions:\n  - name: v1\n    source_versions: [\"1\"]\n"
	for _, tc := range []struct {
		name     string
		manifest string
		files    map[string]string // extra files
		sentinel error
		want     string
	}{
		{"not yaml", "name: [", nil, contract.ErrManifest, "manifest.yaml"},
		{"unknown key", ok + "owner: me\n", nil, contract.ErrManifest, "owner"},
		{"no name", "canonical: v1\nversions:\n  - name: v1\n    source_versions: [\"1\"]\n", nil, contract.ErrManifest, "name is required"},
		{"name not dir", strings.Replace(ok, "test/thing", "test/other", 1), nil, contract.ErrManifest, `does not match its directory "test/thing"`},
		{"no versions", "name: test/thing\ncanonical: v1\n", nil, contract.ErrManifest, "no versions"},
		{"bad version name", strings.Replace(ok, "name: v1", "name: one", 1), nil, contract.ErrManifest, "must be v<N>"},
		{"canonical missing", strings.Replace(ok, "canonical: v1", "canonical: v9", 1), nil, contract.ErrManifest, `canonical "v9" is not one of the versions`},
		{"no source versions", strings.Replace(ok, `source_versions: ["1"]`, "source_versions: []", 1), nil, contract.ErrManifest, "source_versions is empty"},
		{"bad glob", strings.Replace(ok, `["1"]`, `["2024-[a"]`, 1), nil, contract.ErrManifest, "syntax error in pattern"},
		{"retired with source versions", ok + "    retired: true\n", nil, contract.ErrManifest, "retired, yet it lists source_versions"},
		{"canonical retired", strings.Replace(ok, `source_versions: ["1"]`, "retired: true", 1), nil, contract.ErrManifest, "the canonical version cannot be retired"},
		{"compatibility on first", ok + "    compatibility: backward\n", nil, contract.ErrManifest, "nothing before it"},
		{
			"versions out of order",
			"name: test/thing\ncanonical: v1\nversions:\n  - name: v2\n    source_versions: [\"2\"]\n  - name: v1\n    source_versions: [\"1\"]\n    compatibility: full\n",
			map[string]string{"v2.avsc": recV1}, contract.ErrManifest, "oldest first",
		},
		{
			"compatibility undeclared",
			ok + "  - name: v2\n    source_versions: [\"2\"]\n",
			map[string]string{"v2.avsc": recV2Added}, contract.ErrManifest, "v2: compatibility with v1 is required",
		},
		{
			"none without reason",
			ok + "  - name: v2\n    source_versions: [\"2\"]\n    compatibility: none\n",
			map[string]string{"v2.avsc": recV2Added}, contract.ErrManifest, "needs a reason",
		},
		{
			"unknown compatibility",
			ok + "  - name: v2\n    source_versions: [\"2\"]\n    compatibility: transitive\n",
			map[string]string{"v2.avsc": recV2Added}, contract.ErrManifest, `"transitive"`,
		},
		{
			"exact source version twice",
			ok + "  - name: v2\n    source_versions: [\"1\"]\n    compatibility: full\n",
			map[string]string{"v2.avsc": recV2Added}, contract.ErrManifest, `"1" is listed by both v1 and v2`,
		},
		{"bad sha256", strings.Replace(ok, "  - name: v1\n", "  - name: v1\n    sha256: abc\n", 1), nil, contract.ErrManifest, "not 64 hex digits"},
		{
			"sha256 mismatch: published version edited",
			strings.Replace(ok, "  - name: v1\n", "  - name: v1\n    sha256: "+sum(recV2Added)+"\n", 1), nil,
			contract.ErrSchema, "test/thing/v1.avsc: invalid contract schema: sha256 is " + sum(recV1),
		},
		{"schema file missing", ok, map[string]string{"v1.avsc": ""}, contract.ErrSchema, "test/thing/v1.avsc"},
		{"schema not avro", ok, map[string]string{"v1.avsc": `{"type":"record"}`}, contract.ErrSchema, "test/thing/v1.avsc"},
		{"schema not a record", ok, map[string]string{"v1.avsc": `"string"`}, contract.ErrSchema, "a payload contract is a record"},
		{"unlisted schema", ok, map[string]string{"v2.avsc": recV2Added}, contract.ErrSchema, "test/thing/v2.avsc: invalid contract schema: not listed"},
		{
			"bytes field", ok, map[string]string{"v1.avsc": `{"type":"record","name":"R","namespace":"t","fields":[{"name":"b","type":"bytes"}]}`},
			contract.ErrSchema, "field b: type bytes cannot come from a JSON payload",
		},
		{
			"logical type", ok, map[string]string{"v1.avsc": `{"type":"record","name":"R","namespace":"t","fields":[{"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}}]}`},
			contract.ErrSchema, "field at: logical type timestamp-millis",
		},
		{
			"ambiguous union", ok, map[string]string{"v1.avsc": `{"type":"record","name":"R","namespace":"t","fields":[{"name":"n","type":["null","long","double"]}]}`},
			contract.ErrSchema, "field n: union has two branches a JSON number could be (long and double)",
		},
		{
			"ambiguous union of objects", ok, map[string]string{"v1.avsc": `{"type":"record","name":"R","namespace":"t","fields":[{"name":"o","type":[{"type":"map","values":"string"},{"type":"record","name":"S","fields":[]}]}]}`},
			contract.ErrSchema, "field o: union has two branches a JSON object could be",
		},
		{
			// Resolve would overflow the stack on it: Load must refuse, not crash.
			"recursive record", ok, map[string]string{"v1.avsc": `{"type":"record","name":"Node","namespace":"t","fields":[{"name":"v","type":"long"},{"name":"children","type":{"type":"array","items":"Node"},"default":[]}]}`},
			contract.ErrSchema, "field children[]: record t.Node contains itself",
		},
		{
			"record reused is not recursion", ok, map[string]string{"v1.avsc": `{"type":"record","name":"R","namespace":"t","fields":[{"name":"a","type":{"type":"record","name":"P","fields":[{"name":"x","type":"long"}]}},{"name":"b","type":"P"},{"name":"c","type":"string"}]}`},
			nil, "",
		},
		{
			"raw on a long", ok, map[string]string{"v1.avsc": `{"type":"record","name":"R","namespace":"t","fields":[{"name":"d","type":"long","inlet.json":"raw"}]}`},
			contract.ErrSchema, `field d: inlet.json raw needs type string`,
		},
		{
			"unknown inlet.json", ok, map[string]string{"v1.avsc": `{"type":"record","name":"R","namespace":"t","fields":[{"name":"d","type":"string","inlet.json":"yaml"}]}`},
			contract.ErrSchema, `field d: inlet.json yaml`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{dir + "manifest.yaml": tc.manifest, dir + "v1.avsc": recV1}
			for f, c := range tc.files {
				files[dir+f] = c
			}
			if c, ok := tc.files["v1.avsc"]; ok && c == "" {
				delete(files, dir+"v1.avsc")
			}
			_, err := contract.Load(mapFS(files))
			if tc.sentinel == nil {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.sentinel) {
				t.Fatalf("Load error = %v, want %v", err, tc.sentinel)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestLoadEmpty(t *testing.T) {
	if _, err := contract.Load(mapFS(map[string]string{"README.md": "x"})); !errors.Is(err, contract.ErrManifest) {
		t.Fatalf("Load(empty) = %v, want ErrManifest", err)
	}
}

// TestLoadReportsEveryContract: one broken contract does not hide another.
func TestLoadReportsEveryContract(t *testing.T) {
	_, err := contract.Load(mapFS(map[string]string{
		"a/one/manifest.yaml": "name: a/one\n",
		"b/two/manifest.yaml": "name: b/three\n",
	}))
	for _, w := range []string{"a/one/manifest.yaml", "b/two/manifest.yaml"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not mention %s", err, w)
		}
	}
}

func TestVersionFor(t *testing.T) {
	r, err := contract.Load(mapFS(map[string]string{
		"test/thing/manifest.yaml": `name: test/thing
canonical: v3
versions:
  - name: v1
    source_versions: ["2024-01", "2025-03", "*"]
  - name: v2
    source_versions: ["2025-*"]
    compatibility: full
  - name: v3
    source_versions: ["2025-06-*", "2025-0[7-9]"]
    compatibility: full
`,
		"test/thing/v1.avsc": recV1,
		"test/thing/v2.avsc": recV1,
		"test/thing/v3.avsc": recV2Added,
	}))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := r.Contract("test/thing")
	for _, tc := range []struct{ source, want string }{
		{"2024-01", "v1"},    // exact
		{"2025-03", "v1"},    // exact beats a newer glob
		{"2025-01", "v2"},    // newest matching glob
		{"2025-06-01", "v3"}, // newer glob beats an older one
		{"2025-08", "v3"},    // character class
		{"whatever", "v1"},   // catch-all
		{"", "v1"},           // * matches empty
		{"a/b", ""},          // * does not cross /
	} {
		v, ok := c.VersionFor(tc.source)
		got := ""
		if ok {
			got = v.Name()
		}
		if got != tc.want {
			t.Errorf("VersionFor(%q) = %q, want %q", tc.source, got, tc.want)
		}
	}
	if _, ok := r.Contract("test/nothing"); ok {
		t.Error("Contract(unknown) = true")
	}
	if got := c.CanonicalVersion().Name(); got != "v3" {
		t.Errorf("CanonicalVersion = %s", got)
	}
	if c.Canonical() != c.CanonicalVersion().Schema() {
		t.Error("Canonical() is not the canonical version's schema")
	}
}

// TestLoadRefusesUnreadableUnionDefault: hamba/avro can neither encode nor
// decode a union default whose first branch is a record, an enum or a map,
// so a version with one loaded and then failed every payload lacking the
// field, and every older version's payload (upcast), with an error that is
// no validation error: each such event went through the retry tiers to the
// DLQ.
func TestLoadRefusesUnreadableUnionDefault(t *testing.T) {
	for name, field := range map[string]string{
		"record": `{"name":"p","type":[{"type":"record","name":"P","fields":[{"name":"q","type":"string"}]},"null"],"default":{"q":"d"}}`,
		"enum":   `{"name":"p","type":[{"type":"enum","name":"E","symbols":["x","y"]},"null"],"default":"y"}`,
		"map":    `{"name":"p","type":[{"type":"map","values":"long"},"null"],"default":{"a":1}}`,
		"nested": `{"name":"o","type":{"type":"record","name":"O","fields":[{"name":"p","type":[{"type":"enum","name":"E","symbols":["x","y"]},"null"],"default":"y"}]}}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := contract.Load(mapFS(map[string]string{
				"test/thing/manifest.yaml": "name: test/thing\ncanonical: v1\nversions:\n  - name: v1\n    source_versions: [\"1\"]\n",
				"test/thing/v1.avsc":       `{"type":"record","name":"R","namespace":"t","fields":[{"name":"id","type":"long"},` + field + `]}`,
			}))
			if !errors.Is(err, contract.ErrSchema) || !strings.Contains(err.Error(), "field ") || !strings.Contains(err.Error(), `"null" first`) {
				t.Fatalf("Load = %v, want ErrSchema naming the field and the fix", err)
			}
		})
	}
}

// TestRetiredVersionRoutesNothing: a retired version lists no source
// versions, its successor takes what it read, and it still upcasts.
func TestRetiredVersionRoutesNothing(t *testing.T) {
	r, err := contract.Load(mapFS(map[string]string{
		"test/thing/manifest.yaml": "name: test/thing\ncanonical: v2\nversions:\n  - name: v1\n    retired: true\n  - name: v2\n    source_versions: [\"1\"]\n    compatibility: backward\n",
		"test/thing/v1.avsc":       recV1,
		"test/thing/v2.avsc":       recV2Added,
	}))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := r.Contract("test/thing")
	v, ok := c.VersionFor("1")
	if !ok || v.Name() != "v2" {
		t.Fatalf("VersionFor(1) = %v, %v; want v2", v, ok)
	}
	if len(c.Versions()[0].SourceVersions()) != 0 {
		t.Fatal("the retired version lists source versions")
	}
}

// TestLoadRefusesTypesWithoutANamespace: a named type without a namespace
// took inlet.processed.<provider>'s inside the processed record, so a
// union naming it (Read's {"Owner": …}) did not encode, and every event
// with it set went to the DLQ. Load refuses it, naming the type.
func TestLoadRefusesTypesWithoutANamespace(t *testing.T) {
	load := func(schema string) error {
		_, err := contract.Load(fstest.MapFS{
			"acme/thing/manifest.yaml": {Data: []byte("name: acme/thing\ncanonical: v1\nversions:\n  - name: v1\n    source_versions: [\"1\"]\n")},
			"acme/thing/v1.avsc":       {Data: []byte(schema)},
		})
		return err
	}
	const owner = `{"name":"owner","type":["null",{"type":"record","name":"Owner","fields":[{"name":"login","type":"string"}]}],"default":null}`
	err := load(`{"type":"record","name":"Thing","fields":[{"name":"id","type":"string"},` + owner + `]}`)
	if !errors.Is(err, contract.ErrSchema) || !strings.Contains(err.Error(), "Thing has no namespace") {
		t.Fatalf("%v, want ErrSchema saying Thing has no namespace", err)
	}
	// A nested type takes its parent's namespace: that is not one missing.
	if err := load(`{"type":"record","name":"Thing","namespace":"com.acme","fields":[{"name":"id","type":"string"},` + owner + `]}`); err != nil {
		t.Fatalf("nested type in the parent's namespace: %v", err)
	}
}

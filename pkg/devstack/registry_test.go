package devstack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
)

func srClient(t *testing.T, url string) *sr.Client {
	t.Helper()
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// testSchema is version n of one record, each adding a defaulted field: any
// two are BACKWARD compatible either way, so the registry takes them in any
// order under one subject.
func testSchema(n int) string {
	fields := []string{`{"name":"f0","type":"string"}`}
	for i := 1; i < n; i++ {
		fields = append(fields, fmt.Sprintf(`{"name":"f%d","type":"int","default":0}`, i))
	}
	return `{"type":"record","name":"R","namespace":"devstack.test","fields":[` + strings.Join(fields, ",") + `]}`
}

func mustRegister(t *testing.T, cl *sr.Client, subject, schema string) int {
	t.Helper()
	ss, err := cl.CreateSchema(context.Background(), subject, sr.Schema{Schema: schema})
	if err != nil {
		t.Fatalf("register %s: %v", subject, err)
	}
	return ss.ID
}

// registryVersion is one subject version as the registry shows it.
type registryVersion struct {
	ID      int
	Deleted bool
}

// dumpRegistry reads every subject version, deleted ones included.
func dumpRegistry(t *testing.T, cl *sr.Client) map[string]registryVersion {
	t.Helper()
	ctx := context.Background()
	withDeleted := sr.WithParams(ctx, sr.ShowDeleted)
	subjects, err := cl.Subjects(withDeleted)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]registryVersion{}
	for _, s := range subjects {
		all, err := cl.SubjectVersions(withDeleted, s)
		if err != nil {
			t.Fatal(err)
		}
		live, _ := cl.SubjectVersions(ctx, s) // a soft-deleted subject: none live
		for _, v := range all {
			ss, err := cl.SchemaByVersion(withDeleted, s, v)
			if err != nil {
				t.Fatal(err)
			}
			out[fmt.Sprintf("%s v%d", s, v)] = registryVersion{ID: ss.ID, Deleted: !contains(live, v)}
		}
	}
	return out
}

func contains(vs []int, v int) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

func schemaByID(t *testing.T, cl *sr.Client, id int) string {
	t.Helper()
	s, err := cl.SchemaByID(context.Background(), id)
	if err != nil {
		t.Fatalf("schema id %d: %v", id, err)
	}
	return s.Schema
}

// sameSchema compares schema texts as JSON (the registry may reformat).
func sameSchema(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}

// An ID whose subject version was deleted is still on file after a restart:
// it resolves by ID and a new schema gets a new ID, never the deleted one
// (records written with it would decode with the wrong schema).
func TestRegistryRestartKeepsDeletedIDs(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		delete func(*sr.Client) error
		check  func(t *testing.T, cl *sr.Client)
	}{
		{
			name: "soft-deleted subject",
			delete: func(cl *sr.Client) error {
				_, err := cl.DeleteSubject(ctx, "b-value", sr.SoftDelete)
				return err
			},
			check: func(t *testing.T, cl *sr.Client) {
				if got := dumpRegistry(t, cl)["b-value v1"]; got != (registryVersion{ID: 2, Deleted: true}) {
					t.Errorf("b-value v1 after restart = %+v, want id 2, deleted", got)
				}
				live, err := cl.Subjects(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if want := []string{"a-value", "c-value"}; !reflect.DeepEqual(live, want) {
					t.Errorf("live subjects after restart = %v, want %v", live, want)
				}
			},
		},
		{
			name: "soft-deleted version",
			delete: func(cl *sr.Client) error {
				return cl.DeleteSchema(ctx, "b-value", 1, sr.SoftDelete)
			},
			check: func(t *testing.T, cl *sr.Client) {
				if got := dumpRegistry(t, cl)["b-value v1"]; got != (registryVersion{ID: 2, Deleted: true}) {
					t.Errorf("b-value v1 after restart = %+v, want id 2, deleted", got)
				}
			},
		},
		{
			name: "hard-deleted subject",
			delete: func(cl *sr.Client) error {
				if _, err := cl.DeleteSubject(ctx, "b-value", sr.SoftDelete); err != nil {
					return err
				}
				_, err := cl.DeleteSubject(ctx, "b-value", sr.HardDelete)
				return err
			},
			check: func(t *testing.T, cl *sr.Client) {
				if _, ok := dumpRegistry(t, cl)["b-value v1"]; ok {
					t.Error("b-value v1 is back after a hard delete and a restart")
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := startStack(t, dir)
			cl := srClient(t, s.RegistryURL)
			if id := mustRegister(t, cl, "a-value", testSchema(1)); id != 1 {
				t.Fatalf("a-value got id %d, want 1", id)
			}
			if id := mustRegister(t, cl, "b-value", testSchema(2)); id != 2 {
				t.Fatalf("b-value got id %d, want 2", id)
			}
			if err := tc.delete(cl); err != nil {
				t.Fatal(err)
			}
			s.Close()

			s2 := startStack(t, dir)
			cl2 := srClient(t, s2.RegistryURL)
			if got := schemaByID(t, cl2, 2); !sameSchema(t, got, testSchema(2)) {
				t.Errorf("id 2 after restart resolves to %s, want %s", got, testSchema(2))
			}
			if id := mustRegister(t, cl2, "c-value", testSchema(3)); id != 3 {
				t.Errorf("new schema after restart got id %d, want 3 (ids 1 and 2 were issued before)", id)
			}
			if got := schemaByID(t, cl2, 2); !sameSchema(t, got, testSchema(2)) {
				t.Errorf("id 2 resolves to %s after a new registration, want %s", got, testSchema(2))
			}
			tc.check(t, cl2)
		})
	}
}

// One schema under several subjects (and again under one subject after its
// earlier version was deleted) shares one ID; a restart keeps every
// subject's versions with their numbers and IDs, and does not panic.
func TestRegistryRestartKeepsSharedSchemas(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := startStack(t, dir)
	cl := srClient(t, s.RegistryURL)
	s1, s2, s3, s4 := testSchema(1), testSchema(2), testSchema(3), testSchema(4)
	mustRegister(t, cl, "a-value", s1) // id 1, a v1
	mustRegister(t, cl, "b-value", s2) // id 2, b v1
	mustRegister(t, cl, "b-value", s1) // id 1, b v2
	mustRegister(t, cl, "c-value", s3) // id 3, c v1
	mustRegister(t, cl, "c-value", s4) // id 4, c v2 …
	if err := cl.DeleteSchema(ctx, "c-value", 2, sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	if err := cl.DeleteSchema(ctx, "c-value", 2, sr.HardDelete); err != nil { // … gone for good
		t.Fatal(err)
	}
	mustRegister(t, cl, "c-value", s2) // id 2, c v3
	mustRegister(t, cl, "d-value", s1) // id 1, d v1 …
	if err := cl.DeleteSchema(ctx, "d-value", 1, sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	mustRegister(t, cl, "d-value", s1) // … and id 1 again, d v2
	before := dumpRegistry(t, cl)
	want := map[string]registryVersion{
		"a-value v1": {ID: 1},
		"b-value v1": {ID: 2},
		"b-value v2": {ID: 1},
		"c-value v1": {ID: 3},
		"c-value v3": {ID: 2},
		"d-value v1": {ID: 1, Deleted: true},
		"d-value v2": {ID: 1},
	}
	if !reflect.DeepEqual(before, want) {
		t.Fatalf("registry before restart = %v, want %v (srfake changed?)", before, want)
	}
	s.Close()

	s2nd := startStack(t, dir)
	cl2 := srClient(t, s2nd.RegistryURL)
	if after := dumpRegistry(t, cl2); !reflect.DeepEqual(after, before) {
		t.Errorf("registry after restart = %v, want %v", after, before)
	}
	if got := schemaByID(t, cl2, 4); !sameSchema(t, got, s4) {
		t.Errorf("id 4 (its only version deleted for good) resolves to %s, want %s", got, s4)
	}
	if id := mustRegister(t, cl2, "e-value", testSchema(5)); id != 5 {
		t.Errorf("new schema after restart got id %d, want 5", id)
	}
	// And once more: the state written after the restart restores too.
	s2nd.Close()
	s3rd := startStack(t, dir)
	want["e-value v1"] = registryVersion{ID: 5}
	if after := dumpRegistry(t, srClient(t, s3rd.RegistryURL)); !reflect.DeepEqual(after, want) {
		t.Errorf("registry after second restart = %v, want %v", after, want)
	}
}

// A state file written before deleted versions were kept (a JSON array of
// live subject versions, sorted by ID) still loads, shared schemas included.
func TestRegistryReadsLegacyStateFile(t *testing.T) {
	dir := t.TempDir()
	type entry struct {
		Subject string `json:"subject"`
		Version int    `json:"version"`
		ID      int    `json:"id"`
		Schema  string `json:"schema"`
		Type    string `json:"type"`
	}
	legacy := []entry{
		{"a-value", 1, 1, testSchema(1), "AVRO"},
		{"b-value", 2, 1, testSchema(1), "AVRO"},
		{"b-value", 1, 2, testSchema(2), "AVRO"},
	}
	b, err := json.Marshal(legacy)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "registry.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	s := startStack(t, dir)
	cl := srClient(t, s.RegistryURL)
	want := map[string]registryVersion{"a-value v1": {ID: 1}, "b-value v1": {ID: 2}, "b-value v2": {ID: 1}}
	if got := dumpRegistry(t, cl); !reflect.DeepEqual(got, want) {
		t.Errorf("registry = %v, want %v", got, want)
	}
	if id := mustRegister(t, cl, "c-value", testSchema(3)); id != 3 {
		t.Errorf("new schema got id %d, want 3", id)
	}
}

// A state file that cannot be restored as it says stops the start with an
// error naming the file; it never panics.
func TestRegistryBadStateFile(t *testing.T) {
	s1 := strings.ReplaceAll(testSchema(1), `"`, `\"`)
	s2 := strings.ReplaceAll(testSchema(2), `"`, `\"`)
	for _, tc := range []struct {
		name, file, why string
	}{
		{"not JSON", `{"format":2,`, "unexpected end"},
		{"newer format", `{"format":9,"schemas":[],"subjects":[]}`, "format 9"},
		{"legacy: one version twice", `[{"subject":"a","version":1,"id":1,"schema":"` + s1 + `"},{"subject":"a","version":1,"id":2,"schema":"` + s2 + `"}]`, `subject "a" version 1 is listed twice`},
		{"legacy: one id, two schemas", `[{"subject":"a","version":1,"id":1,"schema":"` + s1 + `"},{"subject":"b","version":1,"id":1,"schema":"` + s2 + `"}]`, "schema id 1 is given two different schemas"},
		{"legacy: schema not JSON", `[{"subject":"a","version":1,"id":1,"schema":"{nope"}]`, `subject "a" version 1 (schema id 1)`},
		{"unknown type", `{"format":2,"schemas":[{"id":1,"type":"XML","schema":"{}"}],"subjects":[]}`, "schema id 1"},
		{"version without its id", `{"format":2,"schemas":[],"subjects":[{"subject":"a","versions":[{"version":1,"id":7}]}]}`, "schema id 7, which has no schema"},
		{"one schema live twice in a subject", `{"format":2,"schemas":[{"id":1,"schema":"` + s1 + `"}],"subjects":[{"subject":"a","versions":[{"version":1,"id":1},{"version":2,"id":1}]}]}`, `subject "a" version 2`},
		{"two ids, one schema", `{"format":2,"schemas":[{"id":1,"schema":"` + s1 + `"},{"id":2,"schema":"` + s1 + `"}],"subjects":[{"subject":"a","versions":[{"version":1,"id":1}]},{"subject":"b","versions":[{"version":1,"id":2}]},{"subject":"c","versions":[{"version":1,"id":2}]}]}`, "schema ids 1 and 2 have the same schema"},
		{"version zero", `{"format":2,"schemas":[{"id":1,"schema":"` + s1 + `"}],"subjects":[{"subject":"a","versions":[{"version":0,"id":1}]}]}`, "versions start at 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "registry.json")
			if err := os.WriteFile(file, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := Start(Config{DataDir: dir})
			if err == nil {
				s.Close()
				t.Fatal("Start accepted the file")
			}
			t.Log(err)
			if !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), tc.why) {
				t.Errorf("error = %q, want it to name %s and say %q", err, file, tc.why)
			}
			// Moving only the file away gave the IDs of Kafka's kept
			// records to other schemas: the advice is the whole directory.
			if !strings.Contains(err.Error(), "move the whole data directory "+dir+" away") {
				t.Errorf("error = %q, want it to say to move the data directory away, not the file alone", err)
			}
			// The failed start let go of the directory.
			startStack(t, t.TempDir()) // and another stack starts fine
			if err := os.Remove(file); err != nil {
				t.Fatal(err)
			}
			startStack(t, dir)
		})
	}
}

// A registration whose state cannot be saved is refused with a 5xx and
// undone: no client holds an ID that a restart would give to another
// schema.
func TestRegistryRefusesWhatItCannotSave(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	file := filepath.Join(dir, "registry.json")
	s := startStack(t, dir)
	cl := srClient(t, s.RegistryURL)
	mustRegister(t, cl, "a-value", testSchema(1))

	// The file's place taken by a non-empty directory: the rename that
	// replaces it fails (also for root, unlike a read-only directory).
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(file, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := cl.CreateSchema(ctx, "b-value", sr.Schema{Schema: testSchema(2)})
	var re *sr.ResponseError
	if !errors.As(err, &re) || re.StatusCode < 500 {
		t.Fatalf("registering while the state cannot be saved: err = %v, want a 5xx", err)
	}
	if _, err := cl.SchemaByID(ctx, 2); err == nil {
		t.Error("id 2 resolves although its registration was refused")
	}
	if got := dumpRegistry(t, cl); !reflect.DeepEqual(got, map[string]registryVersion{"a-value v1": {ID: 1}}) {
		t.Errorf("registry after the refused registration = %v, want a-value v1 only", got)
	}

	if err := os.RemoveAll(file); err != nil {
		t.Fatal(err)
	}
	if id := mustRegister(t, cl, "b-value", testSchema(2)); id != 2 {
		t.Errorf("b-value got id %d once the state could be saved, want 2", id)
	}
	s.Close()
	s2 := startStack(t, dir)
	want := map[string]registryVersion{"a-value v1": {ID: 1}, "b-value v1": {ID: 2}}
	if got := dumpRegistry(t, srClient(t, s2.RegistryURL)); !reflect.DeepEqual(got, want) {
		t.Errorf("registry after restart = %v, want %v", got, want)
	}
}

// Two stacks never share a data directory: the second Start fails, saying
// which directory and what to do, until the first one closes.
func TestStartLocksDataDir(t *testing.T) {
	dir := t.TempDir()
	first, err := Start(Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(first.Close)

	second, err := Start(Config{DataDir: dir})
	if err == nil {
		second.Close()
		t.Fatal("a second stack started on a data directory in use")
	}
	if !errors.Is(err, ErrDataDirInUse) {
		t.Errorf("err = %v, want ErrDataDirInUse", err)
	}
	for _, want := range []string{dir, "make run", "-data-dir", fmt.Sprint(os.Getpid())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// The failed start left the first stack alone.
	mustRegister(t, srClient(t, first.RegistryURL), "a-value", testSchema(1))

	first.Close()
	third := startStack(t, dir)
	if got := schemaByID(t, srClient(t, third.RegistryURL), 1); !sameSchema(t, got, testSchema(1)) {
		t.Errorf("id 1 after taking the directory over = %s", got)
	}
}

// TestRegistryReRegisterOlderVersionReturnsItsID: a schema the subject
// already holds (a rolled-back ingest registering the envelope it was
// built with) gets its id back, as from Confluent's registry and srfake:
// the compatibility check is for schemas that would become a new version.
// The dev stack checked it against the latest first and answered 409.
func TestRegistryReRegisterOlderVersionReturnsItsID(t *testing.T) {
	s := startStack(t, t.TempDir())
	cl := srClient(t, s.RegistryURL)
	v1 := `{"type":"record","name":"R","namespace":"review","fields":[{"name":"a","type":"int"}]}`
	v2 := `{"type":"record","name":"R","namespace":"review","fields":[{"name":"a","type":"long"}]}` // long reads int: BACKWARD
	id1 := mustRegister(t, cl, "r-value", v1)
	mustRegister(t, cl, "r-value", v2)

	ss, err := cl.CreateSchema(context.Background(), "r-value", sr.Schema{Schema: v1})
	if err != nil {
		t.Fatalf("re-registering version 1, already under the subject: %v; want its id %d back", err, id1)
	}
	if ss.ID != id1 || ss.Version != 1 {
		t.Fatalf("re-registering version 1: id %d version %d, want id %d version 1", ss.ID, ss.Version, id1)
	}
}

// TestRegistryCompatibilityEnforcedForEscapedSubject: compatibility is
// enforced whatever the subject's name; one needing escaping in the URL
// ('%' or '/') was unescaped twice (or not matched) and skipped the check.
func TestRegistryCompatibilityEnforcedForEscapedSubject(t *testing.T) {
	s := startStack(t, "")
	cl := srClient(t, s.RegistryURL)
	v1 := `{"type":"record","name":"R","namespace":"review","fields":[{"name":"a","type":"string"}]}`
	bad := `{"type":"record","name":"R","namespace":"review","fields":[{"name":"a","type":"string"},{"name":"c","type":"int"}]}`
	for _, subject := range []string{"100%-value", "a/b-value"} {
		t.Run(subject, func(t *testing.T) {
			mustRegister(t, cl, subject, v1)
			_, err := cl.CreateSchema(context.Background(), subject, sr.Schema{Schema: bad})
			var re *sr.ResponseError
			if !errors.As(err, &re) || re.ErrorCode != 409 {
				t.Fatalf("incompatible schema under %q: err = %v, want a 409", subject, err)
			}
		})
	}
}

// TestRegistryEnforcesTheSubjectsLevel: the dev registry holds a schema to
// the level its subject (else the registry) is set to, as Confluent's
// does. It checked BACKWARD against the latest version whatever the level
// said: a subject at FULL took a widened type production would refuse
// (and `inletctl schemas check` called it compatible), one at NONE
// refused what it allows, and a _TRANSITIVE one skipped older versions.
func TestRegistryEnforcesTheSubjectsLevel(t *testing.T) {
	rec := func(fields ...string) string {
		return `{"type":"record","name":"R","namespace":"level","fields":[` + strings.Join(fields, ",") + `]}`
	}
	aLong, aDouble := `{"name":"a","type":"long"}`, `{"name":"a","type":"double"}`
	aText := `{"name":"a","type":"string","default":"z"}`
	b, c := `{"name":"b","type":"string","default":"x"}`, `{"name":"c","type":"string"}`
	for _, tc := range []struct {
		level    sr.CompatibilityLevel
		global   bool     // set as the registry's level, not the subject's
		versions []string // registered in order, each accepted
		next     string
		ok       bool
	}{
		{level: sr.CompatFull, versions: []string{rec(aLong)}, next: rec(aDouble), ok: false},
		{level: sr.CompatFull, global: true, versions: []string{rec(aLong)}, next: rec(aDouble), ok: false},
		{level: sr.CompatForward, versions: []string{rec(aLong)}, next: rec(aDouble), ok: false},
		{level: sr.CompatBackward, versions: []string{rec(aLong)}, next: rec(aDouble), ok: true},
		{level: sr.CompatNone, versions: []string{rec(aLong)}, next: rec(c), ok: true},
		{level: sr.CompatBackward, versions: []string{rec(aLong)}, next: rec(c), ok: false},
		// The latest version (b alone) reads anything into a; the first
		// (a long) cannot be read as a string.
		{level: sr.CompatBackwardTransitive, versions: []string{rec(aLong), rec(aLong, b), rec(b)}, next: rec(b, aText), ok: false},
		{level: sr.CompatBackward, versions: []string{rec(aLong), rec(aLong, b), rec(b)}, next: rec(b, aText), ok: true},
	} {
		name := fmt.Sprintf("%s global=%v %d versions ok=%v", tc.level, tc.global, len(tc.versions), tc.ok)
		t.Run(name, func(t *testing.T) {
			s := startStack(t, "")
			cl := srClient(t, s.RegistryURL)
			ctx := context.Background()
			const subject = "lvl-value"
			for _, v := range tc.versions {
				mustRegister(t, cl, subject, v)
			}
			var res []sr.CompatibilityResult
			if tc.global {
				res = cl.SetCompatibility(ctx, sr.SetCompatibility{Level: tc.level})
			} else {
				res = cl.SetCompatibility(ctx, sr.SetCompatibility{Level: tc.level}, subject)
			}
			if len(res) != 1 || res[0].Err != nil {
				t.Fatalf("setting the level: %+v", res)
			}
			check, err := cl.CheckCompatibility(ctx, subject, -2, sr.Schema{Schema: tc.next})
			if err != nil {
				t.Fatal(err)
			}
			if check.Is != tc.ok {
				t.Errorf("compatibility endpoint: is_compatible = %v, want %v (%v)", check.Is, tc.ok, check.Messages)
			}
			_, err = cl.CreateSchema(ctx, subject, sr.Schema{Schema: tc.next})
			var re *sr.ResponseError
			switch {
			case tc.ok && err != nil:
				t.Errorf("registering: %v, want it taken at %s", err, tc.level)
			case !tc.ok && (!errors.As(err, &re) || re.ErrorCode != 409):
				t.Errorf("registering: err = %v, want a 409 at %s", err, tc.level)
			case !tc.ok && !strings.Contains(re.Message, tc.level.String()):
				t.Errorf("refusal %q does not name the level %s", re.Message, tc.level)
			}
		})
	}
}

// Compatibility levels set through the API (the registry's, and a
// subject's, also one set before its first version) survive a restart, as
// on Confluent's registry, and are still enforced: they were kept in
// memory only, so after a restart every subject was back at BACKWARD and
// took schemas the level set on it refuses.
func TestRegistryRestartKeepsCompatibilityLevels(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := startStack(t, dir)
	cl := srClient(t, s.RegistryURL)
	aLong := `{"type":"record","name":"R","namespace":"lvl","fields":[{"name":"a","type":"long"}]}`
	aDouble := `{"type":"record","name":"R","namespace":"lvl","fields":[{"name":"a","type":"double"}]}`
	mustRegister(t, cl, "full-value", aLong)
	for _, set := range []struct {
		subjects []string
		level    sr.CompatibilityLevel
	}{
		{nil, sr.CompatNone},
		{[]string{"full-value"}, sr.CompatFull},
		{[]string{"later-value"}, sr.CompatForwardTransitive}, // no version yet
	} {
		if res := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: set.level}, set.subjects...); len(res) != 1 || res[0].Err != nil {
			t.Fatalf("setting %s on %v: %+v", set.level, set.subjects, res)
		}
	}
	levels := func(cl *sr.Client) map[string]string {
		t.Helper()
		out := map[string]string{}
		for _, subject := range []string{"", "full-value", "later-value", "a-value"} {
			res := cl.Compatibility(sr.WithParams(ctx, sr.DefaultToGlobal), subject)
			if subject == "" {
				res = cl.Compatibility(ctx)
			}
			if len(res) != 1 || res[0].Err != nil {
				t.Fatalf("level of %q: %+v", subject, res)
			}
			out[subject] = res[0].Level.String()
		}
		return out
	}
	want := map[string]string{"": "NONE", "full-value": "FULL", "later-value": "FORWARD_TRANSITIVE", "a-value": "NONE"}
	if got := levels(cl); !reflect.DeepEqual(got, want) {
		t.Fatalf("levels before restart = %v, want %v", got, want)
	}
	s.Close()

	s2 := startStack(t, dir)
	cl2 := srClient(t, s2.RegistryURL)
	if got := levels(cl2); !reflect.DeepEqual(got, want) {
		t.Errorf("levels after restart = %v, want %v", got, want)
	}
	_, err := cl2.CreateSchema(ctx, "full-value", sr.Schema{Schema: aDouble})
	var re *sr.ResponseError
	if !errors.As(err, &re) || re.ErrorCode != 409 {
		t.Errorf("registering long -> double under FULL after a restart: err = %v, want a 409", err)
	}
}

// The compatibility endpoint names a version that is not there: Confluent's
// registry answers 404 (40402; 40401 for a subject that is not there), and
// 422 (42202) for a version that is no number. It said is_compatible true,
// so a check against a mistyped version passed whatever the schema.
func TestRegistryCompatibilityAgainstAMissingVersion(t *testing.T) {
	s := startStack(t, "")
	cl := srClient(t, s.RegistryURL)
	ctx := context.Background()
	aLong := `{"type":"record","name":"R","namespace":"miss","fields":[{"name":"a","type":"long"}]}`
	aText := `{"type":"record","name":"R","namespace":"miss","fields":[{"name":"a","type":"string"}]}`
	mustRegister(t, cl, "miss-value", aLong)
	for _, tc := range []struct {
		path   string
		status int
		code   int
	}{
		{"/compatibility/subjects/miss-value/versions/7", 404, 40402},
		{"/compatibility/subjects/nosuch-value/versions/1", 404, 40401},
		{"/compatibility/subjects/miss-value/versions/earliest", 422, 42202},
	} {
		body, _ := json.Marshal(map[string]string{"schema": aText})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.RegistryURL+tc.path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Code       int   `json:"error_code"`
			Compatible *bool `json:"is_compatible"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if resp.StatusCode != tc.status || got.Code != tc.code {
			t.Errorf("POST %s: %d %+v, want %d with error_code %d", tc.path, resp.StatusCode, got, tc.status, tc.code)
		}
	}
	// The versions that are there are still checked.
	check, err := cl.CheckCompatibility(ctx, "miss-value", 1, sr.Schema{Schema: aText})
	if err != nil || check.Is {
		t.Errorf("against version 1: %+v, %v; want incompatible", check, err)
	}
}

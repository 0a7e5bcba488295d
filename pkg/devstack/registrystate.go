package devstack

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// srfake keeps everything in memory and numbers schema IDs from 1 at every
// start, while a record in Kafka names its writer schema by ID: an ID must
// mean the same schema for as long as the data directory lives. The state
// file (registry.json) therefore holds every ID ever issued with its schema,
// also the IDs whose subject versions were deleted since (a soft-deleted
// version's ID still resolves by ID, as in Confluent's registry, and no ID
// is handed out twice), and every subject version with the version number
// and ID it had, deleted ones flagged. A restart rebuilds exactly that,
// and the compatibility levels set through the API (the registry's and
// each subject's), which Confluent's registry keeps too: lost, a subject
// set to FULL took any BACKWARD change after a restart.

// registryStateFormat changes when the file's layout does. A file without a
// format (a JSON array of live subject versions, written before deleted
// versions were kept) is still read.
const registryStateFormat = 2

// registryState is the state file.
type registryState struct {
	Format int `json:"format"`
	// Schemas is every ID ever issued, by ID.
	Schemas []savedID `json:"schemas"`
	// Subjects, by name; each subject's versions in ascending order.
	Subjects []savedSubject `json:"subjects"`
	// Compatibility is the registry's level, "" for BACKWARD (the default).
	Compatibility string `json:"compatibility,omitempty"`
}

type savedID struct {
	ID     int    `json:"id"`
	Type   string `json:"type,omitempty"` // "" = AVRO
	Schema string `json:"schema"`
}

type savedSubject struct {
	Subject  string         `json:"subject"`
	Deleted  bool           `json:"deleted,omitempty"` // soft-deleted subject
	Versions []savedVersion `json:"versions"`
	// Compatibility is the subject's own level ("": none, the registry's
	// applies); a subject may have one before its first version.
	Compatibility string `json:"compatibility,omitempty"`
}

type savedVersion struct {
	Version int  `json:"version"`
	ID      int  `json:"id"`
	Deleted bool `json:"deleted,omitempty"` // soft-deleted version
}

// legacySchema is one entry of a file without a format: a live subject
// version.
type legacySchema struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
	ID      int    `json:"id"`
	Schema  string `json:"schema"`
	Type    string `json:"type,omitempty"`
}

// parseRegistryState reads a state file's contents, either format, and
// checks that it is consistent.
func parseRegistryState(b []byte) (*registryState, error) {
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '[' {
		var legacy []legacySchema
		if err := json.Unmarshal(b, &legacy); err != nil {
			return nil, err
		}
		st := &registryState{Format: registryStateFormat}
		versions := map[string][]savedVersion{}
		for _, l := range legacy {
			st.Schemas = append(st.Schemas, savedID{ID: l.ID, Type: l.Type, Schema: l.Schema})
			versions[l.Subject] = append(versions[l.Subject], savedVersion{Version: l.Version, ID: l.ID})
		}
		for subject, vs := range versions {
			st.Subjects = append(st.Subjects, savedSubject{Subject: subject, Versions: vs})
		}
		return st.normalize()
	}
	var st registryState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, err
	}
	if st.Format != registryStateFormat {
		return nil, fmt.Errorf("format %d, want %d (written by another version of Inlet?)", st.Format, registryStateFormat)
	}
	return st.normalize()
}

// normalize checks st and returns it with each ID once, subjects by name
// and versions ascending, subjects without versions or a level left out.
func (st *registryState) normalize() (*registryState, error) {
	byID, err := st.index()
	if err != nil {
		return nil, err
	}
	out := &registryState{Format: registryStateFormat, Compatibility: st.Compatibility}
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		out.Schemas = append(out.Schemas, savedID{ID: id, Type: byID[id].Type.String(), Schema: byID[id].Schema})
	}
	for _, ss := range st.Subjects {
		if len(ss.Versions) == 0 && ss.Compatibility == "" {
			continue
		}
		ss.Versions = slices.Clone(ss.Versions)
		slices.SortFunc(ss.Versions, func(a, b savedVersion) int { return a.Version - b.Version })
		out.Subjects = append(out.Subjects, ss)
	}
	slices.SortFunc(out.Subjects, func(a, b savedSubject) int { return strings.Compare(a.Subject, b.Subject) })
	return out, nil
}

// index checks st and returns its schemas by ID.
func (st *registryState) index() (map[int]sr.Schema, error) {
	byID := make(map[int]sr.Schema, len(st.Schemas))
	for _, s := range st.Schemas {
		if s.ID <= 0 {
			return nil, fmt.Errorf("schema id %d: ids start at 1", s.ID)
		}
		var typ sr.SchemaType
		if err := typ.UnmarshalText([]byte(s.Type)); err != nil {
			return nil, fmt.Errorf("schema id %d: %w", s.ID, err)
		}
		sch := sr.Schema{Schema: s.Schema, Type: typ}
		if prev, ok := byID[s.ID]; ok && (prev.Schema != sch.Schema || prev.Type != sch.Type) {
			return nil, fmt.Errorf("schema id %d is given two different schemas", s.ID)
		}
		byID[s.ID] = sch
	}
	// srfake gives one schema one ID (registering it again, under any
	// subject, reuses the ID), and so must the file: a second subject
	// version is bound to its ID by registration (bindVersion), which
	// would pick either of two IDs.
	byContent := map[string]int{}
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		key := schemaKey(byID[id])
		if other, ok := byContent[key]; ok {
			return nil, fmt.Errorf("schema ids %d and %d have the same schema, and the registry gives one schema one id", other, id)
		}
		byContent[key] = id
	}
	if _, err := parseLevel(st.Compatibility); err != nil {
		return nil, fmt.Errorf("the registry's compatibility: %w", err)
	}
	subjects := map[string]bool{}
	for _, ss := range st.Subjects {
		if ss.Subject == "" {
			return nil, errors.New("a subject without a name")
		}
		if _, err := parseLevel(ss.Compatibility); err != nil {
			return nil, fmt.Errorf("subject %q compatibility: %w", ss.Subject, err)
		}
		if subjects[ss.Subject] {
			return nil, fmt.Errorf("subject %q is listed twice", ss.Subject)
		}
		subjects[ss.Subject] = true
		versions := map[int]bool{}
		for _, v := range ss.Versions {
			if v.Version <= 0 {
				return nil, fmt.Errorf("subject %q version %d: versions start at 1", ss.Subject, v.Version)
			}
			if versions[v.Version] {
				return nil, fmt.Errorf("subject %q version %d is listed twice", ss.Subject, v.Version)
			}
			versions[v.Version] = true
			if _, ok := byID[v.ID]; !ok {
				return nil, fmt.Errorf("subject %q version %d has schema id %d, which has no schema", ss.Subject, v.Version, v.ID)
			}
		}
	}
	return byID, nil
}

// parseLevel reads a saved compatibility level; "" is none (0).
func parseLevel(s string) (sr.CompatibilityLevel, error) {
	var l sr.CompatibilityLevel
	if s == "" {
		return 0, nil
	}
	err := l.UnmarshalText([]byte(s))
	return l, err
}

// schemaKey is what srfake compares to tell whether two schemas are the
// same: the type and, for Avro and JSON, the schema reformatted.
func schemaKey(s sr.Schema) string {
	text := s.Schema
	if s.Type == sr.TypeAvro || s.Type == sr.TypeJSON {
		var v any
		if err := json.Unmarshal([]byte(text), &v); err == nil {
			if b, err := json.Marshal(v); err == nil {
				text = string(b)
			}
		}
	}
	return s.Type.String() + "\x00" + text
}

// restoreScratchSubject holds, for a moment during a restore, an ID that no
// subject version holds any more; it is then deleted for good.
const restoreScratchSubject = "_inlet.devstack.restore"

// maxVersionGap bounds how many versions deleted for good a restore fills
// below one version (see bindVersion).
const maxVersionGap = 1 << 16

// restore builds a registry holding st, which must be normalized: every
// subject version at its saved version number with its saved ID, deleted
// ones deleted, and every ID ever issued taken (new schemas get new IDs)
// and resolvable by ID. It does not panic: srfake's panics on seeding are
// returned as errors naming the subject version.
func (st *registryState) restore() (reg *srfake.Registry, err error) {
	byID, err := st.index()
	if err != nil {
		return nil, err
	}
	global, _ := parseLevel(st.Compatibility) // checked by index
	if global == 0 {
		global = sr.CompatBackward
	}
	reg = srfake.NewRegistry(srfake.WithGlobalCompat(global))
	at := "restore"
	defer func() {
		if r := recover(); r != nil {
			reg, err = nil, fmt.Errorf("%s: %v", at, r)
		}
	}()
	used := map[int]bool{}
	for _, ss := range st.Subjects {
		for _, v := range ss.Versions {
			used[v.ID] = true
		}
	}
	seeded := make(map[int]bool, len(byID))
	// IDs whose subject versions were all deleted for good: seeded under a
	// subject that is then deleted for good, so the ID stays taken and
	// still resolves, as it did before the restart.
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		if used[id] {
			continue
		}
		at = fmt.Sprintf("schema id %d", id)
		reg.SeedSchema(restoreScratchSubject, 1, id, byID[id])
		if err := call(reg, http.MethodDelete, "/subjects/"+restoreScratchSubject+"?permanent=true"); err != nil {
			return nil, fmt.Errorf("%s: %w", at, err)
		}
		seeded[id] = true
	}
	// Subject by subject, versions in ascending order: an ID is seeded
	// where it first appears; a later version with the same ID (one schema
	// under several subjects, or again under one after a delete) is bound
	// to it by registration.
	for _, ss := range st.Subjects {
		base := "/subjects/" + url.PathEscape(ss.Subject)
		highest := 0
		for _, v := range ss.Versions {
			at = fmt.Sprintf("subject %q version %d (schema id %d)", ss.Subject, v.Version, v.ID)
			if !seeded[v.ID] {
				reg.SeedSchema(ss.Subject, v.Version, v.ID, byID[v.ID])
				seeded[v.ID] = true
			} else if err := bindVersion(reg, ss.Subject, v, byID[v.ID], highest); err != nil {
				return nil, fmt.Errorf("%s: %w", at, err)
			}
			highest = v.Version
			if v.Deleted {
				if err := call(reg, http.MethodDelete, fmt.Sprintf("%s/versions/%d", base, v.Version)); err != nil {
					return nil, fmt.Errorf("%s: %w", at, err)
				}
			}
		}
		if ss.Deleted && len(ss.Versions) > 0 {
			at = fmt.Sprintf("subject %q", ss.Subject)
			if err := call(reg, http.MethodDelete, base); err != nil {
				return nil, fmt.Errorf("%s: %w", at, err)
			}
		}
		if l, _ := parseLevel(ss.Compatibility); l != 0 {
			at = fmt.Sprintf("subject %q compatibility %s", ss.Subject, l)
			if err := reg.SetCompat(ss.Subject, l); err != nil {
				return nil, fmt.Errorf("%s: %w", at, err)
			}
		}
	}
	return reg, nil
}

// bindVersion puts v.ID, already seeded, at subject's version v.Version;
// highest is the subject's highest version restored so far. srfake seeds
// an ID only once; registering the same schema under another subject (or
// under this one once its earlier version is deleted) reuses the ID, at
// the subject's highest version ever + 1. A gap below v.Version (versions
// deleted for good) is filled by versions registered and deleted for good.
func bindVersion(reg *srfake.Registry, subject string, v savedVersion, sch sr.Schema, highest int) error {
	for range maxVersionGap {
		id, got, err := reg.RegisterSchema(subject, sch)
		switch {
		case err != nil:
			return err
		case id != v.ID:
			return fmt.Errorf("its schema is also schema id %d's, and the registry gives one schema one id", id)
		case got <= highest:
			return fmt.Errorf("its schema is also the subject's version %d", got)
		case got == v.Version:
			return nil
		case got > v.Version:
			return fmt.Errorf("the registry placed it at version %d", got)
		}
		if err := call(reg, http.MethodDelete, fmt.Sprintf("/subjects/%s/versions/%d?permanent=true", url.PathEscape(subject), got)); err != nil {
			return err
		}
	}
	return fmt.Errorf("more than %d versions missing below it", maxVersionGap)
}

// collectState reads reg's subject versions, deleted ones included, and
// returns them with every ID in known (all IDs issued before) and every ID
// the versions hold: the state to save.
func collectState(reg *srfake.Registry, known []savedID) (*registryState, error) {
	ids := make(map[int]savedID, len(known))
	for _, s := range known {
		ids[s.ID] = s
	}
	var subjects, deletedSubjects []string
	if err := getJSON(reg, "/subjects?deleted=true", &subjects); err != nil {
		return nil, err
	}
	if err := getJSON(reg, "/subjects?deletedOnly=true", &deletedSubjects); err != nil {
		return nil, err
	}
	st := &registryState{Format: registryStateFormat}
	var global struct {
		Level sr.CompatibilityLevel `json:"compatibilityLevel"`
	}
	if err := getJSON(reg, "/config", &global); err != nil {
		return nil, err
	}
	if global.Level != sr.CompatBackward {
		st.Compatibility = global.Level.String()
	}
	for _, subj := range subjects {
		base := "/subjects/" + url.PathEscape(subj) + "/versions"
		var all, deleted []int
		if err := getJSON(reg, base+"?deleted=true", &all); err != nil {
			return nil, err
		}
		if err := getJSON(reg, base+"?deletedOnly=true", &deleted); err != nil {
			return nil, err
		}
		ss := savedSubject{Subject: subj, Deleted: slices.Contains(deletedSubjects, subj)}
		var own struct {
			Level sr.CompatibilityLevel `json:"compatibilityLevel"`
		}
		if getJSON(reg, "/config/"+url.PathEscape(subj)+"?defaultToGlobal=false", &own) == nil && own.Level != 0 {
			ss.Compatibility = own.Level.String()
		}
		if len(all) == 0 && ss.Compatibility == "" {
			continue
		}
		for _, v := range all {
			var sch sr.SubjectSchema
			if err := getJSON(reg, fmt.Sprintf("%s/%d?deleted=true", base, v), &sch); err != nil {
				return nil, err
			}
			ss.Versions = append(ss.Versions, savedVersion{Version: v, ID: sch.ID, Deleted: slices.Contains(deleted, v)})
			if _, ok := ids[sch.ID]; !ok {
				ids[sch.ID] = savedID{ID: sch.ID, Type: sch.Type.String(), Schema: sch.Schema.Schema}
			}
		}
		st.Subjects = append(st.Subjects, ss)
	}
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		st.Schemas = append(st.Schemas, ids[id])
	}
	slices.SortFunc(st.Subjects, func(a, b savedSubject) int { return cmp.Compare(a.Subject, b.Subject) })
	return st, nil
}

// sameState says where got, read back from a restored registry, differs
// from want, the normalized file it was restored from.
func sameState(got, want *registryState) error {
	if !slices.Equal(got.Schemas, want.Schemas) {
		return fmt.Errorf("it holds %d schema ids, the file %d", len(got.Schemas), len(want.Schemas))
	}
	if got.Compatibility != want.Compatibility {
		return fmt.Errorf("its compatibility is %q, the file's %q", got.Compatibility, want.Compatibility)
	}
	levels := func(st *registryState) map[string]string {
		m := map[string]string{}
		for _, ss := range st.Subjects {
			if ss.Compatibility != "" {
				m[ss.Subject] = ss.Compatibility
			}
		}
		return m
	}
	if g, w := levels(got), levels(want); !maps.Equal(g, w) {
		return fmt.Errorf("its subjects' compatibility levels are %v, the file's %v", g, w)
	}
	type key struct {
		subject string
		version int
	}
	flatten := func(st *registryState) map[key]string {
		m := map[key]string{}
		for _, ss := range st.Subjects {
			for _, v := range ss.Versions {
				m[key{ss.Subject, v.Version}] = fmt.Sprintf("schema id %d, deleted %t, subject deleted %t", v.ID, v.Deleted, ss.Deleted)
			}
		}
		return m
	}
	g, w := flatten(got), flatten(want)
	for k, wv := range w {
		if gv, ok := g[k]; !ok {
			return fmt.Errorf("subject %q version %d is missing", k.subject, k.version)
		} else if gv != wv {
			return fmt.Errorf("subject %q version %d: %s, the file: %s", k.subject, k.version, gv, wv)
		}
	}
	for k := range g {
		if _, ok := w[k]; !ok {
			return fmt.Errorf("subject %q version %d is not in the file", k.subject, k.version)
		}
	}
	return nil
}

// registryTempPattern names a state file being written; a stack killed
// meanwhile leaves one behind, and the next start removes it.
const registryTempPattern = ".registry-*.json"

func getJSON(reg *srfake.Registry, path string, v any) error {
	rec := httptest.NewRecorder()
	reg.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", path, rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	return json.Unmarshal(rec.Body.Bytes(), v)
}

func call(reg *srfake.Registry, method, path string) error {
	rec := httptest.NewRecorder()
	reg.Handler().ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	if rec.Code != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", method, path, rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	return nil
}

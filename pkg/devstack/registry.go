package devstack

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/inletdev/inlet/pkg/registry"
)

// persistentRegistry is srfake plus the two things a dev registry needs and
// srfake does not do: schemas that survive a restart with the same IDs (a
// stored record must still decode; see registrystate.go), and the
// subject's compatibility level enforced on registration (srfake keeps
// the level but accepts anything).
type persistentRegistry struct {
	file string // "" = memory only
	log  *slog.Logger
	// mu is held for writing by a write request and its snapshot, for
	// reading by every other request: nobody sees a registration before
	// it is on disk.
	mu  sync.RWMutex
	reg *srfake.Registry // replaced when a snapshot fails (rollback)
	// saved is what the file holds (nil: no file yet), savedJSON its bytes
	// as this process wrote or would write them.
	saved     *registryState
	savedJSON []byte
}

func newPersistentRegistry(file string, log *slog.Logger) (*persistentRegistry, error) {
	p := &persistentRegistry{reg: srfake.NewRegistry(), file: file, log: log}
	if file == "" {
		return p, nil
	}
	stale, _ := filepath.Glob(filepath.Join(filepath.Dir(file), registryTempPattern))
	for _, t := range stale {
		_ = os.Remove(t)
	}
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		// Written at once, empty: from now on a missing file is one
		// lost, which the start refuses while Kafka holds records (see
		// checkRecovered), not a first start.
		if err := p.persist(); err != nil {
			return nil, fmt.Errorf("schema registry state: %w", err)
		}
		return p, nil
	}
	if err != nil {
		return nil, fmt.Errorf("schema registry state: %w", err)
	}
	bad := func(err error) error {
		// Not "move the file away": an empty registry numbers IDs from 1
		// again, and Kafka's records, kept, would name other schemas.
		return fmt.Errorf("schema registry state %s: %w (records in Kafka name their schemas by these IDs: fix the file, or move the whole data directory %s away to start empty; without the file, the records kept in Kafka would decode with the schemas their IDs are given next)", file, err, filepath.Dir(file))
	}
	st, err := parseRegistryState(b)
	if err != nil {
		return nil, bad(err)
	}
	reg, err := st.restore()
	if err != nil {
		return nil, bad(err)
	}
	// What srfake now holds must be what the file says, version for
	// version and ID for ID.
	got, err := collectState(reg, st.Schemas)
	if err != nil {
		return nil, bad(err)
	}
	if err := sameState(got, st); err != nil {
		return nil, bad(fmt.Errorf("restored registry differs from the file: %w", err))
	}
	p.reg, p.saved = reg, got
	p.savedJSON, _ = json.MarshalIndent(got, "", "  ")
	log.Info("schema registry restored", "ids", len(got.Schemas), "subjects", len(got.Subjects), "file", file)
	return p, nil
}

func (p *persistentRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		if strings.HasPrefix(r.URL.Path, "/schemas/ids/") {
			// Confluent's deserializers send ?subject=<topic>-value (their
			// naming strategy) with a schema ID. Confluent Schema Registry
			// resolves a plain subject to the default context and returns
			// the ID's schema whatever subject it is under; srfake answers
			// 404 unless the ID is under that very subject, which breaks
			// reading topics whose schemas are registered per record name
			// (inlet.processed). Only a context-qualified subject (":.ctx:…")
			// is passed on.
			q := r.URL.Query()
			if sub := q.Get("subject"); sub != "" && !strings.HasPrefix(sub, ":.") {
				q.Del("subject")
				r.URL.RawQuery = q.Encode()
			}
		}
		p.mu.RLock()
		defer p.mu.RUnlock()
		if subject, version, ok := compatPath(r.URL.EscapedPath()); ok {
			p.checkCompatibility(w, r, subject, version)
			return
		}
		p.reg.Handler().ServeHTTP(w, r)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// Matched on the escaped path and unescaped once: the decoded path
	// did not match a subject holding '/', and unescaping it again
	// failed on a '%', so the check was skipped and anything registered.
	if subject, ok := registerPath(r.URL.EscapedPath()); ok && r.Method == http.MethodPost {
		if !p.allowRegistration(w, r, subject) {
			return
		}
	} else if subject, version, ok := compatPath(r.URL.EscapedPath()); ok && r.Method == http.MethodPost {
		p.checkCompatibility(w, r, subject, version)
		return
	}
	if p.file == "" {
		p.reg.Handler().ServeHTTP(w, r)
		return
	}
	// The answer is held back until the change is on disk: an ID handed
	// out and then forgotten by a restart would be given to another
	// schema, and records written with it would decode wrongly.
	rec := httptest.NewRecorder()
	p.reg.Handler().ServeHTTP(rec, r)
	if rec.Code < 300 {
		if err := p.persist(); err != nil {
			p.rollback()
			p.log.Error("schema registry: persisting schemas failed; the change is refused and undone", "file", p.file, "method", r.Method, "path", r.URL.Path, "error", err)
			writeRegistryError(w, http.StatusInternalServerError, sr.ErrStoreError.Code, "schema registry: cannot save the change to "+p.file+": "+err.Error())
			return
		}
	}
	maps.Copy(w.Header(), rec.Header())
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// persist writes the registry's state to the file if it changed. Called
// with mu held for writing.
func (p *persistentRegistry) persist() error {
	var known []savedID
	if p.saved != nil {
		known = p.saved.Schemas
	}
	st, err := collectState(p.reg, known)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if bytes.Equal(b, p.savedJSON) {
		return nil
	}
	if err := writeFileAtomic(p.file, registryTempPattern, func(w io.Writer) error { _, err := w.Write(b); return err }); err != nil {
		return err
	}
	p.saved, p.savedJSON = st, b
	return nil
}

// rollback puts the registry back to what the file holds, after a change
// could not be saved. State srfake keeps but the file does not (global and
// per-subject mode) is lost with it. Called
// with mu held for writing.
func (p *persistentRegistry) rollback() {
	reg := srfake.NewRegistry()
	if p.saved != nil {
		var err error
		if reg, err = p.saved.restore(); err != nil {
			// Not expected: p.saved was restored or read from srfake.
			p.log.Error("schema registry: rollback failed; unsaved changes stay in memory", "error", err)
			return
		}
	}
	p.reg = reg
}

// registerPath matches /subjects/{subject}/versions.
func registerPath(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "/subjects/")
	if !ok {
		return "", false
	}
	subject, ok := strings.CutSuffix(rest, "/versions")
	if !ok || subject == "" || strings.Contains(subject, "/") {
		return "", false
	}
	s, err := url.PathUnescape(subject)
	return s, err == nil
}

// compatPath matches /compatibility/subjects/{subject}/versions, and
// .../versions/{version} ("latest" or a number), returning the version
// ("" without one).
func compatPath(path string) (subject, version string, ok bool) {
	rest, ok := strings.CutPrefix(path, "/compatibility/subjects/")
	if !ok {
		return "", "", false
	}
	subject, version, ok = strings.Cut(rest, "/versions")
	if !ok || subject == "" {
		return "", "", false
	}
	s, err := url.PathUnescape(subject)
	return s, strings.Trim(version, "/"), err == nil
}

type schemaBody struct {
	Schema     string `json:"schema"`
	SchemaType string `json:"schemaType"`
}

// incompatibility returns why body's schema may not follow the subject's
// versions under its level (its own, else the registry's), or "". against
// is the version the compatibility endpoint names; "" checks what
// registering does, as Confluent's registry: the latest version, or every
// one at a _TRANSITIVE level. srfake stores levels but never applies them.
func (p *persistentRegistry) incompatibility(body []byte, subject, against string) (string, error) {
	var sb schemaBody
	if err := json.Unmarshal(body, &sb); err != nil {
		return "", err
	}
	if sb.SchemaType != "" && sb.SchemaType != "AVRO" {
		return "", nil
	}
	next, err := avro.ParseWithCache(sb.Schema, "", &avro.SchemaCache{})
	if err != nil {
		return "", nil // let the registry report the parse error
	}
	level := p.level(subject)
	lvl, transitive := strings.CutSuffix(level, "_TRANSITIVE")
	rule := registry.Compatibility(lvl)
	if rule == registry.None {
		return "", nil
	}
	base := "/subjects/" + url.PathEscape(subject) + "/versions"
	versions := []string{cmp.Or(against, "latest")}
	if against == "" && transitive {
		var all []int
		if err := getJSON(p.reg, base, &all); err != nil {
			return "", nil // no earlier version: anything goes
		}
		versions = versions[:0]
		for _, v := range all {
			versions = append(versions, strconv.Itoa(v))
		}
	}
	for _, v := range versions {
		var prevSchema struct {
			Version int    `json:"version"`
			Schema  string `json:"schema"`
		}
		if err := getJSON(p.reg, base+"/"+v, &prevSchema); err != nil {
			continue // no such version (none yet): nothing to hold it to
		}
		prev, err := avro.ParseWithCache(prevSchema.Schema, "", &avro.SchemaCache{})
		if err != nil {
			continue
		}
		if err := registry.Check(rule, prev, next); err != nil {
			return fmt.Sprintf("Schema being registered is incompatible with an earlier schema for subject %q (version %d, level %s): %v", subject, prevSchema.Version, level, err), nil
		}
	}
	return "", nil
}

// level is the compatibility level subject is held to: its own, else the
// registry's, else BACKWARD (Confluent's default).
func (p *persistentRegistry) level(subject string) string {
	var cfg struct {
		Level string `json:"compatibilityLevel"`
	}
	if err := getJSON(p.reg, "/config/"+url.PathEscape(subject)+"?defaultToGlobal=true", &cfg); err != nil {
		return string(registry.Backward)
	}
	switch lvl, _ := strings.CutSuffix(cfg.Level, "_TRANSITIVE"); registry.Compatibility(lvl) {
	case registry.Backward, registry.Forward, registry.Full, registry.None:
		return cfg.Level
	}
	return string(registry.Backward)
}

func (p *persistentRegistry) allowRegistration(w http.ResponseWriter, r *http.Request, subject string) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		writeRegistryError(w, http.StatusBadRequest, 400, "cannot read body")
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if p.holds(subject, body) {
		// A schema the subject already has gets its id back, as from
		// Confluent's registry, unchecked: an older build (a rollback)
		// registering what it was built with was refused 409.
		return true
	}
	why, err := p.incompatibility(body, subject, "")
	if err != nil {
		return true // malformed JSON: srfake answers with its own error
	}
	if why != "" {
		writeRegistryError(w, http.StatusConflict, 409, why)
		return false
	}
	return true
}

// holds reports whether subject has a live version with body's schema
// (srfake's own lookup, POST /subjects/{subject}).
func (p *persistentRegistry) holds(subject string, body []byte) bool {
	rec := httptest.NewRecorder()
	p.reg.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/subjects/"+url.PathEscape(subject), bytes.NewReader(body)))
	return rec.Code == http.StatusOK
}

func (p *persistentRegistry) checkCompatibility(w http.ResponseWriter, r *http.Request, subject, version string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		writeRegistryError(w, http.StatusBadRequest, 400, "cannot read body")
		return
	}
	if !p.versionExists(w, subject, version) {
		return
	}
	why, err := p.incompatibility(body, subject, version)
	if err != nil {
		writeRegistryError(w, http.StatusUnprocessableEntity, 42201, "invalid schema request")
		return
	}
	resp := map[string]any{"is_compatible": why == ""}
	if why != "" {
		resp["messages"] = []string{why}
	}
	w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	_ = json.NewEncoder(w).Encode(resp)
}

// versionExists answers, as Confluent's registry does, a compatibility
// check against a version that is no number (422, 42202) or that subject
// does not have (404: 40401 without the subject, else 40402), and reports
// whether the check may go on. "" (every version the level names) and
// "latest" (or -1) always may. Without this the check said compatible:
// there was nothing to hold the schema to.
func (p *persistentRegistry) versionExists(w http.ResponseWriter, subject, version string) bool {
	if version == "" || version == "latest" || version == "-1" {
		return true
	}
	if n, err := strconv.Atoi(version); err != nil || n <= 0 {
		writeRegistryError(w, http.StatusUnprocessableEntity, sr.ErrInvalidVersion.Code, fmt.Sprintf("The specified version '%s' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"", version))
		return false
	}
	base := "/subjects/" + url.PathEscape(subject) + "/versions"
	var sch struct{}
	if getJSON(p.reg, base+"/"+version, &sch) == nil {
		return true
	}
	var live []int
	if getJSON(p.reg, base, &live) != nil {
		writeRegistryError(w, http.StatusNotFound, sr.ErrSubjectNotFound.Code, fmt.Sprintf("Subject '%s' not found.", subject))
		return false
	}
	writeRegistryError(w, http.StatusNotFound, sr.ErrVersionNotFound.Code, fmt.Sprintf("Version %s not found.", version))
	return false
}

func writeRegistryError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error_code": code, "message": msg})
}

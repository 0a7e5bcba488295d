package devstack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/inletdev/inlet/pkg/registry"
)

// persistentRegistry is srfake plus the two things a dev registry needs and
// srfake does not do: schemas that survive a restart with the same IDs (a
// stored record must still decode), and BACKWARD compatibility enforced on
// registration (srfake accepts anything).
type persistentRegistry struct {
	reg  *srfake.Registry
	file string // "" = memory only
	log  *slog.Logger
	mu   sync.Mutex // serialises writes and snapshots
}

type savedSchema struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
	ID      int    `json:"id"`
	Schema  string `json:"schema"`
	Type    string `json:"type,omitempty"`
}

func newPersistentRegistry(file string, log *slog.Logger) (*persistentRegistry, error) {
	p := &persistentRegistry{reg: srfake.NewRegistry(), file: file, log: log}
	if file == "" {
		return p, nil
	}
	b, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return p, nil
	}
	if err != nil {
		return nil, err
	}
	var saved []savedSchema
	if err := json.Unmarshal(b, &saved); err != nil {
		return nil, fmt.Errorf("schema registry state %s: %w", file, err)
	}
	slices.SortFunc(saved, func(a, b savedSchema) int {
		if a.ID != b.ID {
			return a.ID - b.ID
		}
		return strings.Compare(a.Subject, b.Subject)
	})
	seeded := map[int]bool{}
	for _, s := range saved {
		sch := sr.Schema{Schema: s.Schema, Type: sr.TypeAvro}
		if s.Type != "" {
			_ = sch.Type.UnmarshalText([]byte(s.Type))
		}
		if !seeded[s.ID] {
			p.reg.SeedSchema(s.Subject, s.Version, s.ID, sch)
			seeded[s.ID] = true
			continue
		}
		// The same schema under a second subject shares its ID; srfake
		// reuses the ID on registration.
		id, v, err := p.reg.RegisterSchema(s.Subject, sch)
		if err != nil || id != s.ID {
			return nil, fmt.Errorf("restore %s v%d (id %d): got id %d: %v", s.Subject, s.Version, s.ID, id, err)
		}
		if v != s.Version {
			log.Warn("schema registry restore: version renumbered", "subject", s.Subject, "saved", s.Version, "restored", v)
		}
	}
	log.Info("schema registry restored", "schemas", len(saved), "file", file)
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
		if subject, ok := compatPath(r.URL.Path); ok {
			p.checkCompatibility(w, r, subject)
			return
		}
		p.reg.Handler().ServeHTTP(w, r)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if subject, ok := registerPath(r.URL.Path); ok && r.Method == http.MethodPost {
		if !p.allowRegistration(w, r, subject) {
			return
		}
	} else if subject, ok := compatPath(r.URL.Path); ok && r.Method == http.MethodPost {
		p.checkCompatibility(w, r, subject)
		return
	}
	rec := &statusRecorder{ResponseWriter: w}
	p.reg.Handler().ServeHTTP(rec, r)
	if rec.status < 300 && p.file != "" {
		if err := p.snapshot(); err != nil {
			p.log.Error("schema registry: persisting schemas failed; IDs may change on restart", "error", err)
		}
	}
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

// compatPath matches /compatibility/subjects/{subject}/versions/latest (or
// any version: the check is always against the latest).
func compatPath(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "/compatibility/subjects/")
	if !ok {
		return "", false
	}
	subject, _, ok := strings.Cut(rest, "/versions")
	if !ok || subject == "" {
		return "", false
	}
	s, err := url.PathUnescape(subject)
	return s, err == nil
}

type schemaBody struct {
	Schema     string `json:"schema"`
	SchemaType string `json:"schemaType"`
}

// incompatibility returns why body's schema may not follow the subject's
// latest version under BACKWARD rules, or "".
func (p *persistentRegistry) incompatibility(body []byte, subject string) (string, error) {
	var sb schemaBody
	if err := json.Unmarshal(body, &sb); err != nil {
		return "", err
	}
	if sb.SchemaType != "" && sb.SchemaType != "AVRO" {
		return "", nil
	}
	var latest struct {
		Version int    `json:"version"`
		Schema  string `json:"schema"`
	}
	if err := p.getJSON("/subjects/"+url.PathEscape(subject)+"/versions/latest", &latest); err != nil {
		return "", nil // no earlier version: anything goes
	}
	next, err := avro.ParseWithCache(sb.Schema, "", &avro.SchemaCache{})
	if err != nil {
		return "", nil // let the registry report the parse error
	}
	prev, err := avro.ParseWithCache(latest.Schema, "", &avro.SchemaCache{})
	if err != nil {
		return "", nil
	}
	if err := registry.Check(registry.Backward, prev, next); err != nil {
		return fmt.Sprintf("Schema being registered is incompatible with an earlier schema for subject %q (version %d): %v", subject, latest.Version, err), nil
	}
	return "", nil
}

func (p *persistentRegistry) allowRegistration(w http.ResponseWriter, r *http.Request, subject string) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		writeRegistryError(w, http.StatusBadRequest, 400, "cannot read body")
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	why, err := p.incompatibility(body, subject)
	if err != nil {
		return true // malformed JSON: srfake answers with its own error
	}
	if why != "" {
		writeRegistryError(w, http.StatusConflict, 409, why)
		return false
	}
	return true
}

func (p *persistentRegistry) checkCompatibility(w http.ResponseWriter, r *http.Request, subject string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		writeRegistryError(w, http.StatusBadRequest, 400, "cannot read body")
		return
	}
	why, err := p.incompatibility(body, subject)
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

func writeRegistryError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error_code": code, "message": msg})
}

// snapshot writes every live subject version to the state file, atomically.
func (p *persistentRegistry) snapshot() error {
	var subjects []string
	if err := p.getJSON("/subjects", &subjects); err != nil {
		return err
	}
	var saved []savedSchema
	for _, subj := range subjects {
		var versions []int
		if err := p.getJSON("/subjects/"+url.PathEscape(subj)+"/versions", &versions); err != nil {
			return err
		}
		for _, v := range versions {
			ss, ok := p.reg.GetSchema(subj, v)
			if !ok {
				continue
			}
			saved = append(saved, savedSchema{Subject: subj, Version: v, ID: ss.ID, Schema: ss.Schema.Schema, Type: ss.Schema.Type.String()})
		}
	}
	b, err := json.MarshalIndent(saved, "", "  ")
	if err != nil {
		return err
	}
	tmp := p.file + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p.file)
}

func (p *persistentRegistry) getJSON(path string, v any) error {
	rec := httptest.NewRecorder()
	p.reg.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", path, rec.Code, rec.Body.String())
	}
	return json.Unmarshal(rec.Body.Bytes(), v)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

package contract

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/hamba/avro/v2"

	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/registry"
)

// Registry holds every contract of a tree loaded by Load. It is immutable
// and safe for concurrent use.
type Registry struct {
	contracts map[string]*Contract
	names     []string // sorted
}

// Contract is one provider payload type ("stripe/payment_intent"): its
// versions, in manifest order, and the canonical one data teams read.
type Contract struct {
	name      string
	provider  string
	typ       string
	versions  []*Version
	canonical *Version
	exact     map[string]*Version // exact source version → version
	processed avro.Schema
	// processedText is processed's full JSON form, as registered.
	processedText string
	api           avro.API
}

// Version is one published schema of a contract.
type Version struct {
	contract       *Contract
	name           string
	sourceVersions []string
	compatibility  Compatibility
	schema         avro.Schema
	resolved       avro.Schema // reads this version's data as Canonical()
	plan           *node
	// direct: what the plan reads is already the value hamba would decode
	// with Canonical(), so Read skips the Avro encode and decode (see
	// node.direct).
	direct bool
	// rewrap: resolved decodes some union branch bare (see rewrap.go).
	rewrap bool
}

// Load reads every <provider>/<type>/manifest.yaml in fsys and the
// <version>.avsc files they list, and checks them:
//
//   - the manifest is well formed (see ErrManifest) and names its directory;
//   - every schema parses on its own (each version with its own cache, so
//     versions may reuse their record names), is a record, and can be read
//     from JSON (see ErrSchema); every .avsc in the directory is listed;
//   - a version's file matches the sha256 its manifest pins, when it does;
//   - each version is compatible with the one before it as it declares, and
//     every version resolves to the canonical one (see ErrIncompatible);
//   - no two contracts name their processed record alike (see ErrManifest).
//
// Errors name the file and, for compatibility, the contract, the versions
// and hamba's reason. Load ignores everything else in fsys (fixtures).
func Load(fsys fs.FS) (*Registry, error) {
	files, err := fs.Glob(fsys, "*/*/manifest.yaml")
	if err != nil {
		return nil, fmt.Errorf("contract: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("contract: no <provider>/<type>/manifest.yaml found: %w", ErrManifest)
	}
	r := &Registry{contracts: make(map[string]*Contract, len(files))}
	// hamba refuses strings and bytes over 1 MiB by default; a payload
	// may be as large as a raw record, and a refused upcast would send a
	// valid event through every retry tier to the DLQ.
	api := avro.Config{MaxByteSliceSize: kafka.MaxMessageBytes}.Freeze()
	var errs []error
	// The processed record's full name is its registry subject's suffix
	// and the inlet-record-name header: "-" and "_" both become "_", so
	// acme/order-item and acme/order_item would share both.
	byRecord := make(map[string]string, len(files))
	for _, file := range files {
		c, err := loadContract(fsys, file, api)
		if err != nil {
			errs = append(errs, fmt.Errorf("contract: %w", err))
			continue
		}
		full := c.processed.(avro.NamedSchema).FullName()
		if other, ok := byRecord[full]; ok {
			errs = append(errs, fmt.Errorf("contract: %s: %w: contracts %s and %s both name their processed record %s (one registry subject, one inlet-record-name): rename one",
				file, ErrManifest, other, c.name, full))
			continue
		}
		byRecord[full] = c.name
		r.contracts[c.name] = c
		r.names = append(r.names, c.name)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	slices.Sort(r.names)
	return r, nil
}

func loadContract(fsys fs.FS, file string, api avro.API) (*Contract, error) {
	b, err := fs.ReadFile(fsys, file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", file, ErrManifest, err)
	}
	m, err := parseManifest(file, b)
	if err != nil {
		return nil, err
	}
	dir := path.Dir(file)
	c := &Contract{
		name:     m.Name,
		provider: path.Dir(m.Name),
		typ:      path.Base(m.Name),
		exact:    make(map[string]*Version),
		api:      api,
	}
	listed := make(map[string]bool, len(m.Versions))
	for _, mv := range m.Versions {
		v, err := loadVersion(fsys, dir, mv)
		if err != nil {
			return nil, err
		}
		v.contract = c
		c.versions = append(c.versions, v)
		listed[mv.Name+".avsc"] = true
		for _, sv := range v.sourceVersions {
			if !isGlob(sv) {
				c.exact[sv] = v
			}
		}
		if mv.Name == m.Canonical {
			c.canonical = v
		}
	}
	avscs, err := fs.Glob(fsys, path.Join(dir, "*.avsc"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	for _, f := range avscs {
		if !listed[path.Base(f)] {
			return nil, fmt.Errorf("%s: %w: not listed in %s: list the version or remove the file", f, ErrSchema, file)
		}
	}
	if err := c.checkCompatibility(file); err != nil {
		return nil, err
	}
	if c.processed, err = buildProcessed(c); err != nil {
		return nil, fmt.Errorf("%s: %w: processed-record schema: %v", file, ErrSchema, err)
	}
	text, err := json.Marshal(c.processed)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: processed-record schema: %v", file, ErrSchema, err)
	}
	c.processedText = string(text)
	return c, nil
}

func loadVersion(fsys fs.FS, dir string, mv manifestVersion) (*Version, error) {
	file := path.Join(dir, mv.Name+".avsc")
	b, err := fs.ReadFile(fsys, file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", file, ErrSchema, err)
	}
	if mv.SHA256 != "" {
		if sum := schemaSHA256(b); sum != mv.SHA256 {
			return nil, fmt.Errorf("%s: %w: sha256 is %s but the manifest pins %s: a published version is never edited; add a new version instead",
				file, ErrSchema, sum, mv.SHA256)
		}
	}
	// Each version gets its own cache: avro.Parse caches by full name, and
	// versions of a contract share their record names.
	s, err := avro.ParseWithCache(string(b), "", &avro.SchemaCache{})
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", file, ErrSchema, err)
	}
	if name := unnamespaced(s, map[avro.Schema]bool{}); name != "" {
		return nil, fmt.Errorf("%s: %w: %s has no namespace: give the schema one (e.g. \"namespace\": \"com.example.%s\"); the processed record nests it under inlet.processed.<provider>, where a type without one takes that namespace, its name changes for data teams and a union naming it does not encode",
			file, ErrSchema, name, strings.ToLower(name))
	}
	plan, err := compile(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", file, ErrSchema, err)
	}
	return &Version{
		name:           mv.Name,
		sourceVersions: mv.SourceVersions,
		compatibility:  mv.Compatibility,
		schema:         s,
		plan:           plan,
	}, nil
}

// checkCompatibility checks each version against its predecessor as
// declared, and resolves every version to the canonical one.
//
// Each check gets its own avro.SchemaCompatibility: hamba caches verdicts
// by the schemas' canonical-form fingerprints, which leave out aliases and
// defaults, so a canonical version that only dropped an alias from the
// one before it was resolved against v1 with v2's cached "compatible", and
// v1 payloads upcast with the renamed required field empty.
func (c *Contract) checkCompatibility(file string) error {
	for i := 1; i < len(c.versions); i++ {
		prev, cur := c.versions[i-1], c.versions[i]
		var checks [][2]*Version // {reader, writer}
		switch cur.compatibility {
		case Backward:
			checks = [][2]*Version{{cur, prev}}
		case Forward:
			checks = [][2]*Version{{prev, cur}}
		case Full:
			checks = [][2]*Version{{cur, prev}, {prev, cur}}
		}
		for _, rw := range checks {
			if err := avro.NewSchemaCompatibility().Compatible(rw[0].schema, rw[1].schema); err != nil {
				return fmt.Errorf("%s: %w: contract %s: %s declares %s compatibility with %s, but %s (reader) cannot read data written with %s (writer): %s%v",
					file, ErrIncompatible, c.name, cur.name, cur.compatibility, prev.name, rw[0].name, rw[1].name, atField(rw[0].schema, rw[1].schema), err)
			}
		}
	}
	for _, v := range c.versions {
		r, err := avro.NewSchemaCompatibility().Resolve(c.canonical.schema, v.schema)
		if err != nil {
			return fmt.Errorf("%s: %w: contract %s: %s cannot be upcast to canonical %s: %s%v",
				file, ErrIncompatible, c.name, v.name, c.canonical.name, atField(c.canonical.schema, v.schema), err)
		}
		v.resolved = r
		v.rewrap = needsRewrap(c.canonical.schema, r)
		v.direct = v == c.canonical && v.plan.direct()
	}
	return nil
}

// atField is "field <path>: " for where reader fails on writer's data:
// hamba's error names the clashing types, not the field.
func atField(reader, writer avro.Schema) string {
	if p := registry.IncompatiblePath(reader, writer); p != "" && p != "/" {
		return "field " + p + ": "
	}
	return ""
}

// Contract returns the contract named "<provider>/<type>".
func (r *Registry) Contract(name string) (*Contract, bool) {
	c, ok := r.contracts[name]
	return c, ok
}

// Contracts returns every contract, sorted by name.
func (r *Registry) Contracts() []*Contract {
	out := make([]*Contract, len(r.names))
	for i, n := range r.names {
		out[i] = r.contracts[n]
	}
	return out
}

// Name returns "<provider>/<type>".
func (c *Contract) Name() string { return c.name }

// Canonical returns the record schema of the canonical version: what Read
// returns values of, and the data field of ProcessedSchema.
func (c *Contract) Canonical() avro.Schema { return c.canonical.schema }

// CanonicalVersion returns the canonical version.
func (c *Contract) CanonicalVersion() *Version { return c.canonical }

// Versions returns the versions, oldest first.
func (c *Contract) Versions() []*Version { return slices.Clone(c.versions) }

// VersionFor returns the version that reads payloads whose envelope
// schema_version is sourceVersion. An exact entry in a version's
// source_versions wins; otherwise the newest version with a matching glob
// (path.Match) wins. False means no handler exists for that version: the
// event is invalid with reason "no handler for version", and reprocessable
// once a version lists it.
func (c *Contract) VersionFor(sourceVersion string) (*Version, bool) {
	if v, ok := c.exact[sourceVersion]; ok {
		return v, true
	}
	for i := len(c.versions) - 1; i >= 0; i-- {
		for _, p := range c.versions[i].sourceVersions {
			if !isGlob(p) {
				continue
			}
			if ok, _ := path.Match(p, sourceVersion); ok {
				return c.versions[i], true
			}
		}
	}
	return nil, false
}

// Name returns the version name, "v1", "v2", ...
func (v *Version) Name() string { return v.name }

// Contract returns the contract the version belongs to.
func (v *Version) Contract() *Contract { return v.contract }

// Schema returns the version's own record schema, the one payloads are
// validated against before the upcast.
func (v *Version) Schema() avro.Schema { return v.schema }

// SourceVersions returns the envelope schema_version values and globs that
// route to this version.
func (v *Version) SourceVersions() []string { return slices.Clone(v.sourceVersions) }

// Compatibility returns what the version declares against the one before
// it; "" for the first version.
func (v *Version) Compatibility() Compatibility { return v.compatibility }

// unnamespaced is the name of a named type (record, enum, fixed) in s
// that has no namespace, or "".
func unnamespaced(s avro.Schema, seen map[avro.Schema]bool) string {
	if seen[s] {
		return ""
	}
	seen[s] = true
	if n, ok := s.(avro.NamedSchema); ok && n.Namespace() == "" {
		return n.Name()
	}
	var kids []avro.Schema
	switch s := s.(type) {
	case *avro.RecordSchema:
		for _, f := range s.Fields() {
			kids = append(kids, f.Type())
		}
	case *avro.ArraySchema:
		kids = append(kids, s.Items())
	case *avro.MapSchema:
		kids = append(kids, s.Values())
	case *avro.UnionSchema:
		kids = s.Types()
	case *avro.RefSchema:
		kids = append(kids, s.Schema())
	}
	for _, k := range kids {
		if name := unnamespaced(k, seen); name != "" {
			return name
		}
	}
	return ""
}

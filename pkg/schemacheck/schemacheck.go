// Package schemacheck tells, before a deploy, whether a build of Inlet fits
// what it will run against: the schemas it registers (the envelope under
// the raw topic's subject, one processed schema per contract) against the
// schema registry's subjects, and the sources file against the build's
// contracts and their fixtures. `inletctl schemas check` runs it.
//
// The registry is only read: the check asks whether each schema is there,
// and if not whether the subject would take it, so it runs with read-only
// credentials and registers nothing.
package schemacheck

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/inletdev/inlet/pkg/contract"
	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/registry"
	"github.com/inletdev/inlet/pkg/source"
)

// Subject is a registry subject Inlet writes to and the schema it
// registers there.
type Subject struct {
	Name string `json:"subject"`
	// Schema says which schema: "envelope v1", "processed stripe/payment_intent (v2)".
	Schema string `json:"schema"`
	Text   string `json:"-"` // as Inlet registers it
}

// Subjects lists the subjects a deployment with topics writes to: the
// envelope's latest version under the raw topic's subject, and the
// processed schema of each of contracts under its processed and its state
// subject.
func Subjects(topics kafka.Topics, contracts []*contract.Contract) ([]Subject, error) {
	env, err := envelope.Latest()
	if err != nil {
		return nil, err
	}
	out := []Subject{{Name: topics.RawSubject(), Schema: fmt.Sprintf("envelope v%d", env.N), Text: env.Text}}
	for _, c := range contracts {
		named, ok := c.ProcessedSchema().(interface{ FullName() string })
		if !ok {
			return nil, fmt.Errorf("contract %s: processed schema is not a named record", c.Name())
		}
		what := fmt.Sprintf("processed %s (%s)", c.Name(), c.CanonicalVersion().Name())
		for _, subject := range []string{topics.ProcessedSubject(named.FullName()), topics.StateSubject(named.FullName())} {
			out = append(out, Subject{Name: subject, Schema: what, Text: c.ProcessedSchemaText()})
		}
	}
	return out, nil
}

// HandlerSchema is a processed schema a Go handler writes with
// (pkg/handlers' Registration.Schemas).
type HandlerSchema struct {
	Route   string // the handler's route, acme/shipment.*@v1
	Text    string
	Subject string // empty: the processed and the state topic's subjects
}

// HandlerSubjects lists the subjects Go handlers write to, as the
// processor registers them: an Output's Subject, or else the processed and
// the state topic's subject of its record's full name. Two handlers
// writing different schemas under one subject are a problem: older
// versions are to be upcast to one canonical schema, and otherwise the
// subject's versions alternate (each handler's schema registered over the
// other's, one of them possibly refused).
func HandlerSubjects(topics kafka.Topics, schemas []HandlerSchema) (subjects []Subject, problems []string) {
	first := map[string]HandlerSchema{}
	for _, h := range schemas {
		names := []string{h.Subject}
		if h.Subject == "" {
			s, err := avro.ParseWithCache(h.Text, "", &avro.SchemaCache{})
			if err != nil {
				problems = append(problems, fmt.Sprintf("go handler %s: processed schema: %v", h.Route, err))
				continue
			}
			named, ok := s.(interface{ FullName() string })
			if !ok {
				problems = append(problems, fmt.Sprintf("go handler %s: processed schema is not a named record, and it sets no subject", h.Route))
				continue
			}
			names = []string{topics.ProcessedSubject(named.FullName()), topics.StateSubject(named.FullName())}
		}
		for _, name := range names {
			prev, seen := first[name]
			switch {
			case !seen:
				first[name] = h
				subjects = append(subjects, Subject{Name: name, Schema: "go handler " + h.Route, Text: h.Text})
			case prev.Text != h.Text:
				problems = append(problems, fmt.Sprintf("%s: go handlers %s and %s write different schemas: upcast older versions to one canonical schema", name, prev.Route, h.Route))
			}
		}
	}
	return subjects, problems
}

// Used returns the contracts the events of sources name, sorted by name,
// and the names that no contract of reg has (sorted, each once).
func Used(sources *source.File, reg *contract.Registry) (used []*contract.Contract, missing []string) {
	seen := map[string]bool{}
	for _, name := range sources.Names() {
		src, _ := sources.Get(name)
		for _, ev := range src.Events {
			if ev.Contract == "" || seen[ev.Contract] {
				continue
			}
			seen[ev.Contract] = true
			if c, ok := reg.Contract(ev.Contract); ok {
				used = append(used, c)
			} else {
				missing = append(missing, ev.Contract)
			}
		}
	}
	slices.SortFunc(used, func(a, b *contract.Contract) int { return cmp.Compare(a.Name(), b.Name()) })
	slices.Sort(missing)
	return used, missing
}

// Status is what a subject says of the schema Inlet would register.
type Status string

const (
	// Registered: the schema is there; Inlet writes with its id.
	Registered Status = "registered"
	// New: no such subject; the first write registers version 1.
	New Status = "new"
	// Compatible: the subject takes the schema; the first write registers
	// a new version.
	Compatible Status = "compatible"
	// Incompatible: the subject refuses the schema; every write that needs
	// it fails (ingest answers 503, the processor waits) until the subject
	// or the schema changes. Or Inlet refuses it: it changes a value's
	// logical type, which Confluent's registry does not check (Messages
	// say so); registered, every value of that field reads wrong.
	Incompatible Status = "incompatible"
	// Unknown: the registry did not answer (Messages say why).
	Unknown Status = "unknown"
)

// Result is one subject's answer.
type Result struct {
	Subject
	Status Status `json:"status"`
	// ID and Version are the registered schema's (Registered).
	ID      int `json:"id,omitempty"`
	Version int `json:"version,omitempty"`
	// Latest is the subject's latest version (Compatible, Incompatible).
	Latest int `json:"latest,omitempty"`
	// Level is the compatibility level the subject is held to, if the
	// registry says.
	Level    string   `json:"level,omitempty"`
	Messages []string `json:"messages,omitempty"`
	// Warning is a problem to come: a level a new contract version may not
	// pass.
	Warning string `json:"warning,omitempty"`
}

// Problem reports whether r stops a deploy: the registry refuses the
// schema, or could not say.
func (r Result) Problem() bool { return r.Status == Incompatible || r.Status == Unknown }

// Schema registry error codes (Confluent's).
const (
	codeSubjectNotFound = 40401
	codeSchemaNotFound  = 40403
)

// Check asks the registry about each subject; it only reads. A subject
// the registry could not answer for is Unknown, with the error in
// Messages; the others are still checked.
func Check(ctx context.Context, cl *sr.Client, subjects []Subject) []Result {
	out := make([]Result, 0, len(subjects))
	for _, s := range subjects {
		out = append(out, check(ctx, cl, s))
	}
	return out
}

func check(ctx context.Context, cl *sr.Client, s Subject) Result {
	r := Result{Subject: s}
	schema := sr.Schema{Schema: s.Text, Type: sr.TypeAvro}
	got, err := cl.LookupSchema(ctx, s.Name, schema)
	var re *sr.ResponseError
	switch {
	case err == nil:
		r.Status, r.ID, r.Version = Registered, got.ID, got.Version
	case errors.As(err, &re) && re.ErrorCode == codeSubjectNotFound:
		r.Status = New
	case errors.As(err, &re) && re.ErrorCode == codeSchemaNotFound:
		return checkNewVersion(ctx, cl, r, schema)
	default:
		return unknown(r, "lookup", err)
	}
	r.Level, r.Warning = level(ctx, cl, s.Name)
	return r
}

// checkNewVersion asks whether the subject of r takes schema as a new
// version: the registry's verdict, then the logical types it ignores.
func checkNewVersion(ctx context.Context, cl *sr.Client, r Result, schema sr.Schema) Result {
	latest, err := cl.SchemaByVersion(ctx, r.Name, -1)
	if err != nil {
		return unknown(r, "latest version", err)
	}
	r.Latest = latest.Version
	// Version -2 asks without a version, which checks what registering
	// does: the latest version, or all of them at a _TRANSITIVE level. A
	// version number asks about that one only, and passed a schema a
	// BACKWARD_TRANSITIVE subject then refused.
	res, err := cl.CheckCompatibility(sr.WithParams(ctx, sr.Verbose), r.Name, -2, schema)
	if err != nil {
		return unknown(r, "compatibility check", err)
	}
	r.Level, r.Warning = level(ctx, cl, r.Name)
	if !res.Is {
		r.Status, r.Messages = Incompatible, res.Messages
		return r
	}
	err = logicalTypes(ctx, cl, r, latest)
	switch {
	case errors.Is(err, registry.ErrBreakingChange):
		r.Status, r.Messages = Incompatible, []string{err.Error() + " (refused by Inlet: the registry's check ignores logical types)"}
	case err != nil:
		return unknown(r, "logical type check", err)
	default:
		r.Status, r.Messages = Compatible, nil
	}
	return r
}

// logicalTypes checks r's schema keeps the logical type of every value in
// the versions r.Level holds it to (the latest; all at a _TRANSITIVE
// level). Confluent's registry runs Avro's checker, which ignores logical
// types: it takes timestamp-millis turned timestamp-micros, and every
// stored time then reads 1000 times off. No level is the registry's
// default, BACKWARD.
func logicalTypes(ctx context.Context, cl *sr.Client, r Result, latest sr.SubjectSchema) error {
	lvl, transitive := strings.CutSuffix(cmp.Or(r.Level, sr.CompatBackward.String()), "_TRANSITIVE")
	rule := registry.Compatibility(lvl)
	if rule == registry.None {
		return nil
	}
	versions := []sr.SubjectSchema{latest}
	if transitive {
		var err error
		if versions, err = cl.Schemas(ctx, r.Name); err != nil {
			return err
		}
	}
	next, err := avro.ParseWithCache(r.Text, "", &avro.SchemaCache{})
	if err != nil {
		return err
	}
	for _, v := range versions {
		if v.Type != sr.TypeAvro {
			continue
		}
		prev, err := avro.ParseWithCache(v.Schema.Schema, "", &avro.SchemaCache{})
		if err != nil {
			return fmt.Errorf("version %d: %w", v.Version, err)
		}
		if err := registry.CheckLogicalTypes(rule, prev, next); err != nil {
			return fmt.Errorf("against version %d: %w", v.Version, err)
		}
	}
	return nil
}

func unknown(r Result, what string, err error) Result {
	// A refusal by its status: the registry's answer, which is the
	// client's error text, may quote the credential it refused.
	if c := registry.Classify(err); registry.IsDenied(c) {
		err = c
	}
	r.Status, r.Messages = Unknown, []string{what + ": " + err.Error()}
	return r
}

// level is the compatibility level subject is held to (its own, else the
// registry's default), and a warning when a later contract version might
// not pass it: contract and envelope versions are only required to be
// BACKWARD compatible. No level (the registry would not say) is no
// warning: the check is about the schema, and a registration says the rest.
func level(ctx context.Context, cl *sr.Client, subject string) (string, string) {
	res := cl.Compatibility(sr.WithParams(ctx, sr.DefaultToGlobal), subject)
	if len(res) != 1 || res[0].Err != nil {
		return "", ""
	}
	l := res[0].Level.String()
	if strings.HasPrefix(l, "FORWARD") || strings.HasPrefix(l, "FULL") {
		return l, "level " + l + " also requires forward compatibility, which new contract versions are not held to: a later version may be refused (BACKWARD or NONE suit Inlet)"
	}
	return l, ""
}

// Fixtures reads every fixture of every version of reg's contracts from
// fsys (<contract>/fixtures/<version>/*.json, as schemas/contracts lays
// them out) with its version, and returns how many were read and a line
// for each that failed or each version without any.
func Fixtures(fsys fs.FS, reg *contract.Registry) (read int, problems []string) {
	for _, c := range reg.Contracts() {
		for _, v := range c.Versions() {
			dir := path.Join(c.Name(), "fixtures", v.Name())
			files, err := fs.Glob(fsys, path.Join(dir, "*.json"))
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", dir, err))
				continue
			}
			if len(files) == 0 {
				problems = append(problems, fmt.Sprintf("%s %s: no fixtures in %s", c.Name(), v.Name(), dir))
			}
			for _, f := range files {
				payload, err := fs.ReadFile(fsys, f)
				if err == nil {
					_, err = v.Read(payload)
				}
				if err != nil {
					problems = append(problems, fmt.Sprintf("%s: %v", f, err))
					continue
				}
				read++
			}
		}
	}
	return read, problems
}

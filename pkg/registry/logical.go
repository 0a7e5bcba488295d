package registry

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/hamba/avro/v2"
)

// logicalChange is a place where a reader and a writer schema, matched as
// schema resolution matches them, give the same encoded value different
// logical types.
type logicalChange struct {
	path           string // "/field/[]" ("[]" array items, "*" map values)
	reader, writer string // "timestamp-millis", "decimal(10,2)", "none"
}

// findLogicalChange walks reader and writer as a decoder resolves them
// (fields by name or reader alias, union branches to the reader branch
// the writer's resolves to, array items, map values) and returns the first
// change of logical type, or nil. Avro's schema compatibility (Java's, so
// Confluent's, and hamba's) ignores logical types; this is the part of the
// check it leaves out. Places it cannot match are left to that check.
func findLogicalChange(reader, writer avro.Schema) *logicalChange {
	return (&logicalWalk{seen: map[[2]avro.Schema]bool{}}).walk("", reader, writer)
}

type logicalWalk struct {
	seen map[[2]avro.Schema]bool // record pairs entered: schemas may recurse
}

func (w *logicalWalk) walk(path string, reader, writer avro.Schema) *logicalChange {
	reader, writer = deref(reader), deref(writer)
	if wu, ok := writer.(*avro.UnionSchema); ok {
		for _, branch := range wu.Types() {
			if c := w.walk(path, reader, branch); c != nil {
				return c
			}
		}
		return nil
	}
	if ru, ok := reader.(*avro.UnionSchema); ok {
		branch := resolvedBranch(ru, writer)
		if branch == nil {
			return nil
		}
		return w.walk(path, branch, writer)
	}
	if r, wr := logicalName(reader), logicalName(writer); r != wr {
		return &logicalChange{path: cmp.Or(path, "/"), reader: r, writer: wr}
	}
	switch r := reader.(type) {
	case *avro.RecordSchema:
		wr, ok := writer.(*avro.RecordSchema)
		if !ok || w.seen[[2]avro.Schema{r, wr}] {
			return nil
		}
		w.seen[[2]avro.Schema{r, wr}] = true
		for _, rf := range r.Fields() {
			if wf := writerField(wr, rf); wf != nil {
				if c := w.walk(path+"/"+rf.Name(), rf.Type(), wf.Type()); c != nil {
					return c
				}
			}
		}
	case *avro.ArraySchema:
		if wr, ok := writer.(*avro.ArraySchema); ok {
			return w.walk(path+"/[]", r.Items(), wr.Items())
		}
	case *avro.MapSchema:
		if wr, ok := writer.(*avro.MapSchema); ok {
			return w.walk(path+"/*", r.Values(), wr.Values())
		}
	}
	return nil
}

func deref(s avro.Schema) avro.Schema {
	if ref, ok := s.(*avro.RefSchema); ok {
		return ref.Schema()
	}
	return s
}

// resolvedBranch is the branch of reader a value of writer's type is read
// into: one of the same type (and name), else the first that can read it
// (a promotion), as the Avro specification resolves unions.
func resolvedBranch(reader *avro.UnionSchema, writer avro.Schema) avro.Schema {
	for _, b := range reader.Types() {
		b = deref(b)
		if b.Type() == writer.Type() && sameName(b, writer) {
			return b
		}
	}
	for _, b := range reader.Types() {
		if avro.NewSchemaCompatibility().Compatible(b, writer) == nil {
			return b
		}
	}
	return nil
}

// sameName reports whether reader, a named type, reads writer's name (by
// its own name or an alias); unnamed types always do.
func sameName(reader, writer avro.Schema) bool {
	r, ok1 := reader.(avro.NamedSchema)
	w, ok2 := writer.(avro.NamedSchema)
	if !ok1 || !ok2 {
		return true
	}
	return r.Name() == w.Name() || slices.Contains(r.Aliases(), w.FullName())
}

// writerField is the field of writer that fills reader's field rf: same
// name, or one of rf's aliases.
func writerField(writer *avro.RecordSchema, rf *avro.Field) *avro.Field {
	for _, f := range writer.Fields() {
		if f.Name() == rf.Name() || slices.Contains(rf.Aliases(), f.Name()) {
			return f
		}
	}
	return nil
}

// logicalName names s's logical type, with a decimal's precision and
// scale (both part of how the bytes read as a number). A logicalType
// hamba does not know (timestamp-nanos) is kept as written: readers that
// know it interpret the values by it.
func logicalName(s avro.Schema) string {
	if l, ok := s.(avro.LogicalTypeSchema); ok && l.Logical() != nil {
		if d, ok := l.Logical().(*avro.DecimalLogicalSchema); ok {
			return fmt.Sprintf("decimal(%d,%d)", d.Precision(), d.Scale())
		}
		return string(l.Logical().Type())
	}
	if p, ok := s.(interface{ Prop(string) any }); ok {
		if name, ok := p.Prop("logicalType").(string); ok && name != "" {
			return name
		}
	}
	return "none"
}

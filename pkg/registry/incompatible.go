package registry

import (
	"cmp"

	"github.com/hamba/avro/v2"
)

// IncompatiblePath is where reader first fails to read data written with
// writer, as a path of field names ("/items/[]/qty": "[]" array items,
// "*" map values), "/" when it is the schemas themselves, or "" when
// reader reads it all. Avro's checkers (hamba's, Apache Java's) say which
// two types clash ("reader schema long not compatible with writer schema
// double"), not where: in a schema of many longs, the path is what tells
// the field.
func IncompatiblePath(reader, writer avro.Schema) string {
	return (&compatWalk{seen: map[[2]avro.Schema]bool{}}).walk("", reader, writer)
}

type compatWalk struct {
	seen map[[2]avro.Schema]bool // record pairs entered: schemas may recurse
}

// compatible asks a fresh checker: hamba caches verdicts by canonical
// form, which leaves out aliases and defaults.
func compatible(reader, writer avro.Schema) bool {
	return avro.NewSchemaCompatibility().Compatible(reader, writer) == nil
}

func (w *compatWalk) walk(path string, reader, writer avro.Schema) string {
	reader, writer = deref(reader), deref(writer)
	if compatible(reader, writer) {
		return ""
	}
	here := cmp.Or(path, "/")
	if wu, ok := writer.(*avro.UnionSchema); ok {
		for _, b := range wu.Types() {
			if p := w.walk(path, reader, b); p != "" {
				return p
			}
		}
		return here
	}
	if ru, ok := reader.(*avro.UnionSchema); ok {
		// The branch of the writer's type and name: what changed is in it.
		for _, b := range ru.Types() {
			if b = deref(b); b.Type() == writer.Type() && sameName(b, writer) {
				return cmp.Or(w.walk(path, b, writer), here)
			}
		}
		return here
	}
	switch r := reader.(type) {
	case *avro.RecordSchema:
		wr, ok := writer.(*avro.RecordSchema)
		if !ok {
			return here
		}
		if w.seen[[2]avro.Schema{r, wr}] {
			return "" // being walked further up
		}
		w.seen[[2]avro.Schema{r, wr}] = true
		for _, rf := range r.Fields() {
			wf := writerField(wr, rf)
			if wf == nil {
				if !rf.HasDefault() {
					return path + "/" + rf.Name()
				}
				continue
			}
			if p := w.walk(path+"/"+rf.Name(), rf.Type(), wf.Type()); p != "" {
				return p
			}
		}
	case *avro.ArraySchema:
		if wr, ok := writer.(*avro.ArraySchema); ok {
			return cmp.Or(w.walk(path+"/[]", r.Items(), wr.Items()), here)
		}
	case *avro.MapSchema:
		if wr, ok := writer.(*avro.MapSchema); ok {
			return cmp.Or(w.walk(path+"/*", r.Values(), wr.Values()), here)
		}
	}
	return here
}

// atField is "field <path>: " for where reader fails on writer's data, ""
// at the top (the checker's message says it all).
func atField(reader, writer avro.Schema) string {
	if p := IncompatiblePath(reader, writer); p != "" && p != "/" {
		return "field " + p + ": "
	}
	return ""
}

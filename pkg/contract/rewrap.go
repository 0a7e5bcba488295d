package contract

import "github.com/hamba/avro/v2"

// Avro resolution of a writer's non-union T against a reader's union that
// has a T branch (a required field made nullable: T → ["null", T]) resolves
// to that branch alone, so hamba decodes the bare value where Canonical()
// holds a union. A bare primitive is the generic form of a union of
// primitives, but a bare record, enum, array or map is not: hamba's encoder
// refuses it or, for a map, takes its keys for branch names. rewrap puts
// such values back in Read's form, {"<type name>": value}.

// needsRewrap reports whether reading with resolved, the resolution of a
// version against reader (Canonical()), decodes a wrapped union branch bare
// anywhere.
func needsRewrap(reader, resolved avro.Schema) bool {
	reader, resolved = deref(reader), deref(resolved)
	switch r := reader.(type) {
	case *avro.UnionSchema:
		if ru, ok := resolved.(*avro.UnionSchema); ok {
			for _, rb := range ru.Types() {
				if b := branchFor(r, rb); b != nil && needsRewrap(b, rb) {
					return true
				}
			}
			return false
		}
		b := branchFor(r, resolved)
		return b != nil && (holdsWrapped(r, b) || needsRewrap(b, resolved))
	case *avro.RecordSchema:
		rs, ok := resolved.(*avro.RecordSchema)
		if !ok {
			return false
		}
		for _, f := range r.Fields() {
			if rf := fieldNamed(rs, f.Name()); rf != nil && needsRewrap(f.Type(), rf.Type()) {
				return true
			}
		}
	case *avro.ArraySchema:
		if ra, ok := resolved.(*avro.ArraySchema); ok {
			return needsRewrap(r.Items(), ra.Items())
		}
	case *avro.MapSchema:
		if rm, ok := resolved.(*avro.MapSchema); ok {
			return needsRewrap(r.Values(), rm.Values())
		}
	}
	return false
}

// rewrap returns v, decoded with resolved, in reader's generic form. It
// changes v's maps and slices in place (they are the decoder's own).
func rewrap(reader, resolved avro.Schema, v any) any {
	reader, resolved = deref(reader), deref(resolved)
	if v == nil {
		return nil
	}
	switch r := reader.(type) {
	case *avro.UnionSchema:
		if ru, ok := resolved.(*avro.UnionSchema); ok {
			m, ok := v.(map[string]any)
			if !ok || len(m) != 1 {
				return v // a primitive branch, held bare
			}
			for name, inner := range m {
				rb := branchNamed(ru, name)
				if b := branchFor(r, rb); b != nil {
					m[name] = rewrap(b, rb, inner)
				}
			}
			return v
		}
		b := branchFor(r, resolved)
		if b == nil {
			return v
		}
		v = rewrap(b, resolved, v)
		if holdsWrapped(r, b) {
			return map[string]any{unionBranchName(b): v}
		}
		return v
	case *avro.RecordSchema:
		rs, ok := resolved.(*avro.RecordSchema)
		m, isMap := v.(map[string]any)
		if !ok || !isMap {
			return v
		}
		for _, f := range r.Fields() {
			if fv, ok := m[f.Name()]; ok {
				if rf := fieldNamed(rs, f.Name()); rf != nil {
					m[f.Name()] = rewrap(f.Type(), rf.Type(), fv)
				}
			}
		}
	case *avro.ArraySchema:
		ra, ok := resolved.(*avro.ArraySchema)
		a, isSlice := v.([]any)
		if !ok || !isSlice {
			return v
		}
		for i, e := range a {
			a[i] = rewrap(r.Items(), ra.Items(), e)
		}
	case *avro.MapSchema:
		rm, ok := resolved.(*avro.MapSchema)
		m, isMap := v.(map[string]any)
		if !ok || !isMap {
			return v
		}
		for k, e := range m {
			m[k] = rewrap(r.Values(), rm.Values(), e)
		}
	}
	return v
}

// branchFor returns the branch of u that resolved (a resolution of some
// writer schema against u, or one of its branches) reads into: resolution
// keeps the reader's type and name. Nil when there is none.
func branchFor(u *avro.UnionSchema, resolved avro.Schema) avro.Schema {
	if resolved == nil {
		return nil
	}
	resolved = deref(resolved)
	for _, b := range u.Types() {
		if deref(b).Type() == resolved.Type() && unionBranchName(b) == unionBranchName(resolved) {
			return b
		}
	}
	return nil
}

// branchNamed returns the branch of u that hamba's generic form names name.
func branchNamed(u *avro.UnionSchema, name string) avro.Schema {
	for _, b := range u.Types() {
		if unionBranchName(b) == name {
			return b
		}
	}
	return nil
}

// fieldNamed returns the field of a resolved record that decodes into name:
// resolution names matched fields after the reader's; a writer field it
// skips keeps a writer name no reader field has.
func fieldNamed(r *avro.RecordSchema, name string) *avro.Field {
	for _, f := range r.Fields() {
		if f.Name() == name {
			return f
		}
	}
	return nil
}

// holdsWrapped reports whether hamba's generic form holds u's branch b as
// {"<type name>": value}: every branch but null, once one branch is a
// record, enum, array or map.
func holdsWrapped(u *avro.UnionSchema, b avro.Schema) bool {
	if deref(b).Type() == avro.Null {
		return false
	}
	for _, t := range u.Types() {
		if wrapped(t) {
			return true
		}
	}
	return false
}

func deref(s avro.Schema) avro.Schema {
	if ref, ok := s.(*avro.RefSchema); ok {
		return ref.Schema()
	}
	return s
}

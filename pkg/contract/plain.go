package contract

import (
	"encoding/json"

	"github.com/hamba/avro/v2"
)

// Plain returns v, a value of s in the generic form Read returns, shaped as
// a JSON reader without the schema expects it: a union's branch unwrapped
// from hamba's {"<type name>": value} (a record, enum, array or map branch,
// and a primitive one beside such a branch), and a
// raw JSON field (JSONProp) as the JSON it carries rather than a string
// holding it. It is for bodies that leave Kafka, such as an HTTP sink's,
// whose readers never see the schema. v is not modified.
func Plain(s avro.Schema, v any) any {
	if ref, ok := s.(*avro.RefSchema); ok {
		s = ref.Schema()
	}
	switch s := s.(type) {
	case *avro.UnionSchema:
		m, ok := v.(map[string]any)
		if !ok || len(m) != 1 {
			return v // null, or a primitive branch held bare
		}
		// Every branch: beside a record, enum, array or map branch,
		// hamba holds a primitive one wrapped too ({"string": "cus_1"}).
		for _, t := range s.Types() {
			if b, ok := m[unionBranchName(t)]; ok {
				return Plain(t, b)
			}
		}
	case *avro.RecordSchema:
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		out := make(map[string]any, len(m))
		for k, fv := range m {
			out[k] = fv
		}
		for _, f := range s.Fields() {
			fv, ok := m[f.Name()]
			if !ok {
				continue
			}
			if f.Prop(JSONProp) == "raw" {
				if text, ok := fv.(string); ok && json.Valid([]byte(text)) {
					out[f.Name()] = json.RawMessage(text)
				}
				continue
			}
			out[f.Name()] = Plain(f.Type(), fv)
		}
		return out
	case *avro.ArraySchema:
		a, ok := v.([]any)
		if !ok {
			return v
		}
		out := make([]any, len(a))
		for i, e := range a {
			out[i] = Plain(s.Items(), e)
		}
		return out
	case *avro.MapSchema:
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		out := make(map[string]any, len(m))
		for k, e := range m {
			out[k] = Plain(s.Values(), e)
		}
		return out
	}
	return v
}

// wrapped reports whether s is a type hamba's generic form holds wrapped,
// {"<type name>": value}, in a union; a union with such a branch holds its
// primitive branches wrapped too, a union of primitives holds them bare.
func wrapped(s avro.Schema) bool {
	if ref, ok := s.(*avro.RefSchema); ok {
		s = ref.Schema()
	}
	switch s.Type() {
	case avro.Record, avro.Enum, avro.Array, avro.Map, avro.Fixed:
		return true
	}
	return false
}

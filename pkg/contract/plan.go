package contract

import (
	"fmt"
	"strings"

	"github.com/hamba/avro/v2"
)

// JSONProp is the field property that makes a string field carry a raw JSON
// value: {"name": "data", "type": "string", "inlet.json": "raw"} accepts any
// JSON value at that path and stores its compact JSON text (object keys
// sorted, numbers exactly as sent). Use it for free-form parts of a payload,
// such as the data of a Standard Webhooks event.
const JSONProp = "inlet.json"

// kind is what a plan node reads.
type kind uint8

const (
	kindNull kind = iota
	kindBoolean
	kindInt
	kindLong
	kindFloat
	kindDouble
	kindString
	kindRaw
	kindEnum
	kindArray
	kindMap
	kindRecord
	kindUnion
)

// jsonKind classifies a decoded JSON value; a union has at most one branch
// per JSON kind, so a value picks its branch without guessing.
type jsonKind uint8

const (
	jsonNull jsonKind = iota
	jsonBoolean
	jsonNumber
	jsonString
	jsonArray
	jsonObject
	jsonKinds
)

var jsonKindNames = [jsonKinds]string{"null", "boolean", "number", "string", "array", "object"}

// node is a compiled reader for one Avro schema: what JSON it accepts and the
// Go value hamba encodes for it.
type node struct {
	kind     kind
	expected string // for FieldError.Expected

	// enum
	symbols     map[string]struct{}
	enumDefault string // "" when the enum declares no default

	// array items, map values
	elem *node

	// record
	fields []fieldPlan
	index  map[string]int // field name → position in fields

	// union
	nullable bool
	branches [jsonKinds]*node
	names    [jsonKinds]string // hamba's union branch name, e.g. "long" or a full name
}

type fieldPlan struct {
	name       string
	node       *node
	hasDefault bool // absent → hamba writes the schema default
	nullable   bool // absent → null
}

// compiler turns a parsed contract schema into a plan, rejecting what a JSON
// payload cannot carry.
type compiler struct {
	records map[string]*node // compiled records by full name, for reuse by reference
	open    map[string]bool  // records being compiled: meeting one again is recursion
}

func compile(s avro.Schema) (*node, error) {
	if s.Type() != avro.Record {
		return nil, fmt.Errorf("top-level type is %s: a payload contract is a record", s.Type())
	}
	c := &compiler{records: make(map[string]*node), open: make(map[string]bool)}
	return c.node(s, "")
}

// node compiles s found at where (a dotted field path, for errors).
func (c *compiler) node(s avro.Schema, where string) (*node, error) {
	if ref, ok := s.(*avro.RefSchema); ok {
		s = ref.Schema()
	}
	if ls, ok := s.(avro.LogicalTypeSchema); ok && ls.Logical() != nil {
		return nil, fmt.Errorf("%s: logical type %s: keep the provider's representation (a long or a string)", at(where), ls.Logical().Type())
	}
	switch s.Type() {
	case avro.Null:
		return &node{kind: kindNull, expected: "null"}, nil
	case avro.Boolean:
		return &node{kind: kindBoolean, expected: "boolean"}, nil
	case avro.Int:
		return &node{kind: kindInt, expected: "int"}, nil
	case avro.Long:
		return &node{kind: kindLong, expected: "long"}, nil
	case avro.Float:
		return &node{kind: kindFloat, expected: "float"}, nil
	case avro.Double:
		return &node{kind: kindDouble, expected: "double"}, nil
	case avro.String:
		return &node{kind: kindString, expected: "string"}, nil
	case avro.Enum:
		e := s.(*avro.EnumSchema)
		n := &node{kind: kindEnum, symbols: make(map[string]struct{}, len(e.Symbols()))}
		for _, sym := range e.Symbols() {
			n.symbols[sym] = struct{}{}
		}
		n.expected = "enum [" + strings.Join(e.Symbols(), " ") + "]"
		if e.HasDefault() {
			n.enumDefault = e.Default()
		}
		return n, nil
	case avro.Array:
		elem, err := c.node(s.(*avro.ArraySchema).Items(), where+"[]")
		if err != nil {
			return nil, err
		}
		return &node{kind: kindArray, expected: "array", elem: elem}, nil
	case avro.Map:
		elem, err := c.node(s.(*avro.MapSchema).Values(), where+"{}")
		if err != nil {
			return nil, err
		}
		return &node{kind: kindMap, expected: "object", elem: elem}, nil
	case avro.Record:
		return c.record(s.(*avro.RecordSchema), where)
	case avro.Union:
		return c.union(s.(*avro.UnionSchema), where)
	default: // bytes, fixed
		return nil, fmt.Errorf("%s: type %s cannot come from a JSON payload", at(where), s.Type())
	}
}

func (c *compiler) record(r *avro.RecordSchema, where string) (*node, error) {
	if c.open[r.FullName()] {
		// hamba's SchemaCompatibility.Resolve does not terminate on a
		// recursive schema (v2.31.0: stack overflow), so refuse it here.
		return nil, fmt.Errorf("%s: record %s contains itself: recursive records are not supported (Avro resolution in hamba/avro does not terminate on them)", at(where), r.FullName())
	}
	if n, ok := c.records[r.FullName()]; ok {
		return n, nil
	}
	c.open[r.FullName()] = true
	defer delete(c.open, r.FullName())
	n := &node{kind: kindRecord, expected: "object", index: make(map[string]int, len(r.Fields()))}
	c.records[r.FullName()] = n
	n.fields = make([]fieldPlan, 0, len(r.Fields()))
	for _, f := range r.Fields() {
		fw := f.Name()
		if where != "" {
			fw = where + "." + f.Name()
		}
		var (
			fn  *node
			err error
		)
		switch p := f.Prop(JSONProp); p {
		case nil:
			fn, err = c.node(f.Type(), fw)
		case "raw":
			fn, err = rawNode(f.Type(), fw)
		default:
			err = fmt.Errorf("%s: %s %v: the only value is \"raw\"", at(fw), JSONProp, p)
		}
		if err != nil {
			return nil, err
		}
		if err := checkUnionDefault(f, fw); err != nil {
			return nil, err
		}
		n.index[f.Name()] = len(n.fields)
		n.fields = append(n.fields, fieldPlan{
			name:       f.Name(),
			node:       fn,
			hasDefault: f.HasDefault(),
			nullable:   fn.nullable || fn.kind == kindNull,
		})
	}
	return n, nil
}

// checkUnionDefault refuses a union default hamba/avro cannot use: with
// a record, enum or map first branch, it neither encodes the default (a
// payload lacking the field) nor decodes it (an older version's payload,
// upcast), so every such event would fail as if processing did, through
// the retry tiers to the DLQ.
func checkUnionDefault(f *avro.Field, where string) error {
	u, ok := f.Type().(*avro.UnionSchema)
	if !ok || !f.HasDefault() || f.Default() == nil {
		return nil
	}
	switch first := u.Types()[0]; deref(first).Type() {
	case avro.Record, avro.Enum, avro.Map:
		return fmt.Errorf("%s: a non-null default for a union whose first branch is of type %s is not supported (hamba/avro can neither write nor read it): put \"null\" first, with \"default\": null", at(where), deref(first).Type())
	}
	return nil
}

func rawNode(s avro.Schema, where string) (*node, error) {
	switch {
	case s.Type() == avro.String:
		return &node{kind: kindRaw, expected: "any JSON"}, nil
	case s.Type() == avro.Union:
		u := s.(*avro.UnionSchema)
		if t := u.Types(); len(t) == 2 && u.Nullable() && (t[0].Type() == avro.String || t[1].Type() == avro.String) {
			return &node{kind: kindRaw, expected: "any JSON", nullable: true}, nil
		}
	}
	return nil, fmt.Errorf("%s: %s raw needs type string or [\"null\", \"string\"]", at(where), JSONProp)
}

func (c *compiler) union(u *avro.UnionSchema, where string) (*node, error) {
	n := &node{kind: kindUnion}
	var expected []string
	for _, t := range u.Types() {
		b, err := c.node(t, where)
		if err != nil {
			return nil, err
		}
		k := b.jsonKind()
		if k == jsonNull {
			n.nullable = true
			expected = append(expected, "null")
			continue
		}
		if n.branches[k] != nil {
			return nil, fmt.Errorf("%s: union has two branches a JSON %s could be (%s and %s): a JSON value must pick its branch unambiguously",
				at(where), jsonKindNames[k], n.branches[k].expected, b.expected)
		}
		n.branches[k] = b
		n.names[k] = unionBranchName(t)
		expected = append(expected, b.expected)
	}
	n.expected = strings.Join(expected, " or ")
	return n, nil
}

// jsonKind is the JSON kind a (non-union) node reads.
func (n *node) jsonKind() jsonKind {
	switch n.kind {
	case kindNull:
		return jsonNull
	case kindBoolean:
		return jsonBoolean
	case kindInt, kindLong, kindFloat, kindDouble:
		return jsonNumber
	case kindString, kindEnum:
		return jsonString
	case kindArray:
		return jsonArray
	default: // map, record
		return jsonObject
	}
}

// direct reports whether what the walker reads for n is, as it is, the
// value hamba decodes for n's schema — so reading a canonical version needs
// no Avro encode and decode to reach Read's result form. That holds for
// records, maps, arrays, enums and primitives; not for unions (the walker
// writes hamba's {"<branch>": value} encoding form, decoding gives the bare
// value for primitive branches) nor for absent fields with a schema default
// (the walker leaves them out for hamba to fill in).
func (n *node) direct() bool {
	seen := map[*node]bool{}
	var ok func(n *node) bool
	ok = func(n *node) bool {
		if seen[n] {
			return true
		}
		seen[n] = true
		switch n.kind {
		case kindUnion:
			return false
		case kindRaw:
			return !n.nullable // a ["null", "string"] union in the schema
		case kindArray, kindMap:
			return ok(n.elem)
		case kindRecord:
			for _, f := range n.fields {
				if f.hasDefault || !ok(f.node) {
					return false
				}
			}
		}
		return true
	}
	return ok(n)
}

// unionBranchName is the key hamba expects in its map form of a union value,
// {"<name>": value}: the full name of a named type, else the type.
func unionBranchName(s avro.Schema) string {
	if ref, ok := s.(*avro.RefSchema); ok {
		s = ref.Schema()
	}
	if ns, ok := s.(avro.NamedSchema); ok {
		return ns.FullName()
	}
	return string(s.Type())
}

func at(where string) string {
	if where == "" {
		return "record"
	}
	return "field " + where
}

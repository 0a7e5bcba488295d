package contract

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/inletdev/inlet/pkg/jsonvalid"
)

// MaxDepth is the deepest JSON nesting Read accepts, counting every object
// and array, including those in fields the contract ignores.
const MaxDepth = 64

// Read validates payload, a provider's JSON body, against the version's
// schema as a tolerant reader, and upcasts it to the contract's canonical
// schema.
//
// Only the fields the schema lists are read; every other field is ignored.
// A field absent from the payload takes the schema default if it has one,
// else null if its type is nullable; otherwise it is a missing required
// field. JSON null is accepted only where the type is nullable. Numbers are
// read exactly: a long or int must be an integer literal in range (12.0 and
// 1e3 are not), a double or float accepts any number in range; numeric
// strings are strings, never coerced. An enum accepts its symbols, and any
// other string becomes the enum's default when it declares one. A field
// marked "inlet.json": "raw" takes any JSON value as its compact JSON text.
// An object naming a member twice (names compared decoded) is refused in a
// record, a map, or anywhere in a raw value: a JSON pointer (key templates,
// occurred_at) reads the first of them, a decoder keeps the last.
//
// Any such problem, a payload that is not a single JSON value, or nesting
// deeper than MaxDepth returns a *ValidationError listing each problem with
// its JSON pointer.
//
// The result is the payload as a value of Canonical(), in hamba/avro's
// generic form: map[string]any for records and maps, []any for arrays,
// string for strings and enum symbols, int64 for long, int for int, float64
// for double, float32 for float, bool, and nil for null. A union whose
// branches are all primitive holds the branch value itself; a union with a
// record, enum, array or map branch holds hamba's {"<type name>": value}.
// The value encodes with Canonical() and as the data field of
// ProcessedSchema(). Read is safe for concurrent use.
func (v *Version) Read(payload []byte) (map[string]any, error) {
	var st readState
	val := v.readJSON(payload, &st)
	if len(st.errs) > 0 {
		return nil, &ValidationError{
			Contract: v.contract.name,
			Version:  v.name,
			Fields:   st.errs,
			Omitted:  st.omitted,
		}
	}
	if v.direct {
		return val.(map[string]any), nil
	}
	return v.upcast(val)
}

// upcast encodes val, read for the version's own schema, and decodes it as
// Canonical(): the Avro schema resolution that upcasts old versions, and
// that shapes unions and defaults as hamba's generic decoding does.
func (v *Version) upcast(val any) (map[string]any, error) {
	b, err := v.contract.api.Marshal(v.schema, val)
	if err != nil {
		return nil, fmt.Errorf("contract %s %s: encode: %w", v.contract.name, v.name, err)
	}
	var out map[string]any
	if err := v.contract.api.Unmarshal(v.resolved, b, &out); err != nil {
		return nil, fmt.Errorf("contract %s %s: upcast to %s: %w", v.contract.name, v.name, v.contract.canonical.name, err)
	}
	if v.rewrap {
		rewrap(v.contract.canonical.schema, v.resolved, out)
	}
	return out, nil
}

// readJSON reads payload with the version's plan, recording problems in st.
// The result is shaped for the version's own schema.
//
// The payload's JSON syntax is checked first (jsonvalid.Valid); the walk then
// decodes only the values the plan reads, skips the rest by scanning their
// bytes, and measures nesting as it goes. Too deep a payload gets that one
// error, whatever else is wrong.
func (v *Version) readJSON(payload []byte, st *readState) any {
	if !jsonvalid.Valid(payload) {
		// Unmarshal into a RawMessage only runs the syntax check, for its message.
		var raw json.RawMessage
		err := json.Unmarshal(payload, &raw)
		if err == nil {
			err = errors.New("invalid JSON")
		}
		st.fail(nil, "JSON", "invalid JSON: "+err.Error()) // a syntax error: short
		return nil
	}
	w := walker{b: payload, st: st}
	out := w.read(v.plan, nil)
	if w.tooDeep {
		*st = readState{}
		st.fail(nil, "nesting depth <= "+strconv.Itoa(MaxDepth), "deeper nesting")
		return nil
	}
	return out
}

// readState collects field errors, bounded by MaxFieldErrors.
type readState struct {
	errs    []FieldError
	omitted int
}

func (st *readState) fail(p *pathSeg, expected, actual string) {
	if len(st.errs) >= MaxFieldErrors {
		st.omitted++
		return
	}
	st.errs = append(st.errs, FieldError{Path: p.pointer(), Expected: expected, Actual: actual})
}

// pathSeg is one step of the JSON pointer to the value being read, kept on
// the stack and rendered only when there is an error.
type pathSeg struct {
	parent *pathSeg
	key    string // object member name, when !isIdx
	index  int    // array index, when isIdx
	isIdx  bool
}

// pointer renders the RFC 6901 JSON pointer ending at p.
func (p *pathSeg) pointer() string {
	if p == nil {
		return ""
	}
	var segs []string
	for s := p; s != nil; s = s.parent {
		if s.isIdx {
			segs = append(segs, strconv.Itoa(s.index))
		} else {
			segs = append(segs, escapePointer(s.key))
		}
	}
	var b strings.Builder
	for i := len(segs) - 1; i >= 0; i-- {
		b.WriteByte('/')
		b.WriteString(segs[i])
	}
	return b.String()
}

// escapePointer escapes a member name for a JSON pointer: ~ as ~0, / as ~1.
func escapePointer(k string) string {
	if !strings.ContainsAny(k, "~/") {
		return k
	}
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		switch k[i] {
		case '~':
			b.WriteString("~0")
		case '/':
			b.WriteString("~1")
		default:
			b.WriteByte(k[i])
		}
	}
	return b.String()
}

// readNumber converts a JSON number literal for a numeric node; false when
// it is out of range, or not an integer where one is needed.
func (n *node) readNumber(s string) (any, bool) {
	switch n.kind {
	case kindLong:
		if isInteger(s) {
			if v, err := strconv.ParseInt(s, 10, 64); err == nil {
				return v, true
			}
		}
	case kindInt:
		if isInteger(s) {
			if v, err := strconv.ParseInt(s, 10, 32); err == nil {
				return int(v), true
			}
		}
	case kindDouble:
		if v, err := strconv.ParseFloat(s, 64); err == nil {
			return v, true
		}
	case kindFloat:
		if v, err := strconv.ParseFloat(s, 32); err == nil && !math.IsInf(v, 0) {
			return float32(v), true
		}
	}
	return nil, false
}

func numberProblem(k kind, s string) string {
	if (k == kindLong || k == kindInt) && !isInteger(s) {
		return "not an integer"
	}
	return "out of range"
}

// isInteger reports whether a JSON number literal has no fraction or
// exponent.
func isInteger(s string) bool {
	return !strings.ContainsAny(s, ".eE")
}

const maxActual = 40

func truncate(s string) string {
	if len(s) <= maxActual {
		return s
	}
	cut := maxActual
	for cut > 0 && s[cut]&0xC0 == 0x80 { // do not split a UTF-8 sequence
		cut--
	}
	return s[:cut] + "…"
}

// rawJSON is the compact JSON text of a valid JSON value: object keys
// sorted, numbers as sent, strings as valid UTF-8, no HTML escaping; dup
// reports an object in it naming a member twice (the text keeps the last).
func rawJSON(raw []byte) (text string, dup bool) { return canonical(raw) }

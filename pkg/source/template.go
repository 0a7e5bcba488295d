package source

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// Template is a key template such as "stripe:pi:{/data/object/id}" or
// "{/id}:{/updated_at}": literal text with JSON pointers into the payload in
// braces. {$source}, {$event_type} and {$event_id} name envelope fields.
//
// Two different events must never render the same key (a natural key that
// did would drop one as a duplicate), so a value that another placeholder
// follows is written with '%', and each byte of the first character of the
// text between them (its separator), as %XX: with "{/a}:{/b}", a="x:y",
// b="z" gives "x%3Ay:z" where a="x", b="y:z" gives "x:y:z", and with
// "{/a}é{/b}", a="café" gives "caf%C3%A9é…". The last value needs no
// escaping (the text after it is fixed, so the key's length tells where it
// ends), and values without those characters, nearly all, render
// unchanged. Keys of valid UTF-8 values are valid UTF-8.
type Template struct {
	parts []templatePart
}

type templatePart struct {
	literal  string
	pointer  string // JSON pointer, or $field
	compiled CompiledPointer
	// stop is the first character of the separator after this value,
	// when another placeholder follows it; "" when none does.
	stop string
}

// templateFieldNames are the envelope fields a template may name
// (TemplateFields.get maps each to its value; a test holds the two equal).
var templateFieldNames = []string{"$source", "$event_type", "$event_id", "$schema_version"}

// ParseTemplate parses a key template.
func ParseTemplate(s string) (*Template, error) {
	t := &Template{}
	rest := s
	for rest != "" {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			if strings.IndexByte(rest, '}') >= 0 {
				return nil, fmt.Errorf("template %q: unmatched }", s)
			}
			t.parts = append(t.parts, templatePart{literal: rest})
			break
		}
		if i > 0 {
			if strings.IndexByte(rest[:i], '}') >= 0 {
				return nil, fmt.Errorf("template %q: unmatched }", s)
			}
			t.parts = append(t.parts, templatePart{literal: rest[:i]})
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("template %q: unclosed {", s)
		}
		ref := rest[i+1 : i+j]
		switch {
		case slices.Contains(templateFieldNames, ref):
		case strings.HasPrefix(ref, "/") && len(ref) > 1:
			if err := checkPointer(ref); err != nil {
				return nil, fmt.Errorf("template %q: %w", s, err)
			}
		default:
			return nil, fmt.Errorf("template %q: {%s} is neither a JSON pointer (/a/b) nor one of %s", s, ref, strings.Join(templateFieldNames, ", "))
		}
		t.parts = append(t.parts, templatePart{pointer: ref, compiled: CompilePointer(ref)})
		rest = rest[i+j+1:]
	}
	if len(t.parts) == 0 {
		return nil, errors.New("empty template")
	}
	// Parts alternate literal and placeholder, so the part after a
	// placeholder is either the next placeholder or the literal before it.
	// Only the separators between placeholders need say where a value
	// ends; the text after the last value is fixed.
	last := -1
	for i, p := range t.parts {
		if p.pointer != "" {
			last = i
		}
	}
	for i := 0; i < last; i++ {
		if t.parts[i].pointer == "" {
			continue
		}
		next := t.parts[i+1].literal
		switch {
		case next == "":
			// Nothing tells where the first value ends: "ab"+"c" and
			// "a"+"bc" would be one key.
			return nil, fmt.Errorf("template %q: {%s} and {%s} need literal text between them (e.g. \":\")", s, t.parts[i].pointer, t.parts[i+1].pointer)
		case next[0] == '%':
			return nil, fmt.Errorf("template %q: the text between {%s} and the next placeholder may not start with %%, which escapes values", s, t.parts[i].pointer)
		}
		t.parts[i].stop = firstChar(next)
	}
	return t, nil
}

// firstChar returns s's first UTF-8 character, or its first byte when that
// starts none.
func firstChar(s string) string {
	_, n := utf8.DecodeRuneInString(s)
	return s[:n]
}

// TemplateError names the pointer a template could not fill, and why when
// the value is there (Err).
type TemplateError struct {
	Pointer string
	Err     error
}

func (e *TemplateError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("key template: %s: %v", e.Pointer, e.Err)
	}
	return fmt.Sprintf("key template: %s is missing or not a string/number", e.Pointer)
}

func (e *TemplateError) Unwrap() error { return e.Err }

// TemplateFields are the envelope fields a template may name.
type TemplateFields struct {
	Source, EventType, EventID, SchemaVersion string
}

func (f *TemplateFields) get(name string) string {
	switch name {
	case "$source":
		return f.Source
	case "$event_type":
		return f.EventType
	case "$event_id":
		return f.EventID
	case "$schema_version":
		return f.SchemaVersion
	}
	return ""
}

// Render fills the template from payload and envelope fields. A pointer
// that is missing or not a scalar is a *TemplateError: a key built from a
// missing value would merge unrelated events. So is a value that is not
// valid UTF-8 (ErrInvalidUTF8), an unpaired surrogate escape
// (ErrUnpairedSurrogate) or a number past a 64-bit float
// (ErrNonFiniteNumber).
func (t *Template) Render(payload []byte, fields *TemplateFields) (string, error) {
	var b strings.Builder
	for _, p := range t.parts {
		switch {
		case p.pointer == "":
			b.WriteString(p.literal)
		case p.pointer[0] == '$':
			v := fields.get(p.pointer)
			if v == "" {
				return "", &TemplateError{Pointer: p.pointer}
			}
			p.write(&b, v)
		default:
			r := p.compiled.peek(payload) // copied into b below
			if !scalar(r) || r.String() == "" {
				return "", &TemplateError{Pointer: p.pointer}
			}
			// Bytes that are not UTF-8 (a webhook body may hold them) would
			// make the entity key no Avro string: plain readers of the
			// processed record (fastavro) fail on it, and its data reads
			// them as U+FFFD.
			if !utf8.ValidString(r.String()) {
				return "", &TemplateError{Pointer: p.pointer, Err: ErrInvalidUTF8}
			}
			// "\ud800" and "\udbff" both read as U+FFFD: one key for two
			// events.
			if err := CheckMetaJSON(r.String(), r.Raw); err != nil {
				return "", &TemplateError{Pointer: p.pointer, Err: err}
			}
			// 1e400 and 2e400 both render "+Inf": one key for two
			// events, as metaText refuses for event ids.
			if r.Type == gjson.Number && (math.IsInf(r.Num, 0) || math.IsNaN(r.Num)) {
				return "", &TemplateError{Pointer: p.pointer, Err: ErrNonFiniteNumber}
			}
			p.write(&b, r.String())
		}
	}
	return b.String(), nil
}

// write writes a value, escaped when another placeholder follows it.
func (p *templatePart) write(b *strings.Builder, v string) {
	if p.stop == "" {
		b.WriteString(v)
		return
	}
	writeKeyPart(b, v, p.stop)
}

// writeKeyPart writes v, a value that a separator starting with the
// character stop follows in a key, with each of stop's bytes and '%'
// written as %XX: so the key tells where v ends, and different values give
// different keys.
//
// Why: read the key from v's start, taking '%' and the two bytes after it
// as one escape (stop is never "%": ParseTemplate refuses a separator
// starting with it). v's escapes are the only '%' it writes, and its other
// bytes hold no stop: stop is one UTF-8 character (or one byte), so no two
// of its occurrences in v overlap and each was escaped whole, and none can
// start in v and end in the separator, since no proper suffix of a
// character starts one. So the first stop read outside an escape is the
// separator's, and v is that prefix with the escapes undone. Escaping whole
// characters into ASCII keeps a valid UTF-8 v valid.
func writeKeyPart(b *strings.Builder, v, stop string) {
	if !strings.Contains(v, stop) && strings.IndexByte(v, '%') < 0 {
		b.WriteString(v)
		return
	}
	for i := 0; i < len(v); {
		switch {
		case v[i] == '%':
			writeEscaped(b, "%")
			i++
		case strings.HasPrefix(v[i:], stop):
			writeEscaped(b, stop)
			i += len(stop)
		default:
			b.WriteByte(v[i])
			i++
		}
	}
}

// writeEscaped writes each byte of s as %XX.
func writeEscaped(b *strings.Builder, s string) {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		b.WriteByte('%')
		b.WriteByte(hex[s[i]>>4])
		b.WriteByte(hex[s[i]&15])
	}
}

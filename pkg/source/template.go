package source

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Template is a key template such as "stripe:pi:{/data/object/id}" or
// "{/id}:{/updated_at}": literal text with JSON pointers into the payload in
// braces. {$source}, {$event_type} and {$event_id} name envelope fields.
//
// Two different events must never render the same key (a natural key that
// did would drop one as a duplicate), so a value followed by a separator
// has that separator's first byte, and '%', written as %XX: with
// "{/a}:{/b}", a="x:y", b="z" gives "x%3Ay:z" where a="x", b="y:z" gives
// "x:y:z". The last value needs no escaping (what follows it is fixed), and
// values without those bytes, nearly all, render unchanged.
type Template struct {
	parts []templatePart
}

type templatePart struct {
	literal  string
	pointer  string // JSON pointer, or $field
	compiled CompiledPointer
	// stop is the first byte of the separator after this value; escape
	// reports there is one.
	stop   byte
	escape bool
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
		default:
			return nil, fmt.Errorf("template %q: {%s} is neither a JSON pointer (/a/b) nor one of %s", s, ref, strings.Join(templateFieldNames, ", "))
		}
		t.parts = append(t.parts, templatePart{pointer: ref, compiled: CompilePointer(ref)})
		rest = rest[i+j+1:]
	}
	if len(t.parts) == 0 {
		return nil, errors.New("empty template")
	}
	for i := range t.parts[:len(t.parts)-1] {
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
			return nil, fmt.Errorf("template %q: the text after {%s} may not start with %%, which escapes values", s, t.parts[i].pointer)
		}
		t.parts[i].stop, t.parts[i].escape = next[0], true
	}
	return t, nil
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
// missing value would merge unrelated events.
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
			// "\ud800" and "\udbff" both read as U+FFFD: one key for two
			// events.
			if err := CheckMetaJSON(r.String(), r.Raw); err != nil {
				return "", &TemplateError{Pointer: p.pointer, Err: err}
			}
			p.write(&b, r.String())
		}
	}
	return b.String(), nil
}

// write writes a value, escaped when a separator follows it.
func (p *templatePart) write(b *strings.Builder, v string) {
	if !p.escape {
		b.WriteString(v)
		return
	}
	writeKeyPart(b, v, p.stop)
}

// writeKeyPart writes v, a value that a separator starting with stop
// follows in a key, with stop and '%' written as %XX: so the key tells where
// v ends, and different values give different keys.
func writeKeyPart(b *strings.Builder, v string, stop byte) {
	if strings.IndexByte(v, stop) < 0 && strings.IndexByte(v, '%') < 0 {
		b.WriteString(v)
		return
	}
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == stop || c == '%' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		} else {
			b.WriteByte(c)
		}
	}
}

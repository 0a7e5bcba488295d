package contract

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// walker reads a JSON text that has passed json.Valid, guided by a plan.
// Because the text is known to be valid, it never checks syntax: it only
// finds where values start and end. Its recursion follows the plan (a schema
// has no recursive records), and skipping an unread value is a loop, so
// hostile nesting cannot exhaust the stack. It visits every byte once, and
// notes in tooDeep when objects and arrays nest deeper than MaxDepth.
type walker struct {
	b       []byte
	i       int
	st      *readState
	depth   int // objects and arrays open at the cursor, as read by the plan
	tooDeep bool
}

// enter counts a container the plan reads into.
func (w *walker) enter() {
	w.depth++
	if w.depth > MaxDepth {
		w.tooDeep = true
	}
}

func (w *walker) ws() {
	for w.i < len(w.b) {
		switch w.b[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

// kind returns the JSON kind of the value starting at the next
// non-whitespace byte.
func (w *walker) kind() jsonKind {
	w.ws()
	switch w.b[w.i] {
	case '{':
		return jsonObject
	case '[':
		return jsonArray
	case '"':
		return jsonString
	case 't', 'f':
		return jsonBoolean
	case 'n':
		return jsonNull
	default:
		return jsonNumber
	}
}

// read reads the value at the cursor for n, found at p, and returns what
// hamba encodes for n's schema; after a failure the value is meaningless and
// st holds the error.
func (w *walker) read(n *node, p *pathSeg) any {
	k := w.kind()
	switch n.kind {
	case kindUnion:
		if k == jsonNull {
			w.skip()
			if n.nullable {
				return nil
			}
			w.st.fail(p, n.expected, "null")
			return nil
		}
		b := n.branches[k]
		if b == nil {
			w.mismatch(n, p)
			return nil
		}
		return map[string]any{n.names[k]: w.read(b, p)}
	case kindRaw:
		if k == jsonNull && n.nullable {
			w.skip()
			return nil
		}
		start := w.i
		w.skip()
		if w.tooDeep {
			// Refused whatever it holds (readJSON): rewriting it first
			// costs its size for each unsorted object it nests.
			return nil
		}
		text, dup := rawJSON(w.b[start:w.i])
		if dup {
			// Rare: walk the value again to name each duplicate.
			(&walker{b: w.b, i: start, st: w.st}).duplicates(p)
		}
		return text
	}

	switch {
	case k == jsonObject && n.kind == kindRecord:
		return w.record(n, p)
	case k == jsonObject && n.kind == kindMap:
		out := make(map[string]any)
		w.members(func(key []byte) {
			name := w.key(key)
			mp := &pathSeg{parent: p, key: name}
			if _, ok := out[name]; ok {
				w.duplicate(mp, name)
				return
			}
			out[name] = w.read(n.elem, mp)
		})
		return out
	case k == jsonArray && n.kind == kindArray:
		out := make([]any, 0, 4)
		w.enter()
		defer func() { w.depth-- }()
		w.i++ // [
		w.ws()
		if w.b[w.i] == ']' {
			w.i++
			return out
		}
		for idx := 0; ; idx++ {
			out = append(out, w.read(n.elem, &pathSeg{parent: p, index: idx, isIdx: true}))
			w.ws()
			c := w.b[w.i]
			w.i++ // , or ]
			if c == ']' {
				return out
			}
		}
	case k == jsonString && (n.kind == kindString || n.kind == kindEnum):
		s := w.str()
		if n.kind == kindString {
			return s
		}
		if _, ok := n.symbols[s]; ok {
			return s
		}
		if n.enumDefault != "" {
			return n.enumDefault
		}
		w.st.fail(p, n.expected, "string "+strconv.Quote(truncate(s)))
		return nil
	case k == jsonNumber && n.jsonKind() == jsonNumber:
		lit := w.literal()
		if v, ok := n.readNumber(lit); ok {
			return v
		}
		w.st.fail(p, n.expected, "number "+truncate(lit)+" ("+numberProblem(n.kind, lit)+")")
		return nil
	case k == jsonBoolean && n.kind == kindBoolean:
		return w.literal() == "true"
	case k == jsonNull && n.kind == kindNull:
		w.skip()
		return nil
	}
	w.mismatch(n, p)
	return nil
}

// record reads an object for a record plan: listed members are read, others
// skipped, absent ones defaulted, nulled or reported missing.
func (w *walker) record(n *node, p *pathSeg) map[string]any {
	out := make(map[string]any, len(n.fields))
	var seenSmall [16]bool
	seen := seenSmall[:0]
	if len(n.fields) <= len(seenSmall) {
		seen = seenSmall[:len(n.fields)]
	} else {
		seen = make([]bool, len(n.fields))
	}
	w.members(func(key []byte) {
		idx, ok := n.index[string(key)] // no allocation for the lookup
		if !ok && hasEscape(key) {
			idx, ok = n.index[w.key(key)]
		}
		if !ok {
			w.skip()
			return
		}
		f := &n.fields[idx]
		fp := &pathSeg{parent: p, key: f.name}
		if seen[idx] {
			w.duplicate(fp, f.name)
			return
		}
		seen[idx] = true
		out[f.name] = w.read(f.node, fp)
	})
	for i := range n.fields {
		if seen[i] {
			continue
		}
		f := &n.fields[i]
		switch {
		case f.hasDefault:
			// Left out: hamba encodes the schema default.
		case f.nullable:
			out[f.name] = nil
		default:
			w.st.fail(&pathSeg{parent: p, key: f.name}, f.node.expected, "missing")
		}
	}
	return out
}

// duplicate reports the member at p, whose value is at the cursor, as a
// second member named name, and skips its value. Records, maps and raw
// values all refuse one: a JSON pointer (a key template, an occurred_at
// pointer) reads the first of equal members, a decoder such as
// encoding/json keeps the last, so the keys and the data would describe
// different values. Names are compared decoded ("i\u0064" is "id").
func (w *walker) duplicate(p *pathSeg, name string) {
	w.st.fail(p, "one member "+strconv.Quote(name), "a duplicate member")
	w.skip()
}

// duplicates reads the value at the cursor, found at p, only to report
// every member named twice in an object anywhere in it (see duplicate).
// It is for raw values, which are otherwise skipped, and only runs once
// canonical found a duplicate: its recursion is bounded by MaxDepth, as
// the value was skipped within it.
func (w *walker) duplicates(p *pathSeg) {
	switch w.kind() {
	case jsonObject:
		seen := make(map[string]struct{})
		w.members(func(key []byte) {
			name := w.key(key)
			mp := &pathSeg{parent: p, key: name}
			if _, ok := seen[name]; ok {
				w.duplicate(mp, name)
				return
			}
			seen[name] = struct{}{}
			w.duplicates(mp)
		})
	case jsonArray:
		w.i++ // [
		w.ws()
		if w.b[w.i] == ']' {
			w.i++
			return
		}
		for idx := 0; ; idx++ {
			w.duplicates(&pathSeg{parent: p, index: idx, isIdx: true})
			w.ws()
			c := w.b[w.i]
			w.i++ // , or ]
			if c == ']' {
				return
			}
		}
	default:
		w.skip()
	}
}

// members walks the object at the cursor, calling each with the member's
// raw key (between the quotes, escapes undecoded) and the cursor at its
// value, which each must consume.
func (w *walker) members(each func(key []byte)) {
	w.enter()
	defer func() { w.depth-- }()
	w.i++ // {
	w.ws()
	if w.b[w.i] == '}' {
		w.i++
		return
	}
	for {
		w.ws()
		start := w.i + 1
		w.skipString()
		key := w.b[start : w.i-1]
		w.ws()
		w.i++ // :
		each(key)
		w.ws()
		c := w.b[w.i]
		w.i++ // , or }
		if c == '}' {
			return
		}
	}
}

// mismatch reports that the value at the cursor is not what n accepts, and
// skips it.
func (w *walker) mismatch(n *node, p *pathSeg) {
	var actual string
	switch w.kind() {
	case jsonObject:
		actual = "object"
		w.skip()
	case jsonArray:
		actual = "array"
		w.skip()
	case jsonString:
		actual = "string " + strconv.Quote(truncate(w.str()))
	case jsonNumber:
		actual = "number " + truncate(w.literal())
	case jsonBoolean:
		actual = "boolean " + w.literal()
	case jsonNull:
		actual = "null"
		w.skip()
	}
	w.st.fail(p, n.expected, actual)
}

// skip moves the cursor past the value at it.
func (w *walker) skip() {
	w.ws()
	switch w.b[w.i] {
	case '"':
		w.skipString()
	case '{', '[':
		depth := 0
		for {
			switch w.b[w.i] {
			case '"':
				w.skipString()
				continue
			case '{', '[':
				depth++
				if w.depth+depth > MaxDepth {
					w.tooDeep = true
				}
			case '}', ']':
				depth--
				if depth == 0 {
					w.i++
					return
				}
			}
			w.i++
		}
	default:
		w.literal()
	}
}

// skipString moves the cursor from an opening quote past the closing one:
// the first quote not escaped by an odd run of backslashes.
func (w *walker) skipString() {
	w.i++
	start := w.i
	for {
		w.i += bytes.IndexByte(w.b[w.i:], '"')
		backslashes := 0
		for k := w.i - 1; k >= start && w.b[k] == '\\'; k-- {
			backslashes++
		}
		w.i++
		if backslashes%2 == 0 {
			return
		}
	}
}

// str reads the string at the cursor, decoded as encoding/json does
// (escapes resolved, invalid UTF-8 replaced by U+FFFD).
func (w *walker) str() string {
	start := w.i
	w.skipString()
	raw := w.b[start+1 : w.i-1]
	if !hasEscape(raw) && utf8.Valid(raw) {
		return string(raw)
	}
	var s string
	_ = json.Unmarshal(w.b[start:w.i], &s) // valid: checked by json.Valid
	return s
}

// key decodes a raw member name (between its quotes).
func (w *walker) key(raw []byte) string {
	if !hasEscape(raw) && utf8.Valid(raw) {
		return string(raw)
	}
	var s string
	quoted := make([]byte, 0, len(raw)+2)
	quoted = append(append(append(quoted, '"'), raw...), '"')
	_ = json.Unmarshal(quoted, &s) // valid: checked by json.Valid
	return s
}

// literal reads a number, true, false or null at the cursor.
func (w *walker) literal() string {
	start := w.i
	for w.i < len(w.b) {
		switch w.b[w.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return string(w.b[start:w.i])
		}
		w.i++
	}
	return string(w.b[start:w.i])
}

func hasEscape(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

package contract

import (
	"bytes"
	"encoding/json"
	"slices"
	"sync"
	"unicode/utf8"
)

// canon makes the compact, key-sorted JSON text encoding/json would produce
// by decoding raw (numbers kept as sent) and re-encoding it, in one pass
// over already-validated JSON, copying numbers and plain strings as they
// are. An object's members are written in the order sent and, only when
// that order is not sorted, rearranged in place (duplicates: the last one
// wins, as in a map, and dup says there was one): no allocation per member
// or value.
type canon struct {
	b   []byte
	out []byte
	i   int
	ms  []member // members of the objects open at the cursor
	tmp []byte   // scratch for rearranging an object's members
	dup bool     // some object has two members of one (decoded) name
}

// member is one object member already written to out.
type member struct {
	key        []byte // decoded key (raw bytes when they need no decoding)
	start, end int    // "key":value in out
}

// canons keeps canon scratch (out, ms, tmp) between calls.
var canons = sync.Pool{New: func() any { return new(canon) }}

// canonical returns the canonical text of raw, and whether an object in it
// names a member twice (names compared decoded: "i\u0064" is "id"). The
// text keeps the last of such members, where a JSON pointer (gjson) reads
// the first.
func canonical(raw []byte) (text string, dup bool) {
	c := canons.Get().(*canon)
	c.b, c.i, c.out, c.dup = raw, 0, slices.Grow(c.out[:0], len(raw)), false
	c.value()
	text, dup = string(c.out), c.dup
	c.b = nil
	if cap(c.out) <= 64<<10 { // do not keep a huge buffer alive
		canons.Put(c)
	}
	return text, dup
}

func (c *canon) ws() {
	for c.i < len(c.b) {
		switch c.b[c.i] {
		case ' ', '\t', '\n', '\r':
			c.i++
		default:
			return
		}
	}
}

func (c *canon) value() {
	c.ws()
	switch c.b[c.i] {
	case '{':
		c.object()
	case '[':
		c.i++
		c.out = append(c.out, '[')
		c.ws()
		if c.b[c.i] == ']' {
			c.i++
			c.out = append(c.out, ']')
			return
		}
		for {
			c.value()
			c.ws()
			if c.b[c.i] == ',' {
				c.i++
				c.out = append(c.out, ',')
				continue
			}
			c.i++ // ]
			c.out = append(c.out, ']')
			return
		}
	case '"':
		s, e := c.str()
		c.out = appendStr(c.out, c.b[s:e])
	default: // number, true, false, null: as sent
		s := c.i
	lit:
		for ; c.i < len(c.b); c.i++ {
			switch c.b[c.i] {
			case ' ', '\t', '\r', '\n', ',', ']', '}':
				break lit
			}
		}
		c.out = append(c.out, c.b[s:c.i]...)
	}
}

// str returns the span of the string token at c.i, quotes included.
func (c *canon) str() (int, int) {
	s := c.i
	c.i++
	for {
		q := c.i + bytes.IndexByte(c.b[c.i:], '"') // valid JSON: there is one
		c.i = q + 1
		// The quote ends the string unless an odd run of backslashes
		// escapes it.
		n := 0
		for p := q - 1; p > s && c.b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return s, c.i
		}
	}
}

// appendStr writes a string token as encoding/json would re-encode it.
func appendStr(out, tok []byte) []byte {
	body := tok[1 : len(tok)-1]
	if bytes.IndexByte(body, '\\') < 0 && utf8.Valid(body) && !bytes.Contains(body, []byte("\u2028")) && !bytes.Contains(body, []byte("\u2029")) {
		return append(out, tok...)
	}
	var s string
	_ = json.Unmarshal(tok, &s)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return append(out, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}

func (c *canon) object() {
	c.i++
	c.out = append(c.out, '{')
	begin := len(c.out)
	base := len(c.ms)
	c.ws()
	if c.b[c.i] != '}' {
		for {
			c.ws()
			s, e := c.str()
			tok := c.b[s:e]
			key := tok[1 : len(tok)-1]
			if bytes.IndexByte(key, '\\') >= 0 || !utf8.Valid(key) {
				var k string
				_ = json.Unmarshal(tok, &k)
				key = []byte(k)
			}
			if len(c.ms) > base {
				c.out = append(c.out, ',')
			}
			start := len(c.out)
			c.out = appendStr(c.out, tok)
			c.out = append(c.out, ':')
			c.ws()
			c.i++ // :
			c.value()
			c.ms = append(c.ms, member{key, start, len(c.out)})
			c.ws()
			if c.b[c.i] == ',' {
				c.i++
				continue
			}
			break
		}
	}
	c.i++ // }
	c.sortMembers(begin, c.ms[base:])
	c.ms = c.ms[:base]
	c.out = append(c.out, '}')
}

// sortMembers rewrites out[begin:], an object's members ms as written, in
// key order, keeping only the last of members with equal keys (and noting
// in dup that there were some). Equal keys are never in sorted order, so
// only an object that needs rearranging can hold them.
func (c *canon) sortMembers(begin int, ms []member) {
	sorted := true
	for i := 1; i < len(ms) && sorted; i++ {
		sorted = bytes.Compare(ms[i-1].key, ms[i].key) < 0
	}
	if sorted {
		return
	}
	slices.SortStableFunc(ms, func(a, b member) int { return bytes.Compare(a.key, b.key) })
	c.tmp = append(c.tmp[:0], c.out[begin:]...)
	c.out = c.out[:begin]
	for i, m := range ms {
		if i+1 < len(ms) && bytes.Equal(m.key, ms[i+1].key) {
			c.dup = true
			continue // a later duplicate wins
		}
		if len(c.out) > begin {
			c.out = append(c.out, ',')
		}
		c.out = append(c.out, c.tmp[m.start-begin:m.end-begin]...)
	}
}

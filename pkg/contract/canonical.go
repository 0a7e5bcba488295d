package contract

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf8"
)

// canonical makes the compact, key-sorted JSON text encoding/json would
// produce by decoding raw (numbers kept as sent) and re-encoding it, in one
// pass over already-validated JSON, copying numbers and
// plain strings as they are, sorting object members by decoded key.
type canon struct {
	b   []byte
	out []byte
	i   int
}

func canonical(raw []byte) string {
	c := canon{b: raw, out: make([]byte, 0, len(raw))}
	c.value()
	return string(c.out)
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
		for c.i < len(c.b) && !strings.ContainsRune(" \t\r\n,]}", rune(c.b[c.i])) {
			c.i++
		}
		c.out = append(c.out, c.b[s:c.i]...)
	}
}

// str returns the span of the string token at c.i, quotes included.
func (c *canon) str() (int, int) {
	s := c.i
	c.i++
	for {
		switch c.b[c.i] {
		case '\\':
			c.i += 2
		case '"':
			c.i++
			return s, c.i
		default:
			c.i++
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

type member struct {
	key string
	tok []byte
	val []byte
}

func (c *canon) object() {
	c.i++
	c.ws()
	var ms []member
	if c.b[c.i] != '}' {
		for {
			c.ws()
			s, e := c.str()
			tok := c.b[s:e]
			key := string(tok[1 : len(tok)-1])
			if bytes.IndexByte(tok, '\\') >= 0 || !utf8.ValidString(key) {
				_ = json.Unmarshal(tok, &key)
			}
			c.ws()
			c.i++ // :
			save := c.out
			c.out = nil
			c.value()
			val := c.out
			c.out = save
			if j := slices.IndexFunc(ms, func(m member) bool { return m.key == key }); j >= 0 {
				ms = slices.Delete(ms, j, j+1) // last one wins, as in a map
			}
			ms = append(ms, member{key, tok, val})
			c.ws()
			if c.b[c.i] == ',' {
				c.i++
				continue
			}
			break
		}
	}
	c.i++ // }
	slices.SortFunc(ms, func(a, b member) int { return strings.Compare(a.key, b.key) })
	c.out = append(c.out, '{')
	for k, m := range ms {
		if k > 0 {
			c.out = append(c.out, ',')
		}
		c.out = appendStr(c.out, m.tok)
		c.out = append(c.out, ':')
		c.out = append(c.out, m.val...)
	}
	c.out = append(c.out, '}')
}

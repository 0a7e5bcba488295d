package source

import "fmt"

// maxNesting bounds how deeply a sources file nests flow collections
// ([ and {) and compact sequences ("- - -"). goccy/go-yaml parses the
// whole file before its decoder's depth limit applies: 100,000 nested
// brackets (a 200 KB file) took 15 GB and 17 s to be refused. A real
// sources file nests a handful of levels.
const maxNesting = 64

// maxRawNesting bounds nesting counted with every bracket and compact
// sequence entry in the file, quoted or not (rawNesting). The parser takes
// about 10 ms at this depth.
const maxRawNesting = 1024

// checkNesting refuses a file nesting deeper than maxNesting, naming the
// line. It reads quoted scalars as opaque (brackets in them do not
// count) and skips comments; it is a cheap bound, not a YAML parser, and
// counts no deeper than the file nests.
func checkNesting(b []byte) error {
	if err := rawNesting(b); err != nil {
		return err
	}
	depth, line := 0, 1
	var quote byte
	lineStart := true // only indentation so far on this line
	dashes := 0       // compact sequence entries ("- ") opening this line
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '\n' {
			line, dashes = line+1, 0
			if quote == 0 {
				lineStart = true
				continue
			}
		}
		switch {
		case quote == '"':
			if c == '\\' {
				i++
			} else if c == '"' {
				quote = 0
			}
			continue
		case quote == '\'':
			if c == '\'' {
				quote = 0
			}
			continue
		}
		switch {
		case lineStart && (c == ' ' || c == '\t'):
			continue
		case lineStart && c == '-' && i+1 < len(b) && (b[i+1] == ' ' || b[i+1] == '\t'):
			if dashes++; depth+dashes > maxNesting {
				return fmt.Errorf("line %d: nested more than %d levels deep", line, maxNesting)
			}
			i++ // the space after the dash: still the line's start
			continue
		}
		lineStart = false
		switch c {
		case '"', '\'':
			if i == 0 || startsScalar(b[i-1]) {
				quote = c
			}
		case '#':
			if i == 0 || b[i-1] == ' ' || b[i-1] == '\t' {
				for i+1 < len(b) && b[i+1] != '\n' {
					i++
				}
			}
		case '[', '{':
			if depth++; depth+dashes > maxNesting {
				return fmt.Errorf("line %d: nested more than %d levels deep", line, maxNesting)
			}
		case ']', '}':
			if depth > 0 {
				depth--
			}
		}
	}
	return nil
}

// startsScalar reports whether a quote after c opens a quoted scalar
// (rather than sitting inside a plain one, as in "it's").
func startsScalar(c byte) bool {
	switch c {
	case ' ', '\t', '\n', ':', '[', '{', ',', '-', '?':
		return true
	}
	return false
}

// rawNesting refuses a file nesting deeper than maxRawNesting with every
// bracket counted, in quotes and comments too. checkNesting's reading of
// quotes is not the parser's: a quote inside a plain scalar (a: x "y, or
// a: -"y) read as opening a quoted scalar to the end of the file, and the
// 100,000 brackets after it reached the parser unseen.
func rawNesting(b []byte) error {
	depth, line := 0, 1
	lineStart, dashes := true, 0
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '\n':
			line, lineStart, dashes = line+1, true, 0
		case lineStart && (c == ' ' || c == '\t'):
		case lineStart && c == '-' && i+1 < len(b) && (b[i+1] == ' ' || b[i+1] == '\t'):
			dashes++
			i++
		case c == '[' || c == '{':
			lineStart = false
			depth++
		case c == ']' || c == '}':
			lineStart = false
			depth = max(depth-1, 0)
		default:
			lineStart = false
		}
		if depth+dashes > maxRawNesting {
			return fmt.Errorf("line %d: nested more than %d levels deep, counting brackets in quoted text and comments", line, maxRawNesting)
		}
	}
	return nil
}

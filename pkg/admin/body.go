package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode"
)

// maxBody bounds a request body: 1 MiB holds some 40,000 ids.
const maxBody = 1 << 20

// decodeBody reads r's body, at most maxBody bytes, into v (unknown fields
// refused), and returns the status to answer when it fails: 413 for a body
// over the limit, 400 for anything else.
//
// The body must be one JSON value with each key of each object given once
// (white space around it is fine). encoding/json alone reads the first
// value and ignores the rest, and lets the last of a repeated key win,
// matching keys regardless of case: {…}{"dry_run":true} (curl with two
// -d) or "dry_run":true,"DRY_RUN":false ran a decision for real.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) (int, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		if mb := (*http.MaxBytesError)(nil); errors.As(err, &mb) {
			return http.StatusRequestEntityTooLarge, fmt.Errorf("body over %d bytes", mb.Limit)
		}
		return http.StatusBadRequest, fmt.Errorf("bad JSON body: %w", err)
	}
	if err := oneValue(b); err != nil {
		return http.StatusBadRequest, fmt.Errorf("bad JSON body: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return http.StatusBadRequest, fmt.Errorf("bad JSON body: %w", err)
	}
	return 0, nil
}

// oneValue checks that b holds one JSON value and nothing after it, and
// that no object in it gives a key twice, as encoding/json matches keys:
// regardless of case (Unicode simple folding, so "idſ" is "ids").
func oneValue(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	type object struct {
		path string            // of the object, dotted: "filter"
		keys map[string]string // by folded key, the key as given
		key  string            // path of the key whose value is next
		has  bool              // a key was read, its value not yet
	}
	var (
		stack []*object // the objects and arrays (nil) open
		done  bool      // the value was read whole
	)
	for !done {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		var top *object
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && !top.has && tok != json.Delim('}') {
			k, _ := tok.(string) // Token returns a key as a string
			path := k
			if top.path != "" {
				path = top.path + "." + k
			}
			if was, dup := top.keys[fold(k)]; dup {
				if was == k {
					return fmt.Errorf("key %q given twice", path)
				}
				return fmt.Errorf("key %q given twice (as %q: keys match regardless of case)", path, was)
			}
			top.keys[fold(k)], top.key, top.has = k, path, true
			continue
		}
		switch tok {
		case json.Delim('{'):
			path := ""
			if top != nil {
				path = top.key
			}
			stack = append(stack, &object{path: path, keys: map[string]string{}})
			continue // the object's value is read at its '}'
		case json.Delim('['):
			stack = append(stack, nil)
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value was read whole: a scalar, or an object or array closed.
		if len(stack) == 0 {
			done = true
		} else if o := stack[len(stack)-1]; o != nil {
			o.has = false
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("more after the JSON object: send one object (curl: one -d)")
	}
	return nil
}

// fold maps a key to the least rune of each of its runes' case-folding
// orbits: two keys fold alike when strings.EqualFold (which
// encoding/json matches field names with) says they are equal.
func fold(s string) string {
	return strings.Map(func(r rune) rune {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		return least
	}, s)
}

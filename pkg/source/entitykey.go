package source

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// DefaultEntityKey is the entity_key of an events entry without one (as
// pkg/declarative renders it): source names hold no ":", so it is the
// source's own.
const DefaultEntityKey = "{$source}:{$event_id}"

// entityKey is one events entry's entity_key template with the text
// every key it renders starts and ends with: its literals, and its source's
// name for {$source}, before the first and after the last placeholder a
// sender fills.
type entityKey struct {
	source, pattern, template string
	head, tail                string
}

// checkEntityKeys refuses entity_key templates of two different sources
// that could render the same key. Entity keys are one namespace for every
// source (the newest-wins time in Redis, the entity lock, the processed
// and state topics' record key): with two such templates, whoever can post
// to one source (anyone, for kind none; whoever holds its one secret)
// could overwrite the other's entities, or make their real updates stale.
// Two keys can only be equal when one template's fixed start is a prefix
// of the other's, and one's fixed end a suffix of the other's: otherwise
// they differ in text no event can change. Entries of one source are that source's own
// business and not compared.
func checkEntityKeys(f *File) []error {
	var keys []entityKey
	for _, name := range f.Names() {
		s := f.Sources[name]
		if s == nil {
			continue // refused as empty
		}
		for _, pattern := range slices.Sorted(maps.Keys(s.Events)) {
			tmpl := s.Events[pattern].EntityKey
			if tmpl == "" {
				tmpl = DefaultEntityKey
			}
			t, err := ParseTemplate(tmpl)
			if err != nil {
				continue // refused with its events entry
			}
			head, tail := t.fixedEnds(name)
			keys = append(keys, entityKey{source: name, pattern: pattern, template: tmpl, head: head, tail: tail})
		}
	}
	var errs []error
	for _, name := range f.Names() {
		if s := f.Sources[name]; s != nil {
			for _, other := range s.ShareEntitiesWith {
				if _, ok := f.Sources[other]; !ok || other == name {
					errs = append(errs, fmt.Errorf("source %q share_entities_with: %q is not another source of this file", name, other))
				}
			}
		}
	}
	for i, a := range keys {
		for _, b := range keys[i+1:] {
			if a.source == b.source || !mayMeet(a, b) || sharing(f, a.source, b.source) {
				continue
			}
			errs = append(errs, fmt.Errorf("source %q events[%q] entity_key %q can render the same key as source %q events[%q] entity_key %q: "+
				"entity keys are shared by all sources, so events sent to one could overwrite the other's entities; "+
				"start each source's entity_key with text of its own, such as %q or \"{$source}:\" (or, if they are one provider's events on purpose, list the other in share_entities_with)",
				a.source, a.pattern, a.template, b.source, b.pattern, b.template, a.source+":"))
		}
	}
	return errs
}

// sharing reports whether either source lists the other in
// share_entities_with.
func sharing(f *File, a, b string) bool {
	return slices.Contains(f.Sources[a].ShareEntitiesWith, b) || slices.Contains(f.Sources[b].ShareEntitiesWith, a)
}

func mayMeet(a, b entityKey) bool {
	return (strings.HasPrefix(a.head, b.head) || strings.HasPrefix(b.head, a.head)) &&
		(strings.HasSuffix(a.tail, b.tail) || strings.HasSuffix(b.tail, a.tail))
}

// fixedEnds returns the text every key t renders for source starts with
// and ends with: its literals and source for {$source}, up to the first
// and from the last placeholder filled by the event. A template without
// such a placeholder renders one key, both ends.
func (t *Template) fixedEnds(source string) (head, tail string) {
	fixed := func(p templatePart) (string, bool) {
		switch p.pointer {
		case "":
			return p.literal, true
		case "$source":
			return source, true
		}
		return "", false
	}
	var b strings.Builder
	for _, p := range t.parts {
		s, ok := fixed(p)
		if !ok {
			break
		}
		b.WriteString(s)
	}
	head = b.String()
	var ends []string
	for _, p := range slices.Backward(t.parts) {
		s, ok := fixed(p)
		if !ok {
			break
		}
		ends = append(ends, s)
	}
	slices.Reverse(ends)
	return head, strings.Join(ends, "")
}

// CheckEntityKeyPrefix refuses prefix, the text every entity key of a Go
// handler for source starts with (pkg/handlers' Registration), when a key
// it allows could be one an events entry of another source renders: the
// overlap Parse refuses between two sources' entity_key templates
// (checkEntityKeys), with the Go handler's keys as a template of fixed
// head prefix and any tail. A source listing the other in
// share_entities_with (either way) may share, as in the file; source's own
// entries are its own business. source need not be in the file (a Go
// handler may serve a source the file has no events entry for, but its
// deliveries still need the source).
func (f *File) CheckEntityKeyPrefix(source, prefix string) error {
	if prefix == "" {
		return errors.New("no entity-key prefix: name the text every entity key the handler returns starts with, such as \"" + source + ":\"")
	}
	goKey := entityKey{source: source, head: prefix}
	var errs []error
	for _, name := range f.Names() {
		s := f.Sources[name]
		if s == nil || name == source || slices.Contains(s.ShareEntitiesWith, source) {
			continue
		}
		if own := f.Sources[source]; own != nil && slices.Contains(own.ShareEntitiesWith, name) {
			continue
		}
		for _, pattern := range slices.Sorted(maps.Keys(s.Events)) {
			tmpl := s.Events[pattern].EntityKey
			if tmpl == "" {
				tmpl = DefaultEntityKey
			}
			t, err := ParseTemplate(tmpl)
			if err != nil {
				continue // refused by Parse
			}
			head, tail := t.fixedEnds(name)
			if mayMeet(goKey, entityKey{head: head, tail: tail}) {
				errs = append(errs, fmt.Errorf("entity-key prefix %q can start the same key as source %q events[%q] entity_key %q: "+
					"entity keys are shared by all sources, so the handler's events could overwrite that source's entities; "+
					"choose a prefix of the handler's own, such as %q (or, if they are one provider's events on purpose, list one source in the other's share_entities_with)",
					prefix, name, pattern, tmpl, source+":"))
			}
		}
	}
	return errors.Join(errs...)
}

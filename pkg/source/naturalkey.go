package source

import (
	"fmt"
	"maps"
	"slices"
)

// checkNaturalKeys refuses, within one source, an events entry whose
// natural_key is not the event id beside one deduplicated on the event id
// (no natural_key, "{$event_id}", or the pointer the source reads its
// event id from). The processor's dedup key is "<source>:<natural key>"
// for the first and "<source>:<event id>" for the second, and an event id
// has no fixed text of its own: an order whose natural key renders "42"
// and another type's event 42 were one key, and the later of the two was
// dropped as a duplicate. Changing either format would let duplicates
// through while an upgrade rolls out, so the mix is refused instead.
func checkNaturalKeys(f *File) []error {
	var errs []error
	for _, name := range f.Names() {
		s := f.Sources[name]
		if s == nil {
			continue
		}
		var byID, custom []string // patterns
		for _, pattern := range slices.Sorted(maps.Keys(s.Events)) {
			if s.eventIDKey(s.Events[pattern].NaturalKey) {
				byID = append(byID, pattern)
			} else {
				custom = append(custom, pattern)
			}
		}
		if len(byID) == 0 || len(custom) == 0 {
			continue
		}
		errs = append(errs, fmt.Errorf("source %q events[%q] natural_key %q can render the event id of an event of events[%q] (deduplicated on its event id): "+
			"the two are one dedup key, and the later event would be dropped as a duplicate; "+
			"key every entry of a source by natural_key, each starting with text of its own (\"%s:{$event_id}\", say, for one keyed by its event id), or none",
			name, custom[0], s.Events[custom[0]].NaturalKey, byID[0], byID[0]))
	}
	return errs
}

// eventIDKey reports whether natural key template tmpl renders the
// event's id, as an events entry without one deduplicates.
func (s *Source) eventIDKey(tmpl string) bool {
	switch tmpl {
	case "", "{$event_id}":
		return true
	}
	id := s.EventID
	return id.Pointer != "" && tmpl == "{"+id.Pointer+"}" && (id.Header == "" || id.pointerFirst) && id.headerAlt == ""
}

package history

import "sort"

// Merge returns entries with more inserted by time: each of more goes
// after the last entry of entries not later than it. entries keep their
// own order (the order they were appended in, which the times of stages
// written by different processes do not always follow); more need not be
// sorted.
func Merge(entries, more []Entry) []Entry {
	if len(more) == 0 {
		return entries
	}
	more = append([]Entry(nil), more...)
	sort.SliceStable(more, func(i, j int) bool { return more[i].At.Before(more[j].At) })
	out := make([]Entry, 0, len(entries)+len(more))
	j := 0
	for i := range entries {
		// more[j] goes here when every entry from i on is later than it.
		for j < len(more) && allAfter(entries[i:], more[j]) {
			out = append(out, more[j])
			j++
		}
		out = append(out, entries[i])
	}
	return append(out, more[j:]...)
}

func allAfter(es []Entry, m Entry) bool {
	for _, e := range es {
		if !e.At.After(m.At) {
			return false
		}
	}
	return true
}

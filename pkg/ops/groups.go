package ops

import (
	"sort"
	"strings"
)

// Group counts entries that share source, event type, reason and last
// error: what "ls --group" and the admin API's ?group=true show first at
// an incident.
type Group struct {
	Count     int    `json:"count"`
	Source    string `json:"source"`
	EventType string `json:"event_type"`
	Reason    string `json:"reason"`
	Error     string `json:"error"` // the last error, cut at 200 bytes
}

// Groups counts es by source, type, reason and last error, largest group
// first (ties in order of first appearance).
func Groups(es []*Entry) []Group {
	idx := map[Group]int{}
	var out []Group
	for _, e := range es {
		k := Group{Source: e.Source, EventType: e.EventType, Reason: e.Reason, Error: cut(e.LastError, 200)}
		if i, ok := idx[k]; ok {
			out[i].Count++
			continue
		}
		idx[k] = len(out)
		k.Count = 1
		out = append(out, k)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Count > out[j].Count })
	return out
}

// cut shortens s to n bytes (not splitting a UTF-8 sequence) and marks it.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = strings.ToValidUTF8(s[:n], "")
	return s + "…"
}

package ops

import (
	"context"
	"sort"

	"github.com/inletdev/inlet/pkg/retry"
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
	// Problem is what is wrong with the entries as entries (Entry.Problem,
	// cut at 200 bytes): the group of records that are no envelopes.
	Problem string `json:"problem,omitempty"`
}

// Groups counts the entries of topic matching f by source, type, reason
// and last error, largest group first (ties in order of first appearance),
// and returns the number of entries counted. It holds one line per group,
// not the entries, and at most about 2000 lines (see OtherErrors).
func (q *Queues) Groups(ctx context.Context, topic string, f Filter) ([]Group, int, error) {
	var g grouping
	err := q.Scan(ctx, topic, f, func(e *Entry) error {
		g.add(e)
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return g.result(), g.n, nil
}

type grouping struct {
	idx map[Group]int
	out []Group
	n   int
}

// Errors often carry ids ("order 1234 not found"), making each entry its
// own group: past maxGroups, a new error joins its source, type and
// reason's OtherErrors line, and past twice that, one line for all.
const (
	maxGroups   = 1000
	OtherErrors = "(other errors: more than 1000 distinct groups)"
)

func (g *grouping) add(e *Entry) {
	if g.idx == nil {
		g.idx = map[Group]int{}
	}
	g.n++
	k := Group{Source: e.Source, EventType: e.EventType, Reason: e.Reason, Error: retry.Truncate(e.LastError, 200+len("…")),
		Problem: retry.Truncate(e.Problem, 200+len("…"))}
	if g.bump(k) {
		return
	}
	if len(g.out) >= maxGroups {
		k.Error = OtherErrors
		if g.bump(k) {
			return
		}
		if len(g.out) >= 2*maxGroups {
			k = Group{Source: "(other)", EventType: "(other)", Reason: "(other)", Error: OtherErrors}
			if g.bump(k) {
				return
			}
		}
	}
	g.idx[k] = len(g.out)
	k.Count = 1
	g.out = append(g.out, k)
}

// bump counts one more in k's line, if there is one.
func (g *grouping) bump(k Group) bool {
	i, ok := g.idx[k]
	if ok {
		g.out[i].Count++
	}
	return ok
}

func (g *grouping) result() []Group {
	if g.out == nil {
		return []Group{} // [] as no entries is, for the API and the CLI alike
	}
	sort.SliceStable(g.out, func(i, j int) bool { return g.out[i].Count > g.out[j].Count })
	return g.out
}

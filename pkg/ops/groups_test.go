package ops

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestGroups(t *testing.T) {
	long := strings.Repeat("é", 150) // 300 bytes
	es := []*Entry{
		{Source: "shop", EventType: "orders/paid", Reason: "budget", LastError: "503"},
		{Source: "stripe", EventType: "invoice.paid", Reason: "permanent", LastError: long},
		{Source: "shop", EventType: "orders/paid", Reason: "budget", LastError: "503"},
		{Source: "stripe", EventType: "invoice.paid", Reason: "permanent", LastError: long + "x"}, // same first 200 bytes
	}
	var gr grouping
	for _, e := range es {
		gr.add(e)
	}
	g := gr.result()
	if gr.n != 4 || len(g) != 2 || g[0].Count != 2 || g[1].Count != 2 || g[0].Source != "shop" {
		t.Fatalf("groups %+v", g)
	}
	if e := g[1].Error; !utf8.ValidString(e) || len(e) > 200+len("…") || !strings.HasSuffix(e, "…") {
		t.Fatalf("error cut to %d bytes (valid UTF-8 %v): %q", len(e), utf8.ValidString(e), e)
	}
	// None is [], as no entries is, for the API's and the CLI's JSON.
	var none grouping
	if g := none.result(); g == nil || len(g) != 0 {
		t.Fatalf("no groups: %#v, want an empty list", g)
	}
}

// TestGroupsAreBounded: errors that differ per entry (ids in them) fold
// into one line per source, type and reason past maxGroups, and into a
// single line past twice that; every entry is still counted.
func TestGroupsAreBounded(t *testing.T) {
	var g grouping
	const n = 5000
	for i := range n {
		src := "shop"
		if i%2 == 1 {
			src = fmt.Sprintf("src-%d", i) // a new source, type and reason each time past the cap
		}
		g.add(&Entry{Source: src, EventType: "orders/paid", Reason: "permanent", LastError: fmt.Sprintf("sink answered 404: order %d not found", i)})
	}
	out := g.result()
	total, folded := 0, 0
	for _, l := range out {
		total += l.Count
		if l.Error == OtherErrors {
			folded += l.Count
		}
	}
	if total != n || g.n != n || len(out) > 2*maxGroups+1 || folded == 0 {
		t.Fatalf("%d lines counting %d of %d entries (%d folded); want at most %d lines counting all", len(out), total, n, folded, 2*maxGroups+1)
	}
	if last := out[0]; last.Source != "shop" || last.Error != OtherErrors {
		t.Fatalf("largest line %+v, want shop's folded errors", last)
	}
}

func TestUnknownSource(t *testing.T) {
	known := []string{"shop", "stripe"}
	for _, c := range []struct {
		known  []string
		source string
		ok     bool
	}{{nil, "nosuch", true}, {known, "", true}, {known, "shop", true}, {known, "nosuch", false}} {
		err := UnknownSource(c.known, c.source)
		if (err == nil) != c.ok || (err != nil && (!errors.Is(err, ErrUnknownSource) || !strings.Contains(err.Error(), `"nosuch"`) || !strings.Contains(err.Error(), "shop, stripe"))) {
			t.Errorf("UnknownSource(%v, %q) = %v", c.known, c.source, err)
		}
	}
	many := make([]string, 25)
	for i := range many {
		many[i] = fmt.Sprintf("s%02d", i)
	}
	if err := UnknownSource(many, "x"); err == nil || !strings.Contains(err.Error(), "s19 and 5 more") || strings.Contains(err.Error(), "s20") {
		t.Errorf("25 sources: %v", err)
	}
}

package ops

import (
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
}

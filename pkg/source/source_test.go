package source

import (
	"strings"
	"testing"
)

// TestParseRefusesNegativeMaxLines: it was accepted, and every batch
// request then panicked making a channel of that size.
func TestParseRefusesNegativeMaxLines(t *testing.T) {
	_, err := Parse([]byte("sources:\n  s:\n    kind: none\n    batch: {tokens_env: [T_TOK], max_lines: -1}\n"))
	if err == nil || !strings.Contains(err.Error(), "batch.max_lines must be positive") {
		t.Errorf("max_lines -1: error %v", err)
	}
}

func TestCheckMeta(t *testing.T) {
	for _, c := range []struct {
		v  string
		ok bool
	}{
		{"invoice.paid", true},
		{"commande.payée", true},
		{"bad\xff", false},
		{strings.Repeat("x", 256), true},
		{strings.Repeat("x", 257), false},
	} {
		if err := CheckMeta(c.v); (err == nil) != c.ok {
			t.Errorf("CheckMeta(%q): %v, want ok %v", c.v, err, c.ok)
		}
	}
}

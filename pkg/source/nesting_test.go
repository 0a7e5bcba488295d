package source

import (
	"os"
	"strings"
	"testing"
)

// TestNestingIsBounded: a file nesting brackets or compact sequences past
// maxNesting is refused before the YAML parser sees it (100,000 brackets
// took it 15 GB); brackets in quoted scalars and comments do not count,
// and the example file passes.
func TestNestingIsBounded(t *testing.T) {
	deep := func(open, close string, n int) string {
		return "sources:\n  s:\n    kind: none\n    runbook: " + strings.Repeat(open, n) + strings.Repeat(close, n) + "\n"
	}
	for name, doc := range map[string]string{
		"brackets":    deep("[", "]", 100000),
		"braces":      deep("{a: ", "}", maxNesting+1),
		"dashes":      "sources:\n" + strings.Repeat("- ", maxNesting+1) + "x\n",
		"after quote": "a: \"it's [\"\nb: " + strings.Repeat("[", maxNesting+1) + "\n",
	} {
		// checkNesting, not Parse: where the check misses, the parser
		// takes gigabytes.
		if err := checkNesting([]byte(doc)); err == nil || !strings.Contains(err.Error(), "nested more than") {
			t.Errorf("%s: %v, want refused as nested too deep", name, err)
		}
	}
	for name, doc := range map[string]string{
		"quoted":   "a: '" + strings.Repeat("[", 200) + "'\nb: \"" + strings.Repeat("{", 200) + "\"\n",
		"comment":  "# " + strings.Repeat("[", 200) + "\na: 1\n",
		"at limit": "a: " + strings.Repeat("[", maxNesting) + strings.Repeat("]", maxNesting) + "\n",
		"plain":    "a: it's [x] and {y}\n",
	} {
		if err := checkNesting([]byte(doc)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	b, err := os.ReadFile("../../deploy/sources.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := checkNesting(b); err != nil {
		t.Errorf("the example file: %v", err)
	}
}

// TestNestingIsBoundedWhateverTheQuotes: a quote inside a plain scalar
// (a: x "y, a: -"y) was read as opening a quoted scalar that ran to the
// end of the file, so the brackets or compact sequence entries after it
// reached the parser uncounted: 20,000 of them took it 2.3 s and 750 MB,
// 100,000 about 15 GB. Every bracket now counts toward a looser bound.
func TestNestingIsBoundedWhateverTheQuotes(t *testing.T) {
	deep := strings.Repeat("[", 100000)
	for name, doc := range map[string]string{
		"dash quote":      "a: -\"x\nb: " + deep + "\n",
		"dash apostrophe": "a: -'x\nb: " + deep + "\n",
		"space quote":     "a: x \"y\nb: " + deep + "\n",
		"flow colon":      "a: [b:\"c]\nd: " + deep + "\n",
		"dashes":          "a: x \"y\nb:\n" + strings.Repeat("- ", 100000) + "x\n",
	} {
		// checkNesting, not Parse: where the check misses, the parser
		// takes gigabytes.
		if err := checkNesting([]byte(doc)); err == nil || !strings.Contains(err.Error(), "nested more than") {
			t.Errorf("%s: %v, want refused as nested too deep", name, err)
		}
	}
	if err := checkNesting([]byte("a: '" + strings.Repeat("[", maxRawNesting) + "'\n")); err != nil {
		t.Errorf("quoted brackets up to the raw bound: %v", err)
	}
}

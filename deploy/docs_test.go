package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// envTable is docs/run-on-real-kafka.md's table of variables: its rows'
// first two cells.
type envRow struct {
	Line     int
	Names    []string // without "[_FILE]"
	HasFile  []bool   // whether the name was written NAME[_FILE]
	Defaults string
	Text     string // the whole row
}

func readEnvTable(t *testing.T, path string) []envRow {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rows []envRow
	in := false
	for i, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "| variable | default |") {
			in = true
			continue
		}
		if !in || strings.HasPrefix(line, "|---") {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			if len(rows) > 0 {
				break
			}
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			t.Fatalf("%s:%d: a row of fewer than three cells", path, i+1)
		}
		r := envRow{Line: i + 1, Defaults: strings.TrimSpace(cells[2]), Text: line}
		for _, m := range backticked.FindAllStringSubmatch(cells[1], -1) {
			name, file := strings.CutSuffix(m[1], "[_FILE]")
			r.Names = append(r.Names, name)
			r.HasFile = append(r.HasFile, file)
		}
		rows = append(rows, r)
	}
	if len(rows) == 0 {
		t.Fatalf("%s: no table under a \"| variable | default |\" header", path)
	}
	return rows
}

var backticked = regexp.MustCompile("`([^`]*)`")

// docDefault is one default as the table writes it: "`4s`", "none",
// "ingest `127.0.0.1:9090`", "`536870912` (512 MiB)".
type docDefault struct {
	Service  string // "ingest ", "processor ": the default of that one only
	Value    string // the backticked value
	Zero     bool   // "none", "off", "broker default": the zero value, or -1
	Computed bool   // "`<hostname>-<pid>`": computed at start, no built-in default
}

// splitDefaults splits a default cell on the commas outside backticks.
func splitDefaults(cell string) []docDefault {
	var parts []string
	var cur strings.Builder
	quoted := false
	for _, r := range cell {
		switch {
		case r == '`':
			quoted = !quoted
		case r == ',' && !quoted:
			parts = append(parts, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteRune(r)
	}
	parts = append(parts, cur.String())
	var out []docDefault
	for _, p := range parts {
		p = strings.TrimSpace(p)
		d := docDefault{}
		for _, svc := range []string{"ingest", "processor"} {
			if rest, ok := strings.CutPrefix(p, svc+" "); ok {
				d.Service, p = svc, rest
			}
		}
		if m := backticked.FindStringSubmatch(p); m != nil {
			d.Value = m[1]
			d.Computed = strings.HasPrefix(d.Value, "<")
		} else {
			d.Zero = true
		}
		out = append(out, d)
	}
	return out
}

// sameDefault reports whether the doc's value is the binary's default.
func sameDefault(doc docDefault, f *flagInfo) bool {
	switch {
	case doc.Computed:
		return f.Def == ""
	case doc.Zero:
		return f.Def == "" || f.Def == "false" || f.Def == "0" || f.Def == "-1"
	case doc.Value == f.Def:
		return true
	}
	a, errA := time.ParseDuration(doc.Value)
	b, errB := time.ParseDuration(f.Def)
	return errA == nil && errB == nil && a == b
}

// deployed are the services the docs' table is about; inletctl's variables
// are in it too, and checked for existence and default, not completeness.
var deployed = []string{"ingest", "processor"}

// inletctlCommands are inletctl's commands with flags of their own.
var inletctlCommands = []string{
	"inletctl", "inletctl tail", "inletctl trace", "inletctl dlq ls", "inletctl dlq show", "inletctl dlq requeue",
	"inletctl dlq discard", "inletctl dlq depth", "inletctl replay", "inletctl replay ls", "inletctl replay rm",
	"inletctl reconcile", "inletctl schemas check",
}

// TestDocsEnvTable: docs/run-on-real-kafka.md's table of variables names
// every variable ingest and the processor read (their flags' and the
// secrets their usage names, anywhere in the table), names only variables
// some binary reads, says [_FILE] only of secrets, and gives each flag's
// default as the binary has it.
func TestDocsEnvTable(t *testing.T) {
	const doc = "docs/run-on-real-kafka.md"
	rows := readEnvTable(t, filepath.Join(root, doc))
	var all strings.Builder
	for _, r := range rows {
		all.WriteString(r.Text + "\n")
	}
	mentioned := map[string]bool{}
	for _, m := range upperName.FindAllStringSubmatch(all.String(), -1) {
		mentioned[m[1]] = true
		if m[2] != "" {
			mentioned[m[1]+"_FILE"] = true
		}
	}
	for _, svc := range deployed {
		fs := flags(t, svc)
		var missing []string
		for env := range fs.ByEnv {
			if !mentioned[env] {
				missing = append(missing, env)
			}
		}
		for env := range fs.Secrets {
			if !mentioned[env] {
				missing = append(missing, env)
			}
		}
		sort.Strings(missing)
		for _, env := range missing {
			t.Errorf("%s: the table of variables lacks %s, which %s reads", doc, env, svc)
		}
	}

	readers := append(slices.Clone(deployed), inletctlCommands...)
	for _, r := range rows {
		defaults := splitDefaults(r.Defaults)
		// "ingest `a`, processor `b`": one default per service, for
		// every variable of the row.
		qualified := !slices.ContainsFunc(defaults, func(d docDefault) bool { return d.Service == "" })
		if !qualified && len(defaults) != 1 && len(defaults) != len(r.Names) {
			t.Errorf("%s:%d: %d defaults for %d variables %v: one for all, or one each", doc, r.Line, len(defaults), len(r.Names), r.Names)
			continue
		}
		for i, name := range r.Names {
			var readBy []string
			for _, cmd := range readers {
				fs := flags(t, cmd)
				if !fs.reads(name) {
					continue
				}
				readBy = append(readBy, cmd)
				if r.HasFile[i] && !fs.Secrets[name+"_FILE"] {
					t.Errorf("%s:%d: %s[_FILE]: %s reads no %s_FILE", doc, r.Line, name, cmd, name)
				}
			}
			if len(readBy) == 0 {
				t.Errorf("%s:%d: %s is read by none of ingest, processor, inletctl", doc, r.Line, name)
				continue
			}
			want := map[string]docDefault{} // by the command whose default it is
			switch {
			case qualified:
				for _, d := range defaults {
					want[d.Service] = d
				}
			default:
				d := defaults[0]
				if len(defaults) > 1 {
					d = defaults[i]
				}
				for _, cmd := range readBy {
					// inletctl's own default counts only where the
					// services do not read the variable.
					if slices.Contains(deployed, cmd) || !slices.ContainsFunc(readBy, func(c string) bool { return slices.Contains(deployed, c) }) {
						want[cmd] = d
					}
				}
			}
			for cmd, d := range want {
				f := flags(t, cmd).ByEnv[name]
				if f == nil {
					if qualified {
						t.Errorf("%s:%d: %s: a default for %s, which has no flag for it", doc, r.Line, name, cmd)
					}
					continue // a secret: no flag, no default
				}
				if !sameDefault(d, f) {
					shown := "`" + d.Value + "`"
					if d.Zero {
						shown = "none (the zero value)"
					}
					t.Errorf("%s:%d: %s's default is %s there; %s -%s defaults to %q", doc, r.Line, name, shown, cmd, f.Name, f.Def)
				}
			}
		}
	}
}

// externalFlags are flags of other tools the docs give in prose.
var externalFlags = map[string]bool{"race": true, "count": true, "run": true, "reset-offsets": true, "save": true, "appendonly": true}

// externalCommands are the other tools the docs show command lines of: their
// flags are not Inlet's.
var externalCommands = map[string]bool{
	"go": true, "curl": true, "kubectl": true, "docker": true, "kcat": true, "python3": true, "pip": true,
	"sed": true, "tail": true, "redis-cli": true, "redis-server": true, "openssl": true, "helm": true,
}

// readmeFlag is a flag mention: -name or --name after a space, a backtick,
// a parenthesis or a bracket. One-letter flags are left out: -n, -f, -d
// mean something to every tool.
var readmeFlag = regexp.MustCompile("(?:^|[\\s(\\[])--?([a-z][a-z0-9]*(?:-[a-z0-9]+)+|[a-z][a-z0-9]+)\\b")

// external reports whether a command line or inline-code span is another
// tool's: its first word, past variable assignments and a "$ " prompt.
func external(segment string) bool {
	for _, w := range strings.Fields(segment) {
		switch {
		case w == "$" || strings.Contains(w, "="):
			continue
		case externalCommands[w], strings.HasPrefix(filepath.Base(w), "kafka-"), strings.HasSuffix(w, ".sh"), strings.HasSuffix(w, ".py"):
			return true
		}
		return false
	}
	return false
}

// flagMentions returns the flags a markdown file mentions, by line, out of
// other tools' command lines (fenced or inline).
func flagMentions(text string) map[int][]string {
	out := map[int][]string{}
	fenced, continued := false, false
	for i, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced, continued = !fenced, false
			continue
		}
		var segments []string
		if fenced {
			if !continued && !external(line) {
				segments = append(segments, line)
			}
			ext := continued || external(line)
			continued = strings.HasSuffix(strings.TrimSpace(line), "\\") && ext
		} else {
			for j, part := range strings.Split(line, "`") {
				if j%2 == 1 && external(part) {
					continue
				}
				segments = append(segments, part)
			}
		}
		for _, seg := range segments {
			for _, m := range readmeFlag.FindAllStringSubmatch(seg, -1) {
				out[i+1] = append(out[i+1], m[1])
			}
		}
	}
	return out
}

// TestREADMEFlags: every -flag README.md and docs/run-on-real-kafka.md
// mention is a flag of ingest, the processor, dev (make run) or an
// inletctl command, other tools' command lines aside.
func TestREADMEFlags(t *testing.T) {
	known := map[string]bool{"help": true}
	for _, cmd := range append([]string{"ingest", "processor", "dev"}, inletctlCommands...) {
		for name := range flags(t, cmd).Flags {
			known[name] = true
		}
	}
	for _, doc := range []string{"README.md", "docs/run-on-real-kafka.md"} {
		b, err := os.ReadFile(filepath.Join(root, doc))
		if err != nil {
			t.Fatal(err)
		}
		mentions := flagMentions(string(b))
		lines := make([]int, 0, len(mentions))
		for l := range mentions {
			lines = append(lines, l)
		}
		sort.Ints(lines)
		for _, l := range lines {
			for _, name := range mentions[l] {
				if !known[name] && !externalFlags[name] {
					t.Errorf("%s:%d: -%s is a flag of none of ingest, processor, dev, inletctl", doc, l, name)
				}
			}
		}
	}
}

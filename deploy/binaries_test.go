// Package deploy holds only tests: they hold the deployment artifacts in
// this directory (Kubernetes manifests, docker-compose.yml, Prometheus and
// Grafana files) and the operator docs to what the binaries accept. Nothing
// else checks that a manifest still says something a binary reads: a
// renamed flag's old variable, or a typo in one, is silently ignored.
//
// The binaries are the truth: the tests build them once into a temporary
// directory and read their -h (every flag, its variable and its default)
// and run their --check-config with a manifest's environment.
package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// root is the repository root, relative to this package.
const root = ".."

// services are the binaries the tests build, by the name manifests and
// docs use.
var services = []string{"ingest", "processor", "inletctl", "dev"}

var (
	binOnce sync.Once
	binErr  error
)

// binDir is where the binaries are built: a fixed directory under the
// system's temporary one, so that a later run finds them there and go
// build relinks only what changed (linking the four takes most of a
// minute on a small machine; finding them up to date, about a second).
var binDir = filepath.Join(os.TempDir(), "inlet-deploy-test-bin")

// bin returns the path of service's binary, building all of them the first
// time (one go build).
func bin(t *testing.T, service string) string {
	t.Helper()
	binOnce.Do(func() {
		args := []string{"build", "-o", binDir + string(filepath.Separator)}
		for _, s := range services {
			args = append(args, "./services/"+s)
		}
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return filepath.Join(binDir, service)
}

// flagInfo is one flag as the binary's -h shows it.
type flagInfo struct {
	Name  string
	Type  string // "bool", "string", "duration", "int", "value" (a list)
	Env   string // its environment variable, "" when it has none
	Def   string // its built-in default, "" when -h shows none (the zero value)
	Usage string
}

// flagSet is what one binary reads: its flags and the other variables its
// usage names (secrets, read from the environment or a _FILE only).
type flagSet struct {
	Flags map[string]*flagInfo // by flag name
	ByEnv map[string]*flagInfo // by environment variable
	// Secrets are the variables the usage names that are no flag's, with
	// their _FILE variants: INLET_KAFKA_SASL_PASSWORD[_FILE], REDIS_PASSWORD.
	Secrets map[string]bool
}

// reads reports whether the binary reads the variable name.
func (fs *flagSet) reads(name string) bool {
	return fs.ByEnv[name] != nil || fs.Secrets[name]
}

var flagCache sync.Map // service or "inletctl <cmd>" → *flagSet

// flags returns the flags of service (a command line: "inletctl dlq ls"),
// read from its -h with an empty environment.
func flags(t *testing.T, command string) *flagSet {
	t.Helper()
	if fs, ok := flagCache.Load(command); ok {
		return fs.(*flagSet)
	}
	words := strings.Fields(command)
	cmd := exec.Command(bin(t, words[0]), append(words[1:], "-h")...)
	cmd.Env = []string{} // "(env X, set: …)" and env defaults stay out
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run() // -h exits 0 or 2 depending on the flag package's mood
	fs := parseUsage(out.String())
	if len(fs.Flags) == 0 {
		t.Fatalf("%s -h shows no flags:\n%s", command, out.String())
	}
	flagCache.Store(command, fs)
	return fs
}

var (
	flagHeader = regexp.MustCompile(`^  -([a-zA-Z0-9][a-zA-Z0-9-]*)(?: (\w+))?$`)
	envOf      = regexp.MustCompile(`\(env ([A-Z][A-Z0-9_]*)[,)]`)
	defaultOf  = regexp.MustCompile(`\(default ("[^"]*"|[^()]*)\)$`)
	listDef    = regexp.MustCompile(`\(comma-separated; default "(.*?)"\)`)
	// upperName is a variable named in a usage text, with the optional
	// "[_FILE]" that says the _FILE variant is read too.
	upperName = regexp.MustCompile(`\b([A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9])(\[_FILE\])?`)
)

// parseUsage reads flag.PrintDefaults' output: "  -name type" then the
// usage on lines starting with a tab.
func parseUsage(usage string) *flagSet {
	fs := &flagSet{Flags: map[string]*flagInfo{}, ByEnv: map[string]*flagInfo{}, Secrets: map[string]bool{}}
	var cur *flagInfo
	sc := bufio.NewScanner(strings.NewReader(usage))
	for sc.Scan() {
		line := sc.Text()
		if m := flagHeader.FindStringSubmatch(line); m != nil {
			cur = &flagInfo{Name: m[1], Type: m[2]}
			if cur.Type == "" {
				cur.Type = "bool"
			}
			fs.Flags[cur.Name] = cur
			continue
		}
		if cur != nil && strings.HasPrefix(line, "    \t") {
			cur.Usage += strings.TrimPrefix(line, "    \t") + " "
			continue
		}
		cur = nil
	}
	var mentioned []string
	for _, f := range fs.Flags {
		f.Usage = strings.TrimSpace(f.Usage)
		if m := envOf.FindStringSubmatch(f.Usage); m != nil {
			f.Env = m[1]
			fs.ByEnv[f.Env] = f
		}
		if m := listDef.FindStringSubmatch(f.Usage); m != nil {
			f.Def = m[1]
		} else if m := defaultOf.FindStringSubmatch(f.Usage); m != nil {
			f.Def = strings.Trim(m[1], `"`)
		}
		fileVariants := strings.Contains(f.Usage, "_FILE variants")
		for _, m := range upperName.FindAllStringSubmatch(f.Usage, -1) {
			if m[1] == f.Env && m[2] == "" {
				continue // "(env INLET_ADMIN_ADDR)": the flag's own
			}
			mentioned = append(mentioned, m[1])
			if m[2] != "" || fileVariants {
				mentioned = append(mentioned, m[1]+"_FILE")
			}
		}
	}
	for _, name := range mentioned {
		if fs.ByEnv[name] == nil {
			fs.Secrets[name] = true
		}
	}
	return fs
}

// Package flagenv defines command-line flags whose defaults come from
// environment variables, so every setting of a process can be given either
// way (a flag wins over the environment). The variable is named in the flag's
// usage text, and a malformed variable fails Parse instead of being ignored.
//
// Environment values are never printed: usage (-h, or a mistyped flag)
// shows the built-in default and says when the variable is set, and a
// malformed value's error names the variable, not its value. Settings such
// as a Redis URL carry passwords, and usage goes to the same log as
// everything else.
package flagenv

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Set is a flag.FlagSet that also remembers malformed environment values.
type Set struct {
	*flag.FlagSet
	errs []error
	// noEnv: the environment is not read (Defaults).
	noEnv bool
}

// New returns an empty Set that reports errors by returning them from Parse.
func New(name string) *Set {
	return &Set{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError)}
}

// Defaults returns an empty Set that does not read the environment: the
// flags defined on it hold their built-in defaults. It is for a package's
// DefaultConfig, which is never parsed, so could not report a malformed
// variable; a process takes its settings from a Set made by New and parsed.
func Defaults(name string) *Set {
	s := New(name)
	s.noEnv = true
	return s
}

// Parse parses args and reports malformed environment values too. For -h
// or -help it prints the usage and returns flag.ErrHelp: the command asked
// only for its usage, so the caller should stop and exit 0, not report an
// error.
func (s *Set) Parse(args []string) error {
	if err := s.FlagSet.Parse(args); err != nil {
		return err
	}
	return errors.Join(s.errs...)
}

// ParseFlagsOnly is Parse for a command that takes no arguments. The flag
// package stops at the first argument that is not a flag and leaves the
// rest unread: "-kafka-tls true -workers 0" (a bool flag takes no
// separate value) ran with the default of every flag after "true", and
// --check-config said ok. Such a word is an error naming it.
func (s *Set) ParseFlagsOnly(args []string) error {
	if err := s.Parse(args); err != nil {
		return err
	}
	if s.NArg() > 0 {
		// Unprefixed: the command prints its name before it.
		return fmt.Errorf("unexpected argument %q, and the flags after it were not read: settings are flags (-name value; a bool flag takes -name or -name=false, no separate value)", s.Arg(0))
	}
	return nil
}

// ParseInterspersed is Parse with flags before, between or after the
// positional arguments, which it returns in order: the flag package stops
// at the first of them, and "inletctl trace <id> --output json" left
// --output json as two more ids. After "--" every argument is positional.
func (s *Set) ParseInterspersed(args []string) ([]string, error) {
	var pos []string
	for {
		if err := s.Parse(args); err != nil {
			return pos, err
		}
		rest := s.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func usage(env, u string) string {
	if _, set := os.LookupEnv(env); set {
		return fmt.Sprintf("%s (env %s, set: overrides the default)", u, env)
	}
	return fmt.Sprintf("%s (env %s)", u, env)
}

// lookup parses $env, if set, with parse. The value stays out of the error:
// it may be a secret. parse sets the flag's default only when the value
// parses: a malformed one leaves the built-in default (and fails Parse).
func (s *Set) lookup(env string, parse func(string) error) {
	if s.noEnv {
		return
	}
	if v, ok := os.LookupEnv(env); ok {
		switch err := parse(v); {
		case err != nil && v == "":
			// Said outright: "invalid duration <value>" hid that there
			// was nothing to see (a template's missing value).
			s.errs = append(s.errs, fmt.Errorf("environment variable %s is set but empty: unset it for the default, or give a value", env))
		case err != nil:
			s.errs = append(s.errs, fmt.Errorf("environment variable %s: %w", env, errorWithout(err, v)))
		}
	}
}

// errorWithout is err's text without v: strconv and time quote the value
// they could not parse, escaped, so a value holding a newline, a tab or a
// quote (a secret mounted from a file, one put in the wrong variable) did
// not match it and was shown. A strconv error keeps its function and
// reason; any other is cut at its first quote.
func errorWithout(err error, v string) error {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		return fmt.Errorf("%s: %w", ne.Func, ne.Err)
	}
	msg := err.Error()
	if v != "" && strings.Contains(msg, v) {
		return errors.New(strings.ReplaceAll(msg, v, "<value>"))
	}
	if i := strings.IndexByte(msg, '"'); i >= 0 {
		return errors.New(strings.TrimSpace(msg[:i]) + " <value>")
	}
	return err
}

// showDefault makes usage print def, the built-in default, whatever the
// environment set.
func (s *Set) showDefault(name, def string) { s.Lookup(name).DefValue = def }

// String defines a string flag defaulting to $env, else def.
func (s *Set) String(p *string, name, env, def, u string) {
	v := def
	s.lookup(env, func(e string) error { v = e; return nil })
	s.StringVar(p, name, v, usage(env, u))
	s.showDefault(name, def)
}

// List defines a comma-separated list flag defaulting to $env, else def.
func (s *Set) List(p *[]string, name, env, def, u string) {
	v := def
	s.lookup(env, func(e string) error { v = e; return nil })
	*p = Split(v)
	s.Func(name, usage(env, u)+fmt.Sprintf(" (comma-separated; default %q)", def), func(v string) error {
		*p = Split(v)
		return nil
	})
}

// Duration defines a duration flag defaulting to $env, else def.
func (s *Set) Duration(p *time.Duration, name, env string, def time.Duration, u string) {
	v := def
	s.lookup(env, func(e string) error {
		d, err := time.ParseDuration(e)
		if err == nil {
			v = d
		}
		return err
	})
	s.DurationVar(p, name, v, usage(env, u))
	s.showDefault(name, def.String())
}

// Int defines an int flag defaulting to $env, else def.
func (s *Set) Int(p *int, name, env string, def int, u string) {
	v := def
	s.lookup(env, func(e string) error {
		n, err := strconv.Atoi(e)
		if err == nil {
			v = n
		}
		return err
	})
	s.IntVar(p, name, v, usage(env, u))
	s.showDefault(name, strconv.Itoa(def))
}

// Bool defines a bool flag defaulting to $env, else def.
func (s *Set) Bool(p *bool, name, env string, def bool, u string) {
	v := def
	s.lookup(env, func(e string) error {
		b, err := strconv.ParseBool(e)
		if err == nil {
			v = b
		}
		return err
	})
	s.BoolVar(p, name, v, usage(env, u))
	s.showDefault(name, strconv.FormatBool(def))
}

// Secret reads a secret from $env, or from the file named by $env_FILE (the
// Docker/Kubernetes convention); trailing newlines are dropped from either:
// a Kubernetes Secret made --from-file and handed in as a variable ends in
// one, and kept it made every signature check fail.
// It returns "" when neither is set. Both set is an error (the variable
// won silently: a rotated file went unread), and so is a value or file
// that is empty or only whitespace, naming the variable (and the path),
// never the value (a secret mounted or templated empty, not one left
// unset). Secrets are never flags: flags show up in process listings.
func Secret(env string) (string, error) {
	v, file := os.Getenv(env), os.Getenv(env+"_FILE")
	if v != "" && file != "" {
		return "", fmt.Errorf("both %s and %s_FILE are set: set one (the variable would win over the file)", env, env)
	}
	if v != "" {
		if strings.TrimSpace(v) == "" {
			return "", fmt.Errorf("environment variable %s holds only whitespace", env)
		}
		return strings.TrimRight(v, "\r\n"), nil
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read %s_FILE: %w", env, err)
		}
		if strings.TrimSpace(string(b)) == "" {
			return "", fmt.Errorf("the file named by %s_FILE (%s) is empty: it holds no %s", env, file, env)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return "", nil
}

// SecretPlaceholder starts every value the Kubernetes Secret example
// (deploy/k8s/secret-example.yaml) gives a secret.
const SecretPlaceholder = "REPLACE_ME"

// Placeholder reports whether v is the Secret example's placeholder, or
// starts with it ("REPLACE_ME_whsec_..."), whitespace around and case
// aside: a deployment that applied the example as it is. A secret that
// is one must be refused (its value is public), naming where it was read,
// never quoting it.
func Placeholder(v string) bool {
	v = strings.TrimSpace(v)
	return len(v) >= len(SecretPlaceholder) && strings.EqualFold(v[:len(SecretPlaceholder)], SecretPlaceholder)
}

// Split splits a comma-separated list, dropping blanks.
func Split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Package flagenv defines command-line flags whose defaults come from
// environment variables, so every setting of a process can be given either
// way (a flag wins over the environment). The variable is named in the flag's
// usage text, and a malformed variable fails Parse instead of being ignored.
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
}

// New returns an empty Set that reports errors by returning them from Parse.
func New(name string) *Set {
	return &Set{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError)}
}

// Parse parses args and reports malformed environment values too.
func (s *Set) Parse(args []string) error {
	if err := s.FlagSet.Parse(args); err != nil {
		return err
	}
	return errors.Join(s.errs...)
}

func usage(env, u string) string { return fmt.Sprintf("%s (env %s)", u, env) }

func (s *Set) lookup(env string, parse func(string) error) {
	if v, ok := os.LookupEnv(env); ok {
		if err := parse(v); err != nil {
			s.errs = append(s.errs, fmt.Errorf("environment variable %s=%q: %w", env, v, err))
		}
	}
}

// String defines a string flag defaulting to $env, else def.
func (s *Set) String(p *string, name, env, def, u string) {
	s.lookup(env, func(v string) error { def = v; return nil })
	s.StringVar(p, name, def, usage(env, u))
}

// List defines a comma-separated list flag defaulting to $env, else def.
func (s *Set) List(p *[]string, name, env, def, u string) {
	s.lookup(env, func(v string) error { def = v; return nil })
	*p = Split(def)
	s.Func(name, usage(env, u)+fmt.Sprintf(" (comma-separated; default %q)", def), func(v string) error {
		*p = Split(v)
		return nil
	})
}

// Duration defines a duration flag defaulting to $env, else def.
func (s *Set) Duration(p *time.Duration, name, env string, def time.Duration, u string) {
	s.lookup(env, func(v string) (err error) { def, err = time.ParseDuration(v); return err })
	s.DurationVar(p, name, def, usage(env, u))
}

// Int defines an int flag defaulting to $env, else def.
func (s *Set) Int(p *int, name, env string, def int, u string) {
	s.lookup(env, func(v string) (err error) { def, err = strconv.Atoi(v); return err })
	s.IntVar(p, name, def, usage(env, u))
}

// Bool defines a bool flag defaulting to $env, else def.
func (s *Set) Bool(p *bool, name, env string, def bool, u string) {
	s.lookup(env, func(v string) (err error) { def, err = strconv.ParseBool(v); return err })
	s.BoolVar(p, name, def, usage(env, u))
}

// Secret reads a secret from $env, or from the file named by $env_FILE (the
// Docker/Kubernetes convention); trailing newlines in the file are dropped.
// It returns "" when neither is set. Secrets are never flags: flags show up
// in process listings.
func Secret(env string) (string, error) {
	if v := os.Getenv(env); v != "" {
		return v, nil
	}
	if f := os.Getenv(env + "_FILE"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("read %s_FILE: %w", env, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return "", nil
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

package flagenv

import (
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEnvDefaultsAndFlagOverride(t *testing.T) {
	t.Setenv("T_BROKERS", "a:1, b:2")
	t.Setenv("T_WAIT", "3s")
	t.Setenv("T_N", "7")
	s := New("t")
	var brokers []string
	var wait time.Duration
	var n int
	var name string
	s.List(&brokers, "brokers", "T_BROKERS", "x:9", "")
	s.Duration(&wait, "wait", "T_WAIT", time.Second, "")
	s.Int(&n, "n", "T_N", 1, "")
	s.String(&name, "name", "T_NAME_UNSET", "dflt", "")
	if err := s.Parse([]string{"-n", "9"}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(brokers, "|") != "a:1|b:2" || wait != 3*time.Second || n != 9 || name != "dflt" {
		t.Fatalf("got %v %v %v %q", brokers, wait, n, name)
	}
}

func TestMalformedEnvFailsParse(t *testing.T) {
	t.Setenv("T_WAIT", "soon")
	s := New("t")
	var wait time.Duration
	s.Duration(&wait, "wait", "T_WAIT", time.Second, "")
	err := s.Parse(nil)
	if err == nil || !strings.Contains(err.Error(), "T_WAIT") {
		t.Fatalf("err = %v, want one naming T_WAIT", err)
	}
}

// TestMalformedEnvKeepsDefault: a variable that does not parse fails Parse
// naming it, and leaves the built-in default, not zero: a caller that goes
// on (or a usage listing) never sees a 0 nobody set.
func TestMalformedEnvKeepsDefault(t *testing.T) {
	t.Setenv("T_WAIT", "30") // no unit
	t.Setenv("T_N", "two")
	t.Setenv("T_ON", "maybe")
	s := New("t")
	var wait time.Duration
	var n int
	on := false
	s.Duration(&wait, "wait", "T_WAIT", time.Minute, "")
	s.Int(&n, "n", "T_N", 2, "")
	s.Bool(&on, "on", "T_ON", true, "")
	err := s.Parse(nil)
	for _, env := range []string{"T_WAIT", "T_N", "T_ON"} {
		if err == nil || !strings.Contains(err.Error(), env) {
			t.Errorf("err = %v, want one naming %s", err, env)
		}
	}
	if wait != time.Minute || n != 2 || !on {
		t.Errorf("got %v %d %v, want the defaults 1m0s 2 true", wait, n, on)
	}
}

// TestEmptyEnvSaysEmpty: a duration, number or switch variable set to
// nothing (a template's missing value) fails Parse saying it is empty;
// the error read "time: invalid duration <value>" or "Atoi: invalid
// syntax", as for a mistyped value nobody could see.
func TestEmptyEnvSaysEmpty(t *testing.T) {
	t.Setenv("T_WAIT", "")
	t.Setenv("T_N", "")
	t.Setenv("T_ON", "")
	s := New("t")
	var wait time.Duration
	var n int
	var on bool
	s.Duration(&wait, "wait", "T_WAIT", time.Minute, "")
	s.Int(&n, "n", "T_N", 2, "")
	s.Bool(&on, "on", "T_ON", false, "")
	err := s.Parse(nil)
	for _, env := range []string{"T_WAIT", "T_N", "T_ON"} {
		if err == nil || !strings.Contains(err.Error(), "environment variable "+env+" is set but empty") {
			t.Errorf("err = %v, want one saying %s is empty", err, env)
		}
	}
	if err != nil && strings.Contains(err.Error(), "<value>") {
		t.Errorf("err = %v, want no <value> for an empty one", err)
	}
}

// TestDefaultsIgnoresEnv: a Set from Defaults holds the built-in defaults
// whatever the environment says, well-formed or not.
func TestDefaultsIgnoresEnv(t *testing.T) {
	t.Setenv("T_WAIT", "3s")
	t.Setenv("T_N", "two")
	s := Defaults("t")
	var wait time.Duration
	var n int
	var name string
	var list []string
	t.Setenv("T_NAME", "from-env")
	t.Setenv("T_LIST", "a,b")
	s.Duration(&wait, "wait", "T_WAIT", time.Second, "")
	s.Int(&n, "n", "T_N", 1, "")
	s.String(&name, "name", "T_NAME", "dflt", "")
	s.List(&list, "list", "T_LIST", "x", "")
	if err := s.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if wait != time.Second || n != 1 || name != "dflt" || strings.Join(list, ",") != "x" {
		t.Fatalf("got %v %d %q %v, want the built-in defaults", wait, n, name, list)
	}
}

func TestSecretFromFile(t *testing.T) {
	f := t.TempDir() + "/s"
	if err := os.WriteFile(f, []byte("hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("T_SECRET_FILE", f)
	got, err := Secret("T_SECRET")
	if err != nil || got != "hunter2" {
		t.Fatalf("Secret = %q, %v", got, err)
	}
	// Both set: the variable won silently, and a secret rotated in the
	// file was never read.
	t.Setenv("T_SECRET", "direct")
	if got, err := Secret("T_SECRET"); err == nil || got != "" || err.Error() != "both T_SECRET and T_SECRET_FILE are set: set one (the variable would win over the file)" {
		t.Fatalf("both set: %q, %v", got, err)
	}
}

// TestUsageShowsNoEnvValue: -h, or a mistyped flag, prints usage to the
// process log; a variable holding a password (a Redis URL) must not be in
// it, nor in the error for a malformed one.
func TestUsageShowsNoEnvValue(t *testing.T) {
	const secret = "hunter2-in-the-url"
	t.Setenv("T_URL", "redis://:"+secret+"@redis:6379/0")
	t.Setenv("T_LIST", secret+",b")
	t.Setenv("T_N", secret)
	s := New("t")
	var out strings.Builder
	s.SetOutput(&out)
	var url string
	var list []string
	var n int
	s.String(&url, "redis-url", "T_URL", "redis://127.0.0.1:6379/0", "Redis URL")
	s.List(&list, "list", "T_LIST", "a", "things")
	s.Int(&n, "n", "T_N", 3, "a number")
	err := s.Parse([]string{"-no-such-flag"})
	if err == nil {
		t.Fatal("a mistyped flag parsed")
	}
	if strings.Contains(out.String(), secret) {
		t.Errorf("usage shows an environment value:\n%s", out.String())
	}
	for _, want := range []string{`(env T_URL, set: overrides the default) (default "redis://127.0.0.1:6379/0")`, `default "a"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, out.String())
		}
	}
	s = New("t")
	s.SetOutput(&out)
	s.Int(&n, "n", "T_N", 3, "a number")
	if err := s.Parse(nil); err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "T_N") {
		t.Errorf("malformed T_N: %v, want an error naming T_N without its value", err)
	}
	if url != "redis://:"+secret+"@redis:6379/0" || list[0] != secret {
		t.Errorf("the environment values were not used: %q %q", url, list)
	}
}

// TestMalformedEnvValueNotShownEscaped: strconv and time quote a value
// escaped, so one holding a newline, a tab or a quote did not match the
// value and was shown in the error; none of it is, and the error still
// names the variable and what was wanted.
func TestMalformedEnvValueNotShownEscaped(t *testing.T) {
	for _, v := range []string{"hunter2-secret\n", "hunter2-secret\t", `"hunter2-secret"`, "hunter2-secret"} {
		t.Setenv("T_N", v)
		t.Setenv("T_D", v)
		t.Setenv("T_B", v)
		s := New("t")
		s.SetOutput(io.Discard)
		var n int
		var d time.Duration
		var b bool
		s.Int(&n, "n", "T_N", 3, "a number")
		s.Duration(&d, "d", "T_D", time.Second, "a duration")
		s.Bool(&b, "b", "T_B", false, "a switch")
		err := s.Parse(nil)
		if err == nil {
			t.Fatalf("%q parsed", v)
		}
		for _, want := range []string{"T_N", "T_D", "T_B", "invalid syntax", "time: invalid duration"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q: error %v does not say %q", v, err, want)
			}
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: the error shows the value: %v", v, err)
		}
	}
}

// TestSecretEnvTrailingNewline: a secret from the environment loses its
// trailing newlines, as one from a file does (a Kubernetes Secret made
// --from-file and handed in as a variable ends in one). One of only
// whitespace is refused, naming the variable, not the value: a Kafka or
// Redis password of blanks was sent as it was, and the refusal read as
// wrong credentials.
func TestSecretEnvTrailingNewline(t *testing.T) {
	for v, want := range map[string]string{"whsec_abc\n": "whsec_abc", "whsec_abc\r\n": "whsec_abc", "whsec_abc": "whsec_abc", "a\nb\n": "a\nb"} {
		t.Setenv("T_SECRET", v)
		if got, err := Secret("T_SECRET"); err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", v, got, err, want)
		}
	}
	for _, v := range []string{"\n", " ", "\t \r\n"} {
		t.Setenv("T_SECRET", v)
		if got, err := Secret("T_SECRET"); err == nil || got != "" || err.Error() != "environment variable T_SECRET holds only whitespace" {
			t.Errorf("%q: %q, %v; want refused", v, got, err)
		}
	}
}

// TestParseInterspersed: flags are read wherever they stand among the
// positional arguments, which keep their order; after "--" nothing is a
// flag.
func TestParseInterspersed(t *testing.T) {
	for _, tt := range []struct {
		args []string
		out  string
		pos  []string
	}{
		{[]string{"id1", "-output", "json"}, "json", []string{"id1"}},
		{[]string{"-output=json", "a", "b"}, "json", []string{"a", "b"}},
		{[]string{"a", "--output", "json", "b"}, "json", []string{"a", "b"}},
		{[]string{"a", "--", "-output", "json"}, "table", []string{"a", "-output", "json"}},
		{[]string{"--", "-x"}, "table", []string{"-x"}},
		{nil, "table", nil},
	} {
		s := New("t")
		out := s.FlagSet.String("output", "table", "")
		pos, err := s.ParseInterspersed(tt.args)
		if err != nil || *out != tt.out || !slices.Equal(pos, tt.pos) {
			t.Errorf("%q: output %q, positional %q, %v; want %q and %q", tt.args, *out, pos, err, tt.out, tt.pos)
		}
	}
	if _, err := New("t").ParseInterspersed([]string{"a", "-nosuch"}); err == nil {
		t.Error("an unknown flag after a positional argument was taken")
	}
}

// TestSecretFileEmpty: a _FILE naming an empty file, or one of whitespace
// only, is an error naming the variable and the path, not a secret
// silently unset (which callers reported as "not set").
func TestSecretFileEmpty(t *testing.T) {
	for name, content := range map[string]string{"empty": "", "a newline": "\n", "whitespace": " \t\r\n \n"} {
		t.Run(name, func(t *testing.T) {
			f := t.TempDir() + "/secret"
			if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			t.Setenv("T_SECRET", "")
			t.Setenv("T_SECRET_FILE", f)
			got, err := Secret("T_SECRET")
			if err == nil {
				t.Fatalf("Secret = %q, nil; want an error", got)
			}
			for _, w := range []string{"T_SECRET_FILE", f, "empty"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v, want an error mentioning %q", err, w)
				}
			}
		})
	}
	t.Run("spaces kept inside a secret", func(t *testing.T) {
		f := t.TempDir() + "/secret"
		if err := os.WriteFile(f, []byte(" pass word \n"), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("T_SECRET", "")
		t.Setenv("T_SECRET_FILE", f)
		if got, err := Secret("T_SECRET"); err != nil || got != " pass word " {
			t.Fatalf("Secret = %q, %v; want %q", got, err, " pass word ")
		}
	})
}

// TestParseFlagsOnly: a word that is not a flag stops the flag package,
// which leaves the flags after it unread; ParseFlagsOnly names it.
func TestParseFlagsOnly(t *testing.T) {
	var on bool
	var n int
	s := New("svc")
	s.BoolVar(&on, "tls", false, "")
	s.Int(&n, "workers", "T_FLAGENV_WORKERS", 2, "")
	err := s.ParseFlagsOnly([]string{"-tls", "true", "-workers", "0"})
	if err == nil || !strings.Contains(err.Error(), `unexpected argument "true"`) || n != 2 {
		t.Fatalf("ParseFlagsOnly: %v, workers %d; want the stray word named", err, n)
	}
	s = New("svc")
	s.BoolVar(&on, "tls", false, "")
	s.Int(&n, "workers", "T_FLAGENV_WORKERS", 2, "")
	if err := s.ParseFlagsOnly([]string{"-tls=true", "-workers", "0"}); err != nil || !on || n != 0 {
		t.Fatalf("ParseFlagsOnly: %v, tls %v workers %d", err, on, n)
	}
}

package flagenv

import (
	"os"
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
	t.Setenv("T_SECRET", "direct")
	if got, _ := Secret("T_SECRET"); got != "direct" {
		t.Fatalf("env should win over file, got %q", got)
	}
}

package kafka

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClientOptsSASLCredentials: a SASL mechanism authenticates with a
// user and a password; without either (or with an empty password file)
// the options are refused naming the settings, never a secret's value.
// They used to be built with an empty password, and --check-config said ok.
func TestClientOptsSASLCredentials(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		user      string
		pass      string // INLET_KAFKA_SASL_PASSWORD
		passFile  string // INLET_KAFKA_SASL_PASSWORD_FILE
		want      []string
		wantNoErr bool
	}{
		{name: "user and password", user: "inlet", pass: "s3cr3t", wantNoErr: true},
		{name: "no password", user: "inlet", want: []string{"INLET_KAFKA_SASL_PASSWORD", "INLET_KAFKA_SASL_PASSWORD_FILE"}},
		{name: "empty password file", user: "inlet", passFile: empty, want: []string{"INLET_KAFKA_SASL_PASSWORD_FILE"}},
		{name: "no user", pass: "s3cr3t", want: []string{"INLET_KAFKA_SASL_USER"}},
		{name: "neither", want: []string{"INLET_KAFKA_SASL_USER", "INLET_KAFKA_SASL_PASSWORD"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("INLET_KAFKA_SASL_PASSWORD", c.pass)
			t.Setenv("INLET_KAFKA_SASL_PASSWORD_FILE", c.passFile)
			cfg := Config{Brokers: []string{"127.0.0.1:9092"}, SASLMechanism: "scram-sha-256", SASLUser: c.user}
			_, err := cfg.ClientOpts(nil)
			if c.wantNoErr {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("options built")
			}
			for _, w := range append(c.want, "scram-sha-256") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v, want an error mentioning %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
	t.Run("no mechanism", func(t *testing.T) {
		t.Setenv("INLET_KAFKA_SASL_PASSWORD", "")
		t.Setenv("INLET_KAFKA_SASL_PASSWORD_FILE", "")
		cfg := Config{Brokers: []string{"127.0.0.1:9092"}}
		if _, err := cfg.ClientOpts(nil); err != nil {
			t.Fatalf("no SASL: %v", err)
		}
	})
	// A user or password with no mechanism would be ignored: the client
	// would connect unauthenticated.
	for _, c := range []struct {
		name, user, pass, passFile string
		want                       []string
	}{
		{name: "user only", user: "inlet", want: []string{"INLET_KAFKA_SASL_USER"}},
		{name: "password only", pass: "s3cr3t", want: []string{"INLET_KAFKA_SASL_PASSWORD"}},
		{name: "password file only", passFile: "/run/secrets/kafka", want: []string{"INLET_KAFKA_SASL_PASSWORD_FILE"}},
		{name: "user and password", user: "inlet", pass: "s3cr3t", want: []string{"INLET_KAFKA_SASL_USER", "INLET_KAFKA_SASL_PASSWORD"}},
	} {
		t.Run("no mechanism, "+c.name, func(t *testing.T) {
			t.Setenv("INLET_KAFKA_SASL_PASSWORD", c.pass)
			t.Setenv("INLET_KAFKA_SASL_PASSWORD_FILE", c.passFile)
			cfg := Config{Brokers: []string{"127.0.0.1:9092"}, SASLUser: c.user}
			_, err := cfg.ClientOpts(nil)
			if err == nil {
				t.Fatal("options built; the credentials would be ignored")
			}
			for _, w := range append(c.want, "INLET_KAFKA_SASL_MECHANISM") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v, want an error mentioning %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

package main

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/inletdev/inlet/pkg/service/servicetest"
)

// TestCheckConfigKafka: --check-config builds the Kafka and registry client
// options a start builds, so a SASL, TLS or password-file setting that
// cannot work fails the check, not the first connection.
func TestCheckConfigKafka(t *testing.T) {
	setSourceSecrets(t)
	servicetest.CheckKafkaSettings(t, func() error {
		return run([]string{"-check-config", "-sources", exampleSources}, io.Discard)
	})
}

// exampleSources is the shipped sources file the checks read.
const exampleSources = "../../deploy/sources.example.yaml"

// setSourceSecrets sets the secrets exampleSources names: ingest reads
// them at start, and so does its check.
func setSourceSecrets(t *testing.T) {
	t.Helper()
	for k, v := range map[string]string{
		"STRIPE_WEBHOOK_SECRET":  "whsec_test",
		"GITHUB_WEBHOOK_SECRET":  "test",
		"SHOPIFY_WEBHOOK_SECRET": "test",
		"BILLING_WHSEC":          "whsec_dGVzdA==",
		"BILLING_EVENTS_TOKEN":   "test-token-0123456789",
	} {
		t.Setenv(k, v)
	}
}

// TestCheckConfigBodyBudget: --check-config refuses a source whose bodies
// could never be read within -max-body-bytes-in-flight, as a start does.
func TestCheckConfigBodyBudget(t *testing.T) {
	setSourceSecrets(t)
	if err := run([]string{"-check-config", "-sources", exampleSources}, io.Discard); err != nil {
		t.Fatalf("default budget: %v", err)
	}
	err := run([]string{"-check-config", "-sources", exampleSources, "-max-body-bytes-in-flight", "1000"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "max-body-bytes-in-flight") {
		t.Fatalf("a 1000-byte budget: %v, want the sources refused naming the flag", err)
	}
}

// TestCheckConfigListenAddrs: a listen address that is not one fails
// --check-config naming its flag; it passed, and the start failed only
// after the wait for Kafka, naming neither flag.
func TestCheckConfigListenAddrs(t *testing.T) {
	setSourceSecrets(t)
	for _, c := range []struct{ flag, value, want string }{
		{"-ingest-addr", "garbage", "-ingest-addr (INLET_INGEST_ADDR)"},
		{"-admin-addr", "127.0.0.1:-1", "-admin-addr (INLET_ADMIN_ADDR)"},
	} {
		err := run([]string{"-check-config", "-sources", exampleSources, c.flag, c.value}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: %v, want refused naming %s", c.flag, c.value, err, c.want)
		}
	}
}

// TestCheckConfigListenAddrsApart: -ingest-addr and -admin-addr on one
// port (the same host, or either on every address) fail --check-config
// naming both; it passed, and the start failed binding the second.
func TestCheckConfigListenAddrsApart(t *testing.T) {
	setSourceSecrets(t)
	for _, c := range []struct {
		ingest, admin string
		refused       bool
	}{
		{"127.0.0.1:18080", "127.0.0.1:18080", true},
		{":18080", "127.0.0.1:18080", true},
		{"127.0.0.1:18080", "0.0.0.0:18080", true},
		{"[::]:18080", ":18080", true},
		{"127.0.0.1:0", "127.0.0.1:0", false}, // each its own port
		{"127.0.0.1:18080", "127.0.0.2:18080", false},
		{"127.0.0.1:18080", "127.0.0.1:18081", false},
	} {
		err := run([]string{"-check-config", "-sources", exampleSources, "-ingest-addr", c.ingest, "-admin-addr", c.admin}, io.Discard)
		switch {
		case !c.refused && err != nil:
			t.Errorf("-ingest-addr %s -admin-addr %s: %v", c.ingest, c.admin, err)
		case c.refused && (err == nil || !strings.Contains(err.Error(), "-ingest-addr (INLET_INGEST_ADDR)") || !strings.Contains(err.Error(), "-admin-addr (INLET_ADMIN_ADDR)")):
			t.Errorf("-ingest-addr %s -admin-addr %s: %v, want refused naming both", c.ingest, c.admin, err)
		}
	}
}

// TestCheckConfigNamesTheFlags: settings ingest refuses are named by
// flag and variable: a missing sources file (with its path), retry tiers
// that cannot work, a registry URL that is not http(s), a log level.
func TestCheckConfigNamesTheFlags(t *testing.T) {
	setSourceSecrets(t)
	missing := t.TempDir() + "/sources.yaml"
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"-sources", missing}, []string{"-sources (INLET_SOURCES)", missing}},
		{[]string{"-sources", exampleSources, "-retry-tiers", "30s,30s"}, []string{"-retry-tiers (INLET_RETRY_TIERS)", "twice"}},
		{[]string{"-sources", exampleSources, "-retry-tiers", ","}, []string{"-retry-tiers (INLET_RETRY_TIERS)"}},
		{[]string{"-sources", exampleSources, "-schema-registry-url", "localhost:8081"}, []string{"-schema-registry-url (INLET_SCHEMA_REGISTRY_URL)"}},
		{[]string{"-sources", exampleSources, "-log-level", "verbose"}, []string{"-log-level (INLET_LOG_LEVEL)", "debug, info, warn or error"}},
		{[]string{"-sources", exampleSources, "-topic-partitions", "0"}, []string{"-topic-partitions (INLET_TOPIC_PARTITIONS)"}},
	} {
		err := run(append([]string{"-check-config"}, c.args...), io.Discard)
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %v, want an error mentioning %q", c.args, err, w)
			}
		}
	}
}

// TestCheckConfigRefusesStrayArguments: the flag package stops at the
// first word that is not a flag, so "-kafka-tls true" (a bool flag takes
// no separate value) dropped every flag after it, here -topic-partitions
// 0, which is refused alone, and --check-config said ok. Also the
// -drain-timeout, -retry-after and -idle-timeout below zero it accepted.
func TestCheckConfigRefusesStrayArguments(t *testing.T) {
	setSourceSecrets(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-topic-partitions", "0"}, "-topic-partitions"},
		{[]string{"-kafka-tls", "true", "-topic-partitions", "0"}, `unexpected argument "true"`},
		{[]string{"-drain-timeout", "-1s"}, "drain-timeout must be positive"},
		{[]string{"-retry-after", "-1s"}, "retry-after must be positive"},
		{[]string{"-idle-timeout", "-1s"}, "idle-timeout must be 0"},
	} {
		err := run(append([]string{"-check-config", "-sources", exampleSources}, c.args...), io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error saying %q", c.args, err, c.want)
		}
	}
}

// TestBodyMinRateFlag: -body-min-rate is a flag of ingest, taken from
// INLET_BODY_MIN_RATE too, shown with its default in the usage; a
// negative rate is refused naming it, and 0 (no minimum) is accepted.
func TestBodyMinRateFlag(t *testing.T) {
	setSourceSecrets(t)
	var out bytes.Buffer
	if err := run([]string{"-h"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"-body-min-rate", "INLET_BODY_MIN_RATE", "(default 1024)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the usage lacks %q:\n%s", want, out.String())
		}
	}
	check := func(args ...string) error {
		return run(append([]string{"-check-config", "-sources", exampleSources}, args...), io.Discard)
	}
	if err := check("-body-min-rate", "0"); err != nil {
		t.Errorf("-body-min-rate 0: %v", err)
	}
	if err := check("-body-min-rate", "-1"); err == nil || !strings.Contains(err.Error(), "body-min-rate must be 0") {
		t.Errorf("-body-min-rate -1: %v, want it refused", err)
	}
	t.Setenv("INLET_BODY_MIN_RATE", "-1")
	if err := check(); err == nil || !strings.Contains(err.Error(), "body-min-rate must be 0") {
		t.Errorf("INLET_BODY_MIN_RATE=-1: %v, want it refused", err)
	}
	t.Setenv("INLET_BODY_MIN_RATE", "fast")
	if err := check(); err == nil || !strings.Contains(err.Error(), "INLET_BODY_MIN_RATE") {
		t.Errorf("INLET_BODY_MIN_RATE=fast: %v, want an error naming the variable", err)
	}
}

// TestCheckConfigRefusesTheSecretExample: deploy/k8s/secret-example.yaml
// applied as it is gave ingest its REPLACE_ME values as webhook secrets,
// and anyone could sign events with them. The check (and so the start)
// fails naming each variable that holds the placeholder.
func TestCheckConfigRefusesTheSecretExample(t *testing.T) {
	b, err := os.ReadFile("../../deploy/k8s/secret-example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var secret struct {
		StringData map[string]string `yaml:"stringData"`
	}
	if err := yaml.Unmarshal(b, &secret); err != nil {
		t.Fatal(err)
	}
	for k, v := range secret.StringData {
		t.Setenv(k, v)
	}
	err = run([]string{"-check-config", "-sources", exampleSources}, io.Discard)
	if err == nil {
		t.Fatal("the Secret example's placeholders passed the check")
	}
	for _, env := range []string{"STRIPE_WEBHOOK_SECRET", "GITHUB_WEBHOOK_SECRET", "SHOPIFY_WEBHOOK_SECRET", "BILLING_EVENTS_TOKEN"} {
		if !strings.Contains(err.Error(), "("+env+") holds the placeholder") {
			t.Errorf("error does not name %s as a placeholder: %v", env, err)
		}
	}
}

package main

import (
	"strings"
	"testing"

	"github.com/inletdev/inlet/pkg/service/servicetest"
)

// TestCheckConfig: --check-config reads every setting a start reads, so a
// configuration it passes gets a start past its configuration, and one it
// refuses is refused without the secrets it holds in the message.
func TestCheckConfig(t *testing.T) {
	if err := run([]string{"-check-config", "-sources", exampleSources}); err != nil {
		t.Fatalf("the example configuration: %v", err)
	}
	for _, c := range []struct {
		env, value, want string
	}{
		{"INLET_RETRY_TIERS", "bogus", "bogus"},
		{"INLET_HISTORY_RETENTION", "-1h", "history-retention"},
		{"INLET_REDIS_URL", "redis://:pa%zzss@redis:6379/0", "INLET_REDIS_URL"},
		{"INLET_ADMIN_TOKEN_FILE", "/nonexistent/token", "INLET_ADMIN_TOKEN"},
		{"INLET_ALERT_FORMAT", "slak", "alert-format"},
		{"INLET_ALERT_WEBHOOK_URL", "hooks.slack.com/services/T0/B0/SECRET", "alert-webhook-url"},
		{"INLET_CLAIM_LEASE", "40s", "claim lease"},
	} {
		t.Run(c.env, func(t *testing.T) {
			t.Setenv(c.env, c.value)
			err := run([]string{"-check-config", "-sources", exampleSources})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%s=%s: %v, want an error mentioning %q", c.env, c.value, err, c.want)
			}
			for _, secret := range []string{"pa%zzss", "SECRET"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("the error shows a secret: %v", err)
				}
			}
		})
	}
}

// TestCheckConfigKafka: --check-config builds the Kafka and registry client
// options a start builds, so a SASL, TLS or password-file setting that
// cannot work fails the check, not the first connection.
func TestCheckConfigKafka(t *testing.T) {
	servicetest.CheckKafkaSettings(t, func() error {
		return run([]string{"-check-config", "-sources", exampleSources})
	})
}

// exampleSources is the shipped sources file the checks read.
const exampleSources = "../../deploy/sources.example.yaml"

package main

import (
	"strings"
	"testing"

	"github.com/inletdev/inlet/pkg/service/servicetest"
)

// TestCheckConfigKafka: --check-config builds the Kafka and registry client
// options a start builds, so a SASL, TLS or password-file setting that
// cannot work fails the check, not the first connection.
func TestCheckConfigKafka(t *testing.T) {
	for k, v := range map[string]string{
		"STRIPE_WEBHOOK_SECRET":  "whsec_test",
		"GITHUB_WEBHOOK_SECRET":  "test",
		"SHOPIFY_WEBHOOK_SECRET": "test",
		"BILLING_WHSEC":          "whsec_dGVzdA==",
		"BILLING_EVENTS_TOKEN":   "test",
	} {
		t.Setenv(k, v) // ingest reads the sources' secrets
	}
	servicetest.CheckKafkaSettings(t, func() error {
		return run([]string{"-check-config", "-sources", "../../deploy/sources.example.yaml"})
	})
}

// TestCheckConfigBodyBudget: --check-config refuses a source whose bodies
// could never be read within -max-body-bytes-in-flight, as a start does.
func TestCheckConfigBodyBudget(t *testing.T) {
	for k, v := range map[string]string{
		"STRIPE_WEBHOOK_SECRET":  "whsec_test",
		"GITHUB_WEBHOOK_SECRET":  "test",
		"SHOPIFY_WEBHOOK_SECRET": "test",
		"BILLING_WHSEC":          "whsec_dGVzdA==",
		"BILLING_EVENTS_TOKEN":   "test",
	} {
		t.Setenv(k, v)
	}
	const sources = "../../deploy/sources.example.yaml"
	if err := run([]string{"-check-config", "-sources", sources}); err != nil {
		t.Fatalf("default budget: %v", err)
	}
	err := run([]string{"-check-config", "-sources", sources, "-max-body-bytes-in-flight", "1000"})
	if err == nil || !strings.Contains(err.Error(), "max-body-bytes-in-flight") {
		t.Fatalf("a 1000-byte budget: %v, want the sources refused naming the flag", err)
	}
}

package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCheckConfigKafka: --check-config builds the Kafka and registry client
// options a start builds, so a SASL, TLS or password-file setting that
// cannot work fails the check, not the first connection.
func TestCheckConfigKafka(t *testing.T) {
	const sources = "../../deploy/sources.example.yaml"
	for k, v := range map[string]string{
		"STRIPE_WEBHOOK_SECRET":  "whsec_test",
		"GITHUB_WEBHOOK_SECRET":  "test",
		"SHOPIFY_WEBHOOK_SECRET": "test",
		"BILLING_WHSEC":          "whsec_dGVzdA==",
		"BILLING_EVENTS_TOKEN":   "test",
	} {
		t.Setenv(k, v) // ingest reads the sources' secrets
	}
	dir := t.TempDir()
	ca := writeCA(t, dir)
	pass := filepath.Join(dir, "sasl-password")
	if err := os.WriteFile(pass, []byte("s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("good", func(t *testing.T) {
		t.Setenv("INLET_KAFKA_TLS_CA", ca)
		t.Setenv("INLET_KAFKA_SASL_MECHANISM", "scram-sha-512")
		t.Setenv("INLET_KAFKA_SASL_USER", "inlet")
		t.Setenv("INLET_KAFKA_SASL_PASSWORD_FILE", pass)
		if err := run([]string{"-check-config", "-sources", sources}); err != nil {
			t.Fatalf("a good TLS and SASL configuration: %v", err)
		}
	})
	for _, c := range []struct {
		name string
		env  [][2]string
		want []string
	}{
		{"missing TLS CA", [][2]string{{"INLET_KAFKA_TLS_CA", dir + "/nonexistent-ca.pem"}}, []string{"TLS CA", dir + "/nonexistent-ca.pem"}},
		{"TLS CA without certificates", [][2]string{{"INLET_KAFKA_TLS_CA", pass}}, []string{"TLS CA", pass}},
		{"unknown SASL mechanism", [][2]string{{"INLET_KAFKA_SASL_MECHANISM", "scram-md5"}}, []string{"SASL mechanism", "scram-md5"}},
		{"missing SASL password file", [][2]string{
			{"INLET_KAFKA_SASL_MECHANISM", "plain"},
			{"INLET_KAFKA_SASL_PASSWORD_FILE", dir + "/nonexistent-password"},
		}, []string{"INLET_KAFKA_SASL_PASSWORD_FILE", dir + "/nonexistent-password"}},
		{"missing registry password file", [][2]string{
			{"INLET_SCHEMA_REGISTRY_USER", "inlet"},
			{"INLET_SCHEMA_REGISTRY_PASSWORD_FILE", dir + "/nonexistent-password"},
		}, []string{"INLET_SCHEMA_REGISTRY_PASSWORD_FILE", dir + "/nonexistent-password"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, kv := range c.env {
				t.Setenv(kv[0], kv[1])
			}
			err := run([]string{"-check-config", "-sources", sources})
			if err == nil {
				t.Fatal("the check passed")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("%v, want an error mentioning %q", err, w)
				}
			}
		})
	}
}

// writeCA writes a self-signed CA certificate as PEM and returns its path.
func writeCA(t *testing.T, dir string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "inlet test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
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

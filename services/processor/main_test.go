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

// TestCheckConfig: --check-config reads every setting a start reads, so a
// configuration it passes gets a start past its configuration, and one it
// refuses is refused without the secrets it holds in the message.
func TestCheckConfig(t *testing.T) {
	const sources = "../../deploy/sources.example.yaml"
	if err := run([]string{"-check-config", "-sources", sources}); err != nil {
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
			err := run([]string{"-check-config", "-sources", sources})
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
	const sources = "../../deploy/sources.example.yaml"
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

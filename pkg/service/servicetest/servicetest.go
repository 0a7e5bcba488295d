// Package servicetest holds the tests the services' commands share: the
// Kafka and schema-registry settings --check-config must refuse.
package servicetest

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

// CheckKafkaSettings runs check (a service's --check-config) with good
// TLS, SASL and registry credentials, which must pass, and with settings
// that cannot work, each of which must fail naming the problem and no
// secret: --check-config builds the Kafka and registry client options a
// start builds. A credential that would be ignored or sent empty (a SASL
// mechanism without its user or password, a registry user without a
// password or with a token too, a registry password without a user) is
// such a setting.
func CheckKafkaSettings(t *testing.T, check func() error) {
	t.Helper()
	dir := t.TempDir()
	ca := writeCA(t, dir)
	pass := filepath.Join(dir, "sasl-password")
	if err := os.WriteFile(pass, []byte("s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty-password")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		env  [][2]string
	}{
		{"good TLS and SASL", [][2]string{
			{"INLET_KAFKA_TLS_CA", ca},
			{"INLET_KAFKA_SASL_MECHANISM", "scram-sha-512"},
			{"INLET_KAFKA_SASL_USER", "inlet"},
			{"INLET_KAFKA_SASL_PASSWORD_FILE", pass},
		}},
		{"good registry basic auth", [][2]string{
			{"INLET_SCHEMA_REGISTRY_USER", "inlet"},
			{"INLET_SCHEMA_REGISTRY_PASSWORD_FILE", pass},
		}},
		{"good registry token", [][2]string{{"INLET_SCHEMA_REGISTRY_TOKEN", "tok-s3cr3t"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, kv := range c.env {
				t.Setenv(kv[0], kv[1])
			}
			if err := check(); err != nil {
				t.Fatalf("a good configuration: %v", err)
			}
		})
	}
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
		// Credentials that were used empty or ignored without a word.
		{"SASL mechanism without a password", [][2]string{
			{"INLET_KAFKA_SASL_MECHANISM", "scram-sha-256"},
			{"INLET_KAFKA_SASL_USER", "inlet"},
		}, []string{"SASL mechanism", "INLET_KAFKA_SASL_PASSWORD", "INLET_KAFKA_SASL_PASSWORD_FILE"}},
		{"SASL password file empty", [][2]string{
			{"INLET_KAFKA_SASL_MECHANISM", "plain"},
			{"INLET_KAFKA_SASL_USER", "inlet"},
			{"INLET_KAFKA_SASL_PASSWORD_FILE", empty},
		}, []string{"SASL mechanism", "INLET_KAFKA_SASL_PASSWORD_FILE"}},
		{"SASL mechanism without a user", [][2]string{
			{"INLET_KAFKA_SASL_MECHANISM", "plain"},
			{"INLET_KAFKA_SASL_PASSWORD", "pw-s3cr3t"},
		}, []string{"SASL mechanism", "INLET_KAFKA_SASL_USER"}},
		{"registry password without a user", [][2]string{
			{"INLET_SCHEMA_REGISTRY_PASSWORD", "pw-s3cr3t"},
		}, []string{"INLET_SCHEMA_REGISTRY_PASSWORD", "INLET_SCHEMA_REGISTRY_USER"}},
		{"registry password file without a user", [][2]string{
			{"INLET_SCHEMA_REGISTRY_PASSWORD_FILE", pass},
		}, []string{"INLET_SCHEMA_REGISTRY_PASSWORD_FILE", "INLET_SCHEMA_REGISTRY_USER"}},
		{"registry user without a password", [][2]string{
			{"INLET_SCHEMA_REGISTRY_USER", "inlet"},
		}, []string{"INLET_SCHEMA_REGISTRY_USER", "INLET_SCHEMA_REGISTRY_PASSWORD"}},
		{"registry user with a token", [][2]string{
			{"INLET_SCHEMA_REGISTRY_USER", "inlet"},
			{"INLET_SCHEMA_REGISTRY_PASSWORD", "pw-s3cr3t"},
			{"INLET_SCHEMA_REGISTRY_TOKEN", "tok-s3cr3t"},
		}, []string{"INLET_SCHEMA_REGISTRY_USER", "INLET_SCHEMA_REGISTRY_TOKEN"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, kv := range c.env {
				t.Setenv(kv[0], kv[1])
			}
			err := check()
			if err == nil {
				t.Fatal("the check passed")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("%v, want an error mentioning %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Fatalf("the error shows a secret: %v", err)
			}
		})
	}
}

// writeCA writes a self-signed CA certificate as PEM in dir and returns
// its path.
func writeCA(t testing.TB, dir string) string {
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

package main

import (
	"bytes"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/service"
	"github.com/inletdev/inlet/pkg/service/servicetest"
)

// TestConnectionHints: a command that cannot reach Kafka or the registry
// says which setting names the address, not only "dial tcp …: connection
// refused".
func TestConnectionHints(t *testing.T) {
	kafkaAddr, srAddr := servicetest.ClosedAddr(t), servicetest.ClosedAddr(t)
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"-kafka-brokers", kafkaAddr, "dlq", "depth"}, []string{"Kafka does not answer at " + kafkaAddr, "INLET_KAFKA_BROKERS (now " + kafkaAddr + ")"}},
		{[]string{"-kafka-brokers", kafkaAddr, "-schema-registry-url", "http://" + srAddr, "dlq", "ls"}, []string{"schema registry does not answer at " + srAddr, "INLET_SCHEMA_REGISTRY_URL (now http://" + srAddr + ")"}},
	} {
		code, err := run(c.args, &bytes.Buffer{})
		if code != exitError || err == nil {
			t.Fatalf("%v: exit %d, %v", c.args, code, err)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %q does not say %q", c.args, err, w)
			}
		}
	}
	// Another address (Redis, for replay) keeps its own error.
	other := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 6379}, Err: errors.New("connection refused")}
	kcfg := &kafka.Config{Brokers: []string{"127.0.0.1:9092"}}
	rcfg := &service.RegistryConfig{URLs: []string{"http://127.0.0.1:8081"}}
	if got := withConnectionHint(other, kcfg, rcfg); got != error(other) {
		t.Errorf("a Redis dial error got a hint: %v", got)
	}
}

// TestReconcileStripeUnreachableIsNotBlamedOnTheRegistry: a Stripe API
// that cannot be dialed (an egress firewall) was reported as "the schema
// registry does not answer": a registry URL naming its host by name was
// taken to match any address on its port (443 for both, with https).
func TestReconcileStripeUnreachableIsNotBlamedOnTheRegistry(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing answers there: as Stripe's API behind a firewall
	t.Setenv("STRIPE_API_KEY", "sk_test_1")
	t.Setenv("INLET_STRIPE_API_URL", "http://127.0.0.1:"+strconv.Itoa(port))
	flags := []string{"-kafka-brokers", "127.0.0.1:1", "-schema-registry-url", "http://schema-registry.internal:" + strconv.Itoa(port)}
	code, err := run(append(flags, "reconcile", "--source", "stripe", "--stripe"), &bytes.Buffer{})
	if code != exitError || err == nil {
		t.Fatalf("exit %d (%v), want %d", code, err, exitError)
	}
	if strings.Contains(err.Error(), "schema registry") {
		t.Fatalf("the Stripe API was unreachable, the error blames the schema registry:\n%v", err)
	}
}

// TestSameAddr: a host name matches the addresses it resolves to, not
// every address on its port.
func TestSameAddr(t *testing.T) {
	for _, c := range []struct {
		host, addr, scheme string
		want               bool
	}{
		{"127.0.0.1:8081", "127.0.0.1:8081", "", true},
		{"127.0.0.1:8081", "127.0.0.2:8081", "", false},
		{"localhost:8081", "127.0.0.1:8081", "", true},
		{"localhost", "127.0.0.1:443", "https", true},
		{"localhost:8081", "127.0.0.1:8082", "", false},
		{"registry.invalid:443", "127.0.0.1:443", "", false},
	} {
		if got := sameAddr(c.host, c.addr, c.scheme); got != c.want {
			t.Errorf("sameAddr(%q, %q, %q) = %v, want %v", c.host, c.addr, c.scheme, got, c.want)
		}
	}
}

// TestRedisConnectionHint: replay and replay ls/rm with Redis unreachable
// named only "dial tcp 127.0.0.1:6379: connection refused", an address the
// operator never typed (-redis-url's default), without the setting that
// gives it, as the Kafka and registry errors do.
func TestRedisConnectionHint(t *testing.T) {
	_, _, flags := cliEnv(t)
	redisAddr := servicetest.ClosedAddr(t)
	t.Setenv("INLET_REDIS_URL", "redis://"+redisAddr+"/0")
	to := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	for _, args := range [][]string{
		{"replay", "ls"},
		{"replay", "rm", "--dry-run", "gone"},
		{"replay", "--source", "stripe", "--to", to, "--id", "hint"},
	} {
		var code int
		var err error
		stderrOf(t, func() { code, err = run(append(append([]string{}, flags...), args...), &bytes.Buffer{}) })
		if code != exitError || err == nil {
			t.Fatalf("%v: exit %d (%v), want %d", args, code, err, exitError)
		}
		for _, w := range []string{"Redis does not answer at " + redisAddr, "-redis-url or INLET_REDIS_URL (now " + redisAddr + ")"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %q does not say %q", args, err, w)
			}
		}
	}
	// A Kafka or registry address keeps its own hint, not Redis's.
	ropt, err := (&service.RedisConfig{URL: "redis://127.0.0.1:6379/0"}).Parse()
	if err != nil {
		t.Fatal(err)
	}
	other := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9092}, Err: errors.New("connection refused")}
	if got := withRedisHint(other, ropt); got != error(other) {
		t.Errorf("a Kafka dial error got the Redis hint: %v", got)
	}
}

package main

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/service"
)

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestConnectionHints: a command that cannot reach Kafka or the registry
// says which setting names the address, not only "dial tcp …: connection
// refused".
func TestConnectionHints(t *testing.T) {
	kafkaAddr, srAddr := closedAddr(t), closedAddr(t)
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

//go:build unix

package service

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReserveHoldsThePortUnanswered: a reserved port refuses connections
// (nothing waits in a backlog for a service that cannot serve yet), no one
// else can listen on it, and Listen then serves on it.
func TestReserveHoldsThePortUnanswered(t *testing.T) {
	for _, host := range []string{"127.0.0.1", ""} {
		probe, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := probe.Addr().(*net.TCPAddr).Port
		probe.Close()
		addr := net.JoinHostPort(host, strconv.Itoa(port))
		r, err := Reserve("ingest-addr", "INLET_INGEST_ADDR", addr)
		if err != nil {
			t.Fatalf("Reserve(%q): %v", addr, err)
		}
		dial := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if c, err := net.DialTimeout("tcp", dial, time.Second); err == nil {
			c.Close()
			t.Fatalf("%q reserved: a connection was accepted", addr)
		} else if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("%q reserved: dial = %v, want connection refused", addr, err)
		}
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			t.Fatalf("%q reserved: another listener took the port", addr)
		}
		if _, err := Reserve("ingest-addr", "INLET_INGEST_ADDR", addr); err == nil || !strings.Contains(err.Error(), "-ingest-addr (INLET_INGEST_ADDR)") {
			t.Fatalf("a second Reserve(%q) = %v, want an error naming the flag", addr, err)
		}
		ln, err := r.Listen()
		if err != nil {
			t.Fatalf("Listen on %q: %v", addr, err)
		}
		go func() {
			if c, err := ln.Accept(); err == nil {
				c.Close()
			}
		}()
		c, err := net.DialTimeout("tcp", dial, 5*time.Second)
		if err != nil {
			t.Fatalf("%q listening: %v", addr, err)
		}
		c.Close()
		ln.Close()
		r.Close() // used up: does nothing
	}
}

// TestReserveAnyPortKeepsIt: ":0" reserves one port, the one Listen serves.
func TestReserveAnyPortKeepsIt(t *testing.T) {
	r, err := Reserve("ingest-addr", "INLET_INGEST_ADDR", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := r.Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if p := ln.Addr().(*net.TCPAddr).Port; p == 0 {
		t.Fatalf("listening on %v", ln.Addr())
	}
}

// TestReserveAfterARestart: a port whose last connections are in
// TIME_WAIT (the service closed them, then stopped) is reserved and served
// again at once, as net.Listen's is.
func TestReserveAfterARestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := <-accepted
	if !ok {
		t.Fatal("no connection accepted")
	}
	s.Close() // the server side closes first: TIME_WAIT on the service's port
	ln.Close()
	c.Close()
	r, err := Reserve("ingest-addr", "INLET_INGEST_ADDR", addr)
	if err != nil {
		t.Fatalf("Reserve after a restart: %v", err)
	}
	again, err := r.Listen()
	if err != nil {
		t.Fatalf("Listen after a restart: %v", err)
	}
	again.Close()
}

package main

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
)

// TestHelpExitsZero: -h or -help, on inletctl and on each command, prints
// the usage and exits 0, without connecting to anything: not 2 with
// "flag: help requested" (tail), nor taken for a command name (dlq -h,
// schemas -h).
func TestHelpExitsZero(t *testing.T) {
	// Nothing listens there: a -h that connects fails instead of hanging.
	conn := []string{"-kafka-brokers", "127.0.0.1:1", "-schema-registry-url", "http://127.0.0.1:1"}
	for _, args := range [][]string{
		{"-h"}, {"-help"},
		{"tail", "-h"}, {"tail", "-help"}, {"tail", "-n", "5", "--help"},
		{"trace", "-h"},
		{"dlq", "-h"}, {"invalid", "-help"}, {"dlq", "ls", "-h"}, {"invalid", "requeue", "--help"},
		{"replay", "-h"},
		{"reconcile", "-h"},
		{"schemas", "-h"}, {"schemas", "--help"}, {"schemas", "check", "-h"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out bytes.Buffer
			var code int
			var err error
			usage := stderrOf(t, func() { code, err = run(append(append([]string{}, conn...), args...), &out) })
			if code != exitOK || err != nil {
				t.Errorf("exit %d, %v; want 0 and no error", code, err)
			}
			if !strings.Contains(strings.ToLower(usage), "usage") {
				t.Errorf("no usage printed:\n%s", usage)
			}
		})
	}
}

// stderrOf returns what f writes to os.Stderr.
func stderrOf(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	read := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		read <- string(b)
	}()
	stderr := os.Stderr
	os.Stderr = w
	defer func() { os.Stderr = stderr }()
	f()
	w.Close()
	return <-read
}

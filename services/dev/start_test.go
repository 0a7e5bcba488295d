package main

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/inletdev/inlet/pkg/admin"
)

// startArgs are run's arguments for a stack on free ports with its data in
// dir, after the settings that would let it start; the environment holds
// the sample sources' secrets and an admin token.
func startArgs(t *testing.T, dir string, extra ...string) []string {
	t.Helper()
	for k, v := range devSecrets {
		t.Setenv(k, v) // run sets them otherwise, for the whole test process
	}
	t.Setenv(admin.EnvWriteToken, "test-token-0123456789")
	return append([]string{
		"-sources", "../../deploy/sources.example.yaml",
		"-data-dir", dir, "-kafka-port", "0", "-registry-port", "0", "-redis-port", "0",
		"-ingest-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0", "-log-level", "error",
	}, extra...)
}

// busyPort is a port something else listens on, until the test ends.
func busyPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// otherStackHint is the start of the hint added when a port is taken.
const otherStackHint = "is another `make run` running?"

// TestStartErrorHints: a start that fails because a port is taken says
// another stack may hold it and which flags pick others; one that fails
// for another reason (an unreadable Redis snapshot) says what its own
// error says, without that hint, which sent people hunting for a stack
// that was not there.
func TestStartErrorHints(t *testing.T) {
	t.Run("unreadable redis snapshot", func(t *testing.T) {
		dir := t.TempDir()
		snap := filepath.Join(dir, "redis.gob")
		if err := os.WriteFile(snap, []byte("not a snapshot"), 0o644); err != nil {
			t.Fatal(err)
		}
		err := run(startArgs(t, dir))
		if err == nil || !strings.Contains(err.Error(), snap) || !strings.Contains(err.Error(), "move it away") {
			t.Fatalf("%v, want the snapshot's path and to move it away", err)
		}
		if strings.Contains(err.Error(), otherStackHint) || strings.Contains(err.Error(), "-kafka-port") {
			t.Errorf("a hint about other stacks and ports on a snapshot error: %v", err)
		}
	})
	for _, flag := range []string{"-kafka-port", "-registry-port", "-redis-port"} {
		t.Run(flag+" taken", func(t *testing.T) {
			err := run(startArgs(t, t.TempDir(), flag, busyPort(t)))
			if err == nil || !strings.Contains(err.Error(), otherStackHint) || !strings.Contains(err.Error(), flag) || !strings.Contains(err.Error(), "-data-dir") {
				t.Fatalf("%v, want the hint about another stack, %s and -data-dir", err, flag)
			}
		})
	}
	for _, c := range []struct{ flag, env string }{{"-ingest-addr", "INLET_INGEST_ADDR"}, {"-admin-addr", "INLET_ADMIN_ADDR"}} {
		t.Run(c.flag+" taken", func(t *testing.T) {
			err := run(startArgs(t, t.TempDir(), c.flag, "127.0.0.1:"+busyPort(t)))
			if err == nil || !strings.Contains(err.Error(), otherStackHint) || !strings.Contains(err.Error(), c.env) {
				t.Fatalf("%v, want the hint about another stack and %s", err, c.env)
			}
		})
	}
}

// TestConfigErrorsLeaveNoData: a start refused for its settings creates
// nothing in the data directory (it used to leave the Kafka log, the
// registry's file and a Redis snapshot behind, as if a stack had run).
func TestConfigErrorsLeaveNoData(t *testing.T) {
	sources := func(t *testing.T, shop string) string {
		t.Helper()
		p := filepath.Join(t.TempDir(), "sources.yaml")
		if err := os.WriteFile(p, []byte("sources:\n  shop:\n    kind: shopify\n    secrets_env: [SHOPIFY_WEBHOOK_SECRET]\n"+shop), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const orders = "    events:\n      \"orders/*\":\n        contract: shopify/order\n        entity_key: \"shopify:order:{/id}\"\n"
	for _, c := range []struct {
		name string
		env  [2]string
		args func(t *testing.T) []string
		want string
	}{
		{"a source's max_body over -max-body-bytes-in-flight", [2]string{}, func(*testing.T) []string {
			return []string{"-max-body-bytes-in-flight", "1000"}
		}, "max-body-bytes-in-flight"},
		{"retry.max_attempts over the retry tiers", [2]string{}, func(t *testing.T) []string {
			return []string{"-sources", sources(t, "    retry: {max_attempts: 9}\n"+orders)}
		}, "retry.max_attempts 9"},
		{"retry tier without its topic", [2]string{}, func(t *testing.T) []string {
			return []string{"-sources", sources(t, "    retry: {tiers: [45s]}\n"+orders)}
		}, "45s"},
		{"a contract that does not exist", [2]string{}, func(t *testing.T) []string {
			return []string{"-sources", sources(t, strings.Replace(orders, "shopify/order", "shopify/no-such-contract", 1))}
		}, "no-such-contract"},
		{"an unreadable admin token file", [2]string{admin.EnvReadToken + "_FILE", "/nonexistent/inlet-read-token"}, func(*testing.T) []string {
			return nil
		}, admin.EnvReadToken + "_FILE"},
		{"an ingest address that is not one", [2]string{}, func(*testing.T) []string {
			return []string{"-ingest-addr", "garbage"}
		}, "-ingest-addr (INLET_INGEST_ADDR)"},
		{"an admin address that is not one", [2]string{}, func(*testing.T) []string {
			return []string{"-admin-addr", "127.0.0.1:70000"}
		}, "-admin-addr (INLET_ADMIN_ADDR)"},
		{"a Kafka port out of range", [2]string{}, func(*testing.T) []string {
			return []string{"-kafka-port", "-1"}
		}, "-kafka-port (INLET_DEV_KAFKA_PORT)"},
		{"a sources file that is not there", [2]string{}, func(t *testing.T) []string {
			return []string{"-sources", filepath.Join(t.TempDir(), "missing.yaml")}
		}, "-sources (INLET_SOURCES): open "},
		// Ports in use: found before the data directory is made.
		{"the ingest port in use", [2]string{}, func(t *testing.T) []string {
			return []string{"-ingest-addr", "127.0.0.1:" + busyPort(t)}
		}, "INLET_INGEST_ADDR"},
		{"the admin port in use", [2]string{}, func(t *testing.T) []string {
			return []string{"-admin-addr", "127.0.0.1:" + busyPort(t)}
		}, "INLET_ADMIN_ADDR"},
		{"the Kafka port in use", [2]string{}, func(t *testing.T) []string {
			return []string{"-kafka-port", busyPort(t)}
		}, "-kafka-port"},
		{"the registry port in use", [2]string{}, func(t *testing.T) []string {
			return []string{"-registry-port", busyPort(t)}
		}, "-registry-port"},
		{"the Redis port in use", [2]string{}, func(t *testing.T) []string {
			return []string{"-redis-port", busyPort(t)}
		}, "-redis-port"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			args := startArgs(t, dir)
			if c.env[0] != "" {
				t.Setenv(c.env[0], c.env[1])
			}
			err := run(append(args, c.args(t)...))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v, want an error mentioning %q", err, c.want)
			}
			entries, derr := os.ReadDir(dir)
			if !errors.Is(derr, fs.ErrNotExist) {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				slices.Sort(names)
				t.Errorf("the data directory was made (%v), holding %v", derr, names)
			}
		})
	}
}

// TestSignalDuringStart: Ctrl-C (SIGINT, SIGTERM) while the stack starts
// stops it as one after the start does: run returns nil (exit 0) and the
// data directory is left as a stop leaves it. It returned the topic
// creation's "context canceled", once per topic, and make run said Error 1.
func TestSignalDuringStart(t *testing.T) {
	dir := t.TempDir()
	defer func(f func(context.Context)) { stackStarted = f }(stackStarted)
	stackStarted = func(ctx context.Context) {
		if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
			t.Error(err)
		}
		<-ctx.Done()
	}
	if err := run(startArgs(t, dir)); err != nil {
		t.Fatalf("run after SIGTERM during the start: %v, want nil (exit 0)", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "redis.gob")); err != nil {
		t.Errorf("no Redis snapshot after the stop: %v", err)
	}
}

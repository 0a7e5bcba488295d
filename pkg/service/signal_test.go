//go:build unix

package service

import (
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// TestSignalContextSIGHUP guards SIGHUP as a graceful stop: SIGHUP (the
// terminal running `make run` closed) stops as SIGTERM does; Go's default
// for it killed the process at once, with no drain and, for the dev stack,
// no Redis snapshot. Under nohup (SIGHUP ignored) it stays ignored. Run in
// a child process, as the default action ends the process that gets it.
func TestSignalContextSIGHUP(t *testing.T) {
	switch os.Getenv("INLET_TEST_SIGHUP") {
	case "stop":
		ctx, stop := SignalContext(slog.New(slog.DiscardHandler))
		defer stop()
		_ = syscall.Kill(os.Getpid(), syscall.SIGHUP)
		select {
		case <-ctx.Done():
			os.Exit(0)
		case <-time.After(10 * time.Second):
			os.Exit(3)
		}
	case "ignored":
		signal.Ignore(syscall.SIGHUP)
		_, stop := SignalContext(slog.New(slog.DiscardHandler))
		defer stop()
		if !signal.Ignored(syscall.SIGHUP) {
			os.Exit(4)
		}
		os.Exit(0)
	}
	for _, mode := range []string{"stop", "ignored"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSignalContextSIGHUP$")
		cmd.Env = append(os.Environ(), "INLET_TEST_SIGHUP="+mode)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %v (%s)", mode, err, out)
		}
	}
}

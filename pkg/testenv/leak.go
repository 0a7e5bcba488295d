package testenv

import (
	"bufio"
	"cmp"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/testenv/poll"
)

// Baseline is a count of the process's goroutines and open file
// descriptors, with the goroutine stacks behind it, taken once a soak
// test has warmed up (clients connected, loops started).
type Baseline struct {
	goroutines int
	fds        int // -1: not readable here (no /proc)
	stacks     map[string]int
}

// TakeBaseline counts the goroutines and open fds now.
func TakeBaseline() Baseline {
	return Baseline{goroutines: runtime.NumGoroutine(), fds: openFDs(), stacks: goroutineStacks()}
}

// Settled polls, until timeout, for the goroutines and open fds to be back
// within tolerance of b, calling tidy (when not nil) before each look: a
// test's own idle keep-alive connections, say, are not the code's. On
// timeout it fails t naming the stacks that grew since b, most first, so
// the leaking site is in the failure message.
func (b Baseline) Settled(t testing.TB, tolerance int, timeout time.Duration, what string, tidy func()) {
	t.Helper()
	var g, fds int
	ok := poll.Until(timeout, func() bool {
		if tidy != nil {
			tidy()
		}
		g, fds = runtime.NumGoroutine(), openFDs()
		return g <= b.goroutines+tolerance && (b.fds < 0 || fds <= b.fds+tolerance)
	})
	if ok {
		return
	}
	t.Errorf("%s: %d goroutines (baseline %d) and %d open fds (baseline %d) after %v, tolerance %d; goroutines that grew, by stack:\n%s",
		what, g, b.goroutines, fds, b.fds, timeout, tolerance, b.grown())
}

// grown lists the stacks more goroutines sit in now than at b.
func (b Baseline) grown() string {
	type delta struct {
		stack string
		n, d  int
	}
	var ds []delta
	for s, n := range goroutineStacks() {
		if d := n - b.stacks[s]; d > 0 {
			ds = append(ds, delta{s, n, d})
		}
	}
	slices.SortFunc(ds, func(x, y delta) int { return cmp.Or(y.d-x.d, strings.Compare(x.stack, y.stack)) })
	var out strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&out, "+%d (now %d):\n%s\n", d.d, d.n, d.stack)
	}
	return out.String()
}

// goroutineStacks is the goroutine profile grouped by stack (debug=1),
// keyed by the stack's symbolised frames, without addresses (which are the
// same within one binary, but the frames are what reads).
func goroutineStacks() map[string]int {
	var sb strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&sb, 1)
	out := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(sb.String()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	n, frames := 0, []string(nil)
	flush := func() {
		// The goroutine taking the profile is not one that grew.
		if n > 0 && len(frames) > 0 && !strings.Contains(frames[len(frames)-1], "runtime/pprof") && !slices.ContainsFunc(frames, func(f string) bool { return strings.Contains(f, "testenv.goroutineStacks") }) {
			out[strings.Join(frames, "\n")] += n
		}
		n, frames = 0, nil
	}
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			flush()
		case strings.Contains(line, " @ 0x") && !strings.HasPrefix(line, "#"):
			flush()
			n, _ = strconv.Atoi(strings.Fields(line)[0])
		case strings.HasPrefix(line, "#\t"):
			// "#\t0x4a1b2c\tpkg.fn+0x12\t/path/file.go:42"
			if f := strings.SplitN(line, "\t", 4); len(f) == 4 {
				frames = append(frames, "\t"+f[2]+"\t"+f[3])
			}
		}
	}
	flush()
	return out
}

// openFDs counts the process's open file descriptors, or -1 where
// /proc/self/fd cannot be read.
func openFDs() int {
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(es)
}

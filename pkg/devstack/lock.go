package devstack

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// lockFile is the data directory's lock. The file stays after Close (removing
// it would race with a stack that has just opened it); the lock is the
// advisory flock on it, which the kernel drops with the process, so a killed
// stack leaves nothing to clean up.
const lockFile = "inlet.lock"

// ErrDataDirInUse is returned by Start when another dev stack (another
// `make run`, or a test) holds the data directory: two stacks on one
// directory would write one Kafka log, hand out schema IDs independently and
// overwrite each other's registry and Redis snapshots. The error wrapping it
// names the directory and the process holding it.
var ErrDataDirInUse = errors.New("data directory in use")

// errLocked is what tryLock returns when another open file holds the lock.
var errLocked = errors.New("locked")

// dirLock holds a data directory for one stack.
type dirLock struct{ f *os.File }

// lockDataDir takes dir's lock, or fails at once with ErrDataDirInUse.
func lockDataDir(dir string) (*dirLock, error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock data directory %s: %w", dir, err)
	}
	if err := tryLock(f); err != nil {
		holder := "unknown pid"
		if b, rerr := os.ReadFile(path); rerr == nil && len(strings.TrimSpace(string(b))) > 0 {
			holder = "pid " + strings.TrimSpace(string(b))
		}
		f.Close()
		if errors.Is(err, errLocked) {
			abs, aerr := filepath.Abs(dir)
			if aerr != nil {
				abs = dir
			}
			return nil, fmt.Errorf("%w: %s is used by another dev stack (%s; another `make run`?): stop it, or give this one its own directory with -data-dir (INLET_DATA_DIR)", ErrDataDirInUse, abs, holder)
		}
		return nil, fmt.Errorf("lock data directory %s: %w", dir, err)
	}
	// The holder's pid, for the message above; best effort.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dirLock{f: f}, nil
}

// release gives the directory up. Safe on nil.
func (l *dirLock) release() {
	if l == nil {
		return
	}
	_ = l.f.Close() // closing the last descriptor drops the flock
}

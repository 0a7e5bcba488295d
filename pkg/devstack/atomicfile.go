package devstack

import (
	"io"
	"os"
	"path/filepath"
)

// writeFileAtomic writes path with write: a reader, or the next start
// after a crash, sees the old file or the new one, never a part. The new
// contents go to a temporary file named by pattern (which the next start
// removes when a killed stack left one), synced, then renamed over path,
// and the directory synced.
func writeFileAtomic(path, pattern string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), pattern)
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename: nothing there
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// The rename is in the directory: until the directory is synced, a
	// power loss can bring back the old file, and with it a schema id
	// already handed out.
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}

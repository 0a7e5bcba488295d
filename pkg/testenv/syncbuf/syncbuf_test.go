package syncbuf

import (
	"slices"
	"sync"
	"testing"
)

func TestLines(t *testing.T) {
	var b Buffer
	if got := b.Lines(); got != nil {
		t.Errorf("empty: %q", got)
	}
	b.Write([]byte("one\ntwo\nthr"))
	if got := b.Lines(); !slices.Equal(got, []string{"one", "two"}) {
		t.Errorf("lines %q, want the two complete ones", got)
	}
	b.Write([]byte("ee\n"))
	if got := b.Lines(); !slices.Equal(got, []string{"one", "two", "three"}) {
		t.Errorf("lines %q", got)
	}
}

// Run with -race: writers and a reader at once.
func TestConcurrent(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("x\n"))
				_ = b.Lines()
			}
		})
	}
	wg.Wait()
	if n := len(b.Lines()); n != 400 {
		t.Errorf("%d lines, want 400", n)
	}
}

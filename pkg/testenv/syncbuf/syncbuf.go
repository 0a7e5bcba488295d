// Package syncbuf is a bytes.Buffer that a writer in another goroutine (a
// logger, a command's output) and a test reading it can share. It has no
// dependencies, so tests of small packages can use it without pulling in
// the embedded stack.
package syncbuf

import (
	"bytes"
	"strings"
	"sync"
)

// Buffer is safe for concurrent Write and String.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Lines returns the complete lines written so far, without their newlines
// (a line still being written is left out).
func (s *Buffer) Lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	text := s.b.String()
	if i := strings.LastIndexByte(text, '\n'); i >= 0 {
		return strings.Split(text[:i], "\n")
	}
	return nil
}

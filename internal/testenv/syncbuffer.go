package testenv

import (
	"strings"
	"sync"
)

// SyncBuffer collects what concurrent writers (a server's log, say) write,
// for a test to read.
type SyncBuffer struct {
	mu sync.Mutex // guards b
	b  strings.Builder
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

package memory

import (
	"context"

	"github.com/idbroker/broker/storage"
)

// AppendAudit implements storage.Audit.
func (s *Store) AppendAudit(ctx context.Context, e storage.AuditEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.audit = append(s.audit, cloneAudit(e))
	return nil
}

// ListAudit implements storage.Audit: the latest limit events, newest
// first; all of them if limit is not positive.
func (s *Store) ListAudit(ctx context.Context, limit int) ([]storage.AuditEvent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.audit)
	if limit > 0 && limit < n {
		n = limit
	}
	out := make([]storage.AuditEvent, 0, n)
	for i := len(s.audit) - 1; len(out) < n; i-- {
		out = append(out, cloneAudit(s.audit[i]))
	}
	return out, nil
}

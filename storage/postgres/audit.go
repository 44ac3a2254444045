package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/idbroker/broker/storage"
)

// AppendAudit implements storage.Audit.
func (s *Store) AppendAudit(ctx context.Context, e storage.AuditEvent) error {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	if _, err := s.pool.Exec(ctx, `INSERT INTO audit_log (time, actor, action, target, details) VALUES ($1, $2, $3, $4, $5)`,
		e.Time, e.Actor, e.Action, e.Target, e.Details); err != nil {
		return fmt.Errorf("postgres: append audit: %w", err)
	}
	return nil
}

// ListAudit implements storage.Audit: the latest limit events, newest
// first (in the order they were appended); all of them if limit is not
// positive.
func (s *Store) ListAudit(ctx context.Context, limit int) ([]storage.AuditEvent, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var lim *int // NULL: LIMIT ALL
	if limit > 0 {
		lim = &limit
	}
	rows, err := s.pool.Query(ctx, `SELECT time, actor, action, target, details FROM audit_log ORDER BY id DESC LIMIT $1`, lim)
	if err != nil {
		return nil, fmt.Errorf("postgres: list audit: %w", err)
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.AuditEvent, error) {
		var e storage.AuditEvent
		err := row.Scan(&e.Time, &e.Actor, &e.Action, &e.Target, &e.Details)
		e.Time = e.Time.UTC()
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list audit: %w", err)
	}
	return events, nil
}

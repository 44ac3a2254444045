package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/idbroker/broker/storage"
)

// resealBatch is how many rows ResealUpstreamTokens reads at a time.
const resealBatch = 500

// ResealUpstreamTokens implements storage.Sessions: it walks the refresh
// families and then the sessions in batches by id, and replaces each
// token with a compare-and-swap on the bytes it read, so a broker
// running meanwhile is never overwritten with a stale token; a row whose
// swap misses is read again and retried.
func (s *Store) ResealUpstreamTokens(ctx context.Context, reseal func(old []byte) ([]byte, bool, error)) (storage.ResealCounts, error) {
	var counts storage.ResealCounts
	for _, table := range []string{"refresh_families", "sessions"} {
		if err := s.resealTable(ctx, table, reseal, &counts); err != nil {
			return counts, err
		}
	}
	return counts, nil
}

type sealedRow struct {
	id    string
	token []byte
}

func (s *Store) resealTable(ctx context.Context, table string, reseal func([]byte) ([]byte, bool, error), counts *storage.ResealCounts) error {
	after := ""
	for {
		rows, err := s.resealPage(ctx, table, after)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if err := s.resealRow(ctx, table, r, reseal, counts); err != nil {
				return err
			}
		}
		if len(rows) < resealBatch {
			return nil
		}
		after = rows[len(rows)-1].id
	}
}

func (s *Store) resealPage(ctx context.Context, table, after string) ([]sealedRow, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT id, upstream_refresh_token FROM `+table+`
		WHERE id > $1 AND length(upstream_refresh_token) > 0 ORDER BY id LIMIT $2`, after, resealBatch)
	if err != nil {
		return nil, fmt.Errorf("postgres: list upstream tokens of %s: %w", table, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (sealedRow, error) {
		var r sealedRow
		return r, row.Scan(&r.id, &r.token)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list upstream tokens of %s: %w", table, err)
	}
	return out, nil
}

// resealRow reseals one row, reading it again while a concurrent writer
// wins the swap.
func (s *Store) resealRow(ctx context.Context, table string, r sealedRow, reseal func([]byte) ([]byte, bool, error), counts *storage.ResealCounts) error {
	for {
		if len(r.token) == 0 {
			return nil
		}
		next, changed, err := reseal(r.token)
		switch {
		case errors.Is(err, storage.ErrUnreadable):
			counts.Unreadable++
			return nil
		case err != nil:
			return err
		case !changed:
			counts.Current++
			return nil
		}
		swapped, current, err := s.swapUpstream(ctx, table, r.id, r.token, next)
		if err != nil {
			return err
		}
		if swapped {
			counts.Resealed++
			return nil
		}
		r.token = current
	}
}

// swapUpstream replaces the row's token old with next; if the row holds
// something else, it returns that instead (nil for a row gone).
func (s *Store) swapUpstream(ctx context.Context, table, id string, old, next []byte) (swapped bool, current []byte, err error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `UPDATE `+table+` SET upstream_refresh_token = $3
		WHERE id = $1 AND upstream_refresh_token = $2`, id, old, next)
	if err != nil {
		return false, nil, fmt.Errorf("postgres: reseal upstream token in %s: %w", table, err)
	}
	if tag.RowsAffected() == 1 {
		return true, nil, nil
	}
	err = s.pool.QueryRow(ctx, `SELECT upstream_refresh_token FROM `+table+` WHERE id = $1`, id).Scan(&current)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil, nil
	}
	if err != nil {
		return false, nil, fmt.Errorf("postgres: reseal upstream token in %s: %w", table, err)
	}
	return false, current, nil
}

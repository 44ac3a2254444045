package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/idbroker/broker/storage"
)

// Postgres refuses text that is not UTF-8 or that holds a NUL (SQLSTATE
// 22021), and a NUL escaped in JSON for jsonb (22P05). Such text comes
// from a request, never from an outage, so every statement the store runs
// goes through the wrappers below, which report it as
// storage.ErrInvalidText: a key that slipped past the broker's own checks
// then reads as "not found", not as a store that cannot be reached.

// textError returns err, marked as storage.ErrInvalidText when Postgres
// refused the text it was given.
func textError(err error) error {
	if isCode(err, "22021") || isCode(err, "22P05") {
		return fmt.Errorf("%w: %w", storage.ErrInvalidText, err)
	}
	return err
}

// db is a connection pool whose statements report refused text through
// textError, and whose failures on a session the server ended drop every
// connection it holds (see sessionEnded).
type db struct{ *pgxpool.Pool }

func (p db) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tag, err := p.Pool.Exec(ctx, sql, args...)
	return tag, p.failed(err)
}

func (p db) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	rows, err := p.Pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, p.failed(err)
	}
	return textRows{rows, p}, nil
}

func (p db) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return textRow{p.Pool.QueryRow(ctx, sql, args...), p}
}

func (p db) Begin(ctx context.Context) (pgx.Tx, error) {
	tx, err := p.Pool.Begin(ctx)
	if err != nil {
		return nil, p.failed(err)
	}
	return textTx{tx}, nil
}

// failed returns err as textError does, after dropIfEnded.
func (p db) failed(err error) error {
	p.dropIfEnded(err)
	return textError(err)
}

// dropIfEnded drops every pooled connection when err says the server
// ended the session: what ends one (a restart, a failover) has almost
// always ended the others, and each would otherwise fail a request of its
// own before the pool noticed. Connections in use are closed when they
// are released. It reports whether it dropped them.
func (p db) dropIfEnded(err error) bool {
	if !sessionEnded(err) {
		return false
	}
	p.Reset()
	return true
}

// textTx is a transaction whose statements report refused text through
// textError.
type textTx struct{ pgx.Tx }

func (tx textTx) Begin(ctx context.Context) (pgx.Tx, error) { return textBegin(tx.Tx.Begin(ctx)) }

func (tx textTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return textExec(tx.Tx.Exec(ctx, sql, args...))
}

func (tx textTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return textQuery(tx.Tx.Query(ctx, sql, args...))
}

func (tx textTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return textRow{Row: tx.Tx.QueryRow(ctx, sql, args...)}
}

func (tx textTx) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	n, err := tx.Tx.CopyFrom(ctx, table, columns, src)
	return n, textError(err)
}

func (tx textTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return textBatch{tx.Tx.SendBatch(ctx, b)}
}

type textBatch struct{ pgx.BatchResults }

func (b textBatch) Exec() (pgconn.CommandTag, error) { return textExec(b.BatchResults.Exec()) }
func (b textBatch) Query() (pgx.Rows, error)         { return textQuery(b.BatchResults.Query()) }
func (b textBatch) QueryRow() pgx.Row                { return textRow{Row: b.BatchResults.QueryRow()} }
func (b textBatch) Close() error                     { return textError(b.BatchResults.Close()) }

// textRow and textRows report errors through textError, or through their
// pool's failed when they came from one rather than a transaction (whose
// errors reach inTxOn).
type textRow struct {
	pgx.Row
	pool db
}

func (r textRow) Scan(dest ...any) error { return r.pool.failedOrText(r.Row.Scan(dest...)) }

// textRows reports a refusal where pgx does: from Err once Next is false.
type textRows struct {
	pgx.Rows
	pool db
}

func (r textRows) Err() error { return r.pool.failedOrText(r.Rows.Err()) }

// failedOrText is failed for a pool's own statements and textError for a
// transaction's.
func (p db) failedOrText(err error) error {
	if p.Pool == nil {
		return textError(err)
	}
	return p.failed(err)
}

func textExec(tag pgconn.CommandTag, err error) (pgconn.CommandTag, error) {
	return tag, textError(err)
}

func textQuery(rows pgx.Rows, err error) (pgx.Rows, error) {
	if err != nil {
		return nil, textError(err)
	}
	return textRows{Rows: rows}, nil
}

func textBegin(tx pgx.Tx, err error) (pgx.Tx, error) {
	if err != nil {
		return nil, err
	}
	return textTx{tx}, nil
}

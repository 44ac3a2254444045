package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/idbroker/broker/storage"
)

// secretHash is the stored form of a storage.SecretHash, with names of its
// own so that the column does not depend on Go field names.
type secretHash struct {
	Hash      []byte    `json:"hash"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

func encodeSecretHashes(hs []storage.SecretHash) ([]byte, error) {
	if hs == nil {
		return nil, nil
	}
	out := make([]secretHash, len(hs))
	for i, h := range hs {
		out[i] = secretHash{Hash: h.Hash, ExpiresAt: h.ExpiresAt}
	}
	return json.Marshal(out)
}

func decodeSecretHashes(data []byte) ([]storage.SecretHash, error) {
	if data == nil {
		return nil, nil
	}
	var in []secretHash
	if err := json.Unmarshal(data, &in); err != nil {
		return nil, fmt.Errorf("decode secret hashes: %w", err)
	}
	out := make([]storage.SecretHash, len(in))
	for i, h := range in {
		out[i] = storage.SecretHash{Hash: h.Hash, ExpiresAt: h.ExpiresAt}
	}
	return out, nil
}

const clientColumns = `id, name, public, secret_hashes, redirect_uris, post_logout_redirect_uris, grant_types, audiences,
	scopes, allowed_origins, jwks_url, jwks, backchannel_logout_uri, service_user_id, created_at, updated_at,
	id_token_signed_response_alg, actors, introspector, third_party, registration_token_hash, last_used_at, id_jag_audiences`

// insertClient stores a new client, given clientArgs.
const insertClient = `INSERT INTO clients (` + clientColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)`

func scanClient(row pgx.Row) (storage.Client, error) {
	var c storage.Client
	var secrets []byte
	if err := row.Scan(&c.ID, &c.Name, &c.Public, &secrets, &c.RedirectURIs, &c.PostLogoutRedirectURIs, &c.GrantTypes,
		&c.Audiences, &c.Scopes, &c.AllowedOrigins, &c.JWKSURL, &c.JWKS, &c.BackchannelLogoutURI, &c.ServiceUserID,
		&c.CreatedAt, &c.UpdatedAt, &c.IDTokenSignedResponseAlg, &c.Actors, &c.Introspector, &c.ThirdParty,
		&c.RegistrationTokenHash, &c.LastUsedAt, &c.IDJAGAudiences); err != nil {
		return storage.Client{}, err
	}
	utc(&c.CreatedAt, &c.UpdatedAt, &c.LastUsedAt)
	var err error
	c.SecretHashes, err = decodeSecretHashes(secrets)
	return c, err
}

func clientArgs(c storage.Client) ([]any, error) {
	secrets, err := encodeSecretHashes(c.SecretHashes)
	if err != nil {
		return nil, err
	}
	return []any{c.ID, c.Name, c.Public, secrets, c.RedirectURIs, c.PostLogoutRedirectURIs, c.GrantTypes, c.Audiences,
		c.Scopes, c.AllowedOrigins, c.JWKSURL, c.JWKS, c.BackchannelLogoutURI, c.ServiceUserID, c.CreatedAt, c.UpdatedAt,
		c.IDTokenSignedResponseAlg, c.Actors, c.Introspector, c.ThirdParty, c.RegistrationTokenHash, c.LastUsedAt, c.IDJAGAudiences}, nil
}

// CreateClient implements storage.Clients.
func (s *Store) CreateClient(ctx context.Context, c storage.Client) error {
	if c.ID == "" {
		return errors.New("postgres: create client: empty id")
	}
	args, err := clientArgs(c)
	if err != nil {
		return fmt.Errorf("postgres: create client: %w", err)
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	_, err = s.pool.Exec(ctx, insertClient, args...)
	if isUniqueViolation(err) {
		return fmt.Errorf("postgres: create client %q: %w", c.ID, storage.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("postgres: create client: %w", err)
	}
	return nil
}

// GetClient implements storage.Clients.
func (s *Store) GetClient(ctx context.Context, id string) (storage.Client, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	c, err := scanClient(s.pool.QueryRow(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = $1`, id))
	if err != nil {
		return storage.Client{}, notFound(err, "get client")
	}
	return c, nil
}

// ListClients implements storage.Clients, ordered by ID byte-wise.
func (s *Store) ListClients(ctx context.Context) ([]storage.Client, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT `+clientColumns+` FROM clients ORDER BY id COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list clients: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.Client, error) { return scanClient(row) })
	if err != nil {
		return nil, fmt.Errorf("postgres: list clients: %w", err)
	}
	return list, nil
}

// UpdateClient implements storage.Clients. The row is locked while update
// runs, so update may read the store but must not write this client itself.
// The client keeps its ID whatever update returns. An error from update is
// returned as it is.
func (s *Store) UpdateClient(ctx context.Context, id string, update func(storage.Client) (storage.Client, error)) (storage.Client, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var out storage.Client
	err := s.inTx(ctx, "update client", func(tx pgx.Tx) error {
		c, err := scanClient(tx.QueryRow(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return notFound(err, "update client")
		}
		if c, err = update(c); err != nil {
			return err
		}
		c.ID = id
		args, err := clientArgs(c)
		if err != nil {
			return fmt.Errorf("postgres: update client: %w", err)
		}
		if _, err := tx.Exec(ctx, `
			UPDATE clients SET name = $2, public = $3, secret_hashes = $4, redirect_uris = $5, post_logout_redirect_uris = $6,
				grant_types = $7, audiences = $8, scopes = $9, allowed_origins = $10, jwks_url = $11, jwks = $12,
				backchannel_logout_uri = $13, service_user_id = $14, created_at = $15, updated_at = $16,
				id_token_signed_response_alg = $17, actors = $18, introspector = $19,
				third_party = $20, registration_token_hash = $21, last_used_at = $22, id_jag_audiences = $23
			WHERE id = $1`, args...); err != nil {
			return fmt.Errorf("postgres: update client: %w", err)
		}
		out = c
		return nil
	})
	if err != nil {
		return storage.Client{}, err
	}
	return out, nil
}

// DeleteClient implements storage.Clients.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	// The client's consents go in the same statement: a client
	// registered again under the id starts with none.
	tag, err := s.pool.Exec(ctx, `
		WITH consents AS (DELETE FROM consents WHERE client_id = $1)
		DELETE FROM clients WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("postgres: delete client: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return storage.ErrNotFound
	}
	return nil
}

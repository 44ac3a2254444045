package storage

import (
	"context"
	"time"
)

// Resource is a protected resource registered at run time (RFC 8707): an
// API or MCP server that access tokens may be issued for alone. The
// configuration file's resources are never stored, and a stored resource
// may not take one of their ids.
type Resource struct {
	// ID is the resource indicator: an absolute https URL without a
	// fragment, the access token's aud.
	ID string
	// Scopes are the scopes an access token for the resource may carry.
	Scopes []string
	// AccessTokenTTL is the lifetime of its access tokens; zero for the
	// broker's.
	AccessTokenTTL time.Duration
	// ThirdParty says third-party clients may ask for the resource.
	ThirdParty bool
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Resources holds the resources registered at run time.
type Resources interface {
	// CreateResource stores r; an id taken gives ErrAlreadyExists.
	CreateResource(ctx context.Context, r Resource) error
	// GetResource returns the resource of id, or ErrNotFound.
	GetResource(ctx context.Context, id string) (Resource, error)
	// ListResources returns every resource, ordered by ID byte-wise.
	ListResources(ctx context.Context) ([]Resource, error)
	// UpdateResource replaces the resource of id with what update
	// returns, atomically; the resource keeps its ID and an error from
	// update is returned as it is. An unknown id gives ErrNotFound.
	UpdateResource(ctx context.Context, id string, update func(Resource) (Resource, error)) (Resource, error)
	// DeleteResource removes the resource of id, or gives ErrNotFound.
	DeleteResource(ctx context.Context, id string) error
}

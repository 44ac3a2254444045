package tokens

import (
	"context"
	"errors"
	"slices"

	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// Targets decides what the resource and audience values of a request
// come to (RFC 8707): resources.Registry. Their errors that refuse the
// request are *oidc.Error; any other means the store could not answer.
type Targets interface {
	// Granted checks an authorization request's values and returns the
	// audience the grant holds.
	Granted(ctx context.Context, client *clients.Client, values []string) ([]string, error)
	// Choose picks a token request's audience among granted (nil: any
	// the client may name) and the registered resource it names alone.
	Choose(ctx context.Context, client *clients.Client, requested, granted []string) (audience []string, resource *storage.Resource, err error)
	// ScopesNamed are the scopes of the resources among values that
	// accept third-party clients.
	ScopesNamed(ctx context.Context, values []string) ([]string, error)
}

// GrantedAudience checks the resource values of an authorization
// request (invalid_target for one neither registered nor the client's)
// and returns the audience its code will hold.
func (t *Issuer) GrantedAudience(ctx context.Context, client *clients.Client, values []string) ([]string, error) {
	aud, err := t.targets.Granted(ctx, client, values)
	return aud, t.targetError(ctx, err)
}

// ChooseTarget picks the audience of a token request's access token and
// the registered resource it names alone, if any: requested must be
// within granted (nil: anything the client may name), a registered
// resource is asked for alone, and an unknown value is invalid_target.
func (t *Issuer) ChooseTarget(ctx context.Context, client *clients.Client, requested, granted []string) ([]string, *storage.Resource, error) {
	aud, res, err := t.targets.Choose(ctx, client, requested, granted)
	return aud, res, t.targetError(ctx, err)
}

// targetError passes a refusal on and turns a store failure into the
// fail-closed answer (docs/design.md rule 2).
func (t *Issuer) targetError(ctx context.Context, err error) error {
	var refusal *oidc.Error
	if err == nil || errors.As(err, &refusal) {
		return err
	}
	return t.failures.Store(ctx, "look up resource", err)
}

// CheckResourceScopes refuses, with invalid_scope, a scope the client
// asked for explicitly (the scope parameter of client_credentials and
// token exchange, which names only the access token's scope) that the
// registered resource res does not define. Where the granted scope also
// serves the ID token and the refresh family (a code, a refresh), the
// scopes outside the resource's are left out of the access token instead
// (Grant.AccessScopes).
func CheckResourceScopes(res *storage.Resource, requested []string) error {
	if res == nil {
		return nil
	}
	for _, s := range requested {
		if !slices.Contains(res.Scopes, s) {
			return oidc.ErrInvalidScope().WithDescription("scope %q is not a scope of resource %q", s, res.ID)
		}
	}
	return nil
}

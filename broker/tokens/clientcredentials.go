package tokens

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"time"

	"github.com/idbroker/broker/broker/answer"
	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/broker/identity"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/upstream"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// The client_credentials Grant, RFC 6749 section 4.4: a confidential
// client gets an access token for itself. Section numbers are RFC 6749's
// unless another RFC is named.

// serviceConnector is the connector name under which each machine
// client's service user is kept (identity.ServiceConnector).
const serviceConnector = identity.ServiceConnector

// ClientCredentialsExchange answers the client_credentials grant. The
// library has authenticated the client (VerifyClient) and refused one
// whose Grant types lack client_credentials.
//
// The token's sub is the client's service user, a platform user of its
// own (docs/design.md rule 2: every sub is a UUID), and client_id names the
// client. Audience (audience and resource, RFC 8707) and scope are limited
// to what the client's configuration lists. Section 4.4.3: "A refresh
// token SHOULD NOT be included", and there is no ID token: nobody logged in.
func (t *Issuer) ClientCredentialsExchange(ctx context.Context, r *op.ClientRequest[oidc.ClientCredentialsRequest]) (*op.Response, error) {
	client := r.Client.(*clients.Client)
	// Public clients never get here: VerifyClient refuses them this
	// Grant (authenticatedGrants).
	if !client.AllowsGrant(clients.GrantClientCredentials) {
		return nil, oidc.ErrUnauthorizedClient().WithDescription("this client may not use the client_credentials grant")
	}
	targets, err := requestTargets(r.Form)
	if err != nil {
		return nil, err
	}
	audience, res, err := t.ChooseTarget(ctx, client, targets, nil)
	if err != nil {
		t.log.InfoContext(ctx, "client credentials refused", "client_id", client.GetID(), "reason", err.Error())
		return nil, err
	}
	scopes := slices.Clone(client.Scopes())
	if len(r.Data.Scope) > 0 {
		for _, s := range r.Data.Scope {
			if !slices.Contains(client.Scopes(), s) {
				return nil, oidc.ErrInvalidScope().WithDescription("scope %q is not allowed for this client", s)
			}
		}
		if err := CheckResourceScopes(res, r.Data.Scope); err != nil {
			return nil, err
		}
		scopes = r.Data.Scope
	}
	user, err := t.ServiceUser(ctx, client)
	if err != nil {
		return nil, err
	}
	g := Grant{User: user, ClientID: client.GetID(), Scopes: scopes, Audience: audience, Resource: res}
	token, ttl, err := t.IssueAccessToken(g, nil)
	if err != nil {
		return nil, err
	}
	t.advertiseClientCredentials.Store(true)
	t.log.InfoContext(ctx, "client credentials issued", "client_id", client.GetID(), "user_id", user.ID, "audience", audience)
	return op.NewResponse(&oidc.AccessTokenResponse{
		AccessToken: token,
		TokenType:   oidc.BearerToken,
		ExpiresIn:   uint64(ttl / time.Second),
		Scope:       g.AccessScopes(),
	}), nil
}

// requestTargets reads RFC 8707 resource and RFC 8693 audience values,
// each once. A resource must be an absolute URI without a fragment (RFC
// 8707 section 2), else invalid_target.
func requestTargets(form url.Values) ([]string, error) {
	var targets []string
	for _, v := range form["resource"] {
		if u, err := url.Parse(v); v != "" && (err != nil || !u.IsAbs() || u.Fragment != "") {
			return nil, oidc.ErrInvalidTarget().WithDescription("resource %q is not an absolute URI without a fragment", v)
		}
	}
	for _, v := range slices.Concat(form["audience"], form["resource"]) {
		if v != "" && !slices.Contains(targets, v) {
			targets = append(targets, v)
		}
	}
	return targets, nil
}

// serviceUser returns the client's service user, creating it at first
// use. Creation goes through the one identity step (identity.Resolver:
// connector "client", never trusted with email, subject the client id),
// whose storage operation makes it atomic: concurrent first requests, on any
// replica, get one user. A stored client records the user's id; a config
// client's is remembered in memory. A disabled service user is
// invalid_grant: disabling it is how a machine client is stopped.
func (t *Issuer) ServiceUser(ctx context.Context, client *clients.Client) (storage.User, error) {
	known := client.ServiceUserID()
	if known == "" {
		if v, ok := t.serviceUsers.Load(client.GetID()); ok {
			known = v.(string)
		}
	}
	if known != "" {
		user, err := t.store.GetUser(ctx, known)
		switch {
		case err == nil && user.Disabled:
			return storage.User{}, answer.InvalidGrant(ctx, t.log, "the client's service user is disabled", "client_id", client.GetID(), "user_id", user.ID)
		case err == nil:
			return user, nil
		case !errors.Is(err, storage.ErrNotFound):
			return storage.User{}, t.failures.Store(ctx, "get service user", err)
		}
		// Deleted by an administrator: a new one is made below.
	}
	name := client.Name()
	if name == "" {
		name = client.GetID()
	}
	res, err := t.identities.Resolve(ctx, identity.Untrusted(serviceConnector), upstream.Identity{Subject: client.GetID(), Name: name}, identity.Options{})
	if errors.Is(err, storage.ErrUserDisabled) {
		return storage.User{}, answer.InvalidGrant(ctx, t.log, "the client's service user is disabled", "client_id", client.GetID())
	}
	if err != nil {
		return storage.User{}, t.failures.Store(ctx, "resolve service user", err)
	}
	if res.Created {
		t.log.InfoContext(ctx, "service user created", "client_id", client.GetID(), "user_id", res.User.ID)
	}
	t.serviceUsers.Store(client.GetID(), res.User.ID)
	if client.Stored() && client.ServiceUserID() != res.User.ID {
		_, err := t.store.UpdateClient(ctx, client.GetID(), func(c storage.Client) (storage.Client, error) {
			c.ServiceUserID = res.User.ID
			return c, nil
		})
		// Recording is a convenience for administrators; the identity
		// finds the user again without it.
		if err != nil {
			t.log.WarnContext(ctx, "could not record the service user of a client", "client_id", client.GetID(), "err", err)
		}
	}
	return res.User, nil
}

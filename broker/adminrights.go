package broker

// Who holds admin rights (docs/design.md rule 6): a user granted the admin
// role (RoleAdmin, kept in storage), or a machine client whose
// configuration lists the admin scope, for its own client_credentials
// tokens. Never a person for the client they happened to sign in through:
// a client allowed the scope only lets those who hold the rights use it.

import (
	"context"
	"fmt"
	"slices"

	"github.com/idbroker/broker/storage"
)

// userScopes returns the scopes a token issued for user through client
// may carry: scopes, without AdminScope unless the user holds the admin
// role and the client may ask for the scope. Asking for admin without
// the role is not an error; the token comes without it, as for any scope
// not granted (RFC 6749 section 3.3). Every grant that issues tokens for
// a person passes its scopes through here (authorization code, refresh,
// token exchange), so none can mint admin the others refuse.
func userScopes(client *Client, user storage.User, scopes []string) []string {
	if !slices.Contains(scopes, AdminScope) || (user.Admin && slices.Contains(client.scopes, AdminScope)) {
		return scopes
	}
	return slices.DeleteFunc(slices.Clone(scopes), func(s string) bool { return s == AdminScope })
}

// holdsAdmin reports whether the user of an admin token still holds the
// rights it was issued for: the admin role, or being client's own service
// user (a client_credentials token, whose rights are the client's
// configuration, which the caller checks). It is asked on every admin
// request, so revoking the role takes effect at once rather than when the
// tokens issued under it expire; the admin API is not a hot path, and
// the role comes with the user the token check has read already.
func (b *Broker) holdsAdmin(ctx context.Context, client *Client, user storage.User) (bool, error) {
	if user.Admin {
		return true, nil
	}
	ids, err := b.store.ListIdentities(ctx, user.ID)
	if err != nil {
		return false, fmt.Errorf("identities of user %s: %w", user.ID, err)
	}
	return slices.ContainsFunc(ids, func(i storage.Identity) bool {
		return i.Connector == serviceConnector && i.Subject == client.id
	}), nil
}

package admin

// Who holds admin rights (docs/design.md rule 6): a user granted the admin
// role (RoleAdmin, kept in storage), or a machine client whose
// configuration lists the admin scope, for its own client_credentials
// tokens. Never a person for the client they happened to sign in through:
// a client allowed the scope only lets those who hold the rights use it.
// That no token is issued with the scope for a person without the role is
// the broker's issuing code's part (its userScopes).

import (
	"context"
	"fmt"
	"slices"

	"github.com/idbroker/broker/broker/identity"
	"github.com/idbroker/broker/storage"
)

// holdsAdmin reports whether the user of an admin token still holds the
// rights it was issued for: the admin role, or being the service user of
// the client clientID (a client_credentials token, whose rights are the
// client's configuration, which the caller checks). It is asked on every
// admin request, so revoking the role takes effect at once rather than
// when the tokens issued under it expire; the admin API is not a hot
// path, and the role comes with the user the token check has read already.
func holdsAdmin(ctx context.Context, store storage.Users, clientID string, user storage.User) (bool, error) {
	if user.Admin {
		return true, nil
	}
	ids, err := store.ListIdentities(ctx, user.ID)
	if err != nil {
		return false, fmt.Errorf("identities of user %s: %w", user.ID, err)
	}
	return slices.ContainsFunc(ids, func(i storage.Identity) bool {
		return i.Connector == identity.ServiceConnector && i.Subject == clientID
	}), nil
}

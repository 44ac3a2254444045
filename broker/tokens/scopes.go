package tokens

import (
	"slices"

	"github.com/idbroker/broker/broker/admin"
	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/storage"
)

// Who may be issued admin rights (docs/design.md rule 6): a user granted
// the admin role (RoleAdmin, kept in storage), or a machine client whose
// configuration lists the admin scope, for its own client_credentials
// tokens. Never a person for the client they happened to sign in through:
// a client allowed the scope only lets those who hold the rights use it.
// The admin API checks the rights again on every request (broker/admin).

// UserScopes returns the scopes a token issued for user through client
// may carry: scopes, without admin.Scope unless the user holds the admin
// role and the client may ask for the scope. Asking for admin without
// the role is not an error; the token comes without it, as for any scope
// not granted (RFC 6749 section 3.3). Every Grant that issues tokens for
// a person passes its scopes through here (authorization code, refresh,
// token exchange), so none can mint admin the others refuse.
func UserScopes(client *clients.Client, user storage.User, scopes []string) []string {
	if !slices.Contains(scopes, admin.Scope) || (user.Admin && slices.Contains(client.Scopes(), admin.Scope)) {
		return scopes
	}
	return slices.DeleteFunc(slices.Clone(scopes), func(s string) bool { return s == admin.Scope })
}

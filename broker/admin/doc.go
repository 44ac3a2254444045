// Package admin owns the administration of stored clients and users and
// the admin HTTP API over it (/admin/v1/): creating, changing, rotating
// and deleting stored clients; listing, showing, disabling, enabling and
// deleting users; linking and unlinking their upstream identities;
// granting and revoking the admin role; organisations, the domains they
// claim (verified by a DNS TXT record or asserted by an administrator) and
// their members; creating, changing, disabling, enabling, deleting and
// testing connectors stored at run time (whose settings the broker seals
// and checks upstream: ConnectorSettings); the audit event of every change;
// and who holds admin rights on each API request (docs/design.md rule 6).
// The command-line tools (cmd/broker) and the running broker share it.
//
// It does not issue tokens, nor decide which scopes a token may carry
// (the broker's userScopes keeps Scope from a person without the role),
// nor verify tokens or know clients' configuration: the broker hands it
// those as function values (API.VerifyToken, API.Client,
// Options.CheckClient) and the hooks it listens on (Options.ClientChanged,
// Options.SessionEnded).
//
// It imports storage, upstream, broker/identity, broker/answer and
// broker/edge (for the text rule), and
// must not import the broker package, keys, nor a connector package.
package admin

package broker

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"

	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/storage"
)

// client is c as the one client model: its secret kept as its SHA-256,
// its key set as JSON. Config.Validate has checked it with the rules
// stored clients follow (checkClient).
func (c ClientConfig) client() storage.Client {
	sc := storage.Client{
		ID:                       c.ID,
		Name:                     c.Name,
		Public:                   c.Public,
		RedirectURIs:             c.RedirectURIs,
		PostLogoutRedirectURIs:   c.PostLogoutRedirectURIs,
		GrantTypes:               c.GrantTypes,
		Audiences:                c.Audiences,
		Scopes:                   c.Scopes,
		AllowedOrigins:           c.AllowedOrigins,
		JWKSURL:                  c.JWKSURI,
		JWKS:                     c.JWKS,
		BackchannelLogoutURI:     c.BackchannelLogoutURI,
		IDTokenSignedResponseAlg: c.IDTokenSignedResponseAlg,
		Actors:                   c.Actors,
		Introspector:             c.Introspector,
		IDJAGAudiences:           c.IDJAG.Audiences,
	}
	if c.Secret != "" {
		h := sha256.Sum256([]byte(c.Secret))
		sc.SecretHashes = []storage.SecretHash{{Hash: h[:]}}
	}
	return sc
}

// backchannelLogoutURI is the back-channel logout URI of the client id,
// "" when it registered none or no longer exists (broker/backchannel's
// Options.LogoutURI).
func (b *Broker) backchannelLogoutURI(ctx context.Context, id string) (string, error) {
	client, err := b.clients.Get(ctx, id)
	if errors.Is(err, clients.ErrUnknownClient) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return client.BackchannelLogoutURI(), nil
}

// checkStoredClients refuses to start when a stored client has the id of
// a configured one: which of the two would answer is not something to
// leave to lookup order. It also notes stored clients' grants.
func (b *Broker) checkStoredClients(stored []storage.Client) error {
	for _, c := range stored {
		if b.clients.Configured(c.ID) {
			return fmt.Errorf("broker: client %q is defined both in the configuration file and in storage; remove one (broker clients delete, or the config entry)", c.ID)
		}
		b.noteClient(c.GrantTypes)
	}
	return nil
}

// noteClient advertises client_credentials and token exchange once a
// client, configured or stored, allows them.
func (b *Broker) noteClient(grantTypes []string) {
	if slices.Contains(grantTypes, GrantClientCredentials) {
		b.advertiseClientCredentials.Store(true)
	}
	if slices.Contains(grantTypes, GrantTokenExchange) {
		b.advertiseTokenExchange.Store(true)
	}
	if slices.Contains(grantTypes, GrantJWTBearer) {
		b.clientAllowsJWTBearer.Store(true)
	}
}

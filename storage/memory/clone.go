package memory

import (
	"maps"
	"slices"

	"github.com/idbroker/broker/storage"
)

// The clone functions copy every slice, map and pointer of a value, so that
// what the store keeps and what a caller holds never share memory.

func cloneAuthRequest(r storage.AuthRequest) storage.AuthRequest {
	r.Scopes = slices.Clone(r.Scopes)
	r.Prompt = slices.Clone(r.Prompt)
	r.UILocales = slices.Clone(r.UILocales)
	r.Audience = slices.Clone(r.Audience)
	r.AMR = slices.Clone(r.AMR)
	r.UpstreamRefreshToken = slices.Clone(r.UpstreamRefreshToken)
	r.BrowserHash = slices.Clone(r.BrowserHash)
	if r.MaxAge != nil {
		d := *r.MaxAge
		r.MaxAge = &d
	}
	return r
}

func cloneAuthCode(c storage.AuthCode) storage.AuthCode {
	c.CodeHash = slices.Clone(c.CodeHash)
	c.Scopes = slices.Clone(c.Scopes)
	c.Audience = slices.Clone(c.Audience)
	c.AMR = slices.Clone(c.AMR)
	c.UpstreamRefreshToken = slices.Clone(c.UpstreamRefreshToken)
	return c
}

func cloneOTP(c storage.OTPChallenge) storage.OTPChallenge {
	c.CodeHash = slices.Clone(c.CodeHash)
	return c
}

func cloneFamily(f storage.RefreshFamily) storage.RefreshFamily {
	f.Scopes = slices.Clone(f.Scopes)
	f.Audience = slices.Clone(f.Audience)
	f.AMR = slices.Clone(f.AMR)
	f.UpstreamRefreshToken = slices.Clone(f.UpstreamRefreshToken)
	return f
}

func cloneSession(s storage.Session) storage.Session {
	s.AMR = slices.Clone(s.AMR)
	s.Clients = slices.Clone(s.Clients)
	s.UpstreamRefreshToken = slices.Clone(s.UpstreamRefreshToken)
	return s
}

func cloneClient(c storage.Client) storage.Client {
	if c.SecretHashes != nil {
		hs := make([]storage.SecretHash, len(c.SecretHashes))
		for i, h := range c.SecretHashes {
			hs[i] = storage.SecretHash{Hash: slices.Clone(h.Hash), ExpiresAt: h.ExpiresAt}
		}
		c.SecretHashes = hs
	}
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
	c.GrantTypes = slices.Clone(c.GrantTypes)
	c.Audiences = slices.Clone(c.Audiences)
	c.Scopes = slices.Clone(c.Scopes)
	c.AllowedOrigins = slices.Clone(c.AllowedOrigins)
	c.JWKS = slices.Clone(c.JWKS)
	c.Actors = slices.Clone(c.Actors)
	c.RegistrationTokenHash = slices.Clone(c.RegistrationTokenHash)
	c.IDJAGAudiences = slices.Clone(c.IDJAGAudiences)
	return c
}

func cloneSigningKey(k storage.SigningKey) storage.SigningKey {
	k.PublicJWK = slices.Clone(k.PublicJWK)
	k.PrivateKey = slices.Clone(k.PrivateKey)
	return k
}

func cloneSigningKeys(ks []storage.SigningKey) []storage.SigningKey {
	out := make([]storage.SigningKey, len(ks))
	for i, k := range ks {
		out[i] = cloneSigningKey(k)
	}
	return out
}

func cloneAudit(e storage.AuditEvent) storage.AuditEvent {
	e.Details = maps.Clone(e.Details)
	return e
}

func cloneOrganization(o storage.Organization) storage.Organization {
	o.UpstreamIDs = slices.Clone(o.UpstreamIDs)
	return o
}

func cloneStoredConnector(c storage.StoredConnector) storage.StoredConnector {
	c.Settings = slices.Clone(c.Settings)
	return c
}

package oidc

import (
	"fmt"
	"strings"

	"github.com/idbroker/broker/upstream"
)

func (m ClaimMapping) withDefaults() ClaimMapping {
	if m.Email == "" {
		m.Email = "email"
	}
	if m.EmailVerified == "" {
		m.EmailVerified = "email_verified"
	}
	if m.Name == "" {
		m.Name = "name"
	}
	return m
}

// identity reads the identity from verified claims, as the preset adjusts
// it.
func (c *Connector) identity(claims map[string]any) (upstream.Identity, error) {
	sub, _ := claims["sub"].(string)
	if sub == "" {
		return upstream.Identity{}, fmt.Errorf("oidc: token from %q has no sub: %w", c.cfg.Issuer, upstream.ErrInvalidToken)
	}
	m := c.cfg.Claims
	id := upstream.Identity{
		ConnectorID: c.cfg.ID,
		Subject:     sub,
		Email:       normalizeEmail(stringClaim(claims, m.Email)),
		Name:        strings.TrimSpace(stringClaim(claims, m.Name)),
		Claims:      claims,
	}
	id.EmailVerified = id.Email != "" && boolClaim(claims, m.EmailVerified)
	if m.Org != "" {
		id.Organization = stringClaim(claims, m.Org)
	}
	if adjust := c.dialect.identity; adjust != nil {
		if err := adjust(claims, &id); err != nil {
			return upstream.Identity{}, err
		}
	}
	return id, nil
}

// normalizeEmail is upstream.NormalizeEmail, with "" for an address that
// does not normalise.
func normalizeEmail(email string) string {
	normalized, _ := upstream.NormalizeEmail(email)
	return normalized
}

// claim looks name up as a top-level claim, then as a dotted path.
func claim(claims map[string]any, name string) (any, bool) {
	// Namespaced claims (Auth0's "https://example.com/roles") contain
	// dots, so the exact name is tried before the path.
	if v, ok := claims[name]; ok {
		return v, true
	}
	return upstream.Lookup(claims, name)
}

func stringClaim(claims map[string]any, name string) string {
	v, _ := claim(claims, name)
	s, _ := v.(string)
	return s
}

// boolClaim accepts true and "true": some upstreams send booleans as
// strings.
func boolClaim(claims map[string]any, name string) bool {
	switch v, _ := claim(claims, name); v := v.(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}

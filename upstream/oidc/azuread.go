package oidc

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/idbroker/broker/upstream"
)

// DefaultAzureAuthority is Entra ID's public cloud.
const DefaultAzureAuthority = "https://login.microsoftonline.com"

// DefaultAzureV1Authority is where the public cloud's v1.0 tokens come
// from: their iss is https://sts.windows.net/{tid}/.
const DefaultAzureV1Authority = "https://sts.windows.net"

// AzureConfig configures an Entra ID (Azure AD) v2.0 connector.
type AzureConfig struct {
	ID string `yaml:"-" json:"-"`
	// Tenant is a tenant id, or "organizations" or "common" for any
	// tenant (narrowed by AllowedTenants).
	Tenant string `yaml:"tenant" json:"tenant"`
	// AllowedTenants, for a multi-tenant connector, are the tenant ids
	// accepted; any tenant when empty.
	AllowedTenants    []string `yaml:"allowedTenants" json:"allowedTenants"`
	ClientID          string   `yaml:"clientID" json:"clientID"`
	ClientSecret      string   `yaml:"clientSecret" json:"clientSecret"`
	Scopes            []string `yaml:"scopes" json:"scopes"` // as Config.Scopes
	TrustEmail        bool     `yaml:"trustEmail" json:"trustEmail"`
	ExchangeAudiences []string `yaml:"exchangeAudiences" json:"exchangeAudiences"` // as Config.ExchangeAudiences
	// AuthorityURL is DefaultAzureAuthority when empty.
	AuthorityURL string `yaml:"authority" json:"authority"`
	// AcceptV1Tokens accepts v1.0 access tokens for exchange (an API
	// whose manifest leaves accessTokenAcceptedVersion at 1 gets them,
	// whichever endpoint the caller used), with the checks of v2.0 ones:
	// the tenant allowed, iss the v1.0 issuer of the token's tid, the
	// same keys and audiences. Logins are v2.0 whatever this says.
	AcceptV1Tokens bool `yaml:"acceptV1Tokens" json:"acceptV1Tokens"`
	// V1AuthorityURL is where v1.0 issuers live:
	// DefaultAzureV1Authority when empty (sovereign clouds differ).
	V1AuthorityURL        string           `yaml:"v1Authority" json:"v1Authority"`
	HTTPClient            *http.Client     `yaml:"-" json:"-"`
	Timeout               time.Duration    `yaml:"-" json:"-"` // as Config.Timeout
	Clock                 func() time.Time `yaml:"-" json:"-"`
	MaxClockSkew          time.Duration    `yaml:"-" json:"-"`
	MinKeyRefreshInterval time.Duration    `yaml:"-" json:"-"`
}

// NewAzureAD returns a connector for Entra ID v2.0.
//
// The subject is tid:oid: Entra's sub differs per application. Entra
// never sends email_verified, and tenant admins can set a user's email
// to anything, so the email is verified only when the token carries
// xms_edov: true (an optional claim the application must request). With
// no email claim, preferred_username stands in as an unverified email.
func NewAzureAD(ctx context.Context, cfg AzureConfig) (*Connector, error) {
	if err := cfg.Validate(cfg.ID); err != nil {
		return nil, err
	}
	if cfg.AuthorityURL == "" {
		cfg.AuthorityURL = DefaultAzureAuthority
	}
	t := tenants{authority: strings.TrimSuffix(cfg.AuthorityURL, "/"), allowed: cfg.AllowedTenants}
	if cfg.AcceptV1Tokens {
		t.v1Authority = strings.TrimSuffix(cfg.V1AuthorityURL, "/")
		if t.v1Authority == "" {
			t.v1Authority = DefaultAzureV1Authority
		}
	}
	var d dialect
	// Entra's userinfo (Microsoft Graph's) takes Graph tokens only, never
	// one issued for the client's own API.
	d.userinfoTakesNoAPITokens = true
	switch cfg.Tenant {
	case "organizations", "common":
		t.multi = true
		d.checkDiscovered = t.checkDiscovered
		// The issuer cannot be known before the token's tid is read:
		// check does the issuer check, on every token.
		d.ownIssuerCheck = true
	default:
		t.allowed = []string{cfg.Tenant}
	}
	d.check = t.check
	d.checkExchange = t.checkExchange
	d.identity = azureIdentity
	d.issuers = t.issuers
	return newConnector(ctx, Config{
		ID:                    cfg.ID,
		Issuer:                t.issuer(cfg.Tenant),
		ClientID:              cfg.ClientID,
		ClientSecret:          cfg.ClientSecret,
		Scopes:                cfg.Scopes,
		TrustEmail:            cfg.TrustEmail,
		ExchangeAudiences:     cfg.ExchangeAudiences,
		HTTPClient:            cfg.HTTPClient,
		Timeout:               cfg.Timeout,
		Clock:                 cfg.Clock,
		MaxClockSkew:          cfg.MaxClockSkew,
		MinKeyRefreshInterval: cfg.MinKeyRefreshInterval,
	}, d)
}

// tenants is which Entra tenants a connector accepts tokens from.
type tenants struct {
	authority   string
	multi       bool     // organizations or common
	allowed     []string // empty: any tenant (multi only)
	v1Authority string   // where v1.0 issuers live; "": v1.0 tokens refused
}

// issuer is the v2.0 issuer of a tenant.
func (t tenants) issuer(tenant string) string {
	return t.authority + "/" + tenant + "/v2.0"
}

// checkDiscovered: multi-tenant discovery publishes a template, not an
// issuer any token carries.
func (t tenants) checkDiscovered(issuer string) error {
	if want := t.issuer("{tenantid}"); issuer != want {
		return fmt.Errorf("issuer in discovery is %q, configured %q", issuer, want)
	}
	return nil
}

// v1Issuer is the v1.0 issuer of a tenant.
func (t tenants) v1Issuer(tenant string) string {
	return t.v1Authority + "/" + tenant + "/"
}

// check: the token's tid must be allowed and its iss must be that
// tenant's issuer.
func (t tenants) check(claims map[string]any) error {
	return t.checkIssuer(claims, t.issuer)
}

// checkExchange is check for a token to exchange, which may be a v1.0
// access token when the connector accepts them: ver 1.0 and iss the v1.0
// issuer of its tid. A token names its version, and its issuer must be
// that version's.
func (t tenants) checkExchange(claims map[string]any) error {
	if ver, _ := claims["ver"].(string); ver == "1.0" {
		if t.v1Authority == "" {
			return fmt.Errorf("oidc: azuread v1.0 token refused (the connector does not accept v1.0 tokens): %w", upstream.ErrInvalidToken)
		}
		return t.checkIssuer(claims, t.v1Issuer)
	}
	return t.check(claims)
}

// checkIssuer: the token's tid must be allowed and its iss must be
// issuer(tid).
func (t tenants) checkIssuer(claims map[string]any, issuer func(tenant string) string) error {
	tid, _ := claims["tid"].(string)
	iss, _ := claims["iss"].(string)
	if tid == "" {
		return fmt.Errorf("oidc: azuread token has no tid: %w", upstream.ErrInvalidToken)
	}
	if len(t.allowed) > 0 && !slices.Contains(t.allowed, tid) {
		return fmt.Errorf("oidc: azuread tenant %q is not allowed: %w", tid, upstream.ErrInvalidToken)
	}
	if want := issuer(tid); iss != want {
		return fmt.Errorf("oidc: azuread token issuer %q, want %q for its tenant %q: %w", iss, want, tid, upstream.ErrInvalidToken)
	}
	return nil
}

// issuers are the issuers of the allowed tenants (v1.0 ones too when
// accepted). A multi-tenant connector open to any tenant has no list: it
// must be named.
func (t tenants) issuers() []string {
	var out []string
	for _, tid := range t.allowed {
		out = append(out, t.issuer(tid))
		if t.v1Authority != "" {
			out = append(out, t.v1Issuer(tid))
		}
	}
	return out
}

func azureIdentity(claims map[string]any, id *upstream.Identity) error {
	tid, _ := claims["tid"].(string)
	oid, _ := claims["oid"].(string)
	if tid == "" || oid == "" {
		return fmt.Errorf("oidc: azuread token lacks tid %q or oid %q: %w", tid, oid, upstream.ErrInvalidToken)
	}
	id.Subject = tid + ":" + oid
	// The tenant is the upstream organisation: a broker organisation that
	// names it (its UpstreamIDs) is where the login lands.
	id.Organization = tid
	email := normalizeEmail(stringClaim(claims, "email"))
	id.Email = email
	id.EmailVerified = email != "" && boolClaim(claims, "xms_edov")
	if email == "" {
		id.Email = normalizeEmail(stringClaim(claims, "preferred_username"))
	}
	if id.Email == "" {
		// v1.0 tokens name the user in upn instead; unverified, as
		// preferred_username is.
		id.Email = normalizeEmail(stringClaim(claims, "upn"))
	}
	return nil
}

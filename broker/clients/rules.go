package clients

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/idbroker/broker/storage"
)

// Setting names a client setting as the configuration file and the
// admin API spell it, so that one set of rules can name the setting at
// fault in the words of whoever wrote it.
type Setting struct{ YAML, JSON string }

var (
	settingGrantTypes             = Setting{"grantTypes", "grant_types"}
	settingRedirectURIs           = Setting{"redirectURIs", "redirect_uris"}
	settingPostLogoutRedirectURIs = Setting{"postLogoutRedirectURIs", "post_logout_redirect_uris"}
	settingBackchannelLogoutURI   = Setting{"backchannelLogoutURI", "backchannel_logout_uri"}
	settingJWKS                   = Setting{"jwks", "jwks"}
	settingJWKSURI                = Setting{"jwksURI", "jwks_uri"}
	settingSecret                 = Setting{"secret", "client_secret"}
	settingIntrospector           = Setting{"introspector", "introspector"}
	settingIDTokenAlg             = Setting{"idTokenSignedResponseAlg", "id_token_signed_response_alg"}
	settingActors                 = Setting{"actors", "actors"}
	settingIDJAGAudiences         = Setting{"idJAG.audiences", "id_jag_audiences"}
)

// RuleError is a client setting that breaks a rule of
// CheckRules. Its message names the setting as the admin API does;
// Config.Validate names it as the configuration file does.
type RuleError struct {
	Setting Setting
	Err     error
}

func (e *RuleError) Error() string { return e.Setting.JSON + ": " + e.Err.Error() }
func (e *RuleError) Unwrap() error { return e.Err }

// CheckRules applies the rules every client follows, whether it is
// defined in the configuration or stored through the admin API or the
// command line: the credentials a public or confidential client has,
// supported grants, what a public client may not do, safe redirect URIs
// (CheckRedirectURI), its keys, an ID-token algorithm among idTokenAlgs,
// and actors only for token exchange. A broken rule is a
// *RuleError. Who may set introspector is not a rule of the client
// but of where it is written (Admin refuses it).
func CheckRules(c storage.Client, idTokenAlgs []string) error {
	public, grants := c.Public, c.GrantTypes
	if public && len(c.SecretHashes) > 0 {
		return &RuleError{settingSecret, errors.New("a public client must not have a secret")}
	}
	if !public && len(c.SecretHashes) == 0 && len(c.JWKS) == 0 && c.JWKSURL == "" {
		return &RuleError{settingSecret, errors.New("a confidential client needs a secret, jwks or jwksURI (or public: true)")}
	}
	if public && c.Introspector {
		return &RuleError{settingIntrospector, errors.New("a public client cannot be an introspector (introspection needs client authentication)")}
	}
	if a := c.IDTokenSignedResponseAlg; a != "" && !slices.Contains(idTokenAlgs, a) {
		return &RuleError{settingIDTokenAlg, fmt.Errorf("%q is not an algorithm the broker signs ID tokens with (%s)", a, strings.Join(idTokenAlgs, ", "))}
	}
	if len(c.Actors) > 0 && !slices.Contains(grants, GrantTokenExchange) {
		return &RuleError{settingActors, fmt.Errorf("actors apply to the %s grant, which the client does not have", GrantTokenExchange)}
	}
	for _, a := range c.Actors {
		if err := validateActor(a); err != nil {
			return &RuleError{settingActors, fmt.Errorf("actor %q: %w", a, err)}
		}
	}
	if len(c.IDJAGAudiences) > 0 && !slices.Contains(grants, GrantTokenExchange) {
		return &RuleError{settingIDJAGAudiences, fmt.Errorf("identity assertion grants are issued by the %s grant, which the client does not have", GrantTokenExchange)}
	}
	for _, a := range c.IDJAGAudiences {
		if err := checkIssuerIdentifier(a); err != nil {
			return &RuleError{settingIDJAGAudiences, err}
		}
	}
	for _, g := range grants {
		if !slices.Contains([]string{GrantAuthorizationCode, GrantRefreshToken, GrantTokenExchange, GrantClientCredentials, GrantJWTBearer}, g) {
			return &RuleError{settingGrantTypes, fmt.Errorf("grant type %q is not supported", g)}
		}
		// A public client's id is no secret: anyone holding one of its
		// identity assertion grants could redeem it as that client.
		if public && (g == GrantClientCredentials || g == GrantTokenExchange || g == GrantJWTBearer) {
			return &RuleError{settingGrantTypes, fmt.Errorf("a public client cannot use %s", g)}
		}
	}
	for _, ru := range c.RedirectURIs {
		if err := CheckRedirectURI(ru); err != nil {
			return &RuleError{settingRedirectURIs, err}
		}
	}
	for _, ru := range c.PostLogoutRedirectURIs {
		if err := CheckRedirectURI(ru); err != nil {
			return &RuleError{settingPostLogoutRedirectURIs, err}
		}
	}
	backchannelLogoutURI := c.BackchannelLogoutURI
	if u, err := url.Parse(backchannelLogoutURI); backchannelLogoutURI != "" && (err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "") {
		return &RuleError{settingBackchannelLogoutURI, fmt.Errorf("%q must be an absolute http(s) URL without fragment", backchannelLogoutURI)}
	}
	if err := ValidateKeys(public, c.JWKS, c.JWKSURL); err != nil {
		setting := settingJWKS
		if len(c.JWKS) == 0 {
			setting = settingJWKSURI
		}
		return &RuleError{setting, err}
	}
	return nil
}

// CheckRedirectURI allows a URI the broker may send a browser to with a
// code or after a logout: https, or http on a loopback address for native
// apps and development (RFC 8252 section 7.3), absolute, without a
// fragment (RFC 6749 section 3.1.2) or user information that could
// disguise the host. Anything else is refused: javascript: and data: would
// run script in whatever page follows the redirect, plain http elsewhere
// hands codes to the network, and private-use schemes (RFC 8252 section
// 7.1) are not offered.
func CheckRedirectURI(raw string) error {
	if _, ok := LoopbackURL(raw); ok {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.Opaque != "" || u.User != nil || hasFragment(raw) {
		return fmt.Errorf("%q must be an https URL, or http on a loopback address, without user information or fragment", raw)
	}
	return nil
}

// checkIssuerIdentifier allows what RFC 8414 section 2 calls an issuer
// identifier: an https URL without query or fragment (http on a loopback
// address too, for development, as CheckRedirectURI allows).
func checkIssuerIdentifier(raw string) error {
	u, err := url.Parse(raw)
	_, loopback := LoopbackURL(raw)
	if err != nil || !(u.Scheme == "https" || loopback) || u.Host == "" || u.Opaque != "" || u.User != nil || u.RawQuery != "" || hasFragment(raw) {
		return fmt.Errorf("%q must be an issuer identifier: an https URL without query or fragment", raw)
	}
	return nil
}

// validateActor checks one entry of a client's actors.
func validateActor(a string) error {
	kind, name, _ := strings.Cut(a, ":")
	switch {
	case kind == "client" && name != "":
		return nil
	case kind == "user":
		if _, err := uuid.Parse(name); err != nil {
			return errors.New("a user actor must be a platform UUID")
		}
		return nil
	}
	return errors.New(`want "client:<client id>" or "user:<UUID>"`)
}

// SelfDescribedGrantTypes checks the grant_types of a client that
// describes itself (registering at /register, or in its client ID
// metadata document): a client of people's browsers, so the
// authorization code grant, required, and refresh; RFC 7591's default,
// the authorization code grant alone, when it names none (nil). It
// returns them sorted, without repeats.
func SelfDescribedGrantTypes(named []string) ([]string, error) {
	if named == nil {
		return []string{GrantAuthorizationCode}, nil
	}
	for _, g := range named {
		if g != GrantAuthorizationCode && g != GrantRefreshToken {
			return nil, fmt.Errorf("grant_types: %q is not supported; only %s and %s", g, GrantAuthorizationCode, GrantRefreshToken)
		}
	}
	if !slices.Contains(named, GrantAuthorizationCode) {
		return nil, fmt.Errorf("grant_types must include %s", GrantAuthorizationCode)
	}
	return slices.Compact(slices.Sorted(slices.Values(named))), nil
}

package registration

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/broker/edge"
	"github.com/idbroker/broker/storage"
)

// Token endpoint authentication methods (RFC 7591 section 2) a
// registered client may name.
const (
	authNone       = "none"
	authSecretBase = "client_secret_basic"
	authSecretPost = "client_secret_post"
	authPrivateJWT = "private_key_jwt"
)

// Limits on what a registration may ask for: enough for any real client,
// small enough that one registration stores little.
const (
	maxRedirectURIs   = 10
	maxRedirectURILen = 2000
	maxClientNameLen  = 100 // characters; the consent page shows it
)

// Metadata is a client's metadata as RFC 7591 section 2 names it: what
// the broker reads of a registration, and, with what it chose for what
// was left out, what it answers. Metadata the broker does not keep
// (client_uri, logo_uri, contacts and the rest) is ignored, as section 3.2.1
// allows, and so not echoed.
type Metadata struct {
	RedirectURIs            []string        `json:"redirect_uris"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method"`
	GrantTypes              []string        `json:"grant_types"`
	ResponseTypes           []string        `json:"response_types"`
	ClientName              string          `json:"client_name,omitempty"`
	Scope                   string          `json:"scope,omitempty"`
	JWKSURI                 string          `json:"jwks_uri,omitempty"`
	JWKS                    json.RawMessage `json:"jwks,omitempty"`
}

// refusal is a registration refused, as RFC 7591 section 3.2.2 words it:
// an error code and a description naming the field at fault.
type refusal struct {
	code        string // invalid_redirect_uri or invalid_client_metadata
	description string
}

func (r *refusal) Error() string { return r.code + ": " + r.description }

func invalidMetadata(format string, args ...any) *refusal {
	return &refusal{"invalid_client_metadata", fmt.Sprintf(format, args...)}
}

// decodeMetadata reads a registration's JSON body: an object, UTF-8, its
// strings valid text (docs/design.md rule 8). Members it does not know
// are ignored (RFC 7591 section 2).
func decodeMetadata(body []byte) (Metadata, *refusal) {
	if !edge.ValidJSONText(body) {
		return Metadata{}, invalidMetadata("the body must be UTF-8 JSON whose strings hold no control characters")
	}
	var m Metadata
	err := json.Unmarshal(body, &m)
	if te := (*json.UnmarshalTypeError)(nil); errors.As(err, &te) {
		if te.Field == "" {
			return Metadata{}, invalidMetadata("the body must be a JSON object")
		}
		return Metadata{}, invalidMetadata("%s: a %s is not allowed here", te.Field, te.Value)
	}
	if err != nil {
		return Metadata{}, invalidMetadata("the body is not JSON")
	}
	return m, nil
}

// check holds m to the broker's rules for a client registered under
// policy and returns the client it describes (without id, secret or
// times, for checkRules once it has them) and m as registered: the defaults RFC 7591 section 2 gives
// filled in. scopes are the scopes the broker supports.
func (m Metadata) check(policy string, scopes []string) (storage.Client, Metadata, *refusal) {
	if len(m.RedirectURIs) == 0 {
		return storage.Client{}, m, &refusal{"invalid_redirect_uri", "redirect_uris: at least one redirect URI is required"}
	}
	if len(m.RedirectURIs) > maxRedirectURIs {
		return storage.Client{}, m, &refusal{"invalid_redirect_uri", fmt.Sprintf("redirect_uris: at most %d are allowed", maxRedirectURIs)}
	}
	for _, ru := range m.RedirectURIs {
		if err := checkRedirectURI(ru); err != nil {
			return storage.Client{}, m, err
		}
	}
	if m.TokenEndpointAuthMethod == "" {
		// RFC 7591 section 2 makes client_secret_basic the default; the
		// open policy registers public clients alone, so there the
		// client gets none, as section 3.2.1 lets the server choose.
		m.TokenEndpointAuthMethod = authSecretBase
		if policy == PolicyOpen {
			m.TokenEndpointAuthMethod = authNone
		}
	}
	c := storage.Client{RedirectURIs: m.RedirectURIs, ThirdParty: true}
	switch m.TokenEndpointAuthMethod {
	case authNone:
		c.Public = true
	case authSecretBase, authSecretPost, authPrivateJWT:
		if policy != PolicyToken {
			return storage.Client{}, m, invalidMetadata("token_endpoint_auth_method: open registration takes public clients only (%q)", authNone)
		}
	default:
		return storage.Client{}, m, invalidMetadata("token_endpoint_auth_method: %q is not one of %s, %s, %s, %s",
			m.TokenEndpointAuthMethod, authNone, authSecretBase, authSecretPost, authPrivateJWT)
	}
	hasKeys := len(m.JWKS) > 0 || m.JWKSURI != ""
	switch {
	case m.TokenEndpointAuthMethod == authPrivateJWT && !hasKeys:
		return storage.Client{}, m, invalidMetadata("jwks: private_key_jwt needs jwks or jwks_uri")
	case m.TokenEndpointAuthMethod != authPrivateJWT && hasKeys:
		return storage.Client{}, m, invalidMetadata("jwks: jwks and jwks_uri apply to private_key_jwt alone")
	case m.JWKSURI != "" && !strings.HasPrefix(m.JWKSURI, "https://"):
		// The broker fetches it: never from plain http, nor from the
		// loopback a configured client may use.
		return storage.Client{}, m, invalidMetadata("jwks_uri: %q must be an https URL", m.JWKSURI)
	}
	c.JWKS, c.JWKSURL = m.JWKS, m.JWKSURI

	grants, err := clients.SelfDescribedGrantTypes(m.GrantTypes)
	if err != nil {
		return storage.Client{}, m, invalidMetadata("%v", err)
	}
	m.GrantTypes, c.GrantTypes = grants, grants

	if m.ResponseTypes == nil {
		m.ResponseTypes = []string{"code"}
	}
	for _, rt := range m.ResponseTypes {
		if rt != "code" {
			return storage.Client{}, m, invalidMetadata("response_types: %q is not supported (only code)", rt)
		}
	}
	m.ResponseTypes = []string{"code"}

	if n := utf8.RuneCountInString(m.ClientName); !edge.ValidName(m.ClientName) || n > maxClientNameLen {
		return storage.Client{}, m, invalidMetadata("client_name: must be at most %d characters of text", maxClientNameLen)
	}
	c.Name = m.ClientName

	for _, s := range strings.Fields(m.Scope) {
		if !slices.Contains(scopes, s) {
			return storage.Client{}, m, invalidMetadata("scope: %q is neither the broker's nor one of a resource that accepts third-party clients (%s)", s, strings.Join(scopes, " "))
		}
		if !slices.Contains(c.Scopes, s) {
			c.Scopes = append(c.Scopes, s)
		}
	}
	m.Scope = strings.Join(c.Scopes, " ")
	return c, m, nil
}

// usesSecret reports whether a client registered with m authenticates
// with a secret the broker generates.
func (m Metadata) usesSecret() bool {
	return m.TokenEndpointAuthMethod == authSecretBase || m.TokenEndpointAuthMethod == authSecretPost
}

// checkRules holds c, complete but for its id and times, to the rules
// every client follows wherever it is written (clients.CheckRules).
func checkRules(c storage.Client) *refusal {
	err := clients.CheckRules(c, nil)
	if err == nil {
		return nil
	}
	re := (*clients.RuleError)(nil)
	if errors.As(err, &re) && re.Setting.JSON == "redirect_uris" {
		return &refusal{"invalid_redirect_uri", err.Error()}
	}
	return invalidMetadata("%v", err)
}

// checkRedirectURI refuses a redirect URI a registered client may not
// have: what clients.CheckRedirectURI refuses (not https nor loopback
// http, a fragment, user information, javascript: and the like), and
// besides a wildcard, which the broker would match only literally but
// which says the client expects a pattern, and an overlong one.
func checkRedirectURI(ru string) *refusal {
	switch {
	case len(ru) > maxRedirectURILen:
		return &refusal{"invalid_redirect_uri", fmt.Sprintf("redirect_uris: a redirect URI is longer than %d bytes", maxRedirectURILen)}
	case strings.Contains(ru, "*"):
		return &refusal{"invalid_redirect_uri", fmt.Sprintf("redirect_uris: %q holds a wildcard; register each URI exactly", ru)}
	}
	if err := clients.CheckRedirectURI(ru); err != nil {
		return &refusal{"invalid_redirect_uri", "redirect_uris: " + err.Error()}
	}
	return nil
}

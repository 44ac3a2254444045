package clientdoc

// What a Client ID Metadata Document must be, from
// draft-ietf-oauth-client-id-metadata-document (sections 3, 4 and 4.1)
// and the MCP authorization specification (2025-11-25, "Client ID
// Metadata Documents"), and what the broker makes of it.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/idbroker/broker/broker/admin"
	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/broker/edge"
	"github.com/idbroker/broker/storage"
)

// maxClientIDLength bounds a client id URL: it is kept in every auth
// request, code and refresh family of the client.
const maxClientIDLength = 1024

// maxNameLength bounds client_name, which the consent page shows.
const maxNameLength = 200

// checkClientIDURL applies section 3 of the draft to a client id: an
// https URL with a path, without user information, dot segments or
// fragment. A query, which the draft discourages, is refused too: it
// would let one host publish any number of clients at one path. The id
// must also be the URL's canonical form, so that what is fetched is
// exactly what the id names (the draft compares ids as simple strings).
func checkClientIDURL(id string) (*url.URL, error) {
	if len(id) > maxClientIDLength {
		return nil, fmt.Errorf("the client id URL is longer than %d bytes", maxClientIDLength)
	}
	u, err := url.Parse(id)
	switch {
	case err != nil:
		return nil, errors.New("the client id is not a URL")
	case u.Scheme != "https" || u.Host == "" || u.Opaque != "":
		return nil, errors.New("the client id URL must be an absolute https URL")
	case u.User != nil:
		return nil, errors.New("the client id URL must not have user information")
	case u.Path == "":
		return nil, errors.New("the client id URL must have a path")
	case u.RawQuery != "" || u.ForceQuery:
		return nil, errors.New("the client id URL must not have a query")
	case u.Fragment != "" || strings.Contains(id, "#"):
		return nil, errors.New("the client id URL must not have a fragment")
	case u.String() != id:
		return nil, errors.New("the client id URL is not in its canonical form")
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return nil, errors.New("the client id URL must not have . or .. path segments")
		}
	}
	if err := checkHostName(u.Hostname()); err != nil {
		return nil, fmt.Errorf("the client id URL's host %w", err)
	}
	return u, nil
}

// document is the metadata the broker reads (RFC 7591 section 2 names
// them); it ignores the others, as RFC 7591 lets a server.
type document struct {
	ClientID                string          `json:"client_id"`
	ClientName              string          `json:"client_name"`
	RedirectURIs            []string        `json:"redirect_uris"`
	GrantTypes              []string        `json:"grant_types"`
	ResponseTypes           []string        `json:"response_types"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method"`
	JWKSURI                 string          `json:"jwks_uri"`
	JWKS                    json.RawMessage `json:"jwks"`
	Scope                   string          `json:"scope"`
	// Links a consent page may show: https only, so none runs script.
	ClientURI string `json:"client_uri"`
	LogoURI   string `json:"logo_uri"`
	PolicyURI string `json:"policy_uri"`
	TOSURI    string `json:"tos_uri"`
}

// Token endpoint authentication methods a document may name (section
// 4.1: nothing built on a shared secret).
const (
	authNone          = "none"
	authPrivateKeyJWT = "private_key_jwt"
)

// parseDocument checks body, the document fetched from id, and returns
// the client it describes, third-party and never stored. Every refusal
// names what is wrong, for the log.
func parseDocument(id string, body []byte) (storage.Client, error) {
	if !edge.ValidJSONText(body) {
		return storage.Client{}, errors.New("the document is not UTF-8 JSON without control characters")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return storage.Client{}, fmt.Errorf("the document is not a JSON object: %w", err)
	}
	for name := range fields {
		// Section 4.1: "the client_secret and client_secret_expires_at
		// properties MUST NOT be used".
		if strings.HasPrefix(name, "client_secret") {
			return storage.Client{}, fmt.Errorf("the document has %s: a metadata document client has no secret", name)
		}
	}
	var d document
	if err := json.Unmarshal(body, &d); err != nil {
		return storage.Client{}, fmt.Errorf("the document's metadata are malformed: %w", err)
	}
	// Section 4: client_id "MUST match the Client Identifier URL", by
	// simple string comparison.
	if d.ClientID != id {
		return storage.Client{}, fmt.Errorf("the document's client_id %q is not the URL it was fetched from", d.ClientID)
	}
	// MCP: the document "MUST include at least ... client_id,
	// client_name, redirect_uris".
	if strings.TrimSpace(d.ClientName) == "" || len(d.ClientName) > maxNameLength || !edge.ValidName(d.ClientName) {
		return storage.Client{}, fmt.Errorf("client_name must be a name of 1 to %d bytes", maxNameLength)
	}
	if len(d.RedirectURIs) == 0 {
		return storage.Client{}, errors.New("redirect_uris is missing")
	}
	for _, link := range []struct{ name, value string }{{"client_uri", d.ClientURI}, {"logo_uri", d.LogoURI}, {"policy_uri", d.PolicyURI}, {"tos_uri", d.TOSURI}} {
		if u, err := url.Parse(link.value); link.value != "" && (err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil) {
			return storage.Client{}, fmt.Errorf("%s %q must be an https URL", link.name, link.value)
		}
	}
	grants, err := clients.SelfDescribedGrantTypes(d.GrantTypes)
	if err != nil {
		return storage.Client{}, err
	}
	for _, rt := range d.ResponseTypes {
		if rt != "code" {
			return storage.Client{}, fmt.Errorf("response_types: %q is not supported; only code", rt)
		}
	}
	scopes := strings.Fields(d.Scope)
	for _, sc := range scopes {
		if !validScopeToken(sc) {
			return storage.Client{}, fmt.Errorf("scope: %q is not a scope token (RFC 6749 section 3.3)", sc)
		}
	}
	if slices.Contains(scopes, admin.Scope) {
		return storage.Client{}, fmt.Errorf("scope: %q is never given to a metadata document client", admin.Scope)
	}
	c := storage.Client{
		ID:           id,
		Name:         d.ClientName,
		RedirectURIs: d.RedirectURIs,
		GrantTypes:   grants,
		Scopes:       scopes,
		ThirdParty:   true,
	}
	switch d.TokenEndpointAuthMethod {
	case "", authNone:
		// RFC 7591's default, client_secret_basic, cannot apply to a
		// client without a secret; a document that names no method
		// describes a public client, as one naming "none" does.
		c.Public = true
	case authPrivateKeyJWT:
		if u, err := url.Parse(d.JWKSURI); d.JWKSURI != "" && (err != nil || u.Scheme != "https") {
			return storage.Client{}, fmt.Errorf("jwks_uri %q must be an https URL", d.JWKSURI)
		}
		if d.JWKSURI == "" && len(d.JWKS) == 0 {
			return storage.Client{}, errors.New("private_key_jwt needs jwks_uri or jwks")
		}
		c.JWKSURL, c.JWKS = d.JWKSURI, d.JWKS
	default:
		return storage.Client{}, fmt.Errorf("token_endpoint_auth_method %q is not allowed: only none or private_key_jwt (a metadata document client has no shared secret)", d.TokenEndpointAuthMethod)
	}
	if c.Public && (d.JWKSURI != "" || len(d.JWKS) > 0) {
		return storage.Client{}, errors.New("jwks_uri and jwks need token_endpoint_auth_method private_key_jwt")
	}
	// The rules every client follows: safe redirect URIs, keys that
	// parse and are public, grants a public client may use.
	if err := clients.CheckRules(c, nil); err != nil {
		return storage.Client{}, err
	}
	return c, nil
}

// validScopeToken applies RFC 6749 section 3.3: printable ASCII but for
// the space, the double quote and the backslash.
func validScopeToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return s != ""
}

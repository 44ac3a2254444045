package clients

import (
	"net/http"
	"net/url"

	"github.com/idbroker/broker/broker/edge"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Credentials reads a token request's client authentication as the
// library reads it for the grants it authenticates, for the requests the
// broker answers before it or without it (identity assertion grants):
// Basic credentials (form-encoded, RFC 6749 section 2.3.1) or the form's
// client_id with client_secret or client_assertion, and never two
// methods at once (section 2.3), with the library's refusals and its
// decoder's reading of a repeated parameter (the last value).
// Authenticator.VerifyClient then decides.
func Credentials(header http.Header, form url.Values) (*op.ClientCredentials, error) {
	cc := &op.ClientCredentials{
		ClientID:            edge.LastValue(form, "client_id"),
		ClientSecret:        edge.LastValue(form, "client_secret"),
		ClientAssertion:     edge.LastValue(form, "client_assertion"),
		ClientAssertionType: edge.LastValue(form, "client_assertion_type"),
	}
	tooMany := oidc.ErrInvalidRequest().WithDescription("client authentication must not use more than one method")
	assertion := cc.ClientAssertion != "" && cc.ClientAssertionType != ""
	secret := cc.ClientSecret != "" && cc.ClientID != ""
	if assertion && secret {
		return nil, tooMany
	}
	if id, password, ok := (&http.Request{Header: header}).BasicAuth(); ok {
		if assertion || secret {
			return nil, tooMany
		}
		var err1, err2 error
		cc.ClientID, err1 = url.QueryUnescape(id)
		cc.ClientSecret, err2 = url.QueryUnescape(password)
		if err1 != nil || err2 != nil {
			return nil, oidc.ErrInvalidClient().WithDescription("invalid basic auth header")
		}
	}
	if cc.ClientID == "" && cc.ClientAssertion == "" {
		return nil, oidc.ErrInvalidRequest().WithDescription("client_id or client_assertion must be provided")
	}
	if cc.ClientAssertion != "" && cc.ClientAssertionType != oidc.ClientAssertionTypeJWTAssertion {
		return nil, oidc.ErrInvalidRequest().WithDescription("invalid client_assertion_type %s", cc.ClientAssertionType)
	}
	return cc, nil
}

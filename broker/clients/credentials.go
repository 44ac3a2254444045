package clients

import (
	"net/http"
	"net/url"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Credentials reads a token request's client authentication as the
// library reads it for the grants it authenticates, for the requests the
// broker answers before it or without it (identity assertion grants):
// Basic credentials (form-encoded, RFC 6749 section 2.3.1) or the form's
// client_id with client_secret or client_assertion, and never two
// methods at once (section 2.3). Authenticator.VerifyClient then decides.
func Credentials(header http.Header, form url.Values) (*op.ClientCredentials, error) {
	cc := &op.ClientCredentials{ClientID: form.Get("client_id"), ClientSecret: form.Get("client_secret"),
		ClientAssertion: form.Get("client_assertion"), ClientAssertionType: form.Get("client_assertion_type")}
	tooMany := oidc.ErrInvalidRequest().WithDescription("client authentication must not use more than one method")
	if cc.ClientSecret != "" && cc.ClientAssertion != "" {
		return nil, tooMany
	}
	user, password, ok := (&http.Request{Header: header}).BasicAuth()
	if !ok {
		return cc, nil
	}
	if cc.ClientSecret != "" || cc.ClientAssertion != "" {
		return nil, tooMany
	}
	var err1, err2 error
	cc.ClientID, err1 = url.QueryUnescape(user)
	cc.ClientSecret, err2 = url.QueryUnescape(password)
	if err1 != nil || err2 != nil {
		return nil, oidc.ErrInvalidClient().WithDescription("invalid basic auth header")
	}
	return cc, nil
}

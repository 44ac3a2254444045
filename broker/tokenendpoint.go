package broker

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/broker/edge"
	"github.com/idbroker/broker/broker/exchange"
	"github.com/rs/cors"
	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// tokenEndpoint answers the token-exchange grant at /token itself and
// hands every other request to the library (lib). Token exchange carries
// backend traffic, where the library's generic path (its form decoder run
// twice, its router, interceptors and tracing) cost as much as the
// broker's own work (issue 23). It makes the library's checks, in the
// library's order and with its answers: the client's credentials
// (parseClientCredentials), the client (VerifyClient), the grant the
// client may use (withClient), the token types (tokenExchangeHandler);
// then the exchange itself (Broker.TokenExchange) answers as through
// the library, under the library's CORS rules (c). clientAuthentication
// has parsed the form already.
func (b *Broker) tokenEndpoint(lib http.Handler, c *cors.Cors) http.Handler {
	exchanges := c.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := b.exchangeAt(r)
		if err != nil {
			op.WriteError(w, r, err, nil)
			return
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		httphelper.MarshalJSON(w, resp.Data)
	}))
	refuseRepeated := c.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, _ := repeatedParam(r.Form)
		op.WriteError(w, r, oidc.ErrInvalidRequest().WithDescription("parameter %s is included more than once", name), nil)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			lib.ServeHTTP(w, r)
			return
		}
		if _, repeated := repeatedParam(r.Form); repeated {
			// The library reads the first of repeated values, the
			// dispatch above would read the same, and neither may guess
			// what a client meant by two grant types or two codes.
			refuseRepeated.ServeHTTP(w, r)
			return
		}
		if oidc.GrantType(r.Form.Get("grant_type")) != oidc.GrantTypeTokenExchange {
			lib.ServeHTTP(w, r)
			return
		}
		exchanges.ServeHTTP(w, r)
	})
}

// repeatedParam names, in byte order, the first parameter of a token
// request that appears more than once, which RFC 6749 section 3.2 forbids:
// "Request and response parameters MUST NOT be included more than once."
// resource (RFC 8707) and audience (RFC 8693) may repeat.
func repeatedParam(form url.Values) (string, bool) {
	var names []string
	for name, values := range form {
		if len(values) > 1 && name != "resource" && name != "audience" {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return "", false
	}
	slices.Sort(names)
	return names[0], true
}

// exchangeAt is what the library's token endpoint does with a
// token-exchange request r, and what it would refuse: an exchange for an
// identity assertion grant (ID-JAG).
func (b *Broker) exchangeAt(r *http.Request) (*op.Response, error) {
	cc, err := clients.Credentials(r.Header, r.Form)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	client, err := b.VerifyClient(ctx, &op.Request[op.ClientCredentials]{Method: r.Method, URL: r.URL, Header: r.Header, Form: r.Form, Data: cc})
	if err != nil {
		return nil, err
	}
	if !op.ValidateGrantType(client, oidc.GrantTypeTokenExchange) {
		return nil, oidc.ErrUnauthorizedClient().WithDescription("grant_type %q not allowed", oidc.GrantTypeTokenExchange)
	}
	req := tokenExchangeRequest(r.Form)
	switch {
	case req.RequestedTokenType == exchange.TokenTypeIDJAG:
		// An identity assertion grant, a token type the library does not
		// know and would refuse: the exchange makes its checks
		// (broker/exchange/idjag.go).
	case req.SubjectToken == "":
		return nil, oidc.ErrInvalidRequest().WithDescription("subject_token missing")
	case req.SubjectTokenType == "":
		return nil, oidc.ErrInvalidRequest().WithDescription("subject_token_type missing")
	case !req.SubjectTokenType.IsSupported():
		return nil, oidc.ErrInvalidRequest().WithDescription("subject_token_type is not supported")
	case req.RequestedTokenType != "" && !req.RequestedTokenType.IsSupported():
		return nil, oidc.ErrInvalidRequest().WithDescription("requested_token_type is not supported")
	case req.ActorTokenType != "" && !req.ActorTokenType.IsSupported():
		return nil, oidc.ErrInvalidRequest().WithDescription("actor_token_type is not supported")
	}
	return b.TokenExchange(ctx, &op.ClientRequest[oidc.TokenExchangeRequest]{
		Request: &op.Request[oidc.TokenExchangeRequest]{Method: r.Method, URL: r.URL, Header: r.Header, Form: r.Form, Data: req},
		Client:  client,
	})
}

// tokenExchangeRequest is the section 2.1 request as the library's
// decoder reads it from form; a repeated parameter was refused before
// (repeatedParam).
func tokenExchangeRequest(form url.Values) *oidc.TokenExchangeRequest {
	req := &oidc.TokenExchangeRequest{
		GrantType:          oidc.GrantType(edge.LastValue(form, "grant_type")),
		SubjectToken:       edge.LastValue(form, "subject_token"),
		SubjectTokenType:   oidc.TokenType(edge.LastValue(form, "subject_token_type")),
		ActorToken:         edge.LastValue(form, "actor_token"),
		ActorTokenType:     oidc.TokenType(edge.LastValue(form, "actor_token_type")),
		RequestedTokenType: oidc.TokenType(edge.LastValue(form, "requested_token_type")),
		Resource:           form["resource"],
		Audience:           form["audience"],
	}
	if s := edge.LastValue(form, "scope"); s != "" {
		req.Scopes = strings.Split(s, " ")
	}
	return req
}

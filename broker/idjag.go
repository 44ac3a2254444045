package broker

import (
	"net/http"

	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/broker/exchange"
	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// identityAssertionExchange answers a token exchange for an identity
// assertion grant (ID-JAG, requested_token_type
// urn:ietf:params:oauth:token-type:id-jag) itself and passes every other
// token request to lib: the library refuses a requested_token_type it
// does not know before the exchange could reach the broker. It
// authenticates the client as the library does for an exchange
// (VerifyClient, then the client's grant types) and hands the request to
// exchange.Exchanger. The form was read by clientAuthentication. No CORS:
// only confidential clients exchange, from servers.
func (b *Broker) identityAssertionExchange(lib http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Form.Get("grant_type") != string(oidc.GrantTypeTokenExchange) ||
			r.Form.Get("requested_token_type") != string(exchange.TokenTypeIDJAG) {
			lib.ServeHTTP(w, r)
			return
		}
		resp, err := b.exchangeForAssertion(r)
		if err != nil {
			op.WriteError(w, r, err, b.log)
			return
		}
		// As the library writes its responses.
		httphelper.MarshalJSON(w, resp.Data)
	})
}

// exchangeForAssertion authenticates the client of r and has it
// exchange.
func (b *Broker) exchangeForAssertion(r *http.Request) (*op.Response, error) {
	ctx := r.Context()
	cc, err := clients.Credentials(r.Header, r.Form)
	if err != nil {
		return nil, err
	}
	c, err := b.auth.VerifyClient(ctx, &op.Request[op.ClientCredentials]{Method: r.Method, URL: r.URL, Header: r.Header, Form: r.Form, Data: cc})
	if err != nil {
		return nil, err
	}
	client := c.(*clients.Client)
	if !client.AllowsGrant(clients.GrantTokenExchange) {
		return nil, oidc.ErrUnauthorizedClient().WithDescription("grant_type %q not allowed", oidc.GrantTypeTokenExchange)
	}
	return b.exchange.TokenExchange(ctx, &op.ClientRequest[oidc.TokenExchangeRequest]{
		Request: &op.Request[oidc.TokenExchangeRequest]{Method: r.Method, URL: r.URL, Header: r.Header, Form: r.Form,
			PostForm: r.PostForm, Data: &oidc.TokenExchangeRequest{}},
		Client: client,
	})
}

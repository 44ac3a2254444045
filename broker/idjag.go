package broker

import (
	"net/http"

	"github.com/idbroker/broker/broker/clients"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

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

package exchange

import (
	"log/slog"

	"github.com/idbroker/broker/broker/answer"
	"github.com/idbroker/broker/broker/connectors"
	"github.com/idbroker/broker/broker/identity"
	"github.com/idbroker/broker/broker/tokens"
	"github.com/prometheus/client_golang/prometheus"
)

// Options are what an Exchanger needs.
type Options struct {
	Issuer     string
	Tokens     *tokens.Issuer
	Identities *identity.Resolver
	Upstreams  *connectors.Set
	Failures   answer.Failures
	Log        *slog.Logger
	// Exchanges counts exchanges by connector and outcome.
	Exchanges *prometheus.CounterVec
	// SSOEnforced counts exchanges refused by an organisation's SSO
	// rule, by path ("exchange").
	SSOEnforced *prometheus.CounterVec
}

// Exchanger answers the token-exchange grant.
type Exchanger struct {
	issuer      string
	tokens      *tokens.Issuer
	identities  *identity.Resolver
	upstreams   *connectors.Set
	failures    answer.Failures
	log         *slog.Logger
	exchanges   *prometheus.CounterVec
	ssoEnforced *prometheus.CounterVec
}

// New returns an Exchanger.
func New(o Options) *Exchanger {
	return &Exchanger{issuer: o.Issuer, tokens: o.Tokens, identities: o.Identities, upstreams: o.Upstreams,
		failures: o.Failures, log: o.Log, exchanges: o.Exchanges,
		ssoEnforced: o.SSOEnforced}
}

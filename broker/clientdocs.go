package broker

import (
	"net/http"

	"github.com/idbroker/broker/broker/clientdoc"
	"github.com/idbroker/broker/broker/ratelimit"
	"github.com/idbroker/broker/broker/safefetch"
)

// thirdPartyFetcher is the HTTP client for what third parties name: the
// metadata documents of clients identified by one, and the key sets of
// every third-party client (registered or by document) that
// authenticates with private_key_jwt. It refuses every address that is
// not public (broker/safefetch), since anyone may name any URL.
func (b *Broker) thirdPartyFetcher(cfg ClientMetadataDocumentsConfig, o Options) *http.Client {
	if len(cfg.AllowPrivateHosts) > 0 {
		b.log.Warn("client metadata documents: these hosts are fetched whatever their addresses; allow them only in development",
			"allowPrivateHosts", cfg.AllowPrivateHosts)
	}
	return safefetch.NewClient(safefetch.Options{
		Timeout: cfg.Timeout, AllowHosts: cfg.AllowPrivateHosts, RootCAs: o.ClientDocumentRoots,
	})
}

// useClientDocuments makes the broker serve the clients that client ID
// metadata documents describe: the directory finds them through a
// clientdoc.Resolver fetching with fetcher, as often per client address
// as limiter allows.
func (b *Broker) useClientDocuments(cfg ClientMetadataDocumentsConfig, fetcher *http.Client, limiter *ratelimit.Limiter, o Options) {
	b.clients.UseDocuments(clientdoc.New(cfg, clientdoc.Options{HTTPClient: fetcher, Now: o.Clock, Log: o.Logger, Limiter: limiter}))
}

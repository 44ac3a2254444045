package broker

import (
	"github.com/idbroker/broker/broker/clientdoc"
	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/broker/safefetch"
)

// useClientDocuments makes the broker serve the clients that client ID
// metadata documents describe: the directory finds them through a
// clientdoc.Resolver, and the keys of those that authenticate with
// private_key_jwt are fetched as their documents are, through a client
// that refuses every address that is not public (broker/safefetch),
// since anyone may write a document naming any URL.
func (b *Broker) useClientDocuments(cfg ClientMetadataDocumentsConfig, o Options) {
	if len(cfg.AllowPrivateHosts) > 0 {
		b.log.Warn("client metadata documents: these hosts are fetched whatever their addresses; allow them only in development",
			"allowPrivateHosts", cfg.AllowPrivateHosts)
	}
	fetcher := safefetch.NewClient(safefetch.Options{
		Timeout: cfg.Timeout, AllowHosts: cfg.AllowPrivateHosts, RootCAs: o.ClientDocumentRoots,
	})
	b.clients.UseDocuments(clientdoc.New(cfg, clientdoc.Options{HTTPClient: fetcher, Now: o.Clock, Log: o.Logger}))
	b.auth.DocumentKeySets = clients.NewKeySets(fetcher, o.Clock)
}

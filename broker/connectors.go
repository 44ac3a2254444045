package broker

import (
	"context"
	"fmt"

	"github.com/idbroker/broker/broker/connectors"
	"github.com/idbroker/broker/upstream"
)

// openConnectors opens the configured connectors, each through its
// type's Config.
func openConnectors(ctx context.Context, cfg Config, o Options) (*connectors.Set, error) {
	specs := make([]connectors.Spec, 0, len(cfg.Connectors))
	for _, cc := range cfg.Connectors {
		settings, err := cc.settings()
		if err != nil {
			return nil, fmt.Errorf("broker: connector %q: %w", cc.ID, err)
		}
		specs = append(specs, connectors.Spec{ID: cc.ID, Name: cc.Name, Domains: cc.Domains,
			Timeout: cc.Timeout, RecheckInterval: cc.RecheckInterval, Config: settings})
	}
	return connectors.Open(ctx, cfg.Issuer, specs, upstream.Deps{
		HTTPClient: o.HTTPClient, Clock: o.Clock, Logger: o.Logger, Mailer: o.Mailer,
	})
}

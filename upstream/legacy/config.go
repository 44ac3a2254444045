package legacy

import (
	"context"

	"github.com/idbroker/broker/upstream"
)

// Config is an upstream.Config: the broker's configuration decodes its
// yaml (and storage its json) settings; the fields tagged "-" are set by
// Open.
var _ upstream.Config = Config{}

// Validate reports what New would refuse. New makes no call, so Validate
// is New with the result thrown away: the rules are stated once.
func (cfg Config) Validate(id string) error {
	cfg.ID = id
	_, err := New(cfg)
	return err
}

// Open returns New's connector, with deps.
func (cfg Config) Open(_ context.Context, id string, deps upstream.Deps) (upstream.Connector, error) {
	cfg.ID, cfg.HTTPClient, cfg.Timeout, cfg.Clock = id, deps.HTTPClient, deps.Timeout, deps.Clock
	return upstream.Opened(New(cfg))
}

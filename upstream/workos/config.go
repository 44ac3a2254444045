package workos

import (
	"context"
	"fmt"

	"github.com/idbroker/broker/upstream"
)

// Config is an upstream.Config: the broker's configuration decodes its
// yaml (and storage its json) settings; the fields tagged "-" are set by
// Open or left at their defaults.
var _ upstream.Config = Config{}

// Validate reports what New would refuse, without building anything.
func (cfg Config) Validate(id string) error {
	switch {
	case cfg.ClientID == "" || cfg.APIKey == "":
		return fmt.Errorf("workos: connector %q needs a client id and an API key", id)
	case cfg.MaxClockSkew < 0 || cfg.MaxClockSkew > upstream.MaxMaxClockSkew:
		return fmt.Errorf("workos: connector %q: clock skew %s outside [0, %s]", id, cfg.MaxClockSkew, upstream.MaxMaxClockSkew)
	}
	return nil
}

// Open returns New's connector, with deps.
func (cfg Config) Open(_ context.Context, id string, deps upstream.Deps) (upstream.Connector, error) {
	cfg.ID, cfg.HTTPClient, cfg.Timeout, cfg.Clock = id, deps.HTTPClient, deps.Timeout, deps.Clock
	return upstream.Opened(New(cfg))
}

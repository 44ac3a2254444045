package registration

import (
	"fmt"
	"time"

	"github.com/idbroker/broker/broker/ratelimit"
	"github.com/idbroker/broker/storage"
)

// Policies of Config.Policy.
const (
	// PolicyDisabled registers nobody: /register is not served and
	// metadata names no registration endpoint.
	PolicyDisabled = "disabled"
	// PolicyOpen registers public clients for anyone, within
	// OpenRateLimit per client address.
	PolicyOpen = "open"
	// PolicyToken registers public and confidential clients for whoever
	// presents an initial access token an administrator created.
	PolicyToken = "token"
)

// Config is the configuration's registration section.
type Config struct {
	// Policy is disabled (the default), open or token.
	Policy string `yaml:"policy"`
	// UnusedClientLifetime deletes a registered client that has obtained
	// no token for this long (default 30 days), whatever the policy now.
	UnusedClientLifetime time.Duration `yaml:"unusedClientLifetime"`
	// OpenRateLimit bounds registrations per client address under the
	// open policy (default 10 an hour).
	OpenRateLimit ratelimit.Limit `yaml:"openRateLimit"`
}

// SetDefaults fills in what the configuration left out.
func (c *Config) SetDefaults() {
	if c.Policy == "" {
		c.Policy = PolicyDisabled
	}
	if c.UnusedClientLifetime == 0 {
		c.UnusedClientLifetime = 30 * 24 * time.Hour
	}
	if c.OpenRateLimit == (ratelimit.Limit{}) {
		c.OpenRateLimit = ratelimit.Limit{Count: 10, Window: time.Hour}
	}
}

// Validate reports the first setting that is wrong, naming it.
func (c Config) Validate() error {
	switch c.Policy {
	case PolicyDisabled, PolicyOpen, PolicyToken:
	default:
		return fmt.Errorf("config: registration.policy %q is not one of %s, %s, %s", c.Policy, PolicyDisabled, PolicyOpen, PolicyToken)
	}
	// A client's use is recorded at most once per granularity, so a
	// shorter lifetime could end a client in use.
	if c.UnusedClientLifetime < storage.ClientUseGranularity {
		return fmt.Errorf("config: registration.unusedClientLifetime %s must be at least %s (a client's use is recorded that coarsely)",
			c.UnusedClientLifetime, storage.ClientUseGranularity)
	}
	if c.OpenRateLimit.Count < 1 || c.OpenRateLimit.Window <= 0 {
		return fmt.Errorf("config: registration.openRateLimit needs a count of at least 1 and a positive window")
	}
	return nil
}

// Enabled reports whether /register is served.
func (c Config) Enabled() bool { return c.Policy == PolicyOpen || c.Policy == PolicyToken }

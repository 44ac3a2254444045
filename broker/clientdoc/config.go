package clientdoc

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/idbroker/broker/broker/ratelimit"
)

// Config is the clientMetadataDocuments section of the configuration
// file.
type Config struct {
	// Enabled makes a client_id that is an https URL name the client's
	// metadata document, and discovery say so
	// (client_id_metadata_document_supported). Off by default.
	Enabled bool `yaml:"enabled"`
	// AllowPrivateHosts are hosts (DNS names or IP literals, as client
	// ids write them) whose documents may be fetched although they
	// resolve to addresses that are not public: loopback, private and the
	// like. For development and tests; never the broker's own network.
	AllowPrivateHosts []string `yaml:"allowPrivateHosts"`
	// TrustedDomains are domains whose clients the consent page shows as
	// verified: a document's host that is one of them or under one.
	TrustedDomains []string `yaml:"trustedDomains"`
	// Timeout bounds one fetch of a document (default 5s, at most 20s).
	Timeout time.Duration `yaml:"timeout"`
	// MaxBytes caps a document (default 5120, the draft's 5 kilobytes;
	// at most 65536).
	MaxBytes int `yaml:"maxBytes"`
	// MinCacheAge and MaxCacheAge bound how long a document is kept
	// when its caching headers allow keeping it at all (defaults 1m and
	// 24h); no-store, no-cache and max-age=0 keep it for no time.
	MinCacheAge time.Duration `yaml:"minCacheAge"`
	MaxCacheAge time.Duration `yaml:"maxCacheAge"`
	// FetchRateLimit bounds the documents fetched (not those answered
	// from the cache) for one client address: anyone may make the broker
	// fetch a URL by naming it as a client id. Default 30 a minute.
	FetchRateLimit ratelimit.Limit `yaml:"fetchRateLimit"`
}

// Defaults and bounds of Config.
const (
	DefaultTimeout     = 5 * time.Second
	MaxTimeout         = 20 * time.Second
	DefaultMaxBytes    = 5 << 10
	MaxMaxBytes        = 64 << 10
	DefaultMinCacheAge = time.Minute
	DefaultMaxCacheAge = 24 * time.Hour
)

// DefaultFetchRateLimit is FetchRateLimit's default.
var DefaultFetchRateLimit = ratelimit.Limit{Count: 30, Window: time.Minute}

// SetDefaults fills what the configuration leaves out.
func (c *Config) SetDefaults() {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MinCacheAge == 0 {
		c.MinCacheAge = DefaultMinCacheAge
	}
	if c.MaxCacheAge == 0 {
		c.MaxCacheAge = DefaultMaxCacheAge
	}
	if c.FetchRateLimit == (ratelimit.Limit{}) {
		c.FetchRateLimit = DefaultFetchRateLimit
	}
}

// Validate reports the first setting out of bounds, naming it.
func (c Config) Validate() error {
	const section = "config: clientMetadataDocuments."
	switch {
	case c.Timeout <= 0 || c.Timeout > MaxTimeout:
		return fmt.Errorf(section+"timeout %s must be positive and at most %s", c.Timeout, MaxTimeout)
	case c.MaxBytes <= 0 || c.MaxBytes > MaxMaxBytes:
		return fmt.Errorf(section+"maxBytes %d must be between 1 and %d", c.MaxBytes, MaxMaxBytes)
	case c.MinCacheAge < 0 || c.MaxCacheAge < c.MinCacheAge:
		return fmt.Errorf(section+"minCacheAge %s and maxCacheAge %s must satisfy 0 <= minCacheAge <= maxCacheAge", c.MinCacheAge, c.MaxCacheAge)
	case c.FetchRateLimit.Count <= 0 || c.FetchRateLimit.Window <= 0:
		return fmt.Errorf(section + "fetchRateLimit must have a positive count and window")
	}
	for _, h := range c.AllowPrivateHosts {
		if err := checkHostName(h); err != nil {
			return fmt.Errorf(section+"allowPrivateHosts: %q %w", h, err)
		}
	}
	for _, d := range c.TrustedDomains {
		if _, err := netip.ParseAddr(d); err == nil {
			return fmt.Errorf(section+"trustedDomains: %q is an address, not a domain", d)
		}
		if err := checkHostName(d); err != nil {
			return fmt.Errorf(section+"trustedDomains: %q %w", d, err)
		}
	}
	return nil
}

// checkHostName accepts an IP literal or a DNS name of letters, digits,
// hyphens and dots, in lower case, as URLs carry hosts.
func checkHostName(h string) error {
	if _, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")); err == nil {
		return nil
	}
	if h == "" || len(h) > 253 || strings.HasPrefix(h, ".") || strings.HasSuffix(h, ".") || strings.Contains(h, "..") {
		return errors.New("is not a host name")
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return errors.New("is not a host name in lower case (letters, digits, hyphens and dots)")
		}
	}
	return nil
}

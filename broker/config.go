package broker

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/idbroker/broker/broker/admin"
	"github.com/idbroker/broker/broker/clientdoc"
	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/broker/edge"
	"github.com/idbroker/broker/broker/identity"
	"github.com/idbroker/broker/broker/registration"
	"github.com/idbroker/broker/broker/resources"
	"github.com/idbroker/broker/broker/tokens"
	"github.com/idbroker/broker/keys"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/upstream"
	"github.com/idbroker/broker/upstream/otp"
	"github.com/idbroker/broker/upstream/registry"
	"github.com/idbroker/broker/web"
	"gopkg.in/yaml.v3"
)

// Config is the broker's configuration file.
type Config struct {
	Issuer     string            `yaml:"issuer"`
	HTTP       HTTPConfig        `yaml:"http"`
	Storage    StorageConfig     `yaml:"storage"`
	Keys       KeysConfig        `yaml:"keys"`
	Tokens     TokensConfig      `yaml:"tokens"`
	OTP        OTPConfig         `yaml:"otp"`
	Sessions   SessionsConfig    `yaml:"sessions"`
	Connectors []ConnectorConfig `yaml:"connectors"`
	Clients    []ClientConfig    `yaml:"clients"`
	// Resources are the protected resources (RFC 8707) tokens may be
	// asked for alone; the admin API and the CLI store more.
	Resources []ResourceConfig `yaml:"resources"`
	Branding  BrandingConfig   `yaml:"branding"`
	Limits    LimitsConfig     `yaml:"limits"`
	Admin     admin.Config     `yaml:"admin"`
	// Organizations configures organisations: how each replica keeps up
	// with them and the connectors stored at run time, how domains are
	// verified, and what becomes of an upstream organisation none maps.
	Organizations OrganizationsConfig `yaml:"organizations"`
	// Registration configures dynamic client registration (RFC 7591).
	Registration registration.Config `yaml:"registration"`
	// ClientMetadataDocuments lets a client_id that is an https URL name
	// the client's metadata document (broker/clientdoc).
	ClientMetadataDocuments ClientMetadataDocumentsConfig `yaml:"clientMetadataDocuments"`
}

// ClientMetadataDocumentsConfig configures client ID metadata documents.
type ClientMetadataDocumentsConfig = clientdoc.Config

// HTTPConfig is where and how the broker listens.
type HTTPConfig struct {
	Addr string `yaml:"addr"`
	// TrustedProxies are the peers (IPs or CIDRs) whose X-Forwarded-For is
	// believed for the client address.
	TrustedProxies []string `yaml:"trustedProxies"`
	// MetricsAddr, when set, serves /metrics on its own listener instead
	// of the main one (keep it off the public network).
	MetricsAddr string `yaml:"metricsAddr"`
}

// StorageConfig picks the store.
type StorageConfig struct {
	Type string `yaml:"type"` // memory or postgres
	DSN  string `yaml:"dsn"`
}

// KeysConfig configures signing keys.
type KeysConfig struct {
	IDTokenAlgorithm     string        `yaml:"idTokenAlgorithm"`
	AccessTokenAlgorithm string        `yaml:"accessTokenAlgorithm"`
	RotationPeriod       time.Duration `yaml:"rotationPeriod"`
	PrePublish           time.Duration `yaml:"prePublish"`
}

// TokensConfig sets token lifetimes.
type TokensConfig = tokens.Config

// SessionsConfig sets the lifetimes of single-sign-on sessions.
type SessionsConfig struct {
	// IdleTTL ends a session no client has used for this long.
	IdleTTL time.Duration `yaml:"idleTTL"`
	// AbsoluteTTL ends a session this long after its login, however busy.
	AbsoluteTTL time.Duration `yaml:"absoluteTTL"`
}

// OTPConfig tunes one-time codes.
type OTPConfig struct {
	CodeTTL     time.Duration `yaml:"codeTTL"`
	MaxAttempts int           `yaml:"maxAttempts"`
}

// OrganizationsConfig configures organisations.
type OrganizationsConfig struct {
	// PollInterval is how often each replica asks storage whether an
	// organisation, a domain or a stored connector changed (default
	// 2s): a change takes effect everywhere within it.
	PollInterval time.Duration `yaml:"pollInterval"`
	// UnknownUpstreamOrg says what becomes of an identity whose upstream
	// names an organisation (an Auth0 org_id, an Entra tenant, a WorkOS
	// organization) that no broker organisation maps: "ignore" (the
	// default) signs it in to no organisation; "refuse" refuses it (a
	// page at login, invalid_grant in token exchange).
	UnknownUpstreamOrg string `yaml:"unknownUpstreamOrg"`
	// DNSResolver is the DNS server (host:port) asked for the TXT records
	// that verify organisations' domains; empty asks the system's
	// resolver. Name one whose answers you trust: a verified domain
	// routes its users' logins.
	DNSResolver string `yaml:"dnsResolver"`
}

// Values of OrganizationsConfig.UnknownUpstreamOrg.
const (
	UnknownUpstreamOrgIgnore = "ignore"
	UnknownUpstreamOrgRefuse = "refuse"
)

func (o OrganizationsConfig) validate() error {
	switch o.UnknownUpstreamOrg {
	case "", UnknownUpstreamOrgIgnore, UnknownUpstreamOrgRefuse:
	default:
		return fmt.Errorf("config: organizations.unknownUpstreamOrg %q is not one of ignore, refuse", o.UnknownUpstreamOrg)
	}
	if o.DNSResolver == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(o.DNSResolver)
	if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
		return fmt.Errorf("config: organizations.dnsResolver %q must be host:port (e.g. 127.0.0.1:53)", o.DNSResolver)
	}
	return nil
}

// ConnectorConfig is one upstream: the settings every connector has, and
// Config, its type's own, decoded by upstream/registry.
type ConnectorConfig struct {
	ID   string `yaml:"id"`
	Type string `yaml:"type"` // a registry type: otp, oidc, auth0, azuread, workos, legacy
	Name string `yaml:"name"`
	// Domains send an email-first login for them to this connector.
	Domains []string `yaml:"domains"`
	// Timeout bounds what one request waits on this upstream, all its
	// calls there together: discovery, keys, token endpoint, userinfo,
	// WorkOS authenticate, a legacy service's validation (default
	// upstream/oidc.DefaultTimeout, at most MaxUpstreamTimeout). Past it
	// the request is answered 503.
	Timeout time.Duration `yaml:"timeout"`
	// RecheckInterval is how old an upstream check may be before a broker
	// refresh asks the upstream again (default 1h).
	RecheckInterval time.Duration `yaml:"recheckInterval"`
	// Config is the type's own settings (in YAML, the entry's other
	// keys): *oidc.Config, *oidc.Auth0Config, *oidc.AzureConfig,
	// *workos.Config, *otp.Config or *legacy.Config. Nil means the type's
	// zero settings.
	Config upstream.Config `yaml:"-"`
}

// commonConnectorKeys are ConnectorConfig's own keys; the entry's others
// are its type's.
var commonConnectorKeys = []string{"id", "type", "name", "domains", "timeout", "recheckInterval"}

// UnmarshalYAML decodes the common keys, then hands the others to the
// registry, which decodes them strictly into the type's Config. An error
// names the connector id and the setting.
func (cc *ConnectorConfig) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a connector is a mapping of its settings", n.Line)
	}
	budget := 1000
	pairs, err := mergedPairs(n, &budget)
	if err != nil {
		return fmt.Errorf("line %d: connector: %w", n.Line, err)
	}
	var id string
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i].Value == "id" && pairs[i+1].Kind == yaml.ScalarNode {
			id = pairs[i+1].Value
		}
	}
	common := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	own := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	type plain ConnectorConfig // without this method
	for i := 0; i+1 < len(pairs); i += 2 {
		key := pairs[i].Value
		if !slices.Contains(commonConnectorKeys, key) {
			own.Content = append(own.Content, pairs[i], pairs[i+1])
			continue
		}
		one := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: pairs[i : i+2]}
		if err := one.Decode(new(plain)); err != nil {
			msg := strings.TrimPrefix(strings.TrimPrefix(err.Error(), "yaml: "), "unmarshal errors:\n  ")
			return fmt.Errorf("connector %q: %s: %s", id, key, msg)
		}
		common.Content = append(common.Content, pairs[i], pairs[i+1])
	}
	var c plain
	if err := common.Decode(&c); err != nil {
		return fmt.Errorf("connector %q: %w", id, err)
	}
	cfg, err := registry.DecodeYAML(c.Type, own)
	if err != nil {
		return fmt.Errorf("connector %q: %w", id, err)
	}
	c.Config = cfg
	*cc = ConnectorConfig(c)
	return nil
}

// mergedPairs are a mapping's keys and values with YAML merge keys
// ("<<: *base") expanded: a key written in the mapping wins over a
// merged one, and an earlier merged mapping over a later one. *budget
// bounds the pairs merged, against aliases that multiply.
func mergedPairs(n *yaml.Node, budget *int) ([]*yaml.Node, error) {
	var own, merged []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag != "!!merge" {
			own = append(own, k, v)
			continue
		}
		sources := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			sources = v.Content
		}
		for _, src := range sources {
			if src.Kind == yaml.AliasNode && src.Alias != nil {
				src = src.Alias
			}
			if *budget -= len(src.Content); *budget < 0 || src == n {
				return nil, errors.New("merges too much")
			}
			if src.Kind != yaml.MappingNode {
				return nil, errors.New("merges what is not a mapping")
			}
			pairs, err := mergedPairs(src, budget)
			if err != nil {
				return nil, err
			}
			merged = append(merged, pairs...)
		}
	}
	out := own
	for i := 0; i+1 < len(merged); i += 2 {
		if !slices.ContainsFunc(out, func(k *yaml.Node) bool { return k.Value == merged[i].Value }) {
			out = append(out, merged[i], merged[i+1])
		}
	}
	return out, nil
}

// ClientConfig is a client defined in the configuration file.
type ClientConfig struct {
	ID                     string   `yaml:"id"`
	Name                   string   `yaml:"name"`
	Public                 bool     `yaml:"public"`
	Secret                 string   `yaml:"secret"`
	RedirectURIs           []string `yaml:"redirectURIs"`
	PostLogoutRedirectURIs []string `yaml:"postLogoutRedirectURIs"`
	GrantTypes             []string `yaml:"grantTypes"`
	Audiences              []string `yaml:"audiences"`
	Scopes                 []string `yaml:"scopes"`
	AllowedOrigins         []string `yaml:"allowedOrigins"`
	// BackchannelLogoutURI receives a logout token when a session the
	// client got tokens under ends (Back-Channel Logout 1.0).
	BackchannelLogoutURI string `yaml:"backchannelLogoutURI"`
	// IDTokenSignedResponseAlg is the algorithm this client's ID tokens
	// are signed with (OIDC Dynamic Client Registration's
	// id_token_signed_response_alg), when it differs from
	// keys.idTokenAlgorithm. The broker keeps a key of its own for it.
	IDTokenSignedResponseAlg string `yaml:"idTokenSignedResponseAlg"`
	// Actors are who may act for a subject in this client's token
	// exchanges: an actor_token (RFC 8693 section 4.1) is accepted only
	// when one of these names it, and the issued token's act claim then
	// names the actor. Each entry is "client:<client id>", any access
	// token the broker issued to that client, or "user:<UUID>", any actor
	// token (the broker's or an upstream's) whose subject is, or resolves
	// to, that platform user. Empty: no actor_token is accepted. Only
	// clients with the token-exchange grant may list actors.
	Actors []string `yaml:"actors"`
	// JWKS (the key set itself, as YAML or a JSON string) or JWKSURI
	// (where to fetch it) holds the client's public keys: with either, the
	// client may authenticate with private_key_jwt (RFC 7523 section 2.2).
	JWKS    JSONDocument `yaml:"jwks"`
	JWKSURI string       `yaml:"jwksURI"`
	// Introspector lets the client introspect every client's tokens (a
	// gateway, an auditing service). Without it, introspection tells a
	// client only about tokens issued to it or naming it in their
	// audience (RFC 7662 section 4). Only a confidential client may be
	// one. The admin API and the CLI cannot make a stored client one:
	// reading everyone's tokens is granted in the reviewed configuration
	// file.
	Introspector bool `yaml:"introspector"`
	// IDJAG is the client's policy for identity assertion grants.
	IDJAG IDJAGPolicy `yaml:"idJAG"`
}

// IDJAGPolicy says for which other authorization servers a client may
// get identity assertion grants (ID-JAGs,
// draft-ietf-oauth-identity-assertion-authz-grant) by token exchange,
// with an ID token the broker issued to it as the subject token.
type IDJAGPolicy struct {
	// Audiences are those authorization servers' issuer identifiers
	// (RFC 8414 section 2). Empty: none. Only clients with the
	// token-exchange grant may list any.
	Audiences []string `yaml:"audiences"`
}

// BrandingConfig styles the login pages.
type BrandingConfig struct {
	ProductName  string `yaml:"productName"`
	LogoURL      string `yaml:"logoURL"`
	PrimaryColor string `yaml:"primaryColor"`
	SupportURL   string `yaml:"supportURL"`
}

// validate keeps branding to values the pages can use safely: the colour
// lands in an inline style, so only #rgb or #rrggbb; the links must be
// absolute (https for the logo).
func (b BrandingConfig) validate() error {
	if b.PrimaryColor != "" && !web.ValidColour(b.PrimaryColor) {
		return fmt.Errorf("config: branding.primaryColor %q must be a colour like #2f5bea or #25e", b.PrimaryColor)
	}
	if b.LogoURL != "" {
		if u, err := url.Parse(b.LogoURL); err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("config: branding.logoURL %q must be an https URL", b.LogoURL)
		}
	}
	if b.SupportURL != "" {
		if u, err := url.Parse(b.SupportURL); err != nil || !(((u.Scheme == "https" || u.Scheme == "http") && u.Host != "") || (u.Scheme == "mailto" && u.Opaque != "")) {
			return fmt.Errorf("config: branding.supportURL %q must be an http(s) or mailto URL", b.SupportURL)
		}
	}
	return nil
}

// Grant type names as written in the configuration.
const (
	GrantAuthorizationCode = clients.GrantAuthorizationCode
	GrantRefreshToken      = clients.GrantRefreshToken
	GrantTokenExchange     = clients.GrantTokenExchange
	GrantClientCredentials = clients.GrantClientCredentials
	GrantJWTBearer         = clients.GrantJWTBearer
)

// LoadConfig reads a configuration file. ${NAME} in any value is replaced by
// lookup(NAME), normally the environment; an unset variable is an error, so
// a missing secret never silently becomes an empty one.
func LoadConfig(path string, lookup func(string) (string, bool)) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return ParseConfig(data, lookup)
}

// ParseConfig parses configuration text, expanding ${NAME} with lookup.
func ParseConfig(data []byte, lookup func(string) (string, bool)) (Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	// Expanding scalars after parsing, not the text before, keeps a secret
	// containing ": " or "#" from changing the document's structure.
	if err := expandNode(&doc, lookup); err != nil {
		return Config{}, err
	}
	var c Config
	if len(doc.Content) > 0 { // an empty file means "all defaults"
		expanded, err := yaml.Marshal(&doc)
		if err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(expanded))
		dec.KnownFields(true) // a misspelt setting is an error, not a silent default
		if err := dec.Decode(&c); err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
	}
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func expandNode(n *yaml.Node, lookup func(string) (string, bool)) error {
	if n.Kind == yaml.ScalarNode {
		var missing []string
		n.Value = os.Expand(n.Value, func(name string) string {
			v, ok := lookup(name)
			if !ok {
				missing = append(missing, name)
			}
			return v
		})
		if len(missing) > 0 {
			return fmt.Errorf("config: line %d: environment variable %q is not set", n.Line, missing[0])
		}
		return nil
	}
	for _, c := range n.Content {
		if err := expandNode(c, lookup); err != nil {
			return err
		}
	}
	return nil
}

// DevelopmentConfig is the embedded default: memory storage, the OTP
// connector with codes written to the log, and the public client "dev"
// that accepts any loopback redirect URI.
func DevelopmentConfig(issuer, addr string) Config {
	c := Config{
		Issuer:  issuer,
		HTTP:    HTTPConfig{Addr: addr},
		Storage: StorageConfig{Type: "memory"},
		Connectors: []ConnectorConfig{
			{ID: "otp", Type: "otp", Name: "Email code", Config: &otp.Config{Mailer: otp.MailerConfig{Type: "log"}}},
		},
		Clients: []ClientConfig{
			{ID: DevClientID, Name: "Development client", Public: true,
				GrantTypes: []string{GrantAuthorizationCode, GrantRefreshToken}},
		},
	}
	c.setDefaults()
	return c
}

// MaxUpstreamTimeout bounds a connector's timeout: a request that waits it
// out, and then renders a page or writes to the store, must still be
// answered well within the server's write timeout (30 s in broker serve),
// or the client sees the connection reset instead of a 503.
const MaxUpstreamTimeout = 20 * time.Second

// DevClientID is the development instance's client. Only it accepts any
// loopback redirect URI.
const DevClientID = clients.DevClientID

func (c *Config) setDefaults() {
	if c.HTTP.Addr == "" {
		c.HTTP.Addr = ":8080"
	}
	if c.Issuer == "" {
		c.Issuer = "http://localhost" + c.HTTP.Addr[strings.LastIndexByte(c.HTTP.Addr, ':'):]
	}
	c.Issuer = strings.TrimSuffix(c.Issuer, "/")
	if c.Storage.Type == "" {
		c.Storage.Type = "memory"
	}
	k := &c.Keys
	setDefault(&k.IDTokenAlgorithm, "RS256")
	setDefault(&k.AccessTokenAlgorithm, "ES256")
	setDefault(&k.RotationPeriod, 24*time.Hour)
	setDefault(&k.PrePublish, time.Hour)
	t := &c.Tokens
	setDefault(&t.AccessTokenTTL, 15*time.Minute)
	setDefault(&t.IDTokenTTL, time.Hour)
	setDefault(&t.RefreshTokenTTL, 30*24*time.Hour)
	setDefault(&t.RefreshIdleTTL, 7*24*time.Hour)
	setDefault(&t.RefreshRetryWindow, 2*time.Second)
	setDefault(&t.AuthRequestTTL, 30*time.Minute)
	setDefault(&t.CodeTTL, time.Minute)
	setDefault(&t.ClockSkew, time.Minute)
	setDefault(&c.Sessions.IdleTTL, 24*time.Hour)
	setDefault(&c.Sessions.AbsoluteTTL, 7*24*time.Hour)
	setDefault(&c.OTP.CodeTTL, 10*time.Minute)
	setDefault(&c.OTP.MaxAttempts, 5)
	setDefault(&c.Branding.ProductName, "Sign in")
	setDefault(&c.Organizations.PollInterval, 2*time.Second)
	c.Limits.setDefaults()
	c.Registration.SetDefaults()
	c.ClientMetadataDocuments.SetDefaults()
	for i := range c.Clients {
		if len(c.Clients[i].GrantTypes) == 0 {
			c.Clients[i].GrantTypes = []string{GrantAuthorizationCode, GrantRefreshToken}
		}
	}
	for i := range c.Connectors {
		setDefault(&c.Connectors[i].Name, c.Connectors[i].ID)
		setDefault(&c.Connectors[i].RecheckInterval, time.Hour)
	}
}

func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// Validate reports the first thing wrong with the configuration, naming it.
func (c *Config) Validate() error {
	u, err := url.Parse(c.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("config: issuer %q must be an absolute http(s) URL without query or fragment", c.Issuer)
	}
	switch c.Storage.Type {
	case "memory":
	case "postgres":
		if c.Storage.DSN == "" {
			return errors.New("config: storage.dsn is required for postgres storage")
		}
	default:
		return fmt.Errorf("config: storage.type %q is not one of memory, postgres", c.Storage.Type)
	}
	for _, alg := range []string{c.Keys.IDTokenAlgorithm, c.Keys.AccessTokenAlgorithm} {
		if !slices.Contains(signingAlgorithms, alg) {
			return fmt.Errorf("config: signing algorithm %q is not one of RS256, ES256, EdDSA", alg)
		}
	}
	if err := c.Admin.Validate(); err != nil {
		return err
	}
	if err := c.Organizations.validate(); err != nil {
		return err
	}
	if err := c.Limits.validate(); err != nil {
		return err
	}
	if err := c.Registration.Validate(); err != nil {
		return err
	}
	if err := c.ClientMetadataDocuments.Validate(); err != nil {
		return err
	}
	if _, err := edge.ParseProxies(c.HTTP.TrustedProxies); err != nil {
		return err
	}
	if c.Sessions.IdleTTL < 0 || c.Sessions.AbsoluteTTL < 0 {
		return errors.New("config: sessions.idleTTL and sessions.absoluteTTL must not be negative")
	}
	// A revoked refresh family is what revokes the access tokens of its
	// grant, and storage keeps it only this long past its lifetime.
	if c.Tokens.AccessTokenTTL > storage.RevokedFamilyRetention {
		return fmt.Errorf("config: tokens.accessTokenTTL %s is longer than %s", c.Tokens.AccessTokenTTL, storage.RevokedFamilyRetention)
	}
	if c.Organizations.PollInterval < 0 {
		return fmt.Errorf("config: organizations.pollInterval %s is negative", c.Organizations.PollInterval)
	}
	if c.OTP.MaxAttempts < 1 {
		return fmt.Errorf("config: otp.maxAttempts %d must be at least 1", c.OTP.MaxAttempts)
	}
	if err := c.Branding.validate(); err != nil {
		return err
	}
	ids := map[string]bool{}
	for i, cc := range c.Connectors {
		if cc.ID == "" {
			return fmt.Errorf("config: connectors[%d] has no id", i)
		}
		if ids[cc.ID] {
			return fmt.Errorf("config: connector id %q is used twice", cc.ID)
		}
		ids[cc.ID] = true
		if cc.ID == identity.ServiceConnector {
			return fmt.Errorf("config: connector id %q is reserved for machine clients' service users", cc.ID)
		}
		if cc.Timeout < 0 {
			return fmt.Errorf("config: connector %q: timeout %s is negative", cc.ID, cc.Timeout)
		}
		if cc.Timeout > MaxUpstreamTimeout {
			return fmt.Errorf("config: connector %q: timeout %s is longer than %s", cc.ID, cc.Timeout, MaxUpstreamTimeout)
		}
		cfg, err := cc.settings()
		if err != nil {
			return fmt.Errorf("config: connector %q: %w", cc.ID, err)
		}
		if cc.Type == "legacy" && len(cc.Domains) > 0 {
			// It has no login page to send an email's domain to.
			return fmt.Errorf("config: connector %q: a legacy connector only verifies tokens for exchange; domains do not apply", cc.ID)
		}
		if err := cfg.Validate(cc.ID); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	clientIDs := map[string]bool{}
	for i, cl := range c.Clients {
		if cl.ID == "" {
			return fmt.Errorf("config: clients[%d] has no id", i)
		}
		if clientIDs[cl.ID] {
			return fmt.Errorf("config: client id %q is used twice", cl.ID)
		}
		clientIDs[cl.ID] = true
		if err := clients.CheckRules(cl.client(), signingAlgorithms); err != nil {
			if re := (*clients.RuleError)(nil); errors.As(err, &re) {
				return fmt.Errorf("config: client %q: %s: %w", cl.ID, re.Setting.YAML, re.Err)
			}
			return fmt.Errorf("config: client %q: %w", cl.ID, err)
		}
	}
	return c.validateResources()
}

// ResourceConfig is a protected resource of the configuration file:
// read-only at run time, its id never stored.
type ResourceConfig struct {
	// ID is the resource indicator, an absolute https URL without a
	// fragment: the aud of its access tokens.
	ID string `yaml:"id"`
	// Scopes are those its access tokens may carry.
	Scopes []string `yaml:"scopes"`
	// AccessTokenTTL is its access tokens' lifetime, at most
	// tokens.accessTokenTTL; 0 for that.
	AccessTokenTTL time.Duration `yaml:"accessTokenTTL"`
	// ThirdParty lets third-party clients ask for it.
	ThirdParty bool `yaml:"thirdParty"`
}

// resource is the resource as storage and the registry hold one.
func (rc ResourceConfig) resource() storage.Resource {
	return storage.Resource{ID: rc.ID, Scopes: rc.Scopes, AccessTokenTTL: rc.AccessTokenTTL, ThirdParty: rc.ThirdParty}
}

// configuredResources are the configuration file's resources.
func (c Config) configuredResources() []storage.Resource {
	out := make([]storage.Resource, len(c.Resources))
	for i, rc := range c.Resources {
		out[i] = rc.resource()
	}
	return out
}

// validateResources holds each resource to resources.Check, with the
// broker's access-token lifetime as the bound of its own.
func (c Config) validateResources() error {
	seen := map[string]bool{}
	for i, rc := range c.Resources {
		if err := resources.Check(rc.resource(), c.Tokens.AccessTokenTTL); err != nil {
			var fe *resources.FieldError
			if errors.As(err, &fe) {
				return fmt.Errorf("config: resources[%d]: %s: %s", i, resourceYAMLNames[fe.Field], fe.Reason)
			}
			return fmt.Errorf("config: resources[%d]: %w", i, err)
		}
		if seen[rc.ID] {
			return fmt.Errorf("config: resource %q is listed twice", rc.ID)
		}
		seen[rc.ID] = true
	}
	return nil
}

// resourceYAMLNames are the configuration's names of resources.FieldError
// fields.
var resourceYAMLNames = map[string]string{"id": "id", "scopes": "scopes", "access_token_ttl": "accessTokenTTL"}

// signingAlgorithms are the algorithms the broker signs tokens with.
var signingAlgorithms = []string{keys.RS256, keys.ES256, keys.EdDSA}

// idTokenAlgorithms are the algorithms the broker keeps an ID-token key
// for: keys.idTokenAlgorithm (RS256 when unset), the default, then every
// other algorithm it signs with, so that any client, stored or
// configured, may ask for any of them (idTokenSignedResponseAlg) and
// every replica already signs with it. Discovery lists them all: a
// relying party that verifies with the algorithms discovery lists for ID
// tokens (go-oidc's default, and so oauth2-proxy's for bearer tokens)
// then also accepts the access tokens, which keys.accessTokenAlgorithm
// (ES256) signs.
func (c Config) idTokenAlgorithms() []string {
	def := cmp.Or(c.Keys.IDTokenAlgorithm, "RS256")
	return append([]string{def}, slices.DeleteFunc(slices.Clone(signingAlgorithms), func(a string) bool { return a == def })...)
}

// settings returns the connector's own settings, the type's zero ones
// when Config is nil, after checking they are of its type.
func (cc ConnectorConfig) settings() (upstream.Config, error) {
	if cc.Config == nil {
		return registry.New(cc.Type)
	}
	if _, err := registry.New(cc.Type); err != nil {
		return nil, err
	}
	if got := registry.TypeOf(cc.Config); got != cc.Type {
		return nil, fmt.Errorf("settings %T are not those of type %q", cc.Config, cc.Type)
	}
	return cc.Config, nil
}

// JSONDocument is a JSON value in the configuration, written either as
// YAML or as a string holding JSON.
type JSONDocument []byte

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *JSONDocument) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		*d = JSONDocument(n.Value)
		return nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("line %d: not representable as JSON: %w", n.Line, err)
	}
	*d = b
	return nil
}

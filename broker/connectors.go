package broker

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/idbroker/broker/broker/admin"
	"github.com/idbroker/broker/broker/connectors"
	"github.com/idbroker/broker/broker/orgs"
	"github.com/idbroker/broker/keys"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/upstream"
	"github.com/idbroker/broker/upstream/registry"
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

// checkTimeout bounds the check of an upstream when a connector is
// created, changed or tested: an administrator waits for it.
const checkTimeout = 5 * time.Second

// storedConnectors is what the broker does with connectors stored at run
// time: seals and opens their settings (admin.ConnectorSettings), turns
// stored rows into the connector set's specs, and checks an upstream
// before a connector is stored.
type storedConnectors struct {
	issuer string
	env    *keys.Envelope
	deps   upstream.Deps
}

var _ admin.ConnectorSettings = storedConnectors{}

func newStoredConnectors(cfg Config, o Options) (storedConnectors, error) {
	env, err := keys.NewEnvelope(connectorSettingsLabel, derived(o, purposeConnectorSeal))
	if err != nil {
		return storedConnectors{}, fmt.Errorf("broker: %w", err)
	}
	return storedConnectors{issuer: cfg.Issuer, env: env, deps: upstream.Deps{
		HTTPClient: o.HTTPClient, Clock: o.Clock, Logger: o.Logger, Mailer: o.Mailer,
	}}, nil
}

// open returns the settings of c in the clear, as a JSON object.
func (sc storedConnectors) open(c storage.StoredConnector) (map[string]any, error) {
	plain, err := sc.env.Open(c.Settings, connectorRow(c)...)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(plain, &m); err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	return m, nil
}

// spec is the connector set's spec of c.
func (sc storedConnectors) spec(c storage.StoredConnector) (connectors.Spec, error) {
	plain, err := sc.env.Open(c.Settings, connectorRow(c)...)
	if err != nil {
		return connectors.Spec{}, err
	}
	cfg, err := registry.DecodeJSON(c.Type, plain)
	if err != nil {
		return connectors.Spec{}, fmt.Errorf("settings: %w", err)
	}
	return connectors.Spec{ID: c.ID, Name: cmp.Or(c.Name, c.ID), Timeout: c.Timeout,
		RecheckInterval: cmp.Or(c.RecheckInterval, time.Hour), Org: c.OrgID, Config: cfg}, nil
}

// specs are the connector set's specs of the enabled connectors of
// stored; one whose settings do not open is logged and left out.
func (sc storedConnectors) specs(ctx context.Context, stored []storage.StoredConnector) []connectors.Spec {
	var out []connectors.Spec
	for _, c := range stored {
		if c.Disabled {
			continue
		}
		sp, err := sc.spec(c)
		if err != nil {
			sc.deps.Logger.ErrorContext(ctx, "stored connector left out: its settings do not open", "connector", c.ID, "err", err)
			continue
		}
		out = append(out, sp)
	}
	return out
}

// Prepare implements admin.ConnectorSettings.
func (sc storedConnectors) Prepare(ctx context.Context, c storage.StoredConnector, settings json.RawMessage) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(settings, &m); err != nil || m == nil {
		return nil, invalidSettings("settings must be a JSON object")
	}
	// Secrets are write-only: one left out, or given back as shown,
	// keeps the stored value. Stored settings that do not open (sealed
	// under a root secret since dropped, or copied from another row) keep
	// nothing: every secret must be given again, which is how an
	// administrator repairs them.
	var previous map[string]any
	if c.Settings != nil {
		previous, _ = sc.open(c)
	}
	for _, sec := range registry.Secrets(c.Type) {
		if v, ok := m[sec.Path]; !ok || v == admin.SecretShown || v == "" {
			if old, ok := previous[sec.Path].(string); ok && old != "" {
				m[sec.Path] = old
			} else {
				delete(m, sec.Path)
			}
		}
		if v, _ := m[sec.Path].(string); v == "" && sec.Required {
			return nil, invalidSettings("settings.%s is required", sec.Path)
		}
	}
	merged, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("connector %q: %w", c.ID, err)
	}
	// JSON is YAML: the registry's YAML decoder names the setting at
	// fault and the types that take it.
	var node yaml.Node
	if err := yaml.Unmarshal(merged, &node); err != nil || len(node.Content) != 1 {
		return nil, invalidSettings("settings must be a JSON object")
	}
	cfg, err := registry.DecodeYAML(c.Type, node.Content[0])
	if err != nil {
		return nil, invalidSettings("settings.%v", err)
	}
	if err := cfg.Validate(c.ID); err != nil {
		return nil, invalidSettings("settings: %v", err)
	}
	if err := sc.check(ctx, c, cfg); err != nil {
		return nil, err
	}
	plain, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("connector %q: %w", c.ID, err)
	}
	return sc.env.Seal(plain, connectorRow(c)...)
}

// discoveredBy names the setting a type's discovery is found by, for the
// administrator told that it failed.
var discoveredBy = map[string]string{"oidc": "issuer", "auth0": "issuer", "azuread": "tenant"}

// check opens cfg as connector c and asks its upstream for what a login
// needs first (discovery, whose issuer must be the one configured), in a
// bounded time.
func (sc storedConnectors) check(ctx context.Context, c storage.StoredConnector, cfg upstream.Config) error {
	timeout := min(cmp.Or(c.Timeout, checkTimeout), checkTimeout)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := sc.deps
	d.Timeout = timeout
	conn, err := cfg.Open(ctx, c.ID, d)
	if err != nil {
		return invalidSettings("settings: %v", err)
	}
	r, ok := conn.(upstream.Readier)
	if !ok {
		return nil
	}
	if err := r.Ready(ctx); err != nil {
		return invalidSettings("settings.%s: the upstream does not answer as configured: %v", cmp.Or(discoveredBy[c.Type], "issuer"), err)
	}
	return nil
}

// Check implements admin.ConnectorSettings.
func (sc storedConnectors) Check(ctx context.Context, c storage.StoredConnector) error {
	sp, err := sc.spec(c)
	if err != nil {
		return fmt.Errorf("connector %q: %w", c.ID, err)
	}
	return sc.check(ctx, c, sp.Config)
}

// Show implements admin.ConnectorSettings.
func (sc storedConnectors) Show(c storage.StoredConnector) (json.RawMessage, error) {
	m, err := sc.open(c)
	if err != nil {
		return nil, err
	}
	hideSecrets(m, registry.Secrets(c.Type))
	return json.Marshal(m)
}

// CallbackURL implements admin.ConnectorSettings.
func (sc storedConnectors) CallbackURL(id, typ string) string {
	if !slices.Contains([]string{"oidc", "auth0", "azuread", "workos"}, typ) {
		return ""
	}
	return sc.issuer + connectors.CallbackPrefix + url.PathEscape(id)
}

func invalidSettings(format string, args ...any) error {
	return fmt.Errorf("%w: %s", admin.ErrInvalidRequest, fmt.Sprintf(format, args...))
}

// configuredConnectors are the configuration file's connectors as the
// admin API shows them, secrets hidden.
func configuredConnectors(cfg Config, sc storedConnectors) []admin.ConnectorInfo {
	out := make([]admin.ConnectorInfo, 0, len(cfg.Connectors))
	for _, cc := range cfg.Connectors {
		info := admin.ConnectorInfo{ID: cc.ID, Type: cc.Type, Name: cc.Name, Source: admin.SourceConfig,
			CallbackURL: sc.CallbackURL(cc.ID, cc.Type)}
		if cc.Timeout > 0 {
			info.Timeout = cc.Timeout.String()
		}
		if cc.RecheckInterval > 0 {
			info.RecheckInterval = cc.RecheckInterval.String()
		}
		if cfg, err := cc.settings(); err == nil {
			var m map[string]any
			if data, err := json.Marshal(cfg); err == nil && json.Unmarshal(data, &m) == nil {
				hideSecrets(m, registry.Secrets(cc.Type))
				info.Settings, _ = json.Marshal(m)
			}
		}
		out = append(out, info)
	}
	return out
}

// hideSecrets replaces every secret of m that is set by admin.SecretShown
// and removes those that are not, nested ones ("mailer.password") too.
func hideSecrets(m map[string]any, secrets []registry.Secret) {
	for _, sec := range secrets {
		path := strings.Split(sec.Path, ".")
		node := m
		for _, p := range path[:len(path)-1] {
			node, _ = node[p].(map[string]any)
		}
		last := path[len(path)-1]
		if node == nil {
			continue
		}
		if v, _ := node[last].(string); v != "" {
			node[last] = admin.SecretShown
		} else {
			delete(node, last)
		}
	}
}

// checkStoredConnectors refuses to start when a stored connector has the
// id of a configured one, as checkStoredClients does for clients.
func checkStoredConnectors(cfg Config, stored []storage.StoredConnector) error {
	for _, c := range stored {
		if slices.ContainsFunc(cfg.Connectors, func(cc ConnectorConfig) bool { return cc.ID == c.ID }) {
			return fmt.Errorf("broker: connector %q is defined both in the configuration file and in storage; remove one (broker connectors delete, or the config entry)", c.ID)
		}
	}
	return nil
}

// loadOrganizations builds the directory of organisations and loads it,
// failing the start when the store cannot answer (a broker that does not
// know its organisations would route logins wrongly), after refusing a
// stored connector that takes a configured one's id. The connector set
// follows every load of the stored connectors.
func (b *Broker) loadOrganizations(ctx context.Context, sc storedConnectors) error {
	stored, err := b.store.ListConnectors(ctx)
	if err != nil {
		return fmt.Errorf("broker: list stored connectors: %w", err)
	}
	if err := checkStoredConnectors(b.cfg, stored); err != nil {
		return err
	}
	b.orgs = orgs.New(b.store, b.log, b.cfg.Organizations.PollInterval)
	// Reloads happen in Run's goroutine, long after New's ctx may be
	// gone; a connector's own open bounds how long it waits.
	reload := context.WithoutCancel(ctx)
	b.orgs.Subscribe(func(stored []storage.StoredConnector) {
		b.upstreams.Replace(reload, sc.specs(reload, stored))
	})
	if err := b.orgs.Load(ctx); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	return nil
}

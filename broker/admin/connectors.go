package admin

// Administration of connectors stored at run time: the operations behind
// `broker connectors ...` and /admin/v1/connectors. Their settings are
// sealed by the broker (ConnectorSettings), never seen here in the clear,
// and only stored once they decode, validate and their upstream answers
// as configured.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/idbroker/broker/broker/identity"
	"github.com/idbroker/broker/storage"
)

// Where a connector comes from, as ConnectorInfo.Source says.
const (
	SourceStorage = "storage"
	SourceConfig  = "config" // the configuration file: read-only
)

// SecretShown stands for a secret setting that is set: secrets are
// write-only. Given back in an update, it keeps the stored secret.
const SecretShown = "(set)"

// MaxConnectorTimeout is the longest timeout a connector may have, as in
// the configuration file.
const MaxConnectorTimeout = 20 * time.Second

// ConnectorSettings is what the broker does with stored connectors'
// settings, which are sealed under its root secret: Admin hands them on
// and stores what comes back.
type ConnectorSettings interface {
	// Prepare decodes settings strictly as c.Type's, takes every secret
	// settings leaves out or gives as SecretShown from c.Settings (the
	// sealed settings stored; nil on create), validates them, checks
	// that c's upstream answers as configured (its discovery and
	// issuer) within c.Timeout, and returns them sealed. An error the
	// request caused wraps ErrInvalidRequest and names the setting.
	Prepare(ctx context.Context, c storage.StoredConnector, settings json.RawMessage) ([]byte, error)
	// Show returns c's settings opened, every secret replaced by
	// SecretShown.
	Show(c storage.StoredConnector) (json.RawMessage, error)
	// Check opens c and checks its upstream as Prepare does; an error
	// wrapping ErrInvalidRequest says what is wrong there.
	Check(ctx context.Context, c storage.StoredConnector) error
	// CallbackURL is where c's upstream sends the browser back, or ""
	// for a type without a callback.
	CallbackURL(id, typ string) string
}

// ConnectorSpec is a connector to create, as the admin API takes it.
type ConnectorSpec struct {
	ID    string `json:"id"`
	Type  string `json:"type"`
	Name  string `json:"name,omitempty"`
	OrgID string `json:"org_id,omitempty"`
	// Settings are the type's own, named as in the configuration file
	// (clientID, clientSecret, issuer, ...).
	Settings        json.RawMessage `json:"settings"`
	Timeout         string          `json:"timeout,omitempty"`          // a Go duration: "5s"
	RecheckInterval string          `json:"recheck_interval,omitempty"` // a Go duration: "1h"
}

// ConnectorUpdate changes the fields that are not nil. Settings replace
// the type's settings whole, except secrets left out or given as
// SecretShown, which keep their stored value.
type ConnectorUpdate struct {
	Name            *string         `json:"name"`
	OrgID           *string         `json:"org_id"`
	Settings        json.RawMessage `json:"settings"`
	Timeout         *string         `json:"timeout"`
	RecheckInterval *string         `json:"recheck_interval"`
}

// ConnectorInfo is a connector as administrators see it.
type ConnectorInfo struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	Name   string `json:"name,omitempty"`
	OrgID  string `json:"org_id,omitempty"`
	Source string `json:"source"` // SourceStorage or SourceConfig
	// CallbackURL is the redirect URI to register at the upstream.
	CallbackURL string          `json:"callback_url,omitempty"`
	Settings    json.RawMessage `json:"settings,omitempty"` // secrets as SecretShown
	// SettingsError says why the settings cannot be shown; the
	// connector is then left out of logins too.
	SettingsError   string     `json:"settings_error,omitempty"`
	Timeout         string     `json:"timeout,omitempty"`
	RecheckInterval string     `json:"recheck_interval,omitempty"`
	Disabled        bool       `json:"disabled,omitempty"`
	CreatedAt       *time.Time `json:"created_at,omitempty"`
	UpdatedAt       *time.Time `json:"updated_at,omitempty"`
}

// storableTypes are the connector types that may be stored: those that
// sign people in at an upstream. One-time codes and legacy session
// services stay in the configuration file.
var storableTypes = []string{"oidc", "auth0", "azuread", "workos"}

// errNoConnectorSettings refuses connector changes where the broker gave
// no ConnectorSettings.
var errNoConnectorSettings = errors.New("admin: stored connectors need the broker's root secret")

func (a *Admin) connectorInfo(c storage.StoredConnector) (ConnectorInfo, error) {
	info := ConnectorInfo{ID: c.ID, Type: c.Type, Name: c.Name, OrgID: c.OrgID, Source: SourceStorage,
		Disabled: c.Disabled, CreatedAt: &c.CreatedAt, UpdatedAt: &c.UpdatedAt}
	if c.Timeout > 0 {
		info.Timeout = c.Timeout.String()
	}
	if c.RecheckInterval > 0 {
		info.RecheckInterval = c.RecheckInterval.String()
	}
	if a.connectorSettings == nil {
		return info, errNoConnectorSettings
	}
	info.CallbackURL = a.connectorSettings.CallbackURL(c.ID, c.Type)
	// Settings that do not open (sealed under a root secret since
	// dropped) are said so, and the rest is still shown: the
	// administrator must be able to find and replace them.
	settings, err := a.connectorSettings.Show(c)
	if err != nil {
		info.SettingsError = err.Error()
	}
	info.Settings = settings
	return info, nil
}

// durationSetting parses a duration setting of a connector.
func durationSetting(name, v string, max time.Duration) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || (max > 0 && d > max) {
		if max > 0 {
			return 0, invalidAdmin("%s %q is not a duration between 0 and %s", name, v, max)
		}
		return 0, invalidAdmin("%s %q is not a positive duration", name, v)
	}
	return d, nil
}

// validConnectorID: the rules of a client id, which also make a safe
// path segment of the callback URL.
func validConnectorID(id string) error {
	if id == "" || len(id) > 64 || strings.IndexFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~", r))
	}) >= 0 {
		return invalidAdmin("id %q must be 1 to 64 letters, digits and -._~", id)
	}
	return nil
}

// CreateConnector stores a new connector once its settings decode,
// validate and its upstream answers as configured; nothing is stored
// otherwise. Every replica opens it within its poll interval.
func (a *Admin) CreateConnector(ctx context.Context, actor string, spec ConnectorSpec) (ConnectorInfo, error) {
	if a.connectorSettings == nil {
		return ConnectorInfo{}, errNoConnectorSettings
	}
	if err := validConnectorID(spec.ID); err != nil {
		return ConnectorInfo{}, err
	}
	if a.staticConnectors[spec.ID] || spec.ID == identity.ServiceConnector {
		return ConnectorInfo{}, fmt.Errorf("connector %q is defined in the configuration file (or reserved) and cannot be stored: %w", spec.ID, storage.ErrAlreadyExists)
	}
	if !slices.Contains(storableTypes, spec.Type) {
		return ConnectorInfo{}, invalidAdmin("type %q is not one of %s (one-time codes and legacy services are configured in the file)", spec.Type, strings.Join(storableTypes, ", "))
	}
	if len(spec.Settings) == 0 {
		return ConnectorInfo{}, invalidAdmin("settings are required")
	}
	c := storage.StoredConnector{ID: spec.ID, Type: spec.Type, Name: cmp.Or(spec.Name, spec.ID), OrgID: spec.OrgID}
	var err error
	if c.Timeout, err = durationSetting("timeout", spec.Timeout, MaxConnectorTimeout); err != nil {
		return ConnectorInfo{}, err
	}
	if c.RecheckInterval, err = durationSetting("recheck_interval", spec.RecheckInterval, 0); err != nil {
		return ConnectorInfo{}, err
	}
	if c.RecheckInterval == 0 {
		c.RecheckInterval = time.Hour
	}
	if err := a.checkConnectorOrg(ctx, c.OrgID); err != nil {
		return ConnectorInfo{}, err
	}
	if c.Settings, err = a.connectorSettings.Prepare(ctx, c, spec.Settings); err != nil {
		return ConnectorInfo{}, err
	}
	c.CreatedAt, c.UpdatedAt = a.now(), a.now()
	if err := a.store.CreateConnector(ctx, c); err != nil {
		return ConnectorInfo{}, fmt.Errorf("connector %q: %w", c.ID, err)
	}
	info, err := a.connectorInfo(c)
	if err != nil {
		return info, err
	}
	return info, a.audit(ctx, actor, "connector.create", c.ID, map[string]string{"type": c.Type, "org_id": c.OrgID})
}

// checkConnectorOrg refuses an organisation that does not exist.
func (a *Admin) checkConnectorOrg(ctx context.Context, orgID string) error {
	if orgID == "" {
		return nil
	}
	_, err := a.store.GetOrganization(ctx, orgID)
	if errors.Is(err, storage.ErrNotFound) {
		return invalidAdmin("org_id %q is no organisation", orgID)
	}
	return err
}

// ListConnectors lists the configuration file's connectors, then the
// stored ones, by id.
func (a *Admin) ListConnectors(ctx context.Context) ([]ConnectorInfo, error) {
	list, err := a.store.ListConnectors(ctx)
	if err != nil {
		return nil, err
	}
	out := slices.Clone(a.configuredConnectors)
	for _, c := range list {
		info, err := a.connectorInfo(c)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// GetConnector finds a connector of the configuration file or storage.
func (a *Admin) GetConnector(ctx context.Context, id string) (ConnectorInfo, error) {
	for _, info := range a.configuredConnectors {
		if info.ID == id {
			return info, nil
		}
	}
	c, err := a.store.GetConnector(ctx, id)
	if err != nil {
		return ConnectorInfo{}, fmt.Errorf("connector %q: %w", id, err)
	}
	return a.connectorInfo(c)
}

// writableConnector is stored connector id, which may be changed.
func (a *Admin) writableConnector(ctx context.Context, id string) (storage.StoredConnector, error) {
	if err := a.readOnly(id); err != nil {
		return storage.StoredConnector{}, err
	}
	c, err := a.store.GetConnector(ctx, id)
	if err != nil {
		return storage.StoredConnector{}, fmt.Errorf("connector %q: %w", id, err)
	}
	return c, nil
}

// readOnly refuses a change to a connector of the configuration file.
func (a *Admin) readOnly(id string) error {
	if a.staticConnectors[id] {
		return fmt.Errorf("connector %q is defined in the configuration file and is read-only here: %w", id, storage.ErrAlreadyExists)
	}
	return nil
}

// UpdateConnector changes a stored connector. Changed settings or a
// changed timeout are checked as at creation, and nothing is stored when
// the check fails.
func (a *Admin) UpdateConnector(ctx context.Context, actor, id string, u ConnectorUpdate) (ConnectorInfo, error) {
	if a.connectorSettings == nil {
		return ConnectorInfo{}, errNoConnectorSettings
	}
	was, err := a.writableConnector(ctx, id)
	if err != nil {
		return ConnectorInfo{}, err
	}
	next := was
	var changed []string
	if u.Name != nil {
		next.Name, changed = cmp.Or(*u.Name, id), append(changed, "name")
	}
	if u.OrgID != nil {
		if err := a.checkConnectorOrg(ctx, *u.OrgID); err != nil {
			return ConnectorInfo{}, err
		}
		next.OrgID, changed = *u.OrgID, append(changed, "org_id")
	}
	if u.Timeout != nil {
		if next.Timeout, err = durationSetting("timeout", *u.Timeout, MaxConnectorTimeout); err != nil {
			return ConnectorInfo{}, err
		}
		changed = append(changed, "timeout")
	}
	if u.RecheckInterval != nil {
		if next.RecheckInterval, err = durationSetting("recheck_interval", *u.RecheckInterval, 0); err != nil {
			return ConnectorInfo{}, err
		}
		next.RecheckInterval = cmp.Or(next.RecheckInterval, time.Hour)
		changed = append(changed, "recheck_interval")
	}
	if len(u.Settings) > 0 || u.Timeout != nil {
		settings := u.Settings
		if len(settings) == 0 {
			// The timeout bounds the check: check the stored settings
			// under the new one.
			if settings, err = a.connectorSettings.Show(was); err != nil {
				return ConnectorInfo{}, fmt.Errorf("admin: connector %q: %w", id, err)
			}
		} else {
			changed = append(changed, "settings")
		}
		if next.Settings, err = a.connectorSettings.Prepare(ctx, next, settings); err != nil {
			return ConnectorInfo{}, err
		}
	}
	return a.replaceConnector(ctx, actor, "connector.update", was, next, changed)
}

// replaceConnector stores next in place of was, unless another change
// came between (the settings sealed for was's would be stale): then the
// administrator is told to try again.
func (a *Admin) replaceConnector(ctx context.Context, actor, action string, was, next storage.StoredConnector, changed []string) (ConnectorInfo, error) {
	next.UpdatedAt = a.now()
	stored, err := a.store.UpdateConnector(ctx, was.ID, func(c storage.StoredConnector) (storage.StoredConnector, error) {
		if !c.UpdatedAt.Equal(was.UpdatedAt) {
			return c, fmt.Errorf("connector %q changed meanwhile; try again: %w", was.ID, storage.ErrAlreadyExists)
		}
		return next, nil
	})
	if err != nil {
		return ConnectorInfo{}, fmt.Errorf("connector %q: %w", was.ID, err)
	}
	info, err := a.connectorInfo(stored)
	if err != nil {
		return info, err
	}
	return info, a.audit(ctx, actor, action, was.ID, map[string]string{"changed": strings.Join(changed, ",")})
}

// SetConnectorDisabled disables or enables a stored connector. A
// disabled connector signs nobody in on any replica from its next poll;
// it keeps its settings and identities.
func (a *Admin) SetConnectorDisabled(ctx context.Context, actor, id string, disabled bool) (ConnectorInfo, error) {
	was, err := a.writableConnector(ctx, id)
	if err != nil {
		return ConnectorInfo{}, err
	}
	next := was
	next.Disabled = disabled
	action := "connector.enable"
	if disabled {
		action = "connector.disable"
	}
	return a.replaceConnector(ctx, actor, action, was, next, []string{"disabled"})
}

// DeleteConnector deletes a stored connector. Its users keep their
// accounts; a login through it that is under way gets a page saying the
// provider is unknown.
func (a *Admin) DeleteConnector(ctx context.Context, actor, id string) error {
	if err := a.readOnly(id); err != nil {
		return err
	}
	if err := a.store.DeleteConnector(ctx, id); err != nil {
		return fmt.Errorf("connector %q: %w", id, err)
	}
	return a.audit(ctx, actor, "connector.delete", id, nil)
}

// TestConnector checks a stored connector's upstream now: its discovery
// and issuer. The answer says what is wrong.
func (a *Admin) TestConnector(ctx context.Context, id string) error {
	if a.connectorSettings == nil {
		return errNoConnectorSettings
	}
	if a.staticConnectors[id] {
		return invalidAdmin("connector %q is defined in the configuration file; /readyz checks it", id)
	}
	c, err := a.store.GetConnector(ctx, id)
	if err != nil {
		return fmt.Errorf("connector %q: %w", id, err)
	}
	return a.connectorSettings.Check(ctx, c)
}

// connectorRoutes mounts /connectors under prefix p.
func (api API) connectorRoutes(mux *http.ServeMux, p string) {
	a := api.Admin
	mux.HandleFunc("GET "+p+"/connectors", func(w http.ResponseWriter, r *http.Request) {
		list, err := a.ListConnectors(r.Context())
		api.adminReply(w, r, http.StatusOK, map[string]any{"connectors": list}, err)
	})
	mux.HandleFunc("POST "+p+"/connectors", func(w http.ResponseWriter, r *http.Request) {
		var spec ConnectorSpec
		if !api.adminDecode(w, r, &spec) {
			return
		}
		info, err := a.CreateConnector(r.Context(), adminActor(r), spec)
		api.adminReply(w, r, http.StatusCreated, info, err)
	})
	mux.HandleFunc("GET "+p+"/connectors/{id}", func(w http.ResponseWriter, r *http.Request) {
		info, err := a.GetConnector(r.Context(), r.PathValue("id"))
		api.adminReply(w, r, http.StatusOK, info, err)
	})
	mux.HandleFunc("PATCH "+p+"/connectors/{id}", func(w http.ResponseWriter, r *http.Request) {
		var u ConnectorUpdate
		if !api.adminDecode(w, r, &u) {
			return
		}
		info, err := a.UpdateConnector(r.Context(), adminActor(r), r.PathValue("id"), u)
		api.adminReply(w, r, http.StatusOK, info, err)
	})
	mux.HandleFunc("DELETE "+p+"/connectors/{id}", func(w http.ResponseWriter, r *http.Request) {
		api.adminReply(w, r, http.StatusNoContent, nil, a.DeleteConnector(r.Context(), adminActor(r), r.PathValue("id")))
	})
	for verb, disabled := range map[string]bool{"disable": true, "enable": false} {
		mux.HandleFunc("POST "+p+"/connectors/{id}/"+verb, func(w http.ResponseWriter, r *http.Request) {
			info, err := a.SetConnectorDisabled(r.Context(), adminActor(r), r.PathValue("id"), disabled)
			api.adminReply(w, r, http.StatusOK, info, err)
		})
	}
	// test answers 200 {"ok": true}, or 400 saying what is wrong upstream.
	mux.HandleFunc("POST "+p+"/connectors/{id}/test", func(w http.ResponseWriter, r *http.Request) {
		err := a.TestConnector(r.Context(), r.PathValue("id"))
		api.adminReply(w, r, http.StatusOK, map[string]bool{"ok": err == nil}, err)
	})
}

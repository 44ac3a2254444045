package admin

// Administration of stored clients and of users: the operations behind
// both `broker clients|users ...` and the admin HTTP API (api.go),
// written once here. Every change is recorded in the audit log.

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/idbroker/broker/broker/identity"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/upstream"
)

// Config enables the admin HTTP API. It is off unless Enabled; then
// it accepts only broker access tokens whose audience is exactly Audience
// and whose scope holds Scope, from a client whose configuration
// still lists both, for a user who still holds admin rights (see
// Scope).
type Config struct {
	Enabled  bool   `yaml:"enabled"`
	Audience string `yaml:"audience"`
}

// Scope is the scope an access token needs for the admin API. A
// token carries it only when the client lists it among its scopes and
// either the token is the client's own (client_credentials: a machine
// client's rights are its configuration) or its user holds RoleAdmin.
// Anyone else who asks for it gets a token without it: the broker's
// issuing code (its userScopes) makes sure of that, not this package.
const Scope = "admin"

// RoleAdmin is the role that gives a person Scope, through a client
// allowed the scope. It is granted and revoked with GrantAdmin and
// RevokeAdmin (the admin API and `broker users grant-admin`), each change
// audited.
const RoleAdmin = "admin"

// Validate checks the section: an enabled API needs an absolute audience.
func (a Config) Validate() error {
	if !a.Enabled {
		return nil
	}
	if u, err := url.Parse(a.Audience); a.Audience == "" || err != nil || !u.IsAbs() {
		return fmt.Errorf("config: admin.audience %q must be an absolute URI when the admin API is enabled", a.Audience)
	}
	return nil
}

// ErrInvalidRequest wraps why an administrative request was refused
// as malformed or not allowed (as opposed to naming nothing, which is
// storage.ErrNotFound, or a conflict, storage.ErrAlreadyExists).
var ErrInvalidRequest = errors.New("invalid request")

func invalidAdmin(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidRequest, fmt.Sprintf(format, args...))
}

// ActorCLI is the audit actor of the command-line tools.
const ActorCLI = "cli"

// Admin manages stored clients and users. Clients of the configuration
// file are read-only: their ids cannot be taken in storage.
type Admin struct {
	store  storage.Storage
	static map[string]bool // ids of the configuration's clients
	// checkClient is the broker's rules for a client (Options.CheckClient).
	checkClient       func(storage.Client) error
	defaultGrantTypes []string
	now               func() time.Time
	// resourceChanged, when set, is told of every change of a stored
	// resource (Options.ResourceChanged).
	resourceChanged func()
	// clientChanged, when set, is told the grant types of every client
	// created or updated (the broker advertises client_credentials).
	clientChanged func(grantTypes []string)
	// sessionEnded, when set, is told of every session an action ended:
	// a running broker sends its clients back-channel logout. The CLI
	// has no such hook and says so.
	sessionEnded func(ctx context.Context, s storage.Session)
	// resolver answers domain verification's TXT lookups.
	resolver *net.Resolver
	// tokenLifetime is how long an access token issued now may be
	// accepted (Options.TokenLifetime).
	tokenLifetime time.Duration

	// staticConnectors are the ids of the configuration's connectors,
	// configuredConnectors how they are shown.
	staticConnectors     map[string]bool
	configuredConnectors []ConnectorInfo
	connectorSettings    ConnectorSettings

	// configuredResources are the configuration file's resources,
	// read-only; checkRes is the broker's rules for a resource.
	configuredResources []storage.Resource
	checkRes            func(storage.Resource) error
}

// Options are what Admin needs: the store, and from the broker only its
// rules for clients and the hooks a running broker listens on.
type Options struct {
	Store storage.Storage
	// StaticClients are the ids of the configuration file's clients,
	// which no stored client may take.
	StaticClients []string
	// CheckClient checks a client about to be stored with the rules of
	// the configuration's clients; nil checks nothing.
	CheckClient func(storage.Client) error
	// DefaultGrantTypes are given to a client created without any.
	DefaultGrantTypes []string
	// Now is time.Now when nil.
	Now func() time.Time
	// ClientChanged, when set, is told the grant types of every client
	// created or updated.
	ClientChanged func(grantTypes []string)
	// ResourceChanged, when set, is called after every change of a
	// stored resource, for the broker to drop its copy of them.
	ResourceChanged func()
	// SessionEnded, when set, is told of every session an action ended.
	SessionEnded func(ctx context.Context, s storage.Session)
	// Resolver answers the TXT lookups that verify organisations'
	// domains; nil is net.DefaultResolver.
	Resolver *net.Resolver
	// TokenLifetime is how long an access token issued now may still be
	// accepted: the access-token lifetime and the clock skew allowed.
	// Removing a member refuses their tokens of the organisation that long.
	TokenLifetime time.Duration
	// ConfiguredConnectors are the configuration file's connectors, as
	// the API shows them: read-only, their ids never stored.
	ConfiguredConnectors []ConnectorInfo
	// ConnectorSettings seals and checks stored connectors' settings;
	// nil refuses every change of a stored connector.
	ConnectorSettings ConnectorSettings
	// ConfiguredResources are the configuration file's resources, shown
	// read-only, their ids never stored.
	ConfiguredResources []storage.Resource
	// CheckResource checks a resource about to be stored with the rules
	// of the configuration's resources, its error naming the field; nil
	// checks nothing.
	CheckResource func(storage.Resource) error
}

// endedSession tells sessionEnded, if set, that s ended.
func (a *Admin) endedSession(ctx context.Context, s storage.Session) {
	if a.sessionEnded != nil {
		a.sessionEnded(ctx, s)
	}
}

// New returns the administration o describes.
func New(o Options) *Admin {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	a := &Admin{store: o.Store, static: map[string]bool{}, checkClient: o.CheckClient,
		defaultGrantTypes: o.DefaultGrantTypes, now: now,
		clientChanged: o.ClientChanged, sessionEnded: o.SessionEnded, resourceChanged: o.ResourceChanged,
		resolver: cmp.Or(o.Resolver, net.DefaultResolver), tokenLifetime: o.TokenLifetime}
	for _, id := range o.StaticClients {
		a.static[id] = true
	}
	a.staticConnectors, a.configuredConnectors, a.connectorSettings = map[string]bool{}, o.ConfiguredConnectors, o.ConnectorSettings
	for _, c := range o.ConfiguredConnectors {
		a.staticConnectors[c.ID] = true
	}
	a.configuredResources, a.checkRes = o.ConfiguredResources, o.CheckResource
	return a
}

// audit records a change that has been made. If the record cannot be
// written the caller is told so, though the change stands.
func (a *Admin) audit(ctx context.Context, actor, action, target string, details map[string]string) error {
	err := a.store.AppendAudit(ctx, storage.AuditEvent{Time: a.now(), Actor: actor, Action: action, Target: target, Details: details})
	if err != nil {
		return fmt.Errorf("%s of %s was done, but its audit event could not be written: %w", action, target, err)
	}
	return nil
}

// ClientSpec is a stored client's settings, as the admin API reads and
// writes them in JSON: every field of the client model (storage.Client)
// but its secrets, which are only generated (CreateClient,
// RotateClientSecret), and its service user and times, which ClientInfo
// adds. Introspector can be read but not set to true: only the
// configuration file makes a client an introspector.
type ClientSpec struct {
	ID                       string          `json:"client_id"`
	Name                     string          `json:"name,omitempty"`
	Public                   bool            `json:"public,omitempty"`
	RedirectURIs             []string        `json:"redirect_uris,omitempty"`
	PostLogoutRedirectURIs   []string        `json:"post_logout_redirect_uris,omitempty"`
	GrantTypes               []string        `json:"grant_types,omitempty"`
	Audiences                []string        `json:"audiences,omitempty"`
	Scopes                   []string        `json:"scopes,omitempty"`
	AllowedOrigins           []string        `json:"allowed_origins,omitempty"`
	JWKSURI                  string          `json:"jwks_uri,omitempty"`
	JWKS                     json.RawMessage `json:"jwks,omitempty"`
	BackchannelLogoutURI     string          `json:"backchannel_logout_uri,omitempty"`
	IDTokenSignedResponseAlg string          `json:"id_token_signed_response_alg,omitempty"`
	Actors                   []string        `json:"actors,omitempty"`
	Introspector             bool            `json:"introspector,omitempty"`
	// ThirdParty marks a client not run by the platform: its users
	// consent to it, and it may ask only for resources that accept it.
	ThirdParty     bool     `json:"third_party"`
	IDJAGAudiences []string `json:"id_jag_audiences,omitempty"`
}

// ClientUpdate changes the fields of a stored client that are not nil.
type ClientUpdate struct {
	Name                     *string          `json:"name"`
	RedirectURIs             *[]string        `json:"redirect_uris"`
	PostLogoutRedirectURIs   *[]string        `json:"post_logout_redirect_uris"`
	GrantTypes               *[]string        `json:"grant_types"`
	Audiences                *[]string        `json:"audiences"`
	Scopes                   *[]string        `json:"scopes"`
	AllowedOrigins           *[]string        `json:"allowed_origins"`
	JWKSURI                  *string          `json:"jwks_uri"`
	JWKS                     *json.RawMessage `json:"jwks"`
	BackchannelLogoutURI     *string          `json:"backchannel_logout_uri"`
	IDTokenSignedResponseAlg *string          `json:"id_token_signed_response_alg"`
	Actors                   *[]string        `json:"actors"`
	Introspector             *bool            `json:"introspector"`
	ThirdParty               *bool            `json:"third_party"`
	IDJAGAudiences           *[]string        `json:"id_jag_audiences"`
}

// ClientInfo is a stored client as administrators see it: its settings,
// and of its secrets only how many there are and when each expires.
type ClientInfo struct {
	ClientSpec
	ServiceUserID string       `json:"service_user_id,omitempty"`
	Secrets       []SecretInfo `json:"secrets,omitempty"`
	CreatedAt     time.Time    `json:"created_at"`
	UpdatedAt     time.Time    `json:"updated_at"`
	// Registered says the client registered itself through /register
	// (RFC 7591); deleting it revokes that registration.
	Registered bool `json:"registered"`
	// LastUsedAt is when a registered client last obtained a token,
	// recorded coarsely (hourly); nil before its first.
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// SecretInfo describes one of a client's secrets without revealing it.
type SecretInfo struct {
	ExpiresAt *time.Time `json:"expires_at,omitempty"` // nil: never
}

// client is the client model spec describes, without secrets or times.
func (spec ClientSpec) client() storage.Client {
	return storage.Client{
		ID: spec.ID, Name: spec.Name, Public: spec.Public, RedirectURIs: spec.RedirectURIs,
		PostLogoutRedirectURIs: spec.PostLogoutRedirectURIs, GrantTypes: spec.GrantTypes, Audiences: spec.Audiences,
		Scopes: spec.Scopes, AllowedOrigins: spec.AllowedOrigins, JWKSURL: spec.JWKSURI, JWKS: spec.JWKS,
		BackchannelLogoutURI: spec.BackchannelLogoutURI, IDTokenSignedResponseAlg: spec.IDTokenSignedResponseAlg,
		Actors: spec.Actors, Introspector: spec.Introspector, ThirdParty: spec.ThirdParty, IDJAGAudiences: spec.IDJAGAudiences,
	}
}

func clientInfo(c storage.Client) ClientInfo {
	info := ClientInfo{
		ClientSpec: ClientSpec{
			ID: c.ID, Name: c.Name, Public: c.Public, RedirectURIs: c.RedirectURIs,
			PostLogoutRedirectURIs: c.PostLogoutRedirectURIs, GrantTypes: c.GrantTypes, Audiences: c.Audiences,
			Scopes: c.Scopes, AllowedOrigins: c.AllowedOrigins, JWKSURI: c.JWKSURL, JWKS: c.JWKS,
			BackchannelLogoutURI: c.BackchannelLogoutURI, IDTokenSignedResponseAlg: c.IDTokenSignedResponseAlg,
			Actors: c.Actors, Introspector: c.Introspector, ThirdParty: c.ThirdParty, IDJAGAudiences: c.IDJAGAudiences,
		},
		ServiceUserID: c.ServiceUserID,
		CreatedAt:     c.CreatedAt,
		UpdatedAt:     c.UpdatedAt,
		Registered:    c.RegistrationTokenHash != nil,
	}
	if !c.LastUsedAt.IsZero() {
		t := c.LastUsedAt
		info.LastUsedAt = &t
	}
	for _, s := range c.SecretHashes {
		si := SecretInfo{}
		if !s.ExpiresAt.IsZero() {
			t := s.ExpiresAt
			si.ExpiresAt = &t
		}
		info.Secrets = append(info.Secrets, si)
	}
	return info
}

// apply sets on c the fields u gives and returns their JSON names.
func (u ClientUpdate) apply(c *storage.Client) []string {
	var changed []string
	set := func(name string, dst *[]string, src *[]string) {
		if src != nil {
			*dst = *src
			changed = append(changed, name)
		}
	}
	setString := func(name string, dst *string, src *string) {
		if src != nil {
			*dst = *src
			changed = append(changed, name)
		}
	}
	setString("name", &c.Name, u.Name)
	set("redirect_uris", &c.RedirectURIs, u.RedirectURIs)
	set("post_logout_redirect_uris", &c.PostLogoutRedirectURIs, u.PostLogoutRedirectURIs)
	set("grant_types", &c.GrantTypes, u.GrantTypes)
	set("audiences", &c.Audiences, u.Audiences)
	set("scopes", &c.Scopes, u.Scopes)
	set("allowed_origins", &c.AllowedOrigins, u.AllowedOrigins)
	setString("jwks_uri", &c.JWKSURL, u.JWKSURI)
	if u.JWKS != nil {
		c.JWKS = *u.JWKS
		if string(c.JWKS) == "null" {
			c.JWKS = nil
		}
		changed = append(changed, "jwks")
	}
	setString("backchannel_logout_uri", &c.BackchannelLogoutURI, u.BackchannelLogoutURI)
	setString("id_token_signed_response_alg", &c.IDTokenSignedResponseAlg, u.IDTokenSignedResponseAlg)
	set("actors", &c.Actors, u.Actors)
	set("id_jag_audiences", &c.IDJAGAudiences, u.IDJAGAudiences)
	if u.Introspector != nil {
		c.Introspector = *u.Introspector
		changed = append(changed, "introspector")
	}
	if u.ThirdParty != nil {
		c.ThirdParty = *u.ThirdParty
		changed = append(changed, "third_party")
	}
	return changed
}

// validateClient checks a client about to be stored with the rules of the
// configuration's clients (Options.CheckClient), and that introspection of
// every client's tokens is not being granted here.
func (a *Admin) validateClient(c storage.Client, was storage.Client) error {
	if c.ID == "" || len(c.ID) > 128 || strings.IndexFunc(c.ID, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~", r))
	}) >= 0 {
		return invalidAdmin("client id %q must be 1 to 128 letters, digits and -._~", c.ID)
	}
	if c.Introspector && !was.Introspector {
		return invalidAdmin("client %q: introspector: only the configuration file makes a client an introspector", c.ID)
	}
	if was.RegistrationTokenHash != nil && !c.ThirdParty {
		return invalidAdmin("client %q: third_party: a client that registered itself (RFC 7591) stays third-party", c.ID)
	}
	if a.checkClient == nil {
		return nil
	}
	if err := a.checkClient(c); err != nil {
		return invalidAdmin("client %q: %v", c.ID, err)
	}
	return nil
}

// newClientSecret returns a secret of 256 random bits and its stored hash.
func newClientSecret() (string, storage.SecretHash) {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	secret := base64.RawURLEncoding.EncodeToString(b)
	h := sha256.Sum256([]byte(secret))
	return secret, storage.SecretHash{Hash: h[:]}
}

// CreateClient stores a new client. A confidential client without keys
// gets a generated secret, returned here and nowhere else: only its
// SHA-256 is kept. A client with no grant types gets authorization_code
// and refresh_token, as in the configuration.
func (a *Admin) CreateClient(ctx context.Context, actor string, spec ClientSpec) (ClientInfo, string, error) {
	if a.static[spec.ID] {
		return ClientInfo{}, "", fmt.Errorf("client %q is defined in the configuration file: %w", spec.ID, storage.ErrAlreadyExists)
	}
	now := a.now()
	c := spec.client()
	c.CreatedAt, c.UpdatedAt = now, now
	if len(c.GrantTypes) == 0 {
		c.GrantTypes = slices.Clone(a.defaultGrantTypes)
	}
	var secret string
	if !c.Public && len(c.JWKS) == 0 && c.JWKSURL == "" {
		var h storage.SecretHash
		secret, h = newClientSecret()
		c.SecretHashes = []storage.SecretHash{h}
	}
	if err := a.validateClient(c, storage.Client{}); err != nil {
		return ClientInfo{}, "", err
	}
	if err := a.store.CreateClient(ctx, c); err != nil {
		return ClientInfo{}, "", fmt.Errorf("create client %q: %w", c.ID, err)
	}
	if a.clientChanged != nil {
		a.clientChanged(c.GrantTypes)
	}
	return clientInfo(c), secret, a.audit(ctx, actor, "client.create", "client:"+c.ID, nil)
}

// GetClient returns a stored client.
func (a *Admin) GetClient(ctx context.Context, id string) (ClientInfo, error) {
	c, err := a.store.GetClient(ctx, id)
	if err != nil {
		return ClientInfo{}, fmt.Errorf("client %q: %w", id, err)
	}
	return clientInfo(c), nil
}

// ListClients returns the stored clients (not the configuration's).
func (a *Admin) ListClients(ctx context.Context) ([]ClientInfo, error) {
	cs, err := a.store.ListClients(ctx)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	out := make([]ClientInfo, len(cs))
	for i, c := range cs {
		out[i] = clientInfo(c)
	}
	return out, nil
}

// UpdateClient changes a stored client's settings; the result is
// validated as a new client would be. Secrets are changed only by
// RotateClientSecret.
func (a *Admin) UpdateClient(ctx context.Context, actor, id string, u ClientUpdate) (ClientInfo, error) {
	var changed []string
	c, err := a.store.UpdateClient(ctx, id, func(was storage.Client) (storage.Client, error) {
		c := was
		changed = u.apply(&c)
		c.UpdatedAt = a.now()
		return c, a.validateClient(c, was)
	})
	if err != nil {
		return ClientInfo{}, fmt.Errorf("update client %q: %w", id, err)
	}
	if a.clientChanged != nil {
		a.clientChanged(c.GrantTypes)
	}
	return clientInfo(c), a.audit(ctx, actor, "client.update", "client:"+id, map[string]string{"fields": strings.Join(changed, ",")})
}

// DeleteClient removes a stored client and its service user (so a client
// created later with the same id is not the same subject).
func (a *Admin) DeleteClient(ctx context.Context, actor, id string) error {
	c, err := a.store.GetClient(ctx, id)
	if err != nil {
		return fmt.Errorf("client %q: %w", id, err)
	}
	if err := a.store.DeleteClient(ctx, id); err != nil {
		return fmt.Errorf("delete client %q: %w", id, err)
	}
	details := map[string]string{}
	if c.RegistrationTokenHash != nil {
		details["registered"] = "true"
	}
	if c.ServiceUserID != "" {
		if err := a.store.DeleteUser(ctx, c.ServiceUserID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("client %q deleted, but not its service user %s: %w", id, c.ServiceUserID, err)
		}
		details["service_user_id"] = c.ServiceUserID
	}
	return a.audit(ctx, actor, "client.delete", "client:"+id, details)
}

// RotateClientSecret gives a confidential client a new secret, returned
// here and nowhere else. The secrets it had stay valid for grace (none,
// with zero), so its deployments can move over; expired ones are dropped.
func (a *Admin) RotateClientSecret(ctx context.Context, actor, id string, grace time.Duration) (string, ClientInfo, error) {
	if grace < 0 {
		return "", ClientInfo{}, invalidAdmin("grace %v is negative", grace)
	}
	secret, h := newClientSecret()
	now := a.now()
	until := now.Add(grace)
	c, err := a.store.UpdateClient(ctx, id, func(c storage.Client) (storage.Client, error) {
		if c.Public {
			return c, invalidAdmin("client %q is public and has no secret", id)
		}
		kept := []storage.SecretHash{h}
		for _, old := range c.SecretHashes {
			if grace == 0 || (!old.ExpiresAt.IsZero() && !now.Before(old.ExpiresAt)) {
				continue
			}
			if old.ExpiresAt.IsZero() || until.Before(old.ExpiresAt) {
				old.ExpiresAt = until
			}
			kept = append(kept, old)
		}
		c.SecretHashes = kept
		c.UpdatedAt = now
		return c, nil
	})
	if err != nil {
		return "", ClientInfo{}, fmt.Errorf("rotate secret of client %q: %w", id, err)
	}
	return secret, clientInfo(c), a.audit(ctx, actor, "client.rotate-secret", "client:"+id, map[string]string{"grace": grace.String()})
}

// UserInfo is a user with their identities, as administrators see them.
type UserInfo struct {
	ID            string         `json:"id"`
	Email         string         `json:"email,omitempty"`
	EmailVerified bool           `json:"email_verified"`
	Name          string         `json:"name,omitempty"`
	Disabled      bool           `json:"disabled"`
	Roles         []string       `json:"roles,omitempty"`
	CreatedAt     time.Time      `json:"created_at"`
	UpdatedAt     time.Time      `json:"updated_at"`
	Identities    []IdentityInfo `json:"identities,omitempty"`
}

// IdentityInfo is an upstream identity of a user.
type IdentityInfo struct {
	Connector string    `json:"connector"`
	Subject   string    `json:"subject"`
	Email     string    `json:"email,omitempty"`
	Name      string    `json:"name,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	LastLogin time.Time `json:"last_login"`
}

func userInfo(u storage.User, ids []storage.Identity) UserInfo {
	info := UserInfo{ID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified, Name: u.Name, Disabled: u.Disabled, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
	if u.Admin {
		info.Roles = []string{RoleAdmin}
	}
	for _, i := range ids {
		info.Identities = append(info.Identities, IdentityInfo{Connector: i.Connector, Subject: i.Subject, Email: i.Email, Name: i.Name, CreatedAt: i.CreatedAt, LastLogin: i.LastLogin})
	}
	return info
}

// MaxUserPage bounds a page of ListUsers.
const MaxUserPage = 1000

// ListUsers returns up to limit users (at most MaxUserPage) after the
// user id after, in id order, without their identities.
func (a *Admin) ListUsers(ctx context.Context, after string, limit int) ([]UserInfo, error) {
	if after != "" {
		id, err := uuid.Parse(after)
		if err != nil {
			return nil, invalidAdmin("after %q is not a user id", after)
		}
		after = id.String()
	}
	if limit <= 0 || limit > MaxUserPage {
		limit = MaxUserPage
	}
	us, err := a.store.ListUsers(ctx, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	out := make([]UserInfo, len(us))
	for i, u := range us {
		out[i] = userInfo(u, nil)
	}
	return out, nil
}

// FindUser takes a user id or a verified email address.
func (a *Admin) FindUser(ctx context.Context, ref string) (UserInfo, error) {
	var u storage.User
	var err error
	if id, perr := uuid.Parse(ref); perr == nil {
		u, err = a.store.GetUser(ctx, id.String())
	} else if email, eerr := upstream.NormalizeEmail(ref); eerr == nil {
		u, err = a.store.GetUserByEmail(ctx, email)
	} else {
		return UserInfo{}, invalidAdmin("%q is neither a user id nor an email address", ref)
	}
	if err != nil {
		return UserInfo{}, fmt.Errorf("user %q: %w", ref, err)
	}
	ids, err := a.store.ListIdentities(ctx, u.ID)
	if err != nil {
		return UserInfo{}, fmt.Errorf("identities of user %s: %w", u.ID, err)
	}
	return userInfo(u, ids), nil
}

// DisableUser disables a user: new logins and exchanges for them are
// refused, their refresh families and access tokens revoked (so the
// broker's introspection calls them inactive) and their sessions ended.
// A JWT already issued stays valid until it expires for a service that
// verifies it offline.
func (a *Admin) DisableUser(ctx context.Context, actor, ref string) error {
	u, err := a.FindUser(ctx, ref)
	if err != nil {
		return err
	}
	// Disabled first: from here nothing new is issued, so what is
	// revoked next cannot be replaced behind it.
	if err := a.store.SetUserDisabled(ctx, u.ID, true); err != nil {
		return fmt.Errorf("disable user %s: %w", u.ID, err)
	}
	if err := a.store.RevokeUserTokens(ctx, u.ID, a.now()); err != nil {
		return fmt.Errorf("user %s disabled, but revoking their tokens failed (run disable again): %w", u.ID, err)
	}
	sessions, err := a.store.ListSessions(ctx, u.ID, a.now())
	if err != nil {
		return fmt.Errorf("user %s disabled, but listing their sessions failed (run disable again): %w", u.ID, err)
	}
	for _, s := range sessions {
		ended, err := a.store.EndSession(ctx, s.ID)
		if errors.Is(err, storage.ErrNotFound) {
			continue // ended meanwhile, by whoever ended it
		}
		if err != nil {
			return fmt.Errorf("user %s disabled, but ending a session failed (run disable again): %w", u.ID, err)
		}
		a.endedSession(ctx, ended)
	}
	return a.audit(ctx, actor, "user.disable", "user:"+u.ID, map[string]string{"sessions_ended": fmt.Sprint(len(sessions))})
}

// EnableUser re-enables a disabled user. What disabling revoked stays
// revoked.
func (a *Admin) EnableUser(ctx context.Context, actor, ref string) error {
	u, err := a.FindUser(ctx, ref)
	if err != nil {
		return err
	}
	if err := a.store.SetUserDisabled(ctx, u.ID, false); err != nil {
		return fmt.Errorf("enable user %s: %w", u.ID, err)
	}
	return a.audit(ctx, actor, "user.enable", "user:"+u.ID, nil)
}

// GrantAdmin gives a user the admin role: signing in through a client
// allowed Scope, they get it, and the admin API serves them. A
// machine client's service user is refused: a machine's rights are its
// client's scopes, and a role beside them would outlive their removal.
func (a *Admin) GrantAdmin(ctx context.Context, actor, ref string) error {
	return a.setAdmin(ctx, actor, ref, true)
}

// RevokeAdmin takes the admin role from a user. The admin API refuses
// their tokens from the next request, and no token issued for them from
// now on carries Scope; a token already issued for another audience
// keeps its scope claim until it expires.
func (a *Admin) RevokeAdmin(ctx context.Context, actor, ref string) error {
	return a.setAdmin(ctx, actor, ref, false)
}

func (a *Admin) setAdmin(ctx context.Context, actor, ref string, admin bool) error {
	u, err := a.FindUser(ctx, ref)
	if err != nil {
		return err
	}
	action := "user.revoke-admin"
	if admin {
		action = "user.grant-admin"
		for _, id := range u.Identities {
			if id.Connector == identity.ServiceConnector {
				return invalidAdmin("user %s is the service user of client %q; a machine client has admin when its scopes list %q", u.ID, id.Subject, Scope)
			}
		}
	}
	if err := a.store.SetUserAdmin(ctx, u.ID, admin); err != nil {
		return fmt.Errorf("%s of user %s: %w", action, u.ID, err)
	}
	return a.audit(ctx, actor, action, "user:"+u.ID, map[string]string{"email": u.Email})
}

// DeleteUser deletes a user with their identities, sessions and tokens,
// in one transaction (storage.Users.DeleteUser). The sessions are listed
// first, so that their clients can be told they ended; one that starts
// between the two is deleted all the same, untold.
func (a *Admin) DeleteUser(ctx context.Context, actor, ref string) error {
	u, err := a.FindUser(ctx, ref)
	if err != nil {
		return err
	}
	sessions, err := a.store.ListSessions(ctx, u.ID, a.now())
	if err != nil {
		return fmt.Errorf("delete user %s: list sessions: %w", u.ID, err)
	}
	if err := a.store.DeleteUser(ctx, u.ID); err != nil {
		return fmt.Errorf("delete user %s: %w", u.ID, err)
	}
	for _, s := range sessions {
		a.endedSession(ctx, s)
	}
	return a.audit(ctx, actor, "user.delete", "user:"+u.ID, map[string]string{"email": u.Email})
}

// LinkIdentity attaches the upstream identity (connector, subject) to a
// user: the manual path for what the email rule refuses to link. An
// identity of another user is refused (storage.ErrAlreadyExists); unlink
// it there first. Machine clients' service identities cannot be linked.
func (a *Admin) LinkIdentity(ctx context.Context, actor, ref, connector, subject string) error {
	if connector == "" || subject == "" {
		return invalidAdmin("a connector and a subject are required")
	}
	if connector == identity.ServiceConnector {
		return invalidAdmin("connector %q names machine clients' service users and cannot be linked", connector)
	}
	u, err := a.FindUser(ctx, ref)
	if err != nil {
		return err
	}
	now := a.now()
	err = a.store.LinkIdentity(ctx, storage.Identity{Connector: connector, Subject: subject, UserID: u.ID, CreatedAt: now})
	if err != nil {
		return fmt.Errorf("link %s/%s to user %s: %w", connector, subject, u.ID, err)
	}
	return a.audit(ctx, actor, "user.link", "user:"+u.ID, map[string]string{"connector": connector, "subject": subject})
}

// UnlinkIdentity detaches an upstream identity from a user; a later login
// with it resolves afresh (docs/design.md rule 1).
func (a *Admin) UnlinkIdentity(ctx context.Context, actor, ref, connector, subject string) error {
	u, err := a.FindUser(ctx, ref)
	if err != nil {
		return err
	}
	if err := a.store.UnlinkIdentity(ctx, u.ID, connector, subject); err != nil {
		return fmt.Errorf("unlink %s/%s from user %s: %w", connector, subject, u.ID, err)
	}
	return a.audit(ctx, actor, "user.unlink", "user:"+u.ID, map[string]string{"connector": connector, "subject": subject})
}

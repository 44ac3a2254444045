package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/broker/admin"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/memory"
	"github.com/idbroker/broker/storage/postgres/pgtest"
	upoidc "github.com/idbroker/broker/upstream/oidc"
)

// poll is the organisations poll interval of these tests' brokers.
const poll = 20 * time.Millisecond

func withPoll(c *broker.Config, _ *broker.Options) { c.Organizations.PollInterval = poll }

// running runs the broker's background work (the directory's polling
// among it) until the test ends.
func running(t *testing.T, e *env) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.broker.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// auth0Connector is a connector of the fake Auth0 as the admin API takes
// it.
func auth0Connector(u *upstreams, id string) map[string]any {
	return map[string]any{"id": id, "type": "auth0", "name": "Acme SSO", "settings": map[string]any{
		"issuer": u.auth0.Issuer, "clientID": u.auth0.ClientID, "clientSecret": u.auth0.ClientSecret,
		"scopes": []string{"openid", "email", "profile"}, "trustEmail": true,
	}}
}

// idpLogin starts a login with idp=connector in a new browser and
// returns where it ended: the client's redirect URI with a code, or a
// page.
func (u *upstreams) idpLogin(connector string) (*testenv.Page, authRequest) {
	a := authRequest{pkce: testenv.NewPKCE(), state: "st", nonce: "nn", extra: url.Values{"idp": {connector}}}
	return u.browser().Get(u.authorizeURL(a)), a
}

// waitUntil retries cond every poll for at most a second.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Second); !cond(); time.Sleep(poll) {
		if time.Now().After(deadline) {
			t.Fatalf("not within a second: %s", what)
		}
	}
}

func loggedIn(p *testenv.Page) bool {
	return p.Location != nil && p.Location.Host == "127.0.0.1:5555" && p.Location.Query().Get("code") != ""
}

func TestStoredConnector_CreateLoginDelete(t *testing.T) {
	u := newUpstreams(t, nil, withAdmin, withPoll)
	running(t, u.env)
	tok := u.mustClientToken(adminBotID, adminBotSecret, adminAudience)

	var info admin.ConnectorInfo
	resp := u.adminCall("POST", "/connectors", tok, auth0Connector(u, "acme-sso"), &info)
	wantStatus(t, "create", resp, http.StatusCreated)
	if info.Source != admin.SourceStorage || info.CallbackURL != u.issuer+"/callback/acme-sso" {
		t.Errorf("created: source %q, callback_url %q", info.Source, info.CallbackURL)
	}
	var settings map[string]any
	json.Unmarshal(info.Settings, &settings)
	if settings["clientSecret"] != admin.SecretShown || settings["clientID"] != u.auth0.ClientID {
		t.Errorf("settings shown: %v", settings)
	}

	// Within the poll interval, idp= starts a login through it.
	var page *testenv.Page
	var a authRequest
	waitUntil(t, "a login through the new connector", func() bool {
		u.auth0.SetNextUser(testenv.User{Sub: "auth0|ann", Email: "ann@acme.example", EmailVerified: true})
		page, a = u.idpLogin("acme-sso")
		return loggedIn(page)
	})
	tr := u.redeem(loginResult{code: page.Location.Query().Get("code"), pkce: a.pkce, redirectURI: devRedirect, clientID: broker.DevClientID})
	if tr.Status != http.StatusOK {
		t.Fatalf("token: %d %s", tr.Status, tr.Description)
	}
	if claims := u.verifyIDToken(tr.IDToken, broker.DevClientID); claims.IDP != "acme-sso" || claims.Email != "ann@acme.example" {
		t.Errorf("ID token: idp %q, email %q", claims.IDP, claims.Email)
	}

	// A login started now and finished after the delete.
	started := testenv.NewBrowser(t, false, u.srv.Listener.Addr().String())
	inFlight := started.Get(u.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: "st", nonce: "nn", extra: url.Values{"idp": {"acme-sso"}}}))
	if inFlight.Location == nil || !strings.HasPrefix(inFlight.Location.String(), u.auth0.URL) {
		t.Fatalf("login did not go to the upstream: %d %v", inFlight.Status, inFlight.Location)
	}

	wantStatus(t, "delete", u.adminCall("DELETE", "/connectors/acme-sso", tok, nil, nil), http.StatusNoContent)
	waitUntil(t, "the deleted connector gone", func() bool {
		page, _ := u.idpLogin("acme-sso")
		return page.Location != nil && page.Location.Query().Get("error") == "invalid_request"
	})
	u.auth0.SetNextUser(testenv.User{Sub: "auth0|ann", Email: "ann@acme.example", EmailVerified: true})
	back := started.Get(inFlight.Location.String())
	if back.Status != http.StatusNotFound || !strings.Contains(back.Body, "Unknown sign-in provider") {
		t.Errorf("callback of a deleted connector: %d %s", back.Status, back.Body)
	}
	wantStatus(t, "get after delete", u.adminCall("GET", "/connectors/acme-sso", tok, nil, nil), http.StatusNotFound)

	// What the connector signed in before is signed out: its refresh
	// family is revoked at its next use.
	if tr.RefreshToken == "" {
		t.Fatal("the login got no refresh token")
	}
	if r := u.refresh(broker.DevClientID, tr.RefreshToken); r.Status != http.StatusBadRequest || r.Error != "invalid_grant" {
		t.Errorf("refresh after the connector's delete: %d %s %s", r.Status, r.Error, r.Description)
	}
}

// TestStoredConnector_DeleteEndsSingleSignOn: a browser signed in through
// a connector deleted since is asked to sign in again, not answered from
// its session.
func TestStoredConnector_DeleteEndsSingleSignOn(t *testing.T) {
	u := newUpstreams(t, nil, withAdmin, withPoll)
	running(t, u.env)
	tok := u.mustClientToken(adminBotID, adminBotSecret, adminAudience)
	wantStatus(t, "create", u.adminCall("POST", "/connectors", tok, auth0Connector(u, "acme-sso"), nil), http.StatusCreated)
	b := u.browser()
	var page *testenv.Page
	waitUntil(t, "a login through the new connector", func() bool {
		u.auth0.SetNextUser(testenv.User{Sub: "auth0|ann", Email: "ann@acme.example", EmailVerified: true})
		page = b.Get(u.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: "st", nonce: "nn", extra: url.Values{"idp": {"acme-sso"}}}))
		return loggedIn(page)
	})
	sso := func() *testenv.Page {
		return b.Get(u.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: "st2", nonce: "nn2"}))
	}
	if p := sso(); !loggedIn(p) {
		t.Fatalf("single sign-on before the delete: %d %v", p.Status, p.Location)
	}
	wantStatus(t, "delete", u.adminCall("DELETE", "/connectors/acme-sso", tok, nil, nil), http.StatusNoContent)
	waitUntil(t, "single sign-on refused", func() bool {
		p := sso()
		return !loggedIn(p) && p.Status == http.StatusOK && strings.Contains(p.Body, `name="email"`)
	})
}

func TestStoredConnector_RefusedSettingsStoreNothing(t *testing.T) {
	u := newUpstreams(t, nil, withAdmin, withPoll)
	tok := u.mustClientToken(adminBotID, adminBotSecret, adminAudience)
	// An upstream whose discovery names another issuer.
	impostor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"issuer":"https://elsewhere.example/","authorization_endpoint":"x","token_endpoint":"x","jwks_uri":"x"}`))
	}))
	t.Cleanup(impostor.Close)

	for _, tc := range []struct {
		name   string
		change func(c map[string]any)
		want   []string // in the error description
	}{
		{"wrong issuer", func(c map[string]any) { c["settings"].(map[string]any)["issuer"] = impostor.URL + "/" },
			[]string{"settings.issuer", `issuer in discovery is "https://elsewhere.example/", configured "` + impostor.URL + `/"`}},
		{"unreachable discovery", func(c map[string]any) { c["settings"].(map[string]any)["issuer"] = "http://127.0.0.1:1/" },
			[]string{"settings.issuer", "127.0.0.1:1"}},
		{"missing secret", func(c map[string]any) { delete(c["settings"].(map[string]any), "clientSecret") },
			[]string{"settings.clientSecret is required"}},
		{"unknown setting", func(c map[string]any) { c["settings"].(map[string]any)["tenant"] = "x" },
			[]string{"settings.tenant", "only of azuread"}},
		{"unknown type", func(c map[string]any) { c["type"] = "otp" }, []string{`type "otp"`}},
		{"bad timeout", func(c map[string]any) { c["timeout"] = "1h" }, []string{"timeout"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := auth0Connector(u, "acme-sso")
			tc.change(c)
			var body struct {
				Description string `json:"error_description"`
			}
			wantStatus(t, "create", u.adminCall("POST", "/connectors", tok, c, &body), http.StatusBadRequest)
			for _, w := range tc.want {
				if !strings.Contains(body.Description, w) {
					t.Errorf("error %q does not say %q", body.Description, w)
				}
			}
			if list, err := u.store.ListConnectors(t.Context()); err != nil || len(list) != 0 {
				t.Errorf("stored after a refusal: %v, %v", list, err)
			}
		})
	}
}

func TestStoredConnector_ConfiguredAreReadOnly(t *testing.T) {
	u := newUpstreams(t, nil, withAdmin, withPoll)
	tok := u.mustClientToken(adminBotID, adminBotSecret, adminAudience)
	var list struct {
		Connectors []admin.ConnectorInfo `json:"connectors"`
	}
	wantStatus(t, "list", u.adminCall("GET", "/connectors", tok, nil, &list), http.StatusOK)
	var found bool
	for _, c := range list.Connectors {
		if c.ID == "auth0" {
			found = true
			if c.Source != admin.SourceConfig || strings.Contains(string(c.Settings), u.auth0.ClientSecret) {
				t.Errorf("configured connector shown as %+v", c)
			}
		}
	}
	if !found {
		t.Fatal("the configuration's connectors are not listed")
	}
	wantStatus(t, "patch", u.adminCall("PATCH", "/connectors/auth0", tok, map[string]any{"name": "x"}, nil), http.StatusConflict)
	wantStatus(t, "delete", u.adminCall("DELETE", "/connectors/auth0", tok, nil, nil), http.StatusConflict)
	wantStatus(t, "create", u.adminCall("POST", "/connectors", tok, auth0Connector(u, "auth0"), nil), http.StatusConflict)
}

func TestStoredConnector_UpdateKeepsSecretsAndDisableStopsLogins(t *testing.T) {
	u := newUpstreams(t, nil, withAdmin, withPoll)
	running(t, u.env)
	tok := u.mustClientToken(adminBotID, adminBotSecret, adminAudience)
	wantStatus(t, "create", u.adminCall("POST", "/connectors", tok, auth0Connector(u, "acme-sso"), nil), http.StatusCreated)

	// The settings come back with the secret shown, not given: it stays.
	var info admin.ConnectorInfo
	wantStatus(t, "get", u.adminCall("GET", "/connectors/acme-sso", tok, nil, &info), http.StatusOK)
	var settings map[string]any
	json.Unmarshal(info.Settings, &settings)
	settings["scopes"] = []string{"openid", "email"}
	wantStatus(t, "update", u.adminCall("PATCH", "/connectors/acme-sso", tok, map[string]any{"settings": settings, "name": "Acme"}, &info), http.StatusOK)
	if info.Name != "Acme" {
		t.Errorf("name after update: %q", info.Name)
	}
	waitUntil(t, "a login after the update", func() bool {
		u.auth0.SetNextUser(testenv.User{Sub: "auth0|bo", Email: "bo@acme.example", EmailVerified: true})
		page, _ := u.idpLogin("acme-sso")
		return loggedIn(page)
	})

	wantStatus(t, "disable", u.adminCall("POST", "/connectors/acme-sso/disable", tok, nil, nil), http.StatusOK)
	waitUntil(t, "the disabled connector gone", func() bool {
		page, _ := u.idpLogin("acme-sso")
		return page.Location != nil && page.Location.Query().Get("error") == "invalid_request"
	})
	wantStatus(t, "enable", u.adminCall("POST", "/connectors/acme-sso/enable", tok, nil, nil), http.StatusOK)
	waitUntil(t, "the enabled connector back", func() bool {
		u.auth0.SetNextUser(testenv.User{Sub: "auth0|bo", Email: "bo@acme.example", EmailVerified: true})
		page, _ := u.idpLogin("acme-sso")
		return loggedIn(page)
	})
	var test map[string]bool
	wantStatus(t, "test", u.adminCall("POST", "/connectors/acme-sso/test", tok, nil, &test), http.StatusOK)

	events, err := u.store.ListAudit(t.Context(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range events {
		if strings.HasPrefix(e.Action, "connector.") {
			actions = append(actions, e.Action)
		}
	}
	if len(actions) != 4 {
		t.Errorf("audit: %q, want create, update, disable, enable", actions)
	}
}

func TestStoredConnector_SeenByTheOtherReplica(t *testing.T) {
	store := memory.New()
	seenByTheOtherReplica(t, func() storage.Storage { return store })
}

func TestStoredConnector_SeenByTheOtherReplicaOnPostgres(t *testing.T) {
	db := pgtest.New(t)
	seenByTheOtherReplica(t, func() storage.Storage { return db.Open(t) })
}

// seenByTheOtherReplica runs two brokers, each over open's store (one
// store, or one database), with one root secret: a connector created
// through one serves logins through the other within the poll interval.
func seenByTheOtherReplica(t *testing.T, open func() storage.Storage) {
	secret := broker.NewEphemeralRootSecret()
	shared := func(c *broker.Config, o *broker.Options) { o.Storage, o.Secret = open(), secret }
	one := newUpstreams(t, nil, withAdmin, withPoll, shared)
	two := newUpstreamsOf(t, one, withAdmin, withPoll, shared)
	running(t, one.env)
	running(t, two.env)
	tok := one.mustClientToken(adminBotID, adminBotSecret, adminAudience)
	wantStatus(t, "create", one.adminCall("POST", "/connectors", tok, auth0Connector(one, "acme-sso"), nil), http.StatusCreated)
	waitUntil(t, "a login through replica two", func() bool {
		one.auth0.SetNextUser(testenv.User{Sub: "auth0|cy", Email: "cy@acme.example", EmailVerified: true})
		page, _ := two.idpLogin("acme-sso")
		return loggedIn(page)
	})
	wantStatus(t, "delete", one.adminCall("DELETE", "/connectors/acme-sso", tok, nil, nil), http.StatusNoContent)
	waitUntil(t, "the delete seen by replica two", func() bool {
		page, _ := two.idpLogin("acme-sso")
		return page.Location != nil && page.Location.Query().Get("error") == "invalid_request"
	})
}

func TestStoredConnector_SameIDAsConfiguredStopsTheStart(t *testing.T) {
	store := memory.New()
	if err := store.CreateConnector(t.Context(), storage.StoredConnector{ID: "auth0", Type: "auth0", Settings: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	cfg := broker.DevelopmentConfig("http://127.0.0.1:1", "127.0.0.1:1")
	cfg.Connectors = append(cfg.Connectors, broker.ConnectorConfig{ID: "auth0", Type: "auth0",
		Config: &upoidc.Auth0Config{Issuer: "http://127.0.0.1:1/", ClientID: "c", ClientSecret: "s"}})
	_, err := broker.New(t.Context(), cfg, broker.Options{Storage: store, Secret: broker.NewEphemeralRootSecret()})
	if err == nil || !strings.Contains(err.Error(), `connector "auth0" is defined both`) {
		t.Fatalf("New = %v", err)
	}
}

func TestStoredConnector_SecretsRotateReseals(t *testing.T) {
	store, old := memory.New(), broker.NewEphemeralRootSecret()
	u := newUpstreams(t, nil, withAdmin, withPoll, func(c *broker.Config, o *broker.Options) { o.Storage, o.Secret = store, old })
	tok := u.mustClientToken(adminBotID, adminBotSecret, adminAudience)
	wantStatus(t, "create", u.adminCall("POST", "/connectors", tok, auth0Connector(u, "acme-sso"), nil), http.StatusCreated)

	next := broker.NewEphemeralRootSecret()
	for run, want := range []int{1, 0} { // a second run changes nothing
		n, err := broker.ResealConnectorSettings(t.Context(), store, next, []broker.RootSecret{old})
		if err != nil || n != want {
			t.Fatalf("run %d: resealed %d, %v; want %d", run, n, err, want)
		}
	}
	// The old secret is gone: the settings open under the new one alone.
	adm, err := broker.NewConnectorAdmin(broker.Config{}, store, nil, next, nil)
	if err != nil {
		t.Fatal(err)
	}
	info, err := adm.GetConnector(t.Context(), "acme-sso")
	if err != nil || !strings.Contains(string(info.Settings), u.auth0.ClientID) {
		t.Fatalf("after rotation: %s, %v", info.Settings, err)
	}
	// Under the old secret alone they no longer open, and it says so.
	stale, err := broker.NewConnectorAdmin(broker.Config{}, store, nil, old, nil)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := stale.GetConnector(t.Context(), "acme-sso"); err != nil || info.SettingsError == "" || info.Settings != nil {
		t.Errorf("settings under a dropped secret: %+v, %v", info, err)
	}
}

func TestStoredConnector_TestSaysWhatIsWrong(t *testing.T) {
	u := newUpstreams(t, nil, withAdmin, withPoll)
	tok := u.mustClientToken(adminBotID, adminBotSecret, adminAudience)
	wantStatus(t, "create", u.adminCall("POST", "/connectors", tok, auth0Connector(u, "acme-sso"), nil), http.StatusCreated)
	var ok map[string]bool
	wantStatus(t, "test", u.adminCall("POST", "/connectors/acme-sso/test", tok, nil, &ok), http.StatusOK)
	if !ok["ok"] {
		t.Errorf("test answered %v", ok)
	}
	u.auth0.FailWith(http.StatusBadGateway)
	var body struct {
		Description string `json:"error_description"`
	}
	wantStatus(t, "test of a failing upstream", u.adminCall("POST", "/connectors/acme-sso/test", tok, nil, &body), http.StatusBadRequest)
	if !strings.Contains(body.Description, "settings.issuer") || !strings.Contains(body.Description, "502") {
		t.Errorf("test said %q", body.Description)
	}
	for _, tc := range []struct {
		name string
		c    map[string]any
		want string
	}{
		{"bad id", map[string]any{"id": "a/b", "type": "oidc", "settings": map[string]any{}}, `id "a/b"`},
		{"unknown organisation", map[string]any{"id": "x", "type": "oidc", "org_id": "nope", "settings": map[string]any{}}, `org_id "nope"`},
		{"no settings", map[string]any{"id": "x", "type": "oidc"}, "settings are required"},
	} {
		var body struct {
			Description string `json:"error_description"`
		}
		wantStatus(t, tc.name, u.adminCall("POST", "/connectors", tok, tc.c, &body), http.StatusBadRequest)
		if !strings.Contains(body.Description, tc.want) {
			t.Errorf("%s: %q does not say %q", tc.name, body.Description, tc.want)
		}
	}
}

// TestStoredConnector_UnderItsOrganisation creates and lists connectors
// under /orgs/{org}/connectors: the path names the organisation, and a
// body naming another is refused.
func TestStoredConnector_UnderItsOrganisation(t *testing.T) {
	u := newUpstreams(t, nil, withAdmin, withPoll)
	tok := u.mustClientToken(adminBotID, adminBotSecret, adminAudience)
	var acme, other admin.OrgInfo
	wantStatus(t, "create acme", u.adminCall("POST", "/orgs", tok, map[string]any{"slug": "acme", "name": "Acme"}, &acme), http.StatusCreated)
	wantStatus(t, "create other", u.adminCall("POST", "/orgs", tok, map[string]any{"slug": "other", "name": "Other"}, &other), http.StatusCreated)

	var info admin.ConnectorInfo
	wantStatus(t, "create under acme", u.adminCall("POST", "/orgs/acme/connectors", tok, auth0Connector(u, "acme-sso"), &info), http.StatusCreated)
	if info.OrgID != acme.ID || info.CallbackURL != u.issuer+"/callback/acme-sso" {
		t.Errorf("created: org_id %q callback_url %q", info.OrgID, info.CallbackURL)
	}
	elsewhere := auth0Connector(u, "stray")
	elsewhere["org_id"] = other.ID
	wantStatus(t, "another org in the body", u.adminCall("POST", "/orgs/acme/connectors", tok, elsewhere, nil), http.StatusBadRequest)
	if _, err := u.store.GetConnector(t.Context(), "stray"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a refused connector was stored: %v", err)
	}
	for org, want := range map[string]int{"acme": 1, other.ID: 0} {
		var list struct {
			Connectors []admin.ConnectorInfo `json:"connectors"`
		}
		wantStatus(t, "list "+org, u.adminCall("GET", "/orgs/"+org+"/connectors", tok, nil, &list), http.StatusOK)
		if len(list.Connectors) != want {
			t.Errorf("connectors of %s: %+v, want %d", org, list.Connectors, want)
		}
	}
	wantStatus(t, "unknown org", u.adminCall("GET", "/orgs/nobody/connectors", tok, nil, nil), http.StatusNotFound)
}

// Settings are sealed to their connector: someone who can write the
// database but does not hold the root secret cannot give one connector
// another's settings (its upstream, client and secret) by copying the
// sealed bytes across rows. The connector whose row was written is
// unreadable, in the admin API and at login, until an administrator sets
// its settings again.
func TestStoredConnector_SettingsCopiedToAnotherRowDoNotOpen(t *testing.T) {
	store := memory.New()
	u := newUpstreams(t, nil, withAdmin, withPoll, func(c *broker.Config, o *broker.Options) { o.Storage = store })
	running(t, u.env)
	tok := u.mustClientToken(adminBotID, adminBotSecret, adminAudience)
	wantStatus(t, "create acme", u.adminCall("POST", "/connectors", tok, auth0Connector(u, "acme-sso"), nil), http.StatusCreated)
	wantStatus(t, "create globex", u.adminCall("POST", "/connectors", tok, auth0Connector(u, "globex-sso"), nil), http.StatusCreated)
	login := func() bool {
		u.auth0.SetNextUser(testenv.User{Sub: "auth0|gil", Email: "gil@globex.example", EmailVerified: true})
		page, _ := u.idpLogin("globex-sso")
		return loggedIn(page)
	}
	waitUntil(t, "a login through globex-sso", login)

	stolen, err := store.GetConnector(t.Context(), "acme-sso")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.UpdateConnector(t.Context(), "globex-sso", func(c storage.StoredConnector) (storage.StoredConnector, error) {
		c.Settings = stolen.Settings
		return c, nil
	}); err != nil {
		t.Fatal(err)
	}

	var info admin.ConnectorInfo
	wantStatus(t, "get globex", u.adminCall("GET", "/connectors/globex-sso", tok, nil, &info), http.StatusOK)
	if info.SettingsError == "" || info.Settings != nil {
		t.Errorf("globex-sso holding acme-sso's sealed settings: settings %s, error %q", info.Settings, info.SettingsError)
	}
	waitUntil(t, "globex-sso refused at login", func() bool { return !login() })
	time.Sleep(3 * poll) // the directory polled again, and still refuses
	if login() {
		t.Error("a login through globex-sso, with acme-sso's settings, succeeded")
	}

	// Its settings given again in full, it signs in again.
	settings := auth0Connector(u, "globex-sso")["settings"]
	resp := u.adminCall("PATCH", "/connectors/globex-sso", tok, map[string]any{"settings": settings}, nil)
	wantStatus(t, "settings given again", resp, http.StatusOK)
	waitUntil(t, "a login through globex-sso again", login)
}

// Settings an earlier release sealed, bound to no row, still sign in;
// a re-seal binds them to their row, once.
func TestStoredConnector_SettingsOfAnEarlierReleaseOpenAndAreBoundByAReseal(t *testing.T) {
	store, secret := memory.New(), broker.NewEphemeralRootSecret()
	u := newUpstreams(t, nil, withAdmin, withPoll, func(c *broker.Config, o *broker.Options) { o.Storage, o.Secret = store, secret })
	running(t, u.env)
	tok := u.mustClientToken(adminBotID, adminBotSecret, adminAudience)
	wantStatus(t, "create", u.adminCall("POST", "/connectors", tok, auth0Connector(u, "acme-sso"), nil), http.StatusCreated)

	env, err := broker.ConnectorSettingsEnvelope(secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.UpdateConnector(t.Context(), "acme-sso", func(c storage.StoredConnector) (storage.StoredConnector, error) {
		plain, err := env.Open(c.Settings, c.ID, c.Type)
		if err != nil {
			return c, err
		}
		c.Settings, err = env.Seal(plain) // as the earlier release sealed
		return c, err
	}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a login through settings sealed unbound", func() bool {
		u.auth0.SetNextUser(testenv.User{Sub: "auth0|ann", Email: "ann@acme.example", EmailVerified: true})
		page, _ := u.idpLogin("acme-sso")
		return loggedIn(page)
	})
	for run, want := range []int{1, 0} {
		if n, err := broker.ResealConnectorSettings(t.Context(), store, secret, nil); err != nil || n != want {
			t.Fatalf("reseal run %d: %d, %v; want %d", run, n, err, want)
		}
	}
	c, err := store.GetConnector(t.Context(), "acme-sso")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Open(c.Settings, "globex-sso", c.Type); err == nil {
		t.Error("re-sealed settings open for another connector's row")
	}
}

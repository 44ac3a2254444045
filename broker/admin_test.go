package broker_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/broker/admin"
	"github.com/idbroker/broker/storage"
)

const (
	adminAudience  = "https://broker.example.com/admin"
	adminBotID     = "admin-bot"
	adminBotSecret = "admin-bot-secret-0123456789abcdefghijklmnopqrstu"
	// readerBotID may ask for the admin audience but not the admin scope.
	readerBotID     = "reader-bot"
	readerBotSecret = "reader-bot-secret-0123456789abcdefghijklmnopqrst"
)

func withAdmin(c *broker.Config, o *broker.Options) {
	c.Admin = admin.Config{Enabled: true, Audience: adminAudience}
	c.Clients = append(c.Clients,
		broker.ClientConfig{ID: adminBotID, Secret: adminBotSecret, GrantTypes: []string{clientCredentialsGrant},
			Audiences: []string{adminAudience, svcAudience}, Scopes: []string{broker.AdminScope}},
		broker.ClientConfig{ID: readerBotID, Secret: readerBotSecret, GrantTypes: []string{clientCredentialsGrant},
			Audiences: []string{adminAudience}, Scopes: []string{"read"}},
	)
}

// adminCall sends a JSON request to the admin API (body as JSON, or a
// []byte sent as it is) and decodes the answer into out (when not nil).
func (e *env) adminCall(method, path, bearer string, body any, out any) *http.Response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, e.issuer+"/admin/v1"+path, rd)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.httpClient().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp
}

func (e *env) mustClientToken(id, secret, audience string) string {
	e.t.Helper()
	tr := e.token(url.Values{"grant_type": {clientCredentialsGrant}, "audience": {audience}}, id, secret)
	if tr.AccessToken == "" {
		e.t.Fatalf("client credentials for %s: %d %s %s", id, tr.Status, tr.Error, tr.Description)
	}
	return tr.AccessToken
}

func wantStatus(t testing.TB, what string, resp *http.Response, status int) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s: status %d, want %d", what, resp.StatusCode, status)
	}
}

func TestAdminAPI_RefusesWithoutAnAdminToken(t *testing.T) {
	e := newEnv(t, withAdmin)
	resp := e.adminCall("GET", "/clients", "", nil, nil)
	wantStatus(t, "no token", resp, http.StatusUnauthorized)
	if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
	}
	wantStatus(t, "garbage token", e.adminCall("GET", "/clients", "not-a-token", nil, nil), http.StatusUnauthorized)
	// An admin client's token for another audience is not for this API.
	wantStatus(t, "other audience", e.adminCall("GET", "/clients", e.mustClientToken(adminBotID, adminBotSecret, svcAudience), nil, nil), http.StatusUnauthorized)
	resp = e.adminCall("GET", "/clients", e.mustClientToken(readerBotID, readerBotSecret, adminAudience), nil, nil)
	wantStatus(t, "no admin scope", resp, http.StatusForbidden)
	if !strings.Contains(resp.Header.Get("WWW-Authenticate"), "insufficient_scope") {
		t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
	}
	// Disabled by default: no route at all.
	wantStatus(t, "admin API off", newEnv(t).adminCall("GET", "/clients", "", nil, nil), http.StatusNotFound)
}

func TestAdminAPI_ClientOperations(t *testing.T) {
	e := newEnv(t, withAdmin)
	ctx := t.Context()
	tok := e.mustClientToken(adminBotID, adminBotSecret, adminAudience)

	var created struct {
		admin.ClientInfo
		Secret string `json:"client_secret"`
	}
	resp := e.adminCall("POST", "/clients", tok, admin.ClientSpec{ID: "reports", Name: "Reports",
		GrantTypes: []string{clientCredentialsGrant}, Audiences: []string{svcAudience}, Scopes: []string{"read"}}, &created)
	wantStatus(t, "create", resp, http.StatusCreated)
	if len(created.Secret) < 40 {
		t.Fatalf("created secret %q is short", created.Secret)
	}
	stored, err := e.store.GetClient(ctx, "reports")
	if err != nil || len(stored.SecretHashes) != 1 || bytes.Contains(stored.SecretHashes[0].Hash, []byte(created.Secret)) {
		t.Fatalf("stored client: %+v, %v", stored, err)
	}
	// It works at once.
	sub := claimsOf(t, e.mustClientToken("reports", created.Secret, svcAudience)).Subject
	wantStatus(t, "create again", e.adminCall("POST", "/clients", tok, admin.ClientSpec{ID: "reports"}, nil), http.StatusConflict)
	wantStatus(t, "create a config client's id", e.adminCall("POST", "/clients", tok, admin.ClientSpec{ID: backendID}, nil), http.StatusConflict)
	wantStatus(t, "create invalid", e.adminCall("POST", "/clients", tok, admin.ClientSpec{ID: "bad id"}, nil), http.StatusBadRequest)

	var got admin.ClientInfo
	wantStatus(t, "show", e.adminCall("GET", "/clients/reports", tok, nil, &got), http.StatusOK)
	if got.ServiceUserID != sub || got.Name != "Reports" {
		t.Errorf("show: %+v; want service user %s", got, sub)
	}
	var list struct{ Clients []admin.ClientInfo }
	wantStatus(t, "list", e.adminCall("GET", "/clients", tok, nil, &list), http.StatusOK)
	if len(list.Clients) != 1 || list.Clients[0].ID != "reports" {
		t.Errorf("list: %+v", list)
	}

	auds := []string{svcAudience, svcOtherAud}
	wantStatus(t, "update", e.adminCall("PATCH", "/clients/reports", tok, map[string]any{"audiences": auds}, nil), http.StatusOK)
	if c, _ := e.store.GetClient(ctx, "reports"); !slices.Equal(c.Audiences, auds) || c.Name != "Reports" {
		t.Errorf("after update: %+v", c)
	}
	e.mustClientToken("reports", created.Secret, svcOtherAud)

	var rotated struct {
		Secret string `json:"client_secret"`
	}
	wantStatus(t, "rotate", e.adminCall("POST", "/clients/reports/rotate-secret", tok, map[string]string{"grace": "1h"}, &rotated), http.StatusOK)
	e.mustClientToken("reports", rotated.Secret, svcAudience)
	e.mustClientToken("reports", created.Secret, svcAudience) // within the grace period

	wantStatus(t, "delete", e.adminCall("DELETE", "/clients/reports", tok, nil, nil), http.StatusNoContent)
	if _, err := e.store.GetClient(ctx, "reports"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("deleted client still stored: %v", err)
	}
	if _, err := e.store.GetUser(ctx, sub); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("deleted client's service user remains: %v", err)
	}
	wantStatus(t, "show deleted", e.adminCall("GET", "/clients/reports", tok, nil, nil), http.StatusNotFound)

	events, _ := e.store.ListAudit(ctx, 100)
	var actions []string
	for _, ev := range events {
		if !strings.HasPrefix(ev.Actor, adminBotID+"/") || ev.Target != "client:reports" {
			t.Errorf("audit event %+v", ev)
		}
		actions = append(actions, ev.Action)
	}
	for _, want := range []string{"client.create", "client.update", "client.rotate-secret", "client.delete"} {
		if !slices.Contains(actions, want) {
			t.Errorf("audit log lacks %s: %v", want, actions)
		}
	}
}

// Disabling or deleting a user through the admin API ends their sessions
// as a logout does: clients that registered a back-channel logout URI are
// told, with a logout token for the session.
func TestAdminAPI_DisableAndDeleteSendBackchannelLogout(t *testing.T) {
	rcv, hearsLogouts := backendHearsLogouts(t)
	e := newEnv(t, withAdmin, hearsLogouts)
	tok := e.mustClientToken(adminBotID, adminBotSecret, adminAudience)
	for i, action := range []struct{ method, path string }{
		{"POST", "/disable"},
		{"DELETE", ""},
	} {
		b := e.browser()
		email := fmt.Sprintf("bc-admin-%d@example.com", i)
		e.redeem(e.login(b, email, authRequest{}))
		page, pkce := e.authorizeBackend(b, nil)
		idc := e.sessionClaims(e.redeemBackend(page, pkce).IDToken, backendID)

		wantStatus(t, action.method+" user", e.adminCall(action.method, "/users/"+idc.Subject+action.path, tok, nil, nil), http.StatusNoContent)
		raw := rcv.waitForTokenNumber(t, i)
		payload, _, err := e.broker.SigningKeys().Verify(raw)
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			Subject string `json:"sub"`
			SID     string `json:"sid"`
		}
		if err := json.Unmarshal(payload, &c); err != nil || c.Subject != idc.Subject || c.SID != idc.SID {
			t.Errorf("%s: logout token %s, want sub %s sid %s", action.method, payload, idc.Subject, idc.SID)
		}
	}
}

func TestAdminAPI_UserOperations(t *testing.T) {
	e := newEnv(t, withAdmin)
	ctx := t.Context()
	tok := e.mustClientToken(adminBotID, adminBotSecret, adminAudience)
	tr := e.redeem(e.login(e.browser(), "sam@example.org", authRequest{}))
	id := claimsOf(t, tr.AccessToken).Subject

	var page struct {
		Users []admin.UserInfo
	}
	wantStatus(t, "list", e.adminCall("GET", "/users?limit=10", tok, nil, &page), http.StatusOK)
	if !slices.ContainsFunc(page.Users, func(u admin.UserInfo) bool { return u.ID == id }) {
		t.Errorf("list lacks the user: %+v", page)
	}
	var shown admin.UserInfo
	wantStatus(t, "show by email", e.adminCall("GET", "/users/sam@example.org", tok, nil, &shown), http.StatusOK)
	if shown.ID != id || len(shown.Identities) != 1 {
		t.Errorf("show: %+v", shown)
	}

	wantStatus(t, "disable", e.adminCall("POST", "/users/"+id+"/disable", tok, nil, nil), http.StatusNoContent)
	if u, _ := e.store.GetUser(ctx, id); !u.Disabled {
		t.Error("not disabled in storage")
	}
	assertRefused(t, e.refresh(broker.DevClientID, tr.RefreshToken), http.StatusBadRequest, "invalid_grant")
	wantStatus(t, "enable", e.adminCall("POST", "/users/"+id+"/enable", tok, nil, nil), http.StatusNoContent)
	if u, _ := e.store.GetUser(ctx, id); u.Disabled {
		t.Error("still disabled in storage")
	}

	link := map[string]string{"connector": "entra", "subject": "tid/oid|1"}
	wantStatus(t, "link", e.adminCall("POST", "/users/"+id+"/identities", tok, link, nil), http.StatusNoContent)
	ids, _ := e.store.ListIdentities(ctx, id)
	if !slices.ContainsFunc(ids, func(i storage.Identity) bool { return i.Connector == "entra" && i.Subject == "tid/oid|1" }) {
		t.Errorf("identities after link: %+v", ids)
	}
	wantStatus(t, "link a service identity", e.adminCall("POST", "/users/"+id+"/identities", tok, map[string]string{"connector": "client", "subject": adminBotID}, nil), http.StatusBadRequest)
	other := e.redeem(e.login(e.browser(), "kim@example.org", authRequest{}))
	wantStatus(t, "link another user's identity", e.adminCall("POST", "/users/"+claimsOf(t, other.AccessToken).Subject+"/identities", tok, link, nil), http.StatusConflict)
	q := url.Values{"connector": {"entra"}, "subject": {"tid/oid|1"}}
	wantStatus(t, "unlink", e.adminCall("DELETE", "/users/"+id+"/identities?"+q.Encode(), tok, nil, nil), http.StatusNoContent)
	if ids, _ := e.store.ListIdentities(ctx, id); len(ids) != 1 {
		t.Errorf("identities after unlink: %+v", ids)
	}

	wantStatus(t, "delete", e.adminCall("DELETE", "/users/"+id, tok, nil, nil), http.StatusNoContent)
	if _, err := e.store.GetUser(ctx, id); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("deleted user: %v", err)
	}
	if info := e.introspect(tr.AccessToken, introspectorID, introspectorSecret); info["active"] != false {
		t.Errorf("a deleted user's token introspects %v", info)
	}
	wantStatus(t, "show deleted", e.adminCall("GET", "/users/"+id, tok, nil, nil), http.StatusNotFound)

	events, _ := e.store.ListAudit(ctx, 100)
	var actions []string
	for _, ev := range events {
		if ev.Target == "user:"+id && strings.HasPrefix(ev.Actor, adminBotID+"/") {
			actions = append(actions, ev.Action)
		}
	}
	for _, want := range []string{"user.disable", "user.enable", "user.link", "user.unlink", "user.delete"} {
		if !slices.Contains(actions, want) {
			t.Errorf("audit log lacks %s: %v", want, actions)
		}
	}
}

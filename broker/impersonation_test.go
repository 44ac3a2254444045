package broker_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/upstream/workos"
)

// tokenClaims reads a token the broker signed, after checking its
// signature against the broker's keys.
func (e *env) tokenClaims(raw string) map[string]any {
	e.t.Helper()
	payload, _, err := e.broker.SigningKeys().Verify(raw)
	if err != nil {
		e.t.Fatalf("broker token does not verify: %v", err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// A WorkOS dashboard member impersonating a user is refused unless the
// connector allows impersonation; when it does, the ID and access tokens
// of the code and of every refresh name the impersonator in act, and the
// audit log records who and why.
func TestLogin_WorkOSImpersonation(t *testing.T) {
	impersonated := testenv.User{Sub: "user_imp", Email: "wanda@acme.example", EmailVerified: true,
		Impersonator: "support@vendor.example", ImpersonationReason: "ticket 4711"}
	const wantAct = "workos-impersonator:support@vendor.example"

	t.Run("refused by default", func(t *testing.T) {
		u := newUpstreams(t, nil)
		u.workos.SetNextUser(impersonated)
		before := u.rows()
		l, page := u.loginVia(impersonated.Email)
		if l.code != "" || page.Status != http.StatusForbidden {
			t.Fatalf("impersonated login without allowImpersonation: code %v, status %d", l.code != "", page.Status)
		}
		u.assertNothingWritten(before)
	})

	t.Run("allowed", func(t *testing.T) {
		u := newUpstreams(t, nil, func(c *broker.Config, o *broker.Options) {
			for i := range c.Connectors {
				if c.Connectors[i].ID == "workos" {
					c.Connectors[i].Config.(*workos.Config).AllowImpersonation = true
					// Shorter than the fake's five-minute access
					// tokens, which the re-check verifies on the
					// broker's advanced clock.
					c.Connectors[i].RecheckInterval = 2 * time.Minute
				}
			}
		})
		u.workos.SetNextUser(impersonated)
		tr, id := u.mustLoginVia(impersonated.Email)
		actOf := func(raw string) any {
			act, _ := u.tokenClaims(raw)["act"].(map[string]any)
			if act == nil {
				return nil
			}
			return act["sub"]
		}
		if got := actOf(tr.IDToken); got != wantAct {
			t.Errorf("ID token act.sub %v, want %q", got, wantAct)
		}
		if got := actOf(tr.AccessToken); got != wantAct {
			t.Errorf("access token act.sub %v, want %q", got, wantAct)
		}
		// A refresh, then one that re-checks WorkOS: still impersonated.
		for _, advance := range []time.Duration{0, 3 * time.Minute} {
			u.clock.Advance(advance)
			r := u.refresh(broker.DevClientID, tr.RefreshToken)
			if r.Status != http.StatusOK {
				t.Fatalf("refresh: %d %s", r.Status, r.Description)
			}
			if actOf(r.IDToken) != wantAct || actOf(r.AccessToken) != wantAct {
				t.Errorf("refresh after %s: act %v and %v, want %q", advance, actOf(r.IDToken), actOf(r.AccessToken), wantAct)
			}
			tr = r
		}

		events, err := u.store.ListAudit(context.Background(), 100)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(events, func(e storage.AuditEvent) bool {
			return e.Target == "user:"+id.Subject && e.Actor == wantAct && e.Details["impersonator"] == impersonated.Impersonator &&
				e.Details["reason"] == impersonated.ImpersonationReason && e.Details["connector"] == "workos"
		}) {
			t.Errorf("no audit event names the impersonation of %s: %+v", id.Subject, events)
		}

		// Single sign-on from the impersonated session says so too.
		u.workos.SetNextUser(impersonated)
		b := u.browser()
		pkce := testenv.NewPKCE()
		page := b.Get(u.authorizeURL(authRequest{pkce: pkce, state: "s", nonce: "n", extra: url.Values{"idp": {"workos"}}}))
		if page.Location == nil || page.Location.Query().Get("code") == "" {
			t.Fatalf("impersonated login via idp=workos: %d", page.Status)
		}
		u.redeem(loginResult{code: page.Location.Query().Get("code"), pkce: pkce, redirectURI: devRedirect, clientID: broker.DevClientID})
		page, pkce = u.authorizeBackend(b, nil)
		sso := u.redeemBackend(page, pkce)
		if actOf(sso.IDToken) != wantAct || actOf(sso.AccessToken) != wantAct {
			t.Errorf("single sign-on from an impersonated session: act %v and %v, want %q", actOf(sso.IDToken), actOf(sso.AccessToken), wantAct)
		}

		// The user signing in themselves gets no act.
		self := impersonated
		self.Impersonator, self.ImpersonationReason = "", ""
		u.workos.SetNextUser(self)
		tr, _ = u.mustLoginVia(self.Email)
		if act := actOf(tr.IDToken); act != nil {
			t.Errorf("the user's own login carries act %v", act)
		}
	})

	// An auth0 connector's settings have no allowImpersonation to set.
	_, err := broker.ParseConfig([]byte("connectors:\n  - {id: a0, type: auth0, issuer: https://t.example/, clientID: c, allowImpersonation: true}\n"), noEnv)
	if err == nil || !strings.Contains(err.Error(), "allowImpersonation") {
		t.Errorf("allowImpersonation on an auth0 connector: %v", err)
	}
}

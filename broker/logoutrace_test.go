package broker_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/storagetest"
)

// A code redeemed at /token while its login is logged out (the person
// signs out) or its user disabled (the admin API), the redemption slow to
// create its refresh family until the logout or disabling has answered:
// whatever the redemption is given, nothing of it works afterwards, even
// once the user is enabled again.
func TestCodeExchange_RacingLogoutOrDisableLeavesNothingAlive(t *testing.T) {
	for name, open := range raceStores {
		for _, by := range []string{"logout", "disable"} {
			t.Run(fmt.Sprintf("%s/%s", name, by), func(t *testing.T) {
				testRedemptionRacesEnding(t, open(t), by)
			})
		}
	}
}

func testRedemptionRacesEnding(t *testing.T, store storage.Storage, by string) {
	release := make(chan struct{})
	arrived := make(chan string, 1)
	e := newEnv(t, withAdmin, func(c *broker.Config, o *broker.Options) {
		o.Storage = storagetest.HeldFamilies{Storage: store, Release: release, Arrived: arrived}
	})
	const email = "racer@example.com"
	b := e.browser()
	l := e.login(b, email, authRequest{})

	redeemed := make(chan tokenResponse, 1)
	go func() { redeemed <- e.redeem(l) }()
	select {
	case <-arrived: // the code is redeemed; its family is on its way
	case tr := <-redeemed:
		t.Fatalf("redemption answered without creating a family: %d %s %s", tr.Status, tr.Error, tr.Description)
	case <-time.After(10 * time.Second):
		t.Fatal("the redemption never came to create its family")
	}

	tok := e.mustClientToken(adminBotID, adminBotSecret, adminAudience)
	switch by {
	case "logout":
		if p := logOut(t, b, e.issuer+"/end_session"); p.Status != http.StatusOK {
			t.Fatalf("logout: %d at %s", p.Status, p.URL)
		}
	case "disable":
		wantStatus(t, "disable", e.adminCall("POST", "/users/"+email+"/disable", tok, nil, nil), http.StatusNoContent)
	}
	close(release)
	tr := <-redeemed
	if by == "disable" {
		// What disabling revoked stays revoked once the user is enabled
		// again. (While they are disabled, a refresh is refused anyway.)
		wantStatus(t, "enable", e.adminCall("POST", "/users/"+email+"/enable", tok, nil, nil), http.StatusNoContent)
	}
	checkNothingAlive(t, e, tr, "after "+by)
}

// checkNothingAlive fails the test if tr, a code redemption's answer,
// gave anything that still works.
func checkNothingAlive(t *testing.T, e *env, tr tokenResponse, when string) {
	t.Helper()
	switch {
	case tr.Status >= 500:
		t.Fatalf("redemption: %d %s %s", tr.Status, tr.Error, tr.Description)
	case tr.Status != http.StatusOK:
		if tr.Error != "invalid_grant" {
			t.Errorf("redemption refused with %d %q (%s); want invalid_grant", tr.Status, tr.Error, tr.Description)
		}
		return
	}
	if tr.RefreshToken != "" {
		if r := e.refresh(broker.DevClientID, tr.RefreshToken); r.Status == http.StatusOK || r.Error != "invalid_grant" {
			t.Errorf("the redemption's refresh token %s: %d %q; want invalid_grant", when, r.Status, r.Error)
		}
	}
	if info := e.introspect(tr.AccessToken, introspectorID, introspectorSecret); info["active"] != false {
		t.Errorf("the redemption's access token %s introspects %v", when, info)
	}
}

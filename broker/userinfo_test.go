package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/memory"
)

// userinfoCall is one request to /userinfo and what came back.
type userinfoCall struct {
	status    int
	challenge string // WWW-Authenticate
	cache     string // Cache-Control
	body      map[string]any
}

func (e *env) userinfo(req *http.Request) userinfoCall {
	e.t.Helper()
	resp, err := e.httpClient().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	c := userinfoCall{status: resp.StatusCode, challenge: resp.Header.Get("WWW-Authenticate"), cache: resp.Header.Get("Cache-Control")}
	json.Unmarshal(raw, &c.body)
	return c
}

func TestUserinfo_AnswersAsAnRFC6750ProtectedResource(t *testing.T) {
	e := newEnv(t, func(c *broker.Config, _ *broker.Options) {
		c.Clients[0].AllowedOrigins = []string{"https://spa.example.com"}
	})
	withOpenID := e.redeem(e.login(e.browser(), "ui@example.com", authRequest{}))
	// OpenID Connect Core section 5.3: UserInfo answers for tokens of an
	// OpenID Connect request; a token without openid gets
	// insufficient_scope (RFC 6750 section 3.1).
	withoutOpenID := e.redeem(e.login(e.browser(), "ui-no-openid@example.com", authRequest{scope: "email offline_access"}))
	if withOpenID.AccessToken == "" || withoutOpenID.AccessToken == "" {
		t.Fatalf("logins gave no access tokens: %+v %+v", withOpenID, withoutOpenID)
	}
	get := func(bearer string) *http.Request {
		req, _ := http.NewRequest(http.MethodGet, e.issuer+"/userinfo", nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		return req
	}
	post := func(form url.Values, bearer string) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, e.issuer+"/userinfo", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		return req
	}
	for _, tc := range []struct {
		name      string
		req       *http.Request
		status    int
		challenge string // "" for none
	}{
		{"good token in the header", get(withOpenID.AccessToken), http.StatusOK, ""},
		{"good token in the body", post(url.Values{"access_token": {withOpenID.AccessToken}}, ""), http.StatusOK, ""},
		// Section 3.1: a request without any authentication information
		// gets a challenge and no error code.
		{"no token", get(""), http.StatusUnauthorized, `Bearer realm="broker"`},
		{"forged token", get("not-a-token"), http.StatusUnauthorized,
			`Bearer realm="broker", error="invalid_token", error_description="the access token is invalid, expired or revoked"`},
		{"token without openid", get(withoutOpenID.AccessToken), http.StatusForbidden,
			`Bearer realm="broker", error="insufficient_scope", error_description="the access token was not issued for OpenID Connect", scope="openid"`},
		// Section 2: "Clients MUST NOT use more than one method to
		// transmit the token in each request."
		{"token in header and body", post(url.Values{"access_token": {withOpenID.AccessToken}}, withOpenID.AccessToken), http.StatusBadRequest,
			`Bearer realm="broker", error="invalid_request", error_description="send the access token once, in one way"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.userinfo(tc.req)
			if c.status != tc.status || c.challenge != tc.challenge {
				t.Errorf("got %d with WWW-Authenticate %q, want %d with %q", c.status, c.challenge, tc.status, tc.challenge)
			}
			// Every answer is about a person or a credential: none is
			// cached (RFC 6750 section 5.3, RFC 9111 section 5.2.2.5).
			if c.cache != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", c.cache)
			}
			switch {
			case tc.status == http.StatusOK && c.body["email"] != "ui@example.com":
				t.Errorf("claims %v", c.body)
			case tc.status != http.StatusOK && tc.name == "no token" && len(c.body) != 0:
				t.Errorf("a request without a token got error information %v", c.body)
			}
		})
	}
}

func TestUserinfo_AnswersCORSOnlyForRegisteredOrigins(t *testing.T) {
	e := newEnv(t, func(c *broker.Config, _ *broker.Options) {
		c.Clients[0].AllowedOrigins = []string{"https://spa.example.com"}
	})
	for origin, want := range map[string]string{"https://spa.example.com": "https://spa.example.com", "https://evil.example": ""} {
		req, _ := http.NewRequest(http.MethodOptions, e.issuer+"/userinfo", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", http.MethodGet)
		req.Header.Set("Access-Control-Request-Headers", "authorization") // as browsers send it
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != want {
			t.Errorf("preflight from %s: Access-Control-Allow-Origin %q, want %q", origin, got, want)
		}
	}
}

// accessChecksDown fails the access-token check while down is set.
type accessChecksDown struct {
	storage.Storage
	down atomic.Bool
}

func (s *accessChecksDown) AccessTokenUser(ctx context.Context, t storage.AccessTokenRef) (storage.User, error) {
	if s.down.Load() {
		return storage.User{}, errors.New("read tcp 10.0.0.5:5432: i/o timeout")
	}
	return s.Storage.AccessTokenUser(ctx, t)
}

func TestUserinfo_StoreFailureIs503NotInvalidToken(t *testing.T) {
	store := &accessChecksDown{Storage: memory.New()}
	e := newEnv(t, func(c *broker.Config, o *broker.Options) { o.Storage = store })
	tr := e.redeem(e.login(e.browser(), "ui-down@example.com", authRequest{}))
	store.down.Store(true)
	req, _ := http.NewRequest(http.MethodGet, e.issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
	// A token the broker could not check is not an invalid one: the
	// client must not throw it away (docs/design.md rule 2, fail closed).
	c := e.userinfo(req)
	if c.status != http.StatusServiceUnavailable || c.body["error"] != "temporarily_unavailable" || c.challenge != "" || c.cache != "no-store" {
		t.Errorf("got %d %v, WWW-Authenticate %q, Cache-Control %q", c.status, c.body, c.challenge, c.cache)
	}
}

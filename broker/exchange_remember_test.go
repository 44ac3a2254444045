package broker_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/internal/testenv"
	upoidc "github.com/idbroker/broker/upstream/oidc"
)

// withAuth0Clock gives the Auth0 connector the broker's clock, and lets it
// fetch its keys again as soon as a token names a key id it lacks.
func withAuth0Clock(c *broker.Config, o *broker.Options) {
	for i := range c.Connectors {
		if c.Connectors[i].ID == "auth0" {
			a0 := c.Connectors[i].Config.(*upoidc.Auth0Config)
			a0.Clock = o.Clock
			a0.MinKeyRefreshInterval = time.Millisecond
		}
	}
}

// A service presents the upstream token it holds on every call, and the
// broker remembers the signatures it verified so that a repeat costs no
// RSA operation. Only the signature is remembered: every presentation is
// still checked for expiry, for its exact bytes, and against the keys the
// upstream publishes now.
func TestExchange_ARememberedTokenIsStillCheckedEveryTime(t *testing.T) {
	person := testenv.User{Sub: "auth0|holder", Email: "holder@corp.example.com", EmailVerified: true}
	form := func(subject string) url.Values {
		return url.Values{"subject_token": {subject}, "subject_token_type": {accessTokenType}}
	}

	t.Run("expired while remembered", func(t *testing.T) {
		u := newExchange(t, withAuth0Clock)
		subject := u.auth0.AccessToken(person, apiAudience, testenv.ExpiresAt(u.clock.Now().Add(time.Minute)))
		first := u.verifyAccess(u.mustExchange(subject, nil).AccessToken, apiAudience)
		if again := u.verifyAccess(u.mustExchange(subject, nil).AccessToken, apiAudience); again.Subject != first.Subject {
			t.Fatalf("the same token twice: sub %q then %q", first.Subject, again.Subject)
		}
		// Within the time a signature is remembered, beyond exp and
		// any clock skew.
		u.clock.Advance(3 * time.Minute)
		assertRefused(t, u.exchange(form(subject)), http.StatusBadRequest, "invalid_request")
	})

	t.Run("another header on the same payload and signature", func(t *testing.T) {
		u := newExchange(t, withAuth0Clock)
		subject := u.auth0.AccessToken(person, apiAudience)
		u.mustExchange(subject, nil)
		parts := strings.Split(subject, ".")
		header, err := base64.RawURLEncoding.DecodeString(parts[0])
		if err != nil {
			t.Fatal(err)
		}
		// The same header with a space more: it parses alike, but the
		// signature does not cover it.
		parts[0] = base64.RawURLEncoding.EncodeToString(append([]byte("{ "), header[1:]...))
		assertRefused(t, u.exchange(form(strings.Join(parts, "."))), http.StatusBadRequest, "invalid_request")
		u.mustExchange(subject, nil)
	})

	t.Run("key withdrawn by the upstream", func(t *testing.T) {
		u := newExchange(t, withAuth0Clock)
		subject := u.auth0.AccessToken(person, apiAudience)
		u.mustExchange(subject, nil)
		u.mustExchange(subject, nil)
		u.auth0.RotateKeys()
		u.clock.Advance(time.Second)
		// A token of the new key makes the broker fetch the keys,
		// without the old one.
		u.mustExchange(u.auth0.AccessToken(person, apiAudience), nil)
		assertRefused(t, u.exchange(form(subject)), http.StatusBadRequest, "invalid_request")
	})
}

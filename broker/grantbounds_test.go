package broker_test

// What bounds a token traded for another: by token exchange, or an
// identity assertion grant (ID-JAG) redeemed with the jwt-bearer grant.
// Each was an attack through HTTP before it was fixed.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage/postgres/pgtest"
)

const (
	rsAudience = "https://api.rs.example.com"
)

// boundedJAGWorld is an identity provider whose stored client jagClientID
// may get ID-JAGs for rs, and rs, an authorization server that accepts the
// provider's ID-JAGs for its client jagClientID, which may ask for the
// scope "read" only and has one audience of its own (no registered
// resource). rsOpts change rs's configuration.
func boundedJAGWorld(t *testing.T, rsOpts ...envOption) *jagWorld {
	t.Helper()
	idp := newEnv(t)
	rs := rsOf(t, idp, rsOpts...)
	storeJAGClient(t, idp, jagClientID, rs.issuer)
	return &jagWorld{idp: idp, rs: rs}
}

// rsOf is an authorization server that trusts idp's ID-JAGs.
func rsOf(t *testing.T, idp *env, opts ...envOption) *env {
	t.Helper()
	return newEnv(t, append([]envOption{rsTrustingIDP(idp)}, opts...)...)
}

// rsTrustingIDP configures a broker to trust idp's ID-JAGs for its
// client jagClientID.
func rsTrustingIDP(idp *env) envOption {
	return func(c *broker.Config, o *broker.Options) {
		c.Connectors = append(c.Connectors, jagConnectorTo(idp, true))
		c.Clients = append(c.Clients, broker.ClientConfig{ID: jagClientID, Secret: jagClientSecret,
			GrantTypes: []string{broker.GrantJWTBearer}, Audiences: []string{rsAudience}, Scopes: []string{"read"}})
	}
}

// randomHex is n random bytes in hex.
func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// An exchange of one of the broker's own access tokens only narrows,
// its lifetime too: the token it issues expires no later than the one it
// came from. It used to get a fresh lifetime, so a client holding an
// access token (its own, or one naming it in aud) re-exchanged it before
// each expiry, forever: past the subject token's exp, past the logout,
// with no refresh token.
func TestExchange_ANarrowedTokenNeverOutlivesItsSubject(t *testing.T) {
	w := boundedJAGWorld(t)
	idt, _ := w.idToken(t, jagEmail) // scope "openid email": no refresh family
	at := w.lastAccessToken
	originalExp := int64(w.idp.tokenClaims(at)["exp"].(float64))

	// The person signs out: the session ends.
	if _, err := w.idp.store.EndSession(context.Background(), w.idp.verifyIDToken(idt, jagClientID).SessionID); err != nil {
		t.Fatal(err)
	}
	exchange := func(subject string) tokenResponse {
		return w.idp.token(url.Values{"grant_type": {tokenExchangeGrant}, "subject_token": {subject},
			"subject_token_type": {accessTokenType}}, jagClientID, jagClientSecret)
	}
	w.idp.clock.Advance(10 * time.Minute)
	tr := exchange(at)
	if tr.Status != http.StatusOK {
		t.Fatalf("first narrowing exchange: %d %s %s", tr.Status, tr.Error, tr.Description)
	}
	if exp := int64(w.idp.tokenClaims(tr.AccessToken)["exp"].(float64)); exp > originalExp {
		t.Errorf("exchanged token exp is %s after the subject token's: an exchange extended the lifetime",
			time.Duration(exp-originalExp)*time.Second)
	}
	// Two hours of hops, 14 minutes apart, after the logout.
	cur := tr.AccessToken
	for range 8 {
		w.idp.clock.Advance(14 * time.Minute)
		next := exchange(cur)
		if next.Status != http.StatusOK {
			return // the chain ended: what the test wants
		}
		cur = next.AccessToken
	}
	info := w.idp.introspect(cur, jagClientID, jagClientSecret)
	t.Errorf("after a logout and over 100 minutes after the original token expired, the exchanged chain still yields tokens (introspection active=%v)", info["active"])
}

// The jwt-bearer grant holds an ID-JAG's scopes to those the client may
// ask for (client.Scopes), as the code, exchange and client credentials
// grants do. It used to grant every scope the ID-JAG named when the
// target was one of the client's audiences: an identity provider signs
// whatever scope the client asks it for, so a client allowed "read"
// minted itself "write.all".
func TestIDJAG_RedeemedScopesAreOnlyThoseTheClientLists(t *testing.T) {
	w := boundedJAGWorld(t)
	jag := w.mustJAG(t, jagEmail, w.rs.issuer, "resource", "", "scope", "read write.all")
	tr := redeemJAG(w.rs, jagClientID, jag)
	if tr.Status == http.StatusOK {
		claims := w.rs.tokenClaims(tr.AccessToken)
		if scope, _ := claims["scope"].(string); slices.Contains(strings.Fields(scope), "write.all") {
			t.Errorf("access token for %v has scope %q: write.all is not a scope client %s may ask for (its scopes: read)",
				claims["aud"], scope, jagClientID)
		}
	} else if tr.Error != "invalid_scope" {
		t.Errorf("redeem: %d %s %s, want a token without write.all or invalid_scope", tr.Status, tr.Error, tr.Description)
	}
}

// An ID-JAG's jti is kept used for as long as the connector would still
// accept the assertion. It used to be kept until exp plus
// tokens.clockSkew while the connector accepts it until exp plus its own
// leeway (a minute by default): with a shorter tokens.clockSkew a sweep
// forgot the jti and the same ID-JAG was redeemed again.
func TestIDJAG_UsedJTIKeptAsLongAsTheAssertionVerifies(t *testing.T) {
	w := boundedJAGWorld(t, func(c *broker.Config, o *broker.Options) { c.Tokens.ClockSkew = 5 * time.Second })
	jag := w.mustJAG(t, jagEmail, w.rs.issuer, "resource", "", "scope", "read")
	if tr := redeemJAG(w.rs, jagClientID, jag); tr.Status != http.StatusOK {
		t.Fatalf("first redemption: %d %s %s", tr.Status, tr.Error, tr.Description)
	}
	// 5 minutes and 30 seconds later: past exp by 30 s, within the
	// connector's minute of leeway; the broker sweeps expired rows.
	w.rs.clock.Advance(5*time.Minute + 30*time.Second)
	w.rs.broker.Sweep(context.Background())
	wantRefused(t, "the same ID-JAG after a sweep", redeemJAG(w.rs, jagClientID, jag), http.StatusBadRequest, "invalid_grant")
}

// An ID-JAG redeemed at one replica is refused at another replica of the
// same Postgres: the jti is consumed in storage, atomically.
func TestIDJAG_ReplayAtAnotherPostgresReplicaRefused(t *testing.T) {
	idp := newEnv(t)
	r := newReplicas(t, rsTrustingIDP(idp))
	storeJAGClient(t, idp, jagClientID, r.a.issuer)
	w := &jagWorld{idp: idp, rs: r.a}
	jag := w.mustJAG(t, jagEmail, r.a.issuer, "resource", "", "scope", "read")
	if tr := redeemJAG(r.a, jagClientID, jag); tr.Status != http.StatusOK {
		t.Fatalf("redeem at the first replica: %d %s %s", tr.Status, tr.Error, tr.Description)
	}
	wantRefused(t, "the same ID-JAG at the second replica", redeemJAG(r.b, jagClientID, jag), http.StatusBadRequest, "invalid_grant")
}

// A client assertion (private_key_jwt) whose jti is longer than
// clients.MaxJTILength is refused as the client's error. It used to reach
// storage as the key of used_jtis, longer than a Postgres index entry
// may be: whoever holds a client key (a metadata-document client holds
// its own) turned a token request into a 503 and a "storage failed"
// error in the log.
func TestClientAssertion_OversizedJTIIsRefusedNotA503(t *testing.T) {
	db := pgtest.New(t)
	m := newMachineEnv(t, func(c *broker.Config, o *broker.Options) { o.Storage = db.Open(t) })
	assertion := m.inline.assertion(t, svcJWKSID, m.issuer, time.Minute, func(c *jwt.Claims) {
		c.ID = randomHex(t, 4000) // incompressible, 8000 characters
	})
	tr := m.token(url.Values{"grant_type": {tokenExchangeGrant}, "client_assertion_type": {assertionType},
		"client_assertion": {assertion}, "subject_token": {"x"}, "subject_token_type": {accessTokenType}}, "", "")
	if tr.Status >= 500 {
		t.Errorf("an oversized jti: %d %s %s, want a 4xx (invalid_client or invalid_request)", tr.Status, tr.Error, tr.Description)
	}
	if strings.Contains(m.logText(), "storage failed") {
		t.Error("an oversized jti was logged as a storage failure")
	}
}

// A connector that is gone signs nobody in, and what it signed in ends
// (docs/design.md, Tokens): the ID token of a login through it is traded
// for no ID-JAG. It used to be, for as long as the ID token lived (1 h),
// as only the session's row was checked.
func TestIDJAG_NoneForALoginThroughAGoneConnector(t *testing.T) {
	const audience = "https://chat.example.com"
	u := newUpstreams(t, nil, withAdmin, withPoll, func(c *broker.Config, o *broker.Options) {
		c.Clients = append(c.Clients, broker.ClientConfig{ID: jagClientID, Secret: jagClientSecret, RedirectURIs: []string{jagRedirect},
			GrantTypes: []string{broker.GrantAuthorizationCode, broker.GrantTokenExchange},
			IDJAG:      broker.IDJAGPolicy{Audiences: []string{audience}}})
	})
	running(t, u.env)
	tok := u.mustClientToken(adminBotID, adminBotSecret, adminAudience)
	wantStatus(t, "create", u.adminCall("POST", "/connectors", tok, auth0Connector(u, "acme-sso"), nil), http.StatusCreated)

	a := authRequest{clientID: jagClientID, redirectURI: jagRedirect, scope: "openid email", pkce: testenv.NewPKCE(), state: "st", nonce: "nn",
		extra: url.Values{"idp": {"acme-sso"}}}
	var code string
	waitUntil(t, "a login through the new connector", func() bool {
		u.auth0.SetNextUser(testenv.User{Sub: "auth0|ann", Email: "ann@acme.example", EmailVerified: true})
		p := u.browser().Get(u.authorizeURL(a))
		if p.Location != nil && strings.HasPrefix(p.Location.String(), jagRedirect) {
			code = p.Location.Query().Get("code")
		}
		return code != ""
	})
	tr := u.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {jagRedirect},
		"code_verifier": {a.pkce.Verifier}}, jagClientID, jagClientSecret)
	if tr.IDToken == "" {
		t.Fatalf("code: %d %s %s", tr.Status, tr.Error, tr.Description)
	}
	jag := func() tokenResponse {
		return u.token(url.Values{"grant_type": {tokenExchangeGrant}, "requested_token_type": {idJAGType}, "audience": {audience},
			"subject_token": {tr.IDToken}, "subject_token_type": {idTokenType}}, jagClientID, jagClientSecret)
	}
	if r := jag(); r.Status != http.StatusOK {
		t.Fatalf("ID-JAG before the delete: %d %s %s", r.Status, r.Error, r.Description)
	}
	wantStatus(t, "delete", u.adminCall("DELETE", "/connectors/acme-sso", tok, nil, nil), http.StatusNoContent)
	waitUntil(t, "the deleted connector gone", func() bool {
		page, _ := u.idpLogin("acme-sso")
		return page.Location != nil && page.Location.Query().Get("error") == "invalid_request"
	})
	wantRefused(t, "an ID-JAG for a login through a deleted connector", jag(), http.StatusBadRequest, "invalid_request")
}

package workos_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/upstream"
	"github.com/idbroker/broker/upstream/workos"
)

var carol = testenv.User{Sub: "user_01CAROL", Email: "Carol@Example.com", EmailVerified: true, Name: "Carol Danvers", OrgID: "org_01ACME"}

func newConnector(t *testing.T, f *testenv.WorkOS, change ...func(*workos.Config)) *workos.Connector {
	t.Helper()
	cfg := workos.Config{
		ID:                "workos",
		ClientID:          f.ClientID,
		APIKey:            f.APIKey,
		BaseURL:           f.URL,
		AccessTokenIssuer: f.AccessTokenIssuer,
		HTTPClient:        &http.Client{Timeout: 2 * time.Second},
	}
	for _, ch := range change {
		ch(&cfg)
	}
	c, err := workos.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newLoginState() upstream.LoginState {
	return upstream.LoginState{
		CallbackURL:  "https://broker.example/callback/workos",
		State:        oauth2.GenerateVerifier(),
		Nonce:        oauth2.GenerateVerifier(),
		CodeVerifier: oauth2.GenerateVerifier(),
	}
}

func login(t *testing.T, c *workos.Connector, s upstream.LoginState) (upstream.Identity, error) {
	t.Helper()
	loginURL, err := c.LoginURL(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	return c.HandleCallback(t.Context(), s, testenv.Authorize(t, loginURL))
}

func TestLogin_SubjectIsTheWorkOSUserID(t *testing.T) {
	f := testenv.NewWorkOS(t)
	c := newConnector(t, f)
	f.SetNextUser(carol)

	id, err := login(t, c, newLoginState())
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != carol.Sub || id.Email != "carol@example.com" || !id.EmailVerified ||
		id.Name != "Carol Danvers" || id.Organization != carol.OrgID || id.RefreshToken == "" {
		t.Errorf("identity = %+v", id)
	}
}

func TestLogin_AccessTokenIssuerMismatchIsRefused(t *testing.T) {
	f := testenv.NewWorkOS(t)
	c := newConnector(t, f, func(c *workos.Config) { c.AccessTokenIssuer = "https://auth.example.com" })
	f.SetNextUser(carol)

	if _, err := login(t, c, newLoginState()); !errors.Is(err, upstream.ErrInvalidToken) {
		t.Fatalf("err = %v, want ErrInvalidToken", err)
	}
}

func TestLogin_StateMismatchIsRefused(t *testing.T) {
	f := testenv.NewWorkOS(t)
	c := newConnector(t, f)
	f.SetNextUser(carol)
	s := newLoginState()
	loginURL, err := c.LoginURL(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	callback := testenv.Authorize(t, loginURL)
	s.State = "another-login"

	if _, err := c.HandleCallback(t.Context(), s, callback); !errors.Is(err, upstream.ErrInvalidToken) {
		t.Fatalf("err = %v, want ErrInvalidToken", err)
	}
}

func TestLogin_OtherOrganizationIsRefused(t *testing.T) {
	f := testenv.NewWorkOS(t)
	c := newConnector(t, f, func(c *workos.Config) { c.Organization = "org_01OTHER" })
	f.SetNextUser(carol)

	if _, err := login(t, c, newLoginState()); !errors.Is(err, upstream.ErrInvalidToken) {
		t.Fatalf("err = %v, want ErrInvalidToken", err)
	}
}

func TestLogin_UpstreamErrorIsDenied(t *testing.T) {
	f := testenv.NewWorkOS(t)
	c := newConnector(t, f)
	f.DenyNextLogin()

	if _, err := login(t, c, newLoginState()); !errors.Is(err, upstream.ErrDenied) {
		t.Fatalf("err = %v, want ErrDenied", err)
	}
}

func TestLogin_SlowWorkOSIsUnavailableWithinTheTimeout(t *testing.T) {
	f := testenv.NewWorkOS(t)
	c := newConnector(t, f, func(c *workos.Config) { c.HTTPClient = &http.Client{Timeout: 200 * time.Millisecond} })
	f.SetNextUser(carol)
	s := newLoginState()
	loginURL, err := c.LoginURL(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	callback := testenv.Authorize(t, loginURL)

	f.Hang()
	start := time.Now()
	if _, err := c.HandleCallback(t.Context(), s, callback); !errors.Is(err, upstream.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s", d)
	}
}

func TestRefresh_TokensAreSingleUseAndRotated(t *testing.T) {
	f := testenv.NewWorkOS(t)
	c := newConnector(t, f)
	f.SetNextUser(carol)
	id, err := login(t, c, newLoginState())
	if err != nil {
		t.Fatal(err)
	}

	again, err := c.Refresh(t.Context(), id.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if again.Subject != carol.Sub || again.RefreshToken == "" || again.RefreshToken == id.RefreshToken {
		t.Errorf("refreshed identity = %+v", again)
	}
	if _, err := c.Refresh(t.Context(), id.RefreshToken); !errors.Is(err, upstream.ErrDenied) {
		t.Errorf("reused refresh token: err = %v, want ErrDenied", err)
	}
	f.Block(carol.Sub)
	if _, err := c.Refresh(t.Context(), again.RefreshToken); !errors.Is(err, upstream.ErrDenied) {
		t.Errorf("blocked user: err = %v, want ErrDenied", err)
	}
}

func TestVerifyToken_EachBadTokenDiffersFromAPassingControl(t *testing.T) {
	f := testenv.NewWorkOS(t)
	c := newConnector(t, f)

	id, err := c.VerifyToken(t.Context(), f.AccessToken(carol), upstream.TokenTypeAccessToken)
	if err != nil {
		t.Fatalf("control token refused: %v", err)
	}
	if id.Subject != carol.Sub || id.Organization != carol.OrgID {
		t.Errorf("identity = %+v", id)
	}
	tests := []struct {
		name string
		opt  testenv.TokenOption
	}{
		{"signed by another key", testenv.SignedByOtherKey()},
		{"alg none", testenv.AlgNone()},
		{"HS256 keyed with the public key", testenv.HS256WithPublicKey()},
		{"ES256 though RS256 is pinned", testenv.SignedWithEC()},
		{"wrong issuer", testenv.WithClaim("iss", "https://api.workos.com")},
		{"expired", testenv.Expired()},
		{"unknown kid", testenv.UnknownKID()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.VerifyToken(t.Context(), f.AccessToken(carol, tt.opt), upstream.TokenTypeAccessToken)
			if !errors.Is(err, upstream.ErrInvalidToken) {
				t.Fatalf("err = %v, want ErrInvalidToken", err)
			}
		})
	}
}

func TestVerifyToken_JWKSDownIsUnavailable(t *testing.T) {
	f := testenv.NewWorkOS(t)
	c := newConnector(t, f)
	f.FailWith(http.StatusInternalServerError)

	if _, err := c.VerifyToken(t.Context(), f.AccessToken(carol), upstream.TokenTypeAccessToken); !errors.Is(err, upstream.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

// A dashboard member impersonating the user is refused unless the
// connector allows it; then the identity names them, at login and on
// every refresh.
func TestLogin_ImpersonationRefusedUnlessAllowed(t *testing.T) {
	f := testenv.NewWorkOS(t)
	impersonated := carol
	impersonated.Impersonator, impersonated.ImpersonationReason = "Support@Vendor.example", "ticket 4711"

	f.SetNextUser(impersonated)
	if _, err := login(t, newConnector(t, f), newLoginState()); !errors.Is(err, upstream.ErrDenied) {
		t.Fatalf("impersonation without AllowImpersonation: err = %v, want ErrDenied", err)
	}

	c := newConnector(t, f, func(c *workos.Config) { c.AllowImpersonation = true })
	f.SetNextUser(impersonated)
	id, err := login(t, c, newLoginState())
	if err != nil {
		t.Fatal(err)
	}
	want := upstream.Impersonation{Actor: "workos-impersonator:support@vendor.example", Email: "support@vendor.example", Reason: "ticket 4711"}
	if id.Subject != carol.Sub || id.Impersonation == nil || *id.Impersonation != want {
		t.Fatalf("identity %+v, impersonation %+v; want %+v", id, id.Impersonation, want)
	}
	again, err := c.Refresh(t.Context(), id.RefreshToken)
	if err != nil || again.Impersonation == nil || *again.Impersonation != want {
		t.Errorf("refresh: %+v, %v", again.Impersonation, err)
	}

	f.SetNextUser(carol)
	if id, err := login(t, c, newLoginState()); err != nil || id.Impersonation != nil {
		t.Errorf("the user's own login: impersonation %+v, err %v", id.Impersonation, err)
	}
}

// A WorkOS address that upstream.NormalizeEmail refuses is no address, and
// so never verified.
func TestLogin_EmailThatDoesNotNormaliseIsDropped(t *testing.T) {
	f := testenv.NewWorkOS(t)
	c := newConnector(t, f)
	u := carol
	u.Email = "Carol <carol@example.com>"
	f.SetNextUser(u)

	id, err := login(t, c, newLoginState())
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != carol.Sub || id.Email != "" || id.EmailVerified {
		t.Errorf("identity = %+v, want carol without an email", id)
	}
}

// An impersonator whose address does not normalise is no one the broker
// can name: the login is refused, as for an impersonator without one.
func TestLogin_ImpersonatorEmailThatDoesNotNormaliseIsRefused(t *testing.T) {
	f := testenv.NewWorkOS(t)
	c := newConnector(t, f, func(c *workos.Config) { c.AllowImpersonation = true })
	impersonated := carol
	impersonated.Impersonator, impersonated.ImpersonationReason = "support@vendor", "ticket 4711"
	f.SetNextUser(impersonated)

	if _, err := login(t, c, newLoginState()); !errors.Is(err, upstream.ErrInvalidToken) {
		t.Fatalf("err = %v, want ErrInvalidToken", err)
	}
}

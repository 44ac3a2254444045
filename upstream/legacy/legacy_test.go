package legacy_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/upstream"
	"github.com/idbroker/broker/upstream/legacy"
)

// jordan is an OTP user of the legacy platform; his id is the platform
// UUID, written upper-case as some services do.
var jordan = testenv.LegacyUser{
	UserID: "D75F5EE0-D9BE-11EF-9DAB-52D74335E147",
	Email:  "  Jordan@EY.com ",
	Name:   " Jordan Austin ",
}

const jordanUUID = "d75f5ee0-d9be-11ef-9dab-52d74335e147"

func newConnector(t *testing.T, f *testenv.Legacy, change ...func(*legacy.Config)) *legacy.Connector {
	t.Helper()
	cfg := legacy.Config{
		ID:          "platform",
		ValidateURL: f.ValidateURL,
		Timeout:     2 * time.Second,
	}
	for _, ch := range change {
		ch(&cfg)
	}
	c, err := legacy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func verify(t *testing.T, c *legacy.Connector, tok string) (upstream.Identity, error) {
	t.Helper()
	id, err := c.VerifyToken(t.Context(), tok, upstream.TokenTypeAccessToken)
	if err != nil && tok != "" && strings.Contains(err.Error(), tok) {
		t.Errorf("error %q contains the token", err)
	}
	return id, err
}

func TestVerifyToken_IdentityIsTheLegacyUUID(t *testing.T) {
	f := testenv.NewLegacy(t)
	c := newConnector(t, f)
	tok := f.Issue(jordan)

	id, err := verify(t, c, tok)
	if err != nil {
		t.Fatal(err)
	}
	if id.ConnectorID != "platform" || id.Subject != jordanUUID || id.UserID != jordanUUID ||
		id.Email != "jordan@ey.com" || id.EmailVerified || id.Name != "Jordan Austin" {
		t.Errorf("identity = %+v", id)
	}
	if id.Claims["typeName"] != "user" {
		t.Errorf("claims = %v, want typeName user", id.Claims)
	}
	if c.Issuers() != nil {
		t.Errorf("Issuers() = %v, want none: legacy tokens name no issuer", c.Issuers())
	}
	if _, via := f.LastRequest(); via != "header" {
		t.Errorf("token found in %q, want the X-User-Token header", via)
	}
}

func TestVerifyToken_RefusalsAndOutages(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*testenv.Legacy)
		user  testenv.LegacyUser
		want  error
	}{
		{"401", func(f *testenv.Legacy) { f.FailWith(http.StatusUnauthorized) }, jordan, upstream.ErrInvalidToken},
		{"403", func(f *testenv.Legacy) { f.FailWith(http.StatusForbidden) }, jordan, upstream.ErrInvalidToken},
		{"500", func(f *testenv.Legacy) { f.FailWith(http.StatusInternalServerError) }, jordan, upstream.ErrUnavailable},
		{"503", func(f *testenv.Legacy) { f.FailWith(http.StatusServiceUnavailable) }, jordan, upstream.ErrUnavailable},
		{"429", func(f *testenv.Legacy) { f.FailWith(http.StatusTooManyRequests) }, jordan, upstream.ErrUnavailable},
		{"404 is a misconfiguration, not a refusal", func(f *testenv.Legacy) { f.FailWith(http.StatusNotFound) }, jordan, upstream.ErrUnavailable},
		{"garbage JSON", (*testenv.Legacy).Garbage, jordan, upstream.ErrInvalidToken},
		{"userId not a UUID", (*testenv.Legacy).BadUserID, jordan, upstream.ErrInvalidToken},
		{"userId missing", nil, testenv.LegacyUser{Email: "a@example.com", Extra: map[string]any{"userId": nil}}, upstream.ErrInvalidToken},
		{"userId a number", nil, testenv.LegacyUser{Extra: map[string]any{"userId": 12345}}, upstream.ErrInvalidToken},
		{"userId the nil UUID", nil, testenv.LegacyUser{UserID: "00000000-0000-0000-0000-000000000000"}, upstream.ErrInvalidToken},
		{"userId in braces", nil, testenv.LegacyUser{UserID: "{" + jordanUUID + "}"}, upstream.ErrInvalidToken},
		{"email not a string", nil, testenv.LegacyUser{UserID: jordanUUID, Extra: map[string]any{"email": []string{"a@example.com"}}}, upstream.ErrInvalidToken},
		{"answer too large", nil, testenv.LegacyUser{UserID: jordanUUID, Name: strings.Repeat("x", legacy.MaxAnswerSize)}, upstream.ErrInvalidToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := testenv.NewLegacy(t)
			c := newConnector(t, f)
			tok := f.Issue(tc.user)
			if tc.setup != nil {
				tc.setup(f)
			}
			if _, err := verify(t, c, tok); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestVerifyToken_UnknownTokenIsInvalid(t *testing.T) {
	f := testenv.NewLegacy(t)
	c := newConnector(t, f)
	f.Issue(jordan)

	if _, err := verify(t, c, "sess_never-issued"); !errors.Is(err, upstream.ErrInvalidToken) {
		t.Fatalf("err = %v, want ErrInvalidToken", err)
	}
}

func TestVerifyToken_HangIsUnavailableWithinTheTimeout(t *testing.T) {
	f := testenv.NewLegacy(t)
	c := newConnector(t, f, func(c *legacy.Config) { c.Timeout = 200 * time.Millisecond })
	tok := f.Issue(jordan)
	f.Hang()

	start := time.Now()
	_, err := verify(t, c, tok)
	if !errors.Is(err, upstream.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("gave up after %s, want about the 200ms timeout", elapsed)
	}
}

func TestVerifyToken_CallerGivingUpIsUnavailable(t *testing.T) {
	f := testenv.NewLegacy(t)
	c := newConnector(t, f)
	tok := f.Issue(jordan)
	f.Hang()

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := c.VerifyToken(ctx, tok, upstream.TokenTypeAccessToken)
	if !errors.Is(err, upstream.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrUnavailable and the deadline", err)
	}
}

func TestVerifyToken_UnreachableIsUnavailable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + testenv.LegacyValidatePath
	srv.Close()
	c, err := legacy.New(legacy.Config{ID: "platform", ValidateURL: url})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify(t, c, "sess_abc"); !errors.Is(err, upstream.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

func TestVerifyToken_RedirectIsNotFollowed(t *testing.T) {
	f := testenv.NewLegacy(t)
	tok := f.Issue(jordan)
	// A redirect would carry the token's header to wherever it points.
	redirector := httptest.NewServer(http.RedirectHandler(f.ValidateURL, http.StatusTemporaryRedirect))
	defer redirector.Close()
	c := newConnector(t, f, func(c *legacy.Config) { c.ValidateURL = redirector.URL })

	if _, err := verify(t, c, tok); !errors.Is(err, upstream.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if n := f.Calls(); n != 0 {
		t.Errorf("the fake was called %d times through the redirect", n)
	}
}

func TestVerifyToken_OnlyAccessTokenTypeIsAccepted(t *testing.T) {
	f := testenv.NewLegacy(t)
	c := newConnector(t, f)
	tok := f.Issue(jordan)

	for _, typ := range []string{upstream.TokenTypeIDToken, upstream.TokenTypeJWT, "urn:ietf:params:oauth:token-type:refresh_token", ""} {
		if _, err := c.VerifyToken(t.Context(), tok, typ); !errors.Is(err, upstream.ErrInvalidToken) {
			t.Errorf("type %q: err = %v, want ErrInvalidToken", typ, err)
		}
	}
	if n := f.Calls(); n != 0 {
		t.Errorf("%d calls to the legacy service for refused types", n)
	}
}

func TestVerifyToken_MalformedTokenIsRefusedWithoutACall(t *testing.T) {
	f := testenv.NewLegacy(t)
	c := newConnector(t, f)

	for _, tok := range []string{"", "sess abc", "sess_abc\r\nX-Injected: 1", "sess_é", strings.Repeat("a", 8<<10+1)} {
		if _, err := verify(t, c, tok); !errors.Is(err, upstream.ErrInvalidToken) {
			t.Errorf("token %q: err = %v, want ErrInvalidToken", tok, err)
		}
	}
	if n := f.Calls(); n != 0 {
		t.Errorf("%d calls to the legacy service for malformed tokens", n)
	}
}

func TestVerifyToken_TokenPlacement(t *testing.T) {
	for _, tc := range []struct {
		tokenIn, method, via string
	}{
		{"", "", "header"},
		{"header:x-user-token", "", "header"},
		{"header:X-User-Token", "GET", "header"},
		{"bearer", "", "bearer"},
		{"bearer", "GET", "bearer"},
		{"body:token", "", "body"},
		{"form:token", "post", "form"},
	} {
		t.Run(tc.tokenIn+" "+tc.method, func(t *testing.T) {
			f := testenv.NewLegacy(t)
			c := newConnector(t, f, func(c *legacy.Config) { c.TokenIn, c.Method = tc.tokenIn, tc.method })
			tok := f.Issue(jordan)

			id, err := verify(t, c, tok)
			if err != nil {
				t.Fatal(err)
			}
			if id.UserID != jordanUUID {
				t.Errorf("UserID = %q", id.UserID)
			}
			req, via := f.LastRequest()
			if via != tc.via {
				t.Errorf("token found in %q, want %q", via, tc.via)
			}
			if want := strings.ToUpper(tc.method); want != "" && req.Method != want {
				t.Errorf("method %s, want %s", req.Method, want)
			}
			if strings.Contains(req.URL.String(), tok) {
				t.Errorf("token in the URL %q", req.URL)
			}
		})
	}
}

func TestVerifyToken_CustomHeaderCarriesTheTokenAlone(t *testing.T) {
	f := testenv.NewLegacy(t)
	c := newConnector(t, f, func(c *legacy.Config) { c.TokenIn = "header:X-Session" })
	tok := f.Issue(jordan)

	// The fake looks only in its own places, so it refuses; what matters
	// is where the token went.
	if _, err := verify(t, c, tok); !errors.Is(err, upstream.ErrInvalidToken) {
		t.Fatalf("err = %v, want ErrInvalidToken", err)
	}
	req, _ := f.LastRequest()
	if got := req.Header.Get("X-Session"); got != tok {
		t.Errorf("X-Session = %q, want the token", got)
	}
	if req.Header.Get("X-User-Token") != "" || req.Header.Get("Authorization") != "" {
		t.Errorf("token also sent elsewhere: %v", req.Header)
	}
}

func TestVerifyToken_BasicAuthToTheLegacyService(t *testing.T) {
	f := testenv.NewLegacy(t)
	f.RequireBasicAuth("broker", "s3cret")
	tok := f.Issue(jordan)

	good := newConnector(t, f, func(c *legacy.Config) { c.ClientID, c.ClientSecret = "broker", "s3cret" })
	if _, err := verify(t, good, tok); err != nil {
		t.Fatalf("with credentials: %v", err)
	}
	wrong := newConnector(t, f, func(c *legacy.Config) { c.ClientID, c.ClientSecret = "broker", "guess" })
	if _, err := verify(t, wrong, tok); !errors.Is(err, upstream.ErrInvalidToken) {
		t.Errorf("wrong secret: err = %v, want ErrInvalidToken", err)
	}
	none := newConnector(t, f)
	if _, err := verify(t, none, tok); !errors.Is(err, upstream.ErrInvalidToken) {
		t.Errorf("no credentials: err = %v, want ErrInvalidToken", err)
	}
}

func TestVerifyToken_ConfiguredFields(t *testing.T) {
	f := testenv.NewLegacy(t)
	c := newConnector(t, f, func(c *legacy.Config) {
		c.Fields = legacy.Fields{UserID: "user.id", Email: "user.mail", Name: "user.displayName", EmailVerified: "user.emailVerified"}
	})
	nested := func(verified any) testenv.LegacyUser {
		return testenv.LegacyUser{Extra: map[string]any{"user": map[string]any{
			"id": jordanUUID, "mail": "Jordan@EY.com", "displayName": "Jordan Austin", "emailVerified": verified,
		}}}
	}

	id, err := verify(t, c, f.Issue(nested(true)))
	if err != nil {
		t.Fatal(err)
	}
	if id.UserID != jordanUUID || id.Email != "jordan@ey.com" || !id.EmailVerified || id.Name != "Jordan Austin" {
		t.Errorf("identity = %+v", id)
	}
	if id, err := verify(t, c, f.Issue(nested(nil))); err != nil || id.EmailVerified {
		t.Errorf("emailVerified null: identity %+v, err %v; want unverified", id, err)
	}
	if _, err := verify(t, c, f.Issue(nested("true"))); !errors.Is(err, upstream.ErrInvalidToken) {
		t.Errorf("emailVerified \"true\": err = %v, want ErrInvalidToken", err)
	}
}

func TestVerifyToken_EmailIsNeverVerifiedUnlessAFieldSaysSo(t *testing.T) {
	f := testenv.NewLegacy(t)
	c := newConnector(t, f)
	tok := f.Issue(testenv.LegacyUser{UserID: jordanUUID, Email: "jordan@ey.com", Extra: map[string]any{"emailVerified": true}})

	id, err := verify(t, c, tok)
	if err != nil {
		t.Fatal(err)
	}
	if id.EmailVerified {
		t.Error("email verified with no EmailVerified field configured")
	}
	c = newConnector(t, f, func(c *legacy.Config) { c.Fields.EmailVerified = "emailVerified" })
	noEmail := f.Issue(testenv.LegacyUser{UserID: jordanUUID, Extra: map[string]any{"emailVerified": true}})
	if id, err := verify(t, c, noEmail); err != nil || id.EmailVerified {
		t.Errorf("no email: identity %+v, err %v; want unverified", id, err)
	}
}

func TestCache_SecondVerificationWithinTTLMakesNoCall(t *testing.T) {
	f := testenv.NewLegacy(t)
	clk := testenv.NewClock()
	c := newConnector(t, f, func(c *legacy.Config) { c.CacheTTL, c.Clock = time.Minute, clk.Now })
	tok := f.Issue(jordan)

	for range 3 {
		if id, err := verify(t, c, tok); err != nil || id.UserID != jordanUUID {
			t.Fatalf("identity %+v, err %v", id, err)
		}
	}
	if n := f.Calls(); n != 1 {
		t.Fatalf("%d calls within the TTL, want 1", n)
	}
	clk.Advance(59 * time.Second)
	verify(t, c, tok)
	if n := f.Calls(); n != 1 {
		t.Fatalf("%d calls just before the TTL, want 1", n)
	}
	clk.Advance(time.Second)
	if _, err := verify(t, c, tok); err != nil {
		t.Fatal(err)
	}
	if n := f.Calls(); n != 2 {
		t.Fatalf("%d calls after the TTL, want 2", n)
	}
}

func TestCache_DefaultTTLAndDisabled(t *testing.T) {
	f := testenv.NewLegacy(t)
	clk := testenv.NewClock()
	c := newConnector(t, f, func(c *legacy.Config) { c.Clock = clk.Now })
	tok := f.Issue(jordan)
	verify(t, c, tok)
	clk.Advance(legacy.DefaultCacheTTL - time.Second)
	verify(t, c, tok)
	if n := f.Calls(); n != 1 {
		t.Fatalf("%d calls within the default TTL, want 1", n)
	}

	off := newConnector(t, f, func(c *legacy.Config) { c.CacheTTL = -1 })
	verify(t, off, tok)
	verify(t, off, tok)
	if n := f.Calls(); n != 3 {
		t.Fatalf("%d calls with the cache off, want 3", n)
	}
}

func TestCache_RefusalIsNotServedAsSuccess(t *testing.T) {
	f := testenv.NewLegacy(t)
	c := newConnector(t, f)
	tok := f.Issue(jordan)

	f.FailWith(http.StatusUnauthorized)
	if _, err := verify(t, c, tok); !errors.Is(err, upstream.ErrInvalidToken) {
		t.Fatalf("err = %v, want ErrInvalidToken", err)
	}
	if _, err := verify(t, c, tok); !errors.Is(err, upstream.ErrInvalidToken) {
		t.Fatalf("second ask: err = %v, want ErrInvalidToken", err)
	}
	if n := f.Calls(); n != 2 {
		t.Fatalf("%d calls, want 2: refusals are asked again", n)
	}
	// Nor is an outage remembered: once the service answers, it counts.
	f.FailWith(http.StatusInternalServerError)
	if _, err := verify(t, c, tok); !errors.Is(err, upstream.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	f.Recover()
	if id, err := verify(t, c, tok); err != nil || id.UserID != jordanUUID {
		t.Fatalf("after recovery: identity %+v, err %v", id, err)
	}
}

func TestCache_OtherTokensOfTheSameUserAreAskedAbout(t *testing.T) {
	f := testenv.NewLegacy(t)
	c := newConnector(t, f)
	good := f.Issue(jordan)
	ended := f.Issue(jordan)
	f.Revoke(ended)

	if _, err := verify(t, c, good); err != nil {
		t.Fatal(err)
	}
	if _, err := verify(t, c, ended); !errors.Is(err, upstream.ErrInvalidToken) {
		t.Fatalf("ended session: err = %v, want ErrInvalidToken", err)
	}
}

func TestCache_CallersCannotChangeWhatIsCached(t *testing.T) {
	f := testenv.NewLegacy(t)
	c := newConnector(t, f)
	tok := f.Issue(jordan)

	id, _ := verify(t, c, tok)
	id.Claims["typeName"] = "admin"
	again, err := verify(t, c, tok)
	if err != nil {
		t.Fatal(err)
	}
	if again.Claims["typeName"] != "user" {
		t.Errorf("cached claims changed by a caller: %v", again.Claims)
	}
}

// gatedTransport holds every request until open is closed, so that
// concurrent verifications overlap for certain.
type gatedTransport struct{ open chan struct{} }

func (g gatedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	select {
	case <-g.open:
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestCache_ConcurrentVerificationsOfANewTokenMakeOneCall(t *testing.T) {
	const n = 20
	f := testenv.NewLegacy(t)
	gate := gatedTransport{open: make(chan struct{})}
	// The cache reads the clock once per ask, under the lock in which
	// the ask joins the in-flight call (or starts it), and the call
	// cannot end before the gate opens: once the clock has been read n
	// times, all n asks wait on the one call.
	var reads atomic.Int32
	asked := make(chan struct{})
	clock := func() time.Time {
		if reads.Add(1) == n {
			close(asked)
		}
		return time.Now()
	}
	c := newConnector(t, f, func(c *legacy.Config) { c.HTTPClient, c.Clock = &http.Client{Transport: gate}, clock })
	tok := f.Issue(jordan)

	var done sync.WaitGroup
	errs := make([]error, n)
	ids := make([]upstream.Identity, n)
	for i := range n {
		done.Go(func() {
			ids[i], errs[i] = c.VerifyToken(context.Background(), tok, upstream.TokenTypeAccessToken)
		})
	}
	<-asked // all of them wait on the in-flight call
	close(gate.open)
	done.Wait()

	for i := range n {
		if errs[i] != nil || ids[i].UserID != jordanUUID {
			t.Fatalf("goroutine %d: identity %+v, err %v", i, ids[i], errs[i])
		}
	}
	if calls := f.Calls(); calls != 1 {
		t.Fatalf("%d calls for %d concurrent verifications, want 1", calls, n)
	}
}

func TestNew_RefusesBadConfiguration(t *testing.T) {
	good := legacy.Config{ID: "platform", ValidateURL: "https://platform-api/public/auth/validate"}
	if _, err := legacy.New(good); err != nil {
		t.Fatalf("control: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(*legacy.Config)
	}{
		{"no id", func(c *legacy.Config) { c.ID = "" }},
		{"no URL", func(c *legacy.Config) { c.ValidateURL = "" }},
		{"relative URL", func(c *legacy.Config) { c.ValidateURL = "/public/auth/validate" }},
		{"ftp URL", func(c *legacy.Config) { c.ValidateURL = "ftp://platform-api/validate" }},
		{"method PUT", func(c *legacy.Config) { c.Method = "PUT" }},
		{"token in the query", func(c *legacy.Config) { c.TokenIn = "query:token" }},
		{"header with no name", func(c *legacy.Config) { c.TokenIn = "header:" }},
		{"header name with a space", func(c *legacy.Config) { c.TokenIn = "header:X User" }},
		{"body with no field", func(c *legacy.Config) { c.TokenIn = "body:" }},
		{"body with GET", func(c *legacy.Config) { c.TokenIn, c.Method = "body:token", "GET" }},
		{"form with GET", func(c *legacy.Config) { c.TokenIn, c.Method = "form:token", "GET" }},
		{"bearer and client credentials", func(c *legacy.Config) { c.TokenIn, c.ClientID = "bearer", "broker" }},
		{"Authorization header and client credentials", func(c *legacy.Config) { c.TokenIn, c.ClientID = "header:authorization", "broker" }},
		{"secret without id", func(c *legacy.Config) { c.ClientSecret = "s3cret" }},
		{"negative timeout", func(c *legacy.Config) { c.Timeout = -time.Second }},
		{"negative cache size", func(c *legacy.Config) { c.CacheSize = -1 }},
		{"empty path segment", func(c *legacy.Config) { c.Fields.UserID = "user..id" }},
		{"trailing dot", func(c *legacy.Config) { c.Fields.EmailVerified = "user." }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.change(&cfg)
			_, err := legacy.New(cfg)
			if err == nil {
				t.Fatal("New accepted it")
			}
			if !strings.HasPrefix(err.Error(), "legacy: ") {
				t.Errorf("error %q does not start with legacy: ", err)
			}
		})
	}
}

func TestNew_PasswordInURLIsNotQuoted(t *testing.T) {
	_, err := legacy.New(legacy.Config{ID: "platform", ValidateURL: "ftp://user:hunter2@platform-api/validate"})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err = %v", err)
	}
}

// A legacy address that upstream.NormalizeEmail refuses is no address, and
// so never verified.
func TestVerifyToken_EmailThatDoesNotNormaliseIsDropped(t *testing.T) {
	f := testenv.NewLegacy(t)
	c := newConnector(t, f)
	u := jordan
	u.Email = "Jordan Austin <jordan@ey.com>"

	id, err := verify(t, c, f.Issue(u))
	if err != nil {
		t.Fatal(err)
	}
	if id.UserID != jordanUUID || id.Email != "" || id.EmailVerified {
		t.Errorf("identity = %+v, want jordan without an email", id)
	}
}

package broker_test

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/internal/testenv"
)

// FuzzTokenEndpoint posts arbitrary form bodies, for every grant, to the
// token endpoint. Nothing may crash it or make it answer 5xx, and nothing
// but the control input (a real, unused refresh token) gets a token.
func FuzzTokenEndpoint(f *testing.F) {
	h := newEnv(f).srv.Config.Handler
	for _, seed := range []string{
		"grant_type=authorization_code&code=abc&redirect_uri=http%3A%2F%2F127.0.0.1%3A5555%2Fcb&client_id=dev&code_verifier=x",
		"grant_type=refresh_token&refresh_token=abc&client_id=dev",
		"grant_type=refresh_token&refresh_token=abc&scope=openid+admin&client_id=dev",
		"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=e30.e30.e30&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt&client_id=backend&client_secret=x",
		"grant_type=client_credentials&client_id=backend&client_secret=x",
		"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=e30.e30.",
		"grant_type=password&username=a&password=b",
		"client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=a.b.c&grant_type=refresh_token&refresh_token=x",
		"grant_type=refresh_token&refresh_token=%00%ff&client_id=%ff",
		"%zz=1&grant_type",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("form %q: status %d: %s", body, rec.Code, rec.Body)
		}
		if strings.Contains(rec.Body.String(), `"access_token"`) {
			t.Fatalf("form %q got a token", body)
		}
	})
}

// FuzzOTPCode enters arbitrary codes on the code page: only the mailed
// code signs the person in.
func FuzzOTPCode(f *testing.F) {
	for _, seed := range []string{"000000", "123456", " 123456 ", "12345", "1234567", "", "abcdef", "١٢٣٤٥٦", "0x1E240", "%00"} {
		f.Add(seed)
	}
	// Each iteration sends a code; the abuse limits are not what is fuzzed.
	shared := newEnv(f, func(c *broker.Config, o *broker.Options) {
		c.Limits.OTPPerEmail = broker.Limit{Count: 1 << 30, Window: time.Minute}
		c.Limits.OTPPerIP = broker.Limit{Count: 1 << 30, Window: time.Minute}
	})
	f.Fuzz(func(t *testing.T, guess string) {
		e := *shared // the same broker, reporting to this iteration's t
		e.t = t
		b := e.browser()
		page := e.startLogin(b, "fuzz@example.com")
		real := e.mailer.LastCode("fuzz@example.com")
		p := b.Submit(page, "/login/code", url.Values{"code": {guess}})
		if p.Status >= 500 {
			t.Fatalf("code %q: status %d", guess, p.Status)
		}
		if p.Location != nil && strings.TrimSpace(guess) != real {
			t.Fatalf("code %q signed in (the mailed code was %s)", guess, real)
		}
	})
}

// FuzzParseConfig feeds arbitrary YAML to the configuration loader: it
// must never panic, and what it accepts must be valid.
func FuzzParseConfig(f *testing.F) {
	for _, seed := range []string{
		"",
		"issuer: https://auth.example.com\n",
		"issuer: http://x\nstorage: {type: postgres, dsn: \"${DSN}\"}\n",
		"clients:\n  - {id: web, public: true, redirectURIs: [https://a/cb]}\n",
		"connectors:\n  - {id: a, type: auth0, issuer: https://t/}\n  - {id: a, type: otp}\n",
		"limits: {otpPerEmail: {count: 0, window: 1m}}\n",
		"keys: {idTokenAlgorithm: HS256}\n",
		"tokens: {accessTokenTTL: -5m}\n",
		"issuer: [1, 2]\n",
		"&a [*a]",
		"issuer: ${",
	} {
		f.Add(seed)
	}
	env := func(name string) (string, bool) {
		if name == "DSN" {
			return "postgres://x", true
		}
		return "", false
	}
	f.Fuzz(func(t *testing.T, data string) {
		cfg, err := broker.ParseConfig([]byte(data), env)
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("ParseConfig accepted a configuration Validate refuses: %v", err)
		}
	})
}

// FuzzBrowserCookie sends arbitrary Cookie headers to /authorize and to a
// step of a sign-in another browser started. /authorize always answers
// with a redirect and leaves the browser with a well-formed binding
// (its own, or a fresh one it sets); the step succeeds only for the
// browser id that started the sign-in, and is refused (403) otherwise.
// Nothing answers 5xx.
func FuzzBrowserCookie(f *testing.F) {
	e := newEnv(f)
	h := e.srv.Config.Handler
	start := e.stepBrowser().Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE()}))
	set, err := http.ParseSetCookie(start.Header.Get("Set-Cookie"))
	if err != nil || start.Location == nil {
		f.Fatalf("authorize: %d, Set-Cookie %q: %v", start.Status, start.Header.Get("Set-Cookie"), err)
	}
	owner, step := set.Value, start.Location.RequestURI()
	for _, seed := range []string{
		"",
		"broker_browser=" + owner,
		`broker_browser="` + owner + `"`,
		"a=b; broker_browser=" + owner + "; c=d",
		"broker_browser=" + owner[:42],
		"broker_browser=" + owner + "A",
		"broker_browser=" + strings.Repeat("A", 43),
		"broker_browser=" + strings.Repeat("_", 42) + "-",
		"broker_browser=; broker_browser=" + owner,
		"broker_browser=" + owner + "; broker_browser=" + strings.Repeat("B", 43),
		"broker_browser=%00%ff",
		"broker_browser",
		";;;=;",
		"broker_session=x",
	} {
		f.Add(seed)
	}
	authorize := e.authorizeURL(authRequest{pkce: testenv.NewPKCE()})
	f.Fuzz(func(t *testing.T, header string) {
		req := httptest.NewRequest(http.MethodGet, authorize, nil)
		req.Header.Set("Cookie", header)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusFound {
			t.Fatalf("authorize with Cookie %q: status %d", header, rec.Code)
		}
		sent, _ := req.Cookie("broker_browser")
		kept := ""
		if sent != nil {
			kept = sent.Value
		}
		if c := rec.Header().Get("Set-Cookie"); c != "" {
			fresh, err := http.ParseSetCookie(c)
			if err != nil || fresh.Name != "broker_browser" {
				t.Fatalf("authorize with Cookie %q set %q", header, c)
			}
			kept = fresh.Value
		}
		if raw, err := base64.RawURLEncoding.Strict().DecodeString(kept); err != nil || len(raw) != 32 {
			t.Fatalf("authorize with Cookie %q left the browser with binding %q", header, kept)
		}

		req = httptest.NewRequest(http.MethodGet, step, nil)
		req.Header.Set("Cookie", header)
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		want := http.StatusForbidden
		if sent != nil && sent.Value == owner {
			want = http.StatusOK
		}
		if rec.Code != want {
			t.Fatalf("login page with Cookie %q: status %d, want %d", header, rec.Code, want)
		}
	})
}

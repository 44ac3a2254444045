package broker_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/internal/testenv"
)

func TestConfig_BrandingIsValidated(t *testing.T) {
	for _, tc := range []struct {
		b  broker.BrandingConfig
		ok bool
	}{
		{broker.BrandingConfig{PrimaryColor: "#2f5bea", LogoURL: "https://example.com/logo.svg", SupportURL: "https://example.com/help"}, true},
		{broker.BrandingConfig{PrimaryColor: "#25E", SupportURL: "mailto:help@example.com"}, true},
		{broker.BrandingConfig{PrimaryColor: "red"}, false},
		{broker.BrandingConfig{PrimaryColor: "#2f5bea;}body{display:none"}, false},
		{broker.BrandingConfig{PrimaryColor: "#2f5be"}, false},
		{broker.BrandingConfig{LogoURL: "http://example.com/logo.svg"}, false},
		{broker.BrandingConfig{LogoURL: "javascript:alert(1)"}, false},
		{broker.BrandingConfig{SupportURL: "javascript:alert(1)"}, false},
		{broker.BrandingConfig{SupportURL: "/help"}, false},
	} {
		cfg := broker.DevelopmentConfig("http://localhost:8080", ":8080")
		cfg.Branding = tc.b
		if err := cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("branding %+v: err %v, want ok %v", tc.b, err, tc.ok)
		}
	}
}

func TestPages_ResendCoolDownIsShownAndEnforced(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	page := e.startLogin(b, "wait@example.com")
	if !strings.Contains(page.Body, "You can request a new code in 30 s.") || !strings.Contains(page.Body, `id="resend" disabled`) {
		t.Fatalf("code page after sending: want the wait and a disabled resend button: %s", page.Body)
	}
	e.clock.Advance(20 * time.Second)
	p := b.Submit(page, "/login/resend", nil)
	if p.Status != http.StatusTooManyRequests || p.Header.Get("Retry-After") != "10" || !strings.Contains(p.Body, "in 10 s.") {
		t.Fatalf("resend 20 s in: %d Retry-After %q", p.Status, p.Header.Get("Retry-After"))
	}
	e.clock.Advance(11 * time.Second)
	p = b.Submit(page, "/login/resend", nil)
	if p.Status != http.StatusOK || !strings.Contains(p.URL.RawQuery, "resent=1") || !strings.Contains(p.Body, "We sent a new code") || e.mailer.Count("wait@example.com") != 2 {
		t.Fatalf("resend after the cool-down: %d at %s", p.Status, p.URL)
	}
	if !strings.Contains(p.Body, `id="resend" disabled`) {
		t.Error("the new code starts a new cool-down")
	}
}

// The wait a limited person is told of is in their language, in words.
func TestPages_TooManyCodesSaysTheWaitInThePageLanguage(t *testing.T) {
	e := newEnv(t, func(c *broker.Config, o *broker.Options) {
		c.Limits.OTPPerEmail = broker.Limit{Count: 1, Window: 15 * time.Minute}
	})
	for _, tc := range []struct{ locales, want string }{
		{"en", "Too many codes were requested. Try again in 15 minutes."},
		{"de", "Es wurden zu viele Codes angefordert. Versuchen Sie es in 15 Minuten erneut."},
	} {
		b := e.browser()
		page := b.Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE(), extra: url.Values{"ui_locales": {tc.locales}}}))
		page = b.Submit(page, "/login", url.Values{"email": {"wait-" + tc.locales + "@example.com"}})
		if page.Status != http.StatusOK {
			t.Fatalf("%s: first code: %d", tc.locales, page.Status)
		}
		page = b.Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE(), extra: url.Values{"ui_locales": {tc.locales}}}))
		page = b.Submit(page, "/login", url.Values{"email": {"wait-" + tc.locales + "@example.com"}})
		if page.Status != http.StatusTooManyRequests || !strings.Contains(page.Body, tc.want) {
			t.Errorf("%s: %d, want %q in:\n%s", tc.locales, page.Status, tc.want, page.Body)
		}
	}
}

func TestPages_FollowUILocalesThenAcceptLanguage(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	page := b.Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE(), extra: url.Values{"ui_locales": {"fr de"}}}))
	if !strings.Contains(page.Body, `<html lang="de">`) || !strings.Contains(page.Body, "Anmelden") || page.Header.Get("Content-Language") != "de" {
		t.Errorf("ui_locales=fr de: want German: %s", page.Body)
	}
	req, _ := http.NewRequest(http.MethodGet, e.issuer+"/login?id=nope", nil)
	req.Header.Set("Accept-Language", "de-AT,de;q=0.9")
	resp, err := b.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Content-Language") != "de" {
		t.Errorf("error page with Accept-Language de: Content-Language %q", resp.Header.Get("Content-Language"))
	}
	if p := b.Get(e.issuer + "/login?id=nope"); !strings.Contains(p.Body, `<html lang="en">`) {
		t.Error("without a preference the page is not English")
	}
}

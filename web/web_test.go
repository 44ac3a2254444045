package web

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestMessages_EveryLanguageHasEveryKeyWithTheSamePlaceholders(t *testing.T) {
	if err := loadCatalogs(); err != nil {
		t.Fatal(err)
	}
	if len(Languages()) < 2 {
		t.Fatalf("languages %v: want English and at least one other", Languages())
	}
	placeholders := regexp.MustCompile(`\{\d\}`)
	for lang, msgs := range catalogs {
		for key, en := range catalogs[DefaultLanguage] {
			msg, ok := msgs[key]
			if !ok {
				t.Errorf("%s: %q is missing", lang, key)
				continue
			}
			want, got := placeholders.FindAllString(en, -1), placeholders.FindAllString(msg, -1)
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(want, got) {
				t.Errorf("%s: %q has placeholders %v, English %v", lang, key, got, want)
			}
		}
		for key := range msgs {
			if _, ok := catalogs[DefaultLanguage][key]; !ok {
				t.Errorf("%s: %q is not an English message", lang, key)
			}
		}
	}
}

func TestNegotiate_UILocalesThenAcceptLanguageThenEnglish(t *testing.T) {
	for _, tc := range []struct {
		ui     []string
		accept string
		want   string
	}{
		{nil, "", "en"},
		{nil, "de-DE,de;q=0.9,en;q=0.8", "de"},
		{nil, "fr-FR,fr;q=0.9", "en"},
		{nil, "fr;q=0.9,de;q=0.5", "de"},
		{[]string{"de"}, "en-US", "de"},
		{[]string{"de-CH"}, "en-US", "de"},
		{[]string{"fr", "en"}, "de", "en"},
		{[]string{"fr"}, "de", "de"},
		{[]string{"not a tag"}, "garbage;;", "en"},
	} {
		if got := Negotiate(tc.ui, tc.accept); got != tc.want {
			t.Errorf("Negotiate(%q, %q) = %q, want %q", tc.ui, tc.accept, got, tc.want)
		}
	}
}

func TestRequestLanguage_SignInLocalesThenQueryThenAcceptLanguage(t *testing.T) {
	r := httptest.NewRequest("GET", "/login?ui_locales=de", nil)
	r.Header.Set("Accept-Language", "en")
	if got := RequestLanguage(r, nil); got != "de" {
		t.Errorf("ui_locales=de: got %q, want de", got)
	}
	if got := RequestLanguage(r, []string{"en"}); got != "en" {
		t.Errorf("sign-in locales en over ui_locales=de: got %q, want en", got)
	}
	r = httptest.NewRequest("GET", "/login", nil)
	r.Header.Set("Accept-Language", "de-DE")
	if got := RequestLanguage(r, nil); got != "de" {
		t.Errorf("Accept-Language de-DE: got %q, want de", got)
	}
}

func TestRender_EveryPageInEveryLanguage(t *testing.T) {
	r, err := NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	b := Branding{ProductName: "Acme", PrimaryColor: "#2f5bea", SupportURL: "https://help.example.com"}
	pages := []any{
		LoginPage{Branding: b, AuthRequestID: "id", CSRF: "c", Error: "Enter an email address like name@example.com.", Connectors: []Connector{{ID: "x", Name: "X"}}},
		CodePage{Branding: b, AuthRequestID: "id", CSRF: "c", Email: "a@example.com", ValidMinutes: 10, ResendWait: 12},
		ConnectorPage{Branding: b, AuthRequestID: "id", CSRF: "c", Email: "a@corp.example", Connector: Connector{ID: "x", Name: "Corp <SSO>"}},
		ErrorPage{Branding: b, Title: "This sign-in has expired", Message: "Something only in English.", Status: 404},
		SignedOutPage{Branding: b},
		LogoutPage{Branding: b, Action: "/end_session/confirm", CSRF: "c", ClientID: "web", PostLogoutRedirectURI: "https://app.example.com/bye", State: "s"},
		ConsentPage{Branding: b, AuthRequestID: "id", CSRF: "c", UserEmail: "a@example.com",
			Client:    ConsentClient{ID: "https://agent.example/client.json", Name: "Corp <SSO>", DocumentHost: "agent.example", Unverified: true},
			Resources: []string{"https://mcp.example.com/mcp"}, Scopes: []string{"openid", "email", "tools:<call>"}},
		AppsPage{Branding: b, SignedIn: true, CSRF: "c", Notice: "Access revoked. The application has been signed out.", Apps: []App{
			{ClientID: "agent", Name: "Corp <SSO>", Grants: []AppGrant{{Resource: "", Scopes: []string{"openid", "x<y"}, GrantedAt: "2030-03-04"}}}}},
		AppsPage{Branding: b},
	}
	for _, lang := range Languages() {
		for _, p := range pages {
			w := httptest.NewRecorder()
			if err := r.RenderIn(w, 200, lang, p); err != nil {
				t.Fatalf("%s %T: %v", lang, p, err)
			}
			body := w.Body.String()
			if !strings.Contains(body, `<html lang="`+lang+`">`) {
				t.Errorf("%s %T: no lang attribute", lang, p)
			}
			if strings.Contains(body, "Corp <SSO>") {
				t.Errorf("%s %T: an argument was not escaped", lang, p)
			}
			// (The countdown's template for the script keeps its {0}.)
			text := regexp.MustCompile(`data-wait-text="[^"]*"`).ReplaceAllString(body, "")
			if m := regexp.MustCompile(`\{\d\}`).FindString(text); m != "" {
				t.Errorf("%s %T: unfilled placeholder %q", lang, p, m)
			}
		}
	}
	w := httptest.NewRecorder()
	r.RenderIn(w, 404, "de", pages[3])
	if !strings.Contains(w.Body.String(), "Diese Anmeldung ist abgelaufen") || !strings.Contains(w.Body.String(), "Something only in English.") {
		t.Errorf("a caller's known English sentence is translated, an unknown one kept: %s", w.Body.String())
	}
}

func TestRender_BrandColourIsAllowedByHashAndNothingElse(t *testing.T) {
	r, err := NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	r.Render(w, 200, SignedOutPage{Branding: Branding{PrimaryColor: "#ffcc00"}})
	css := ":root{--primary:#ffcc00;--on-primary:#111318}"
	sum := sha256.Sum256([]byte(css))
	if !strings.Contains(w.Body.String(), "<style>"+css+"</style>") {
		t.Fatalf("no brand style (dark text on a light colour): %s", w.Body.String())
	}
	csp := w.Header().Get("Content-Security-Policy")
	if !strings.Contains(csp, "style-src 'self' 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q does not allow exactly the brand style", csp)
	}
	for _, bad := range []string{"red;}body{display:none", "#12345", "url(x)", "#fff</style><script>"} {
		w := httptest.NewRecorder()
		r.Render(w, 200, SignedOutPage{Branding: Branding{PrimaryColor: bad}})
		if strings.Contains(w.Body.String(), "<style>") || strings.Contains(w.Header().Get("Content-Security-Policy"), "sha256") {
			t.Errorf("colour %q reached the page", bad)
		}
	}
}

func TestRender_ConsentPageNamesTheClientAsTheBrokerKnowsIt(t *testing.T) {
	r, err := NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	page := ConsentPage{AuthRequestID: "req", CSRF: "tok",
		Client:    ConsentClient{ID: "https://agent.example/client.json", Name: "Agent", DocumentHost: "agent.example", Unverified: true},
		Resources: []string{"https://mcp.example.com/mcp"}, Scopes: []string{"email", "tools:call"}}
	w := httptest.NewRecorder()
	if err := r.RenderIn(w, 200, "en", page); err != nil {
		t.Fatal(err)
	}
	body := w.Body.String()
	for _, want := range []string{"Allow Agent to act for you?", "https://agent.example/client.json", "agent.example is not verified",
		"https://mcp.example.com/mcp", "See your email address", "Use the permission “tools:call”",
		`name="decision" value="allow"`, `name="decision" value="deny"`, `name="csrf" value="tok"`, `name="id" value="req"`} {
		if !strings.Contains(body, want) {
			t.Errorf("consent page lacks %q:\n%s", want, body)
		}
	}
	page.Client.Unverified = false
	w = httptest.NewRecorder()
	r.RenderIn(w, 200, "de", page)
	if body := w.Body.String(); strings.Contains(body, "nicht verifiziert") || !strings.Contains(body, "Ihre E-Mail-Adresse sehen") {
		t.Errorf("a verified client is marked unverified, or the page is not in German:\n%s", body)
	}
}

func TestRender_AppsPageWithoutSessionShowsNoData(t *testing.T) {
	r, err := NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	if err := r.RenderIn(w, 200, "en", AppsPage{Apps: []App{{ClientID: "secret-app"}}}); err != nil {
		t.Fatal(err)
	}
	if body := w.Body.String(); strings.Contains(body, "secret-app") || strings.Contains(body, "<form") || !strings.Contains(body, "You are not signed in") {
		t.Errorf("apps page without a session:\n%s", body)
	}
}

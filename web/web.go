// Package web renders the broker's pages: email-first login, code entry,
// the connector interstitial, errors, logout confirmation, signed-out,
// consent to a third-party client and the connected apps.
// Templates, message files and static assets are embedded in the binary;
// pages work without JavaScript (one small external script adds
// auto-submit and a resend countdown). A page renders what it is given
// and imports none of the project's packages.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"regexp"
	"strconv"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Branding styles every page.
type Branding struct {
	ProductName  string
	LogoURL      string
	PrimaryColor string // #rgb or #rrggbb; anything else is ignored
	SupportURL   string
}

func (b Branding) branding() Branding { return b }

// Connector is a sign-in option offered as a button.
type Connector struct {
	ID   string
	Name string
}

// LoginPage is the email-first page.
type LoginPage struct {
	Branding
	AuthRequestID string
	CSRF          string
	Email         string
	Error         string // about the email field
	Connectors    []Connector
}

// CodePage is the one-time-code entry page.
type CodePage struct {
	Branding
	AuthRequestID string
	CSRF          string
	Email         string
	Error         string // about the code field
	Notice        string
	// ValidMinutes is how long a code lives; 0 leaves it unsaid.
	ValidMinutes int
	// ResendWait is how many seconds remain before a new code may be
	// requested; while it is above 0 the resend button is disabled.
	ResendWait int
}

// ConnectorPage names the identity provider an email's domain signs in
// with, before the browser is sent there.
type ConnectorPage struct {
	Branding
	AuthRequestID string
	CSRF          string
	Email         string
	Connector     Connector
}

// ErrorPage explains a failure the person can do something about.
type ErrorPage struct {
	Branding
	Title   string
	Message string
	Status  int
}

// SignedOutPage confirms a logout.
type SignedOutPage struct {
	Branding
	// UpstreamLogoutURL, when set, is offered as a link to sign out of
	// the identity provider too.
	UpstreamLogoutURL string
}

// LogoutPage asks before a logout that no ID token of the session's user
// vouches for, so another site cannot sign a person out by linking to
// end_session. Its form carries the request's parameters and a CSRF token.
type LogoutPage struct {
	Branding
	Action                string // where the form posts
	CSRF                  string
	ClientID              string
	PostLogoutRedirectURI string
	State                 string
}

// Renderer renders pages in every language it has messages for.
type Renderer struct {
	pages map[string]map[string]*template.Template // language → page → template
}

var pageNames = []string{"login", "code", "connector", "error", "signedout", "logout", "consent", "apps"}

// NewRenderer parses the embedded templates once per language.
func NewRenderer() (*Renderer, error) {
	if err := loadCatalogs(); err != nil {
		return nil, err
	}
	r := &Renderer{pages: map[string]map[string]*template.Template{}}
	for _, lang := range Languages() {
		r.pages[lang] = map[string]*template.Template{}
		for _, name := range pageNames {
			t, err := template.New("layout.html").Funcs(funcs(lang)).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
			if err != nil {
				return nil, fmt.Errorf("web: parse %s: %w", name, err)
			}
			r.pages[lang][name] = t
		}
	}
	return r, nil
}

// funcs are the template functions bound to one language: t (a message
// by key, arguments HTML-escaped), ts (the same as plain text, for
// attributes), text (a caller's English sentence, translated when the
// catalog knows it), scope (what a scope lets a client do), lang and
// brandCSS.
func funcs(lang string) template.FuncMap {
	return template.FuncMap{
		"t":        func(key string, args ...any) template.HTML { return template.HTML(message(lang, key, true, args...)) },
		"ts":       func(key string, args ...any) string { return message(lang, key, false, args...) },
		"text":     func(english string) string { return translateText(lang, english) },
		"lang":     func() string { return lang },
		"scope":    func(name string) template.HTML { return template.HTML(scopeText(lang, name)) },
		"brandCSS": brandCSS,
	}
}

// Static serves the stylesheet, the script and other assets.
func Static() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	return http.FileServer(http.FS(sub))
}

var hexColour = regexp.MustCompile(`^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

// ValidColour reports whether s is a colour Branding.PrimaryColor accepts:
// #rgb or #rrggbb.
func ValidColour(s string) bool { return hexColour.MatchString(s) }

// brandCSS is the inline style that applies the primary colour, with a
// text colour that stays readable on it; "" when there is no valid colour.
func brandCSS(b Branding) template.CSS {
	if !ValidColour(b.PrimaryColor) {
		return ""
	}
	on := "#ffffff"
	if luminance(b.PrimaryColor) > 0.45 {
		on = "#111318"
	}
	return template.CSS(":root{--primary:" + b.PrimaryColor + ";--on-primary:" + on + "}")
}

// luminance is the WCAG relative luminance of a #rgb or #rrggbb colour.
func luminance(hex string) float64 {
	h := hex[1:]
	if len(h) == 3 {
		h = string([]byte{h[0], h[0], h[1], h[1], h[2], h[2]})
	}
	lin := func(s string) float64 {
		v, _ := strconv.ParseUint(s, 16, 8)
		c := float64(v) / 255
		if c <= 0.04045 {
			return c / 12.92
		}
		return math.Pow((c+0.055)/1.055, 2.4)
	}
	return 0.2126*lin(h[0:2]) + 0.7152*lin(h[2:4]) + 0.0722*lin(h[4:6])
}

// Render writes page in English; RenderIn picks the language.
func (r *Renderer) Render(w http.ResponseWriter, status int, page any) error {
	return r.RenderIn(w, status, DefaultLanguage, page)
}

// RenderIn writes page with status in lang (one of Languages, else
// English). Pages are never cached: they carry per-request CSRF tokens.
// The Content-Security-Policy allows no inline script, and inline style
// only for the branding colour, by its hash.
func (r *Renderer) RenderIn(w http.ResponseWriter, status int, lang string, page any) error {
	var name string
	switch page.(type) {
	case LoginPage, *LoginPage:
		name = "login"
	case CodePage, *CodePage:
		name = "code"
	case ConnectorPage, *ConnectorPage:
		name = "connector"
	case ErrorPage, *ErrorPage:
		name = "error"
	case SignedOutPage, *SignedOutPage:
		name = "signedout"
	case LogoutPage, *LogoutPage:
		name = "logout"
	case ConsentPage, *ConsentPage:
		name = "consent"
	case AppsPage, *AppsPage:
		name = "apps"
	default:
		return fmt.Errorf("web: no template for %T", page)
	}
	set, ok := r.pages[lang]
	if !ok {
		set = r.pages[DefaultLanguage]
	}
	var buf bytes.Buffer
	if err := set[name].Execute(&buf, page); err != nil {
		return fmt.Errorf("web: render %s: %w", name, err)
	}
	styleSrc := "style-src 'self'"
	if b, ok := page.(interface{ branding() Branding }); ok {
		if css := brandCSS(b.branding()); css != "" {
			sum := sha256.Sum256([]byte(css))
			styleSrc += " 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Language", langOr(lang))
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; "+styleSrc+"; img-src 'self' https: data:; form-action 'self' https: http:; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

func langOr(lang string) string {
	if _, ok := catalogs[lang]; ok {
		return lang
	}
	return DefaultLanguage
}

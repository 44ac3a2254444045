// Package web renders the broker's pages: email-first login, code entry,
// errors and signed-out. Templates and the stylesheet are embedded in the
// binary; pages need no JavaScript. A page renders what it is given and
// imports none of the project's packages.
package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Branding styles every page.
type Branding struct {
	ProductName  string
	LogoURL      string
	PrimaryColor string // a CSS colour, e.g. #2f5bea
	SupportURL   string
}

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
}

// Renderer renders pages.
type Renderer struct {
	pages map[string]*template.Template
}

// NewRenderer parses the embedded templates.
func NewRenderer() (*Renderer, error) {
	r := &Renderer{pages: map[string]*template.Template{}}
	for _, name := range []string{"login", "code", "error", "signedout"} {
		t, err := template.New("layout.html").ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("web: parse %s: %w", name, err)
		}
		r.pages[name] = t
	}
	return r, nil
}

// Static serves the stylesheet and other assets.
func Static() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	return http.FileServer(http.FS(sub))
}

// Render writes page with status. Pages are never cached: they carry
// per-request CSRF tokens.
func (r *Renderer) Render(w http.ResponseWriter, status int, page any) error {
	var name string
	switch page.(type) {
	case LoginPage, *LoginPage:
		name = "login"
	case CodePage, *CodePage:
		name = "code"
	case ErrorPage, *ErrorPage:
		name = "error"
	case SignedOutPage, *SignedOutPage:
		name = "signedout"
	default:
		return fmt.Errorf("web: no template for %T", page)
	}
	var buf bytes.Buffer
	if err := r.pages[name].Execute(&buf, page); err != nil {
		return fmt.Errorf("web: render %s: %w", name, err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' https: data:; form-action 'self' https: http:; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

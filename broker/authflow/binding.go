package authflow

import (
	"crypto/subtle"
	"encoding/base64"
	"net/http"

	"github.com/idbroker/broker/broker/edge"
	"github.com/idbroker/broker/keys"
	"github.com/idbroker/broker/storage"
)

// A login belongs to the browser that started it (docs/design.md rule 6).
// Without that, the auth request id alone would authorize
// /authorize/callback and the upstream state alone /callback/<connector>,
// and anyone holding either could finish someone else's login: poll the
// callback to collect a victim's code (code theft), have a victim's
// browser finish the attacker's login (login CSRF), or open the
// attacker's upstream callback and take his session (session planting).
//
// So /authorize gives the browser a binding cookie, a random browser id
// kept while the browser runs, and stores its hash with the request.
// Every later step of the request (the login form, the code page, the
// connector and the upstream's callback, /authorize/callback) checks that
// the browser presents it, and refuses with a page otherwise. The id is
// the browser's, not the request's, so several tabs of one browser can
// sign in at once. It is also what login and logout forms' CSRF tokens
// are made from: one cookie says "this browser".

// browserCookie returns the name of the binding cookie. With https the
// __Host- prefix pins it to this origin: no sibling subdomain can plant
// a browser id of its choosing.
func (f *Flow) browserCookie() string {
	if f.secure {
		return "__Host-broker_browser"
	}
	return "broker_browser"
}

// browserIDLen is the length of a browser id: randomID's 256 bits,
// base64url without padding.
const browserIDLen = 43

// wellFormedBrowserID reports whether v could be a browser id randomID
// made. Anything else is replaced rather than trusted, so a short or
// guessable value set by hand never becomes a binding.
func wellFormedBrowserID(v string) bool {
	if len(v) != browserIDLen {
		return false
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(v)
	return err == nil && len(raw) == 32
}

// browserID returns the browser id in request headers h; ok is false when
// there is none or it is not well-formed.
func (f *Flow) browserID(h http.Header) (id string, ok bool) {
	c, err := (&http.Request{Header: h}).Cookie(f.browserCookie())
	if err != nil || !wellFormedBrowserID(c.Value) {
		return "", false
	}
	return c.Value, true
}

// newBrowserCookie makes the binding cookie for browser id. It has no
// Max-Age, so it goes when the browser closes: it only has to outlive a
// login, and a browser id that lasted would be a tracking id.
func (f *Flow) newBrowserCookie(id string) *http.Cookie {
	return &http.Cookie{
		Name:     f.browserCookie(),
		Value:    id,
		Path:     "/",
		HttpOnly: true,
		Secure:   f.secure,
		// Lax, not Strict: the steps that must carry it include top-level
		// GET navigations that another site starts (the client's redirect
		// to /authorize, the upstream's redirect back to
		// /callback/<connector>), and a Strict cookie is not sent on
		// those. Lax still keeps it off cross-site POSTs and subresource
		// requests, so no other site can post a login form with it.
		SameSite: http.SameSiteLaxMode,
	}
}

// bindBrowser returns the binding for a new auth request from the browser
// whose request headers are h: the hash to store, and the cookie to set
// when the browser has no well-formed id yet (nil when it has one, which
// is kept, so its other tabs' logins stay bound to it).
func (f *Flow) bindBrowser(h http.Header) (hash []byte, set *http.Cookie) {
	id, ok := f.browserID(h)
	if !ok {
		id = keys.RandomID()
		set = f.newBrowserCookie(id)
	}
	return browserHash(id), set
}

// browserHash is what an auth request stores of its browser's id: the id
// carries 256 random bits, so an unkeyed hash cannot be reversed, and a
// leaked auth request holds nothing that works as the cookie.
func browserHash(id string) []byte { return keys.TokenHash("browser", id) }

// Why a step was refused, as the metric and the log name it.
const (
	bindingNoCookie     = "no cookie"     // no binding cookie, or not well-formed
	bindingOtherBrowser = "other browser" // the cookie of another browser
	bindingUnbound      = "unbound"       // stored by a release before the binding
)

// bindingRefusal returns why the browser that sent r may not take a step
// of ar, or "" when it is the browser that started it. The hashes are
// compared in constant time.
func (f *Flow) bindingRefusal(r *http.Request, ar storage.AuthRequest) string {
	if len(ar.BrowserHash) == 0 {
		return bindingUnbound
	}
	id, ok := f.browserID(r.Header)
	if !ok {
		return bindingNoCookie
	}
	if subtle.ConstantTimeCompare(browserHash(id), ar.BrowserHash) != 1 {
		return bindingOtherBrowser
	}
	return ""
}

// boundToBrowser reports whether the browser that sent r is the one that
// started ar. If not, the refusal is counted and logged, and the browser
// is shown a page saying to start again: never a code, never a session.
func (f *Flow) boundToBrowser(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest) bool {
	reason := f.bindingRefusal(r, ar)
	if reason == "" {
		return true
	}
	step := stepLabel(r)
	f.metrics.BindingRefusals.WithLabelValues(step, reason).Inc()
	f.log.WarnContext(r.Context(), "sign-in refused: started in another browser",
		"step", step, "reason", reason, "client_id", ar.ClientID, "ip", f.proxies.ClientIP(r))
	f.errorPages.Render(w, r, http.StatusForbidden, "Sign-in started in another browser",
		"This sign-in was started in another browser or a private window, or this browser did not keep the sign-in service's cookie. For your security it can only be finished where it was started. Nothing was changed. Go back to the application and start again.")
	return false
}

// stepLabel names the step of the login r is, for metrics and logs: the
// path of the route that served it, never what the request sent.
func stepLabel(r *http.Request) string {
	pattern := edge.RoutePath(r.Pattern)
	if pattern == "" || pattern == "/" {
		return "other"
	}
	return pattern
}

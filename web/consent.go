package web

import "slices"

// ConsentPage asks whether a third-party client may act for the person
// signed in. It names the client as the broker knows it (its id, and the
// host of its metadata document, which it cannot choose), not only by the
// name it gave itself.
type ConsentPage struct {
	Branding
	AuthRequestID string
	CSRF          string
	Client        ConsentClient
	UserEmail     string   // who is signed in; "" when unknown
	Resources     []string // the resources asked for; none for the client's own
	Scopes        []string // what the client may do: the scopes asked for and those allowed before
}

// ConsentClient is the client a consent page names.
type ConsentClient struct {
	ID   string
	Name string // as the client calls itself; "" for none
	// DocumentHost serves the client's metadata document; "" for a
	// client registered another way.
	DocumentHost string
	// Unverified marks a metadata-document client whose host the
	// operator does not vouch for.
	Unverified bool
	// SelfRegistered marks a client that registered itself (RFC 7591):
	// nobody vouches for its name.
	SelfRegistered bool
	// RedirectHost is where the decision sends the browser: the host of
	// the request's redirect URI, which a client's name cannot disguise.
	RedirectHost string
}

// DisplayName is the client's name, or its id when it gave none.
func (c ConsentClient) DisplayName() string {
	if c.Name != "" {
		return c.Name
	}
	return c.ID
}

// AppsPage lists the third-party clients the signed-in person allowed,
// each with a button taking the leave back. Without a session it only
// says to sign in.
type AppsPage struct {
	Branding
	SignedIn bool
	CSRF     string
	Notice   string // an English sentence, translated when the catalog has it
	Apps     []App
}

// App is one client of the connected apps page.
type App struct {
	ClientID string
	Name     string // "" when the client gave none or is gone
	Grants   []AppGrant
}

// DisplayName is the app's name, or its client id when it has none.
func (a App) DisplayName() string {
	if a.Name != "" {
		return a.Name
	}
	return a.ClientID
}

// AppGrant is what was allowed for one resource.
type AppGrant struct {
	Resource  string // "" for the client's own
	Scopes    []string
	GrantedAt string // a date, YYYY-MM-DD
}

// describedScopes are the scopes the catalogs describe ("scope.<name>");
// any other is named by the generic "scope.other".
var describedScopes = []string{"openid", "profile", "email", "offline_access", "organization", "admin"}

// scopeText describes a scope in lang, its name escaped.
func scopeText(lang, scope string) string {
	if slices.Contains(describedScopes, scope) {
		return message(lang, "scope."+scope, true)
	}
	return message(lang, "scope.other", true, scope)
}

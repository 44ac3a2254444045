package broker

// Request text is checked at the edge. Every parameter the broker reads
// may end up as a storage key or in a stored record, and Postgres refuses
// text that is not UTF-8 or that holds a NUL: left to the store, a byte
// typed by anyone becomes a 503 and an ERROR that pages an operator. No
// parameter of OAuth, OpenID Connect or the login forms has a use for
// control characters either (RFC 6749 appendix A limits its own to
// printable ASCII), so a request carrying any is refused as malformed,
// in the format of the endpoint it was sent to.

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/idbroker/broker/broker/answer"
	"github.com/idbroker/broker/broker/edge"
	"github.com/idbroker/broker/broker/registration"
)

// checkInput refuses a request whose path, query, form, Basic client
// credentials or (at the admin API) JSON body holds anything but valid
// text. It must run inside edge.LimitBody: it reads the form with ParseForm,
// which keeps what it read for the handlers after it, and an admin body,
// which it puts back.
//
// At /authorize only client_id and redirect_uri are checked here: until
// the library has matched the redirect URI to the client there is no one
// to tell but the person, on a page. The rest is checked by Authorize
// (checkAuthorizeParams), whose refusals go back to the client.
func (b *Broker) checkInput(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !edge.ValidText(r.URL.Path) {
			b.refuseInput(w, r, answer.InvalidTextReason("the path"))
			return
		}
		admin := strings.HasPrefix(r.URL.Path, adminPathPrefix)
		params := r.URL.Query()
		if !admin && r.Method == http.MethodPost {
			// A form that cannot be read is answered here: a second
			// ParseForm, the handler's, would not report it again.
			if err := r.ParseForm(); err != nil {
				b.refuseInput(w, r, "the form could not be read")
				return
			}
			params = r.Form
		}
		if r.URL.Path == authorizePath {
			params = url.Values{"client_id": params["client_id"], "redirect_uri": params["redirect_uri"]}
		}
		if name, bad := edge.BadParam(params); bad {
			b.refuseInput(w, r, answer.InvalidTextReason(name))
			return
		}
		// The library reads a Basic client_id form-urlencoded (RFC 6749
		// section 2.3.1), so it is checked both as sent and decoded.
		if user, _, ok := r.BasicAuth(); ok {
			id, err := url.QueryUnescape(user)
			if !edge.ValidText(user) || err == nil && !edge.ValidText(id) {
				b.refuseInput(w, r, answer.InvalidTextReason("the client_id of the Authorization header"))
				return
			}
		}
		if admin && r.Body != nil && r.Body != http.NoBody {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				b.refuseInput(w, r, "the body could not be read")
				return
			}
			if !edge.ValidJSONText(body) {
				b.refuseInput(w, r, answer.InvalidTextReason("a string of the JSON body"))
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		h.ServeHTTP(w, r)
	})
}

// refuseInput answers a request checkInput refused, for reason: OAuth
// JSON where a program is talking (token, introspection, revocation,
// userinfo, the admin API and the other machine endpoints), else a page,
// since only a browser sends the rest and no redirect can be trusted
// before the client is known.
func (b *Broker) refuseInput(w http.ResponseWriter, r *http.Request, reason string) {
	b.log.InfoContext(r.Context(), "request refused", "endpoint", endpointLabel(routePattern(r.Context()), r.URL.Path), "reason", reason)
	if programEndpoint(r.URL.Path) {
		w.Header().Set("Cache-Control", "no-store")
		answer.OAuthError(w, http.StatusBadRequest, "invalid_request", reason)
		return
	}
	b.errorPages.Render(w, r, http.StatusBadRequest, "Request not valid",
		"The request holds characters the sign-in service cannot accept ("+reason+"). Go back to the application and start again.")
}

// programEndpoint reports whether path is answered to programs, in JSON,
// rather than to people.
func programEndpoint(path string) bool {
	switch path {
	case tokenPath, introspectPath, revokePath, userinfoPath, jwksPath, discoveryPath, metadataPath,
		"/metrics", "/readyz", "/healthz", "/ready":
		return true
	}
	return strings.HasPrefix(path, adminPathPrefix) || path == registration.Path || strings.HasPrefix(path, registration.Path+"/")
}

package broker

import (
	"net/http"
	"net/url"

	"github.com/idbroker/broker/broker/answer"
)

// clientEndpoint serves the token, introspection and revocation
// endpoints, where a client authenticates: POST only, never cached, and
// what the library would answer wrongly about client authentication
// answered first.
func clientEndpoint(lib http.Handler) http.Handler {
	return noStore(postOnly(clientAuthentication(lib)))
}

// postOnly refuses anything but POST, as the token, introspection and
// revocation endpoints must (RFC 6749 section 3.2): a GET would put
// credentials in URLs and logs.
func postOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost && r.Method != http.MethodOptions {
			w.Header().Set("Allow", "POST")
			answer.OAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "this endpoint answers only POST")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// noStore keeps tokens out of caches (RFC 6749 section 5.1).
func noStore(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		h.ServeHTTP(w, r)
	})
}

// clientAuthentication answers, with 401 invalid_client and the
// WWW-Authenticate header RFC 6749 section 5.2 asks for, the requests
// whose client authentication the library would refuse with 400 and no
// header, before it reads them:
//   - one that names no client at all (no Authorization header, client_id
//     or client_assertion): "no client authentication included". The
//     jwt-bearer grant is no exception: the broker answers it for identity
//     assertion grants only, which are for an authenticated client;
//   - one whose Basic credentials are not form-urlencoded (RFC 6749
//     section 2.3.1);
//   - an introspection request without a secret or an assertion: only a
//     confidential client may introspect.
//
// Every other refusal of a client is the broker's own
// (clients.Authenticator), which answers 401 with the header itself.
// ParseForm keeps what it read, so the library reads the same form
// without the body; a form that cannot be read is answered here, since a
// second ParseForm would not report it again.
func clientAuthentication(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			h.ServeHTTP(w, r)
			return
		}
		if err := r.ParseForm(); err != nil {
			answer.OAuthError(w, http.StatusBadRequest, "invalid_request", "the form could not be read")
			return
		}
		refuse := func(description string) {
			w.Header().Set("WWW-Authenticate", answer.BasicChallenge)
			answer.OAuthError(w, http.StatusUnauthorized, "invalid_client", description)
		}
		user, password, basic := r.BasicAuth()
		switch {
		case r.Header.Get("Authorization") == "" && r.Form.Get("client_id") == "" && r.Form.Get("client_assertion") == "":
			refuse("client authentication is required")
			return
		case basic && (!formEncoded(user) || !formEncoded(password)):
			refuse("invalid basic auth header")
			return
		case r.URL.Path == introspectPath && password == "" && r.Form.Get("client_secret") == "" && r.Form.Get("client_assertion") == "":
			refuse("client must be authenticated")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// formEncoded reports whether s decodes as application/x-www-form-urlencoded.
func formEncoded(s string) bool {
	_, err := url.QueryUnescape(s)
	return err == nil
}

package resource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
)

// Middleware guards an http.Handler: a request passes only with a broker
// access token that its Verifier accepts and that holds every one of
// Scopes, and the handler finds the Token with FromContext. A refusal is
// answered as RFC 6750 section 3 says, with a WWW-Authenticate: Bearer
// challenge:
//
//   - no token: 401 with a bare challenge (realm, resource_metadata, no
//     error code), as section 3.1 asks of a request without credentials;
//   - a malformed Authorization header, two Authorization headers, or an
//     access_token query parameter: 400 invalid_request;
//   - a token Verify refuses: 401 invalid_token;
//   - a token lacking a scope: 403 insufficient_scope.
//
// Every 401 and 403 challenge carries scope=Scopes when Scopes is set:
// the MCP authorization specification has clients ask for the scopes a
// server's challenge names, before those its metadata lists.
//
// The token is accepted only in the Authorization header (section 2.1).
// The form-body and query methods (sections 2.2 and 2.3) are not
// supported: a token in the query is refused so that it is not silently
// ignored, and the body is never read. When the key set cannot be
// fetched the answer is 503 without a challenge: the token was not judged.
//
// Middleware does not decide what the Token's user may do beyond Scopes,
// nor whether its act actor may act for the subject.
type Middleware struct {
	Verifier *Verifier // required
	// Scopes are the scopes every request must carry, all of them.
	Scopes []string
	// Realm is the challenge's realm; default the Verifier's audience.
	Realm string
	// ResourceMetadata is the URL of this service's RFC 9728 metadata
	// (MetadataURL gives it), sent in every challenge as
	// resource_metadata (RFC 9728 section 5.1) so a client can find the
	// broker. Empty: not sent.
	ResourceMetadata string
	// Logger receives the cause of each refusal, which the client sees
	// only as a generic description. Nil: causes are not logged.
	Logger *slog.Logger
}

// Wrap returns next guarded by m.
func (m *Middleware) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := bearerToken(r)
		switch {
		case errors.Is(err, errNoToken):
			m.refuse(w, r, refusal{status: http.StatusUnauthorized, cause: err})
			return
		case err != nil:
			m.refuse(w, r, refusal{status: http.StatusBadRequest, code: "invalid_request", description: err.Error(), cause: err})
			return
		}
		tok, err := m.Verifier.Verify(r.Context(), raw)
		switch {
		case errors.Is(err, ErrKeysUnavailable), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			m.refuse(w, r, refusal{status: http.StatusServiceUnavailable, code: "temporarily_unavailable",
				description: "The access token cannot be verified at the moment", cause: err})
			return
		case errors.Is(err, ErrExpired):
			m.refuse(w, r, refusal{status: http.StatusUnauthorized, code: "invalid_token", description: "The access token expired", cause: err})
			return
		case err != nil:
			m.refuse(w, r, refusal{status: http.StatusUnauthorized, code: "invalid_token", description: "The access token is not valid", cause: err})
			return
		}
		if !tok.HasScopes(m.Scopes...) {
			m.refuse(w, r, refusal{status: http.StatusForbidden, code: "insufficient_scope",
				description: "The access token lacks a scope this resource requires",
				cause:       fmt.Errorf("token scopes %q lack one of %q", tok.Scopes, m.Scopes)})
			return
		}
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), tok)))
	})
}

// errNoToken is a request without a bearer token.
var errNoToken = errors.New("no bearer token")

// bearerToken returns the token of r's Authorization header (RFC 6750
// section 2.1). Its errors are fit for the client to read.
func bearerToken(r *http.Request) (string, error) {
	if r.URL.Query().Has("access_token") {
		return "", errors.New("the access token is accepted only in the Authorization header")
	}
	values := r.Header.Values("Authorization")
	switch {
	case len(values) == 0:
		return "", errNoToken
	case len(values) > 1:
		return "", errors.New("the request carries more than one Authorization header")
	}
	scheme, token, _ := strings.Cut(values[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", errNoToken // another scheme's credentials are no bearer token
	}
	token = strings.TrimLeft(token, " ")
	if !isB64Token(token) {
		return "", errors.New("the Authorization header does not hold one bearer token")
	}
	return token, nil
}

// isB64Token reports whether s is RFC 6750 section 2.1's b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for _, c := range []byte(body) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			return false
		}
	}
	return true
}

// refusal is an answer Middleware gives instead of calling the handler.
type refusal struct {
	status      int
	code        string // RFC 6750 section 3.1 error code; "" for a request without credentials
	description string // for the client
	cause       error  // for the log
}

// refuse writes every refusal: the challenge, then the error as JSON.
func (m *Middleware) refuse(w http.ResponseWriter, r *http.Request, f refusal) {
	if m.Logger != nil && f.cause != nil {
		m.Logger.InfoContext(r.Context(), "resource: request refused", "status", f.status, "error", f.code, "cause", f.cause)
	}
	if f.status != http.StatusServiceUnavailable {
		w.Header().Set("WWW-Authenticate", m.challenge(f))
	}
	if f.code == "" {
		w.WriteHeader(f.status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(f.status)
	json.NewEncoder(w).Encode(struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{f.code, f.description})
}

// challenge is the WWW-Authenticate value for f (RFC 6750 section 3,
// RFC 9728 section 5.1).
func (m *Middleware) challenge(f refusal) string {
	realm := m.Realm
	if realm == "" {
		realm = m.Verifier.Audience()
	}
	params := []string{"realm=" + quote(realm)}
	if f.code != "" {
		params = append(params, "error="+quote(f.code), "error_description="+quote(f.description))
	}
	if len(m.Scopes) > 0 && (f.status == http.StatusUnauthorized || f.status == http.StatusForbidden) {
		params = append(params, "scope="+quote(strings.Join(m.Scopes, " ")))
	}
	if m.ResourceMetadata != "" {
		params = append(params, "resource_metadata="+quote(m.ResourceMetadata))
	}
	return "Bearer " + strings.Join(params, ", ")
}

// quote makes s an RFC 9110 quoted-string.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

type contextKey struct{}

// NewContext returns ctx carrying tok, as Middleware passes it to the
// handler it guards.
func NewContext(ctx context.Context, tok *Token) context.Context {
	return context.WithValue(ctx, contextKey{}, tok)
}

// FromContext returns the Token Middleware verified for the request
// whose context is ctx.
func FromContext(ctx context.Context) (*Token, bool) {
	tok, ok := ctx.Value(contextKey{}).(*Token)
	return tok, ok && tok != nil
}

package testenv

import (
	"crypto/subtle"
	"encoding/json"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// LegacyValidatePath is where the fake legacy service validates tokens,
// as platform-api's /public/auth/validate does.
const LegacyValidatePath = "/public/auth/validate"

// LegacyUser is a person the fake legacy session service knows.
type LegacyUser struct {
	UserID   string // the platform UUID, answered as userId exactly as given
	Email    string
	Name     string
	TypeName string // "user" when empty
	// Extra fields are merged into the answer last (overriding the ones
	// above), for tests of nested or renamed fields such as
	// {"profile": {"emailVerified": true}}.
	Extra map[string]any
}

// Legacy is a fake of a platform's own session-token service (the OTP
// service of clj-pg-wrapper behind platform-api): it issues opaque session
// tokens and answers a validation endpoint with who a token belongs to.
type Legacy struct {
	URL         string // the service's base URL
	ValidateURL string // URL + LegacyValidatePath

	stop chan struct{} // closed at cleanup to release hung handlers

	mu           sync.Mutex // guards the fields below
	sessions     map[string]LegacyUser
	calls        int
	failStatus   int
	hang         bool
	garbage      bool
	badUserID    bool
	basicAuth    bool
	basicID      string
	basicSecret  string
	lastRequest  *http.Request // a clone without body, for assertions
	lastTokenVia string
}

// NewLegacy starts a fake legacy session service, stopped when the test
// ends. GET or POST LegacyValidatePath takes the token from X-User-Token,
// else from Authorization: Bearer, else from a JSON body field "token",
// else from a form field "token", and answers 200 with {"userId", "email",
// "typeName", "name"} for a session it issued or 401 for any other.
func NewLegacy(t testing.TB) *Legacy {
	t.Helper()
	f := &Legacy{stop: make(chan struct{}), sessions: map[string]LegacyUser{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+LegacyValidatePath, f.validate)
	mux.HandleFunc("POST "+LegacyValidatePath, f.validate)
	srv := httptest.NewServer(mux)
	// Cleanups run last-in first-out: release hung handlers before the
	// server waits for them.
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(f.stop) })
	f.URL = srv.URL
	f.ValidateURL = srv.URL + LegacyValidatePath
	return f
}

// Issue mints an opaque session token for u, as an OTP login would.
func (f *Legacy) Issue(u LegacyUser) string {
	tok := "sess_" + randomString(24)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessions[tok] = u
	return tok
}

// Revoke ends the session of tok, as a logout would.
func (f *Legacy) Revoke(tok string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sessions, tok)
}

// FailWith makes the validation endpoint answer with status until Recover.
func (f *Legacy) FailWith(status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reset()
	f.failStatus = status
}

// Hang makes the validation endpoint hang until the client gives up (or
// the test ends), until Recover.
func (f *Legacy) Hang() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reset()
	f.hang = true
}

// Garbage makes the validation endpoint answer 200 with a body that is not
// JSON, until Recover.
func (f *Legacy) Garbage() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reset()
	f.garbage = true
}

// BadUserID makes the validation endpoint answer a valid session with
// userId "not-a-uuid", until Recover.
func (f *Legacy) BadUserID() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reset()
	f.badUserID = true
}

// Recover ends FailWith, Hang, Garbage and BadUserID.
func (f *Legacy) Recover() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reset()
}

// reset clears the failure knobs; f.mu must be held.
func (f *Legacy) reset() {
	f.failStatus, f.hang, f.garbage, f.badUserID = 0, false, false, false
}

// RequireBasicAuth makes the validation endpoint answer 401 to callers
// that do not authenticate with HTTP Basic id and secret.
func (f *Legacy) RequireBasicAuth(id, secret string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.basicAuth, f.basicID, f.basicSecret = true, id, secret
}

// Calls is how many requests the validation endpoint has received,
// failed and hung ones included.
func (f *Legacy) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// LastRequest is the newest validation request (headers, method, URL; no
// body) and where its token was found: "header", "bearer", "body", "form"
// or "" when it had none.
func (f *Legacy) LastRequest() (*http.Request, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastRequest, f.lastTokenVia
}

func (f *Legacy) validate(w http.ResponseWriter, r *http.Request) {
	tok, via := legacyToken(r)
	f.mu.Lock()
	f.calls++
	f.lastRequest, f.lastTokenVia = r.Clone(r.Context()), via
	f.lastRequest.Body = http.NoBody
	status, hang, garbage, badUserID := f.failStatus, f.hang, f.garbage, f.badUserID
	u, known := f.sessions[tok]
	authOK := !f.basicAuth
	if f.basicAuth {
		id, secret, ok := r.BasicAuth()
		authOK = ok && id == f.basicID && subtle.ConstantTimeCompare([]byte(secret), []byte(f.basicSecret)) == 1
	}
	f.mu.Unlock()

	switch {
	case hang:
		select {
		case <-r.Context().Done():
		case <-f.stop:
		}
		return
	case status != 0:
		http.Error(w, http.StatusText(status), status)
		return
	case !authOK:
		w.Header().Set("WWW-Authenticate", `Basic realm="platform-api"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "client authentication failed"})
		return
	case tok == "" || !known:
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid or expired session"})
		return
	case garbage:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("<html><body>Service temporarily degraded</body></html>"))
		return
	}
	typeName := u.TypeName
	if typeName == "" {
		typeName = "user"
	}
	answer := map[string]any{"userId": u.UserID, "email": u.Email, "typeName": typeName, "name": u.Name}
	if badUserID {
		answer["userId"] = "not-a-uuid"
	}
	maps.Copy(answer, u.Extra)
	writeJSON(w, http.StatusOK, answer)
}

// legacyToken finds the token where the real service and its proxies
// look for it, in order: X-User-Token, Authorization: Bearer, a JSON body
// field "token", a form field "token".
func legacyToken(r *http.Request) (tok, via string) {
	if tok := r.Header.Get("X-User-Token"); tok != "" {
		return tok, "header"
	}
	if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "bearer") {
		return strings.TrimSpace(tok), "bearer"
	}
	if r.Method != http.MethodPost {
		return "", ""
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/json":
		var body struct {
			Token string `json:"token"`
		}
		if json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20)).Decode(&body) == nil && body.Token != "" {
			return body.Token, "body"
		}
	case "application/x-www-form-urlencoded":
		if tok := r.PostFormValue("token"); tok != "" {
			return tok, "form"
		}
	}
	return "", ""
}

package answer

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// OAuthError writes an RFC 6749 section 5.2 error body with status. Every
// OAuth error the broker writes itself goes through here. It sets only
// Content-Type: a caller that wants Cache-Control: no-store, Allow or
// WWW-Authenticate sets them before.
func OAuthError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{code, description})
}

// temporarilyUnavailable is answered when a dependency cannot be reached:
// the request may succeed later, and nothing was decided from it.
func temporarilyUnavailable() *oidc.Error {
	return &oidc.Error{ErrorType: "temporarily_unavailable", Description: "the service is temporarily unavailable; try again shortly"}
}

// TemporarilyUnavailable is the error an endpoint the OpenID Connect
// library answers returns when a dependency failed: 503
// temporarily_unavailable. It logs nothing; Failures.Store also logs and
// counts a store failure.
func TemporarilyUnavailable() error {
	return op.NewStatusError(temporarilyUnavailable(), http.StatusServiceUnavailable)
}

// InvalidTextReason is the client-safe reason for refusing what (a path,
// a parameter's name, "the request") as text the broker does not accept
// (docs/design.md rule 8).
func InvalidTextReason(what string) string {
	return fmt.Sprintf("%s is not UTF-8 text or holds a control character", what)
}

package answer

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/idbroker/broker/broker/edge"
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

// BasicChallenge is the WWW-Authenticate header of a 401 invalid_client
// (RFC 6749 section 5.2, for clients that may use HTTP Basic).
const BasicChallenge = `Basic realm="broker", charset="UTF-8"`

// InvalidClient is a 401 invalid_client, the answer to a client that
// failed to authenticate (RFC 6749 section 5.2). It sets the
// WWW-Authenticate header that status needs on the response of ctx's
// request (edge.WithResponseHeader), for the library writes the error.
func InvalidClient(ctx context.Context, description string) error {
	edge.SetResponseHeader(ctx, "WWW-Authenticate", BasicChallenge)
	return op.NewStatusError(oidc.ErrInvalidClient().WithDescription("%s", description), http.StatusUnauthorized)
}

// InvalidGrant logs why a grant was refused and tells the client only
// that it was, with reason (RFC 6749 section 5.2 invalid_grant).
func InvalidGrant(ctx context.Context, log *slog.Logger, reason string, attrs ...any) error {
	log.InfoContext(ctx, "grant refused", append([]any{"reason", reason}, attrs...)...)
	return oidc.ErrInvalidGrant().WithDescription("%s", reason)
}

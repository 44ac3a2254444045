package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/idbroker/broker/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// invalidClient is a 401 invalid_client; challengeOnUnauthorized adds the
// WWW-Authenticate header.
func invalidClient(description string) error {
	return op.NewStatusError(oidc.ErrInvalidClient().WithDescription("%s", description), http.StatusUnauthorized)
}

// invalidGrant logs why a grant was refused and tells the client only that
// it was.
func (b *Broker) invalidGrant(ctx context.Context, reason string, attrs ...any) error {
	b.log.InfoContext(ctx, "grant refused", append([]any{"reason", reason}, attrs...)...)
	return oidc.ErrInvalidGrant().WithDescription("%s", reason)
}

// isNotFound reports whether err means "no such thing" (as opposed to an
// unreachable store).
func isNotFound(err error) bool { return errors.Is(err, storage.ErrNotFound) }

// errorCapture buffers an error response (status 400 and up) so it can be
// rendered differently; anything else passes straight through.
type errorCapture struct {
	http.ResponseWriter
	status   int
	captured bool
	body     bytes.Buffer
}

func (e *errorCapture) WriteHeader(status int) {
	if status >= 400 {
		e.status, e.captured = status, true
		return
	}
	e.ResponseWriter.WriteHeader(status)
}

func (e *errorCapture) Write(p []byte) (int, error) {
	if e.captured {
		return e.body.Write(p)
	}
	return e.ResponseWriter.Write(p)
}

type oauthErrorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// oauthErrorCode returns the error code of an OAuth error body, or "".
func oauthErrorCode(body []byte) string {
	var e oauthErrorBody
	json.Unmarshal(body, &e)
	return e.Error
}

// oauthErrorDescription extracts a human-readable reason from an OAuth
// error body.
func oauthErrorDescription(body []byte) string {
	var e oauthErrorBody
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		return "the request was malformed"
	}
	if e.Description != "" {
		return e.Description
	}
	return e.Error
}

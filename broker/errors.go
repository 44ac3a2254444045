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

// writeOAuthError writes an RFC 6749 section 5.2 error body. Every OAuth
// error the broker itself writes goes through here.
func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{code, description})
}

// errTemporarilyUnavailable is answered when the store cannot be reached:
// the request may succeed later, and nothing was decided from it.
func errTemporarilyUnavailable() *oidc.Error {
	return &oidc.Error{ErrorType: "temporarily_unavailable", Description: "the service is temporarily unavailable; try again shortly"}
}

// storeFailure is the error returned to a client when storage failed: 503
// temporarily_unavailable, with the cause in the server log only. The
// broker fails closed: nothing is issued. Text from the request that the
// store cannot hold (storage.ErrInvalidText, where checkInput could not
// see it) made the request bad, not the store: that is 400
// invalid_request, logged at INFO and not counted as a storage error.
func (b *Broker) storeFailure(ctx context.Context, what string, err error) error {
	if errors.Is(err, storage.ErrInvalidText) {
		b.log.InfoContext(ctx, "request refused by storage", "op", what, "err", err)
		return op.NewStatusError(oidc.ErrInvalidRequest().WithDescription("%s", invalidTextReason("the request")), http.StatusBadRequest)
	}
	b.metrics.storageErrors.WithLabelValues(what).Inc()
	b.log.ErrorContext(ctx, "storage failed", "op", what, "err", err)
	return op.NewStatusError(errTemporarilyUnavailable(), http.StatusServiceUnavailable)
}

// writeStoreFailure is storeFailure for a handler that writes its own
// answer: 503 temporarily_unavailable.
func (b *Broker) writeStoreFailure(ctx context.Context, w http.ResponseWriter, what string, err error) {
	b.storeFailure(ctx, what, err)
	e := errTemporarilyUnavailable()
	writeOAuthError(w, http.StatusServiceUnavailable, string(e.ErrorType), e.Description)
}

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

package answer

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/idbroker/broker/storage"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Failures answers a failed store operation (docs/design.md rule 2): the
// cause goes to Log at ERROR as "storage failed" and is counted once in
// StorageErrors under the operation's name, and the client is told only
// that the service is temporarily unavailable. Nothing is issued. An
// error wrapping storage.ErrInvalidText is the request's fault, not the
// store's (rule 8): it is logged at INFO as "request refused by storage",
// not counted, and answered 400 invalid_request.
//
// what names the operation; it is a metric label, so it must never carry
// anything a request sent.
type Failures struct {
	Log           *slog.Logger
	StorageErrors *prometheus.CounterVec // one label: the operation
	Pages         ErrorPages             // for StorePage
}

// invalidText reports whether err is the request's fault, and logs it if
// so; otherwise it logs and counts the store's failure.
func (f Failures) invalidText(ctx context.Context, what string, err error) bool {
	if errors.Is(err, storage.ErrInvalidText) {
		f.Log.InfoContext(ctx, "request refused by storage", "op", what, "err", err)
		return true
	}
	f.StorageErrors.WithLabelValues(what).Inc()
	f.Log.ErrorContext(ctx, "storage failed", "op", what, "err", err)
	return false
}

// Store is the error an endpoint the OpenID Connect library answers
// returns for err: 503 temporarily_unavailable, or 400 invalid_request
// for storage.ErrInvalidText.
func (f Failures) Store(ctx context.Context, what string, err error) error {
	if f.invalidText(ctx, what, err) {
		return op.NewStatusError(oidc.ErrInvalidRequest().WithDescription("%s", InvalidTextReason("the request")), http.StatusBadRequest)
	}
	return TemporarilyUnavailable()
}

// WriteStore is Store for a handler that writes its own OAuth answer:
// 503 temporarily_unavailable, or 400 invalid_request for
// storage.ErrInvalidText, logged and counted as Store does.
func (f Failures) WriteStore(ctx context.Context, w http.ResponseWriter, what string, err error) {
	if f.invalidText(ctx, what, err) {
		OAuthError(w, http.StatusBadRequest, "invalid_request", InvalidTextReason("the request"))
		return
	}
	e := temporarilyUnavailable()
	OAuthError(w, http.StatusServiceUnavailable, string(e.ErrorType), e.Description)
}

// StorePage is Store for a person's browser: the 503 page, or for
// storage.ErrInvalidText a 400 page blaming the request.
func (f Failures) StorePage(w http.ResponseWriter, r *http.Request, what string, err error) {
	if f.invalidText(r.Context(), what, err) {
		f.Pages.invalidText(w, r)
		return
	}
	f.Pages.Unavailable(w, r)
}

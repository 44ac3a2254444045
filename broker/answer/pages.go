package answer

import (
	"log/slog"
	"net/http"

	"github.com/idbroker/broker/web"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// ErrorPages renders the error page a person sees, in the language of the
// request (web.RequestLanguage).
type ErrorPages struct {
	Renderer *web.Renderer
	Branding web.Branding
	Log      *slog.Logger // where a page that cannot be rendered is logged
}

// Render answers with the error page: status, title and message as given.
func (p ErrorPages) Render(w http.ResponseWriter, r *http.Request, status int, title, message string) {
	page := web.ErrorPage{Branding: p.Branding, Title: title, Message: message, Status: status}
	if err := p.Renderer.RenderIn(w, status, web.RequestLanguage(r, nil), page); err != nil {
		p.Log.ErrorContext(r.Context(), "render error page", "err", err)
	}
}

// Unavailable says the sign-in service failed, not the request, and that
// trying again later will work: 503, for an outage of the store or of an
// upstream.
func (p ErrorPages) Unavailable(w http.ResponseWriter, r *http.Request) {
	p.Render(w, r, http.StatusServiceUnavailable, "Temporarily unavailable",
		"The sign-in service cannot complete your request right now. Nothing was changed. Please try again in a moment.")
}

// invalidText blames the request for text the store could not hold: 400.
func (p ErrorPages) invalidText(w http.ResponseWriter, r *http.Request) {
	p.Render(w, r, http.StatusBadRequest, "Request not valid",
		"The request holds characters the sign-in service cannot accept. Go back to the application and start again.")
}

// Refuse answers a browser endpoint's refusal err, an OAuth error that
// cannot go back to a client (no redirect URI is trusted yet), with a page
// a person can read: title and message blame the request, with the
// error's description. An outage (temporarily_unavailable) gets the page
// that says the service is unavailable instead, since the same request
// will work later; anything that is not an OAuth error is the service's
// fault (500).
func (p ErrorPages) Refuse(w http.ResponseWriter, r *http.Request, err error, title, message string) {
	e := oidc.DefaultToServerError(err, err.Error())
	status := http.StatusBadRequest
	switch e.ErrorType {
	case "temporarily_unavailable":
		status = http.StatusServiceUnavailable
	case oidc.ServerError:
		status = http.StatusInternalServerError
	case oidc.SlowDown:
		// A limit of the requester's address (RFC 8628's code for it).
		status = http.StatusTooManyRequests
	}
	p.Log.InfoContext(r.Context(), "browser request refused", "path", r.URL.Path, "status", status, "reason", e.Description)
	if status == http.StatusServiceUnavailable {
		p.Unavailable(w, r)
		return
	}
	p.Render(w, r, status, title, message+" ("+e.Description+"). Go back to the application and start again.")
}

package answer

import (
	"log/slog"
	"net/http"

	"github.com/idbroker/broker/web"
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

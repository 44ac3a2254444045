package admin

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// ConsentInfo is a user's consent to a third-party client, as the API
// shows it.
type ConsentInfo struct {
	ClientID  string    `json:"client_id"`
	Resource  string    `json:"resource,omitempty"` // "" for the client's own audience
	Scopes    []string  `json:"scopes"`
	GrantedAt time.Time `json:"granted_at"`
}

// Consents returns what a user (id or verified email) allowed
// third-party clients, by client id then resource.
func (a *Admin) Consents(ctx context.Context, ref string) ([]ConsentInfo, error) {
	u, err := a.FindUser(ctx, ref)
	if err != nil {
		return nil, err
	}
	list, err := a.store.ListConsents(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("consents of user %s: %w", u.ID, err)
	}
	out := make([]ConsentInfo, 0, len(list))
	for _, c := range list {
		out = append(out, ConsentInfo{ClientID: c.ClientID, Resource: c.Resource, Scopes: c.Scopes, GrantedAt: c.GrantedAt})
	}
	return out, nil
}

// RevokeConsent takes back everything a user allowed a client and, in
// the same storage operation, revokes the client's refresh families and
// codes for the user (storage.Consents.RevokeConsent): the client must
// ask again. A user without a consent to the client is ErrNotFound.
func (a *Admin) RevokeConsent(ctx context.Context, actor, ref, clientID string) error {
	u, err := a.FindUser(ctx, ref)
	if err != nil {
		return err
	}
	revoked, err := a.store.RevokeConsent(ctx, u.ID, clientID, a.now().Add(a.tokenLifetime))
	if err != nil {
		return fmt.Errorf("consent of user %s to client %q: %w", u.ID, clientID, err)
	}
	return a.audit(ctx, actor, "user.consent.revoke", "user:"+u.ID,
		map[string]string{"client_id": clientID, "resources": fmt.Sprint(len(revoked))})
}

// consentRoutes mounts a user's consents under prefix p. A client id may
// be a URL (a metadata-document client): it is one path segment,
// percent-encoded (url.PathEscape).
func (api API) consentRoutes(mux *http.ServeMux, p string) {
	a := api.Admin
	mux.HandleFunc("GET "+p+"/users/{id}/consents", func(w http.ResponseWriter, r *http.Request) {
		list, err := a.Consents(r.Context(), r.PathValue("id"))
		api.adminReply(w, r, http.StatusOK, map[string]any{"consents": list}, err)
	})
	mux.HandleFunc("DELETE "+p+"/users/{id}/consents/{client_id}", func(w http.ResponseWriter, r *http.Request) {
		api.adminReply(w, r, http.StatusNoContent, nil, a.RevokeConsent(r.Context(), adminActor(r), r.PathValue("id"), r.PathValue("client_id")))
	})
}

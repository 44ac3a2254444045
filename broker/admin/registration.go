package admin

// Initial access tokens for dynamic client registration (RFC 7591
// section 3, the token policy): the operations behind `broker
// registration-tokens ...` and /admin/v1/registration-tokens. A token is
// shown once, when it is created; storage keeps its SHA-256.

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/idbroker/broker/broker/edge"
	"github.com/idbroker/broker/storage"
)

// DefaultRegistrationTokenLifetime is how long an initial access token
// lasts when its creator does not say.
const DefaultRegistrationTokenLifetime = 7 * 24 * time.Hour

// maxRegistrationTokenNote bounds a token's note, in characters.
const maxRegistrationTokenNote = 200

// RegistrationTokenSpec is an initial access token to create.
type RegistrationTokenSpec struct {
	// Note says whom or what the token is for.
	Note string `json:"note,omitempty"`
	// ExpiresIn is a Go duration ("72h"); empty for
	// DefaultRegistrationTokenLifetime.
	ExpiresIn string `json:"expires_in,omitempty"`
	// MaxUses is how many clients it may register; 0 for any number
	// until it expires.
	MaxUses int `json:"max_uses,omitempty"`
}

// RegistrationTokenInfo is an initial access token as administrators
// see it: never the token itself.
type RegistrationTokenInfo struct {
	ID        string    `json:"id"`
	Note      string    `json:"note,omitempty"`
	MaxUses   int       `json:"max_uses"`
	Uses      int       `json:"uses"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// Spent says it registers no more clients: expired or used up.
	Spent bool `json:"spent"`
}

func (a *Admin) registrationTokenInfo(t storage.RegistrationToken) RegistrationTokenInfo {
	return RegistrationTokenInfo{ID: t.ID, Note: t.Note, MaxUses: t.MaxUses, Uses: t.Uses,
		CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, Spent: t.Spent(a.now())}
}

// CreateRegistrationToken creates an initial access token and returns
// it, here and nowhere else, with what administrators see of it.
func (a *Admin) CreateRegistrationToken(ctx context.Context, actor string, spec RegistrationTokenSpec) (RegistrationTokenInfo, string, error) {
	if !edge.ValidName(spec.Note) || utf8.RuneCountInString(spec.Note) > maxRegistrationTokenNote {
		return RegistrationTokenInfo{}, "", invalidAdmin("note: must be at most %d characters of text", maxRegistrationTokenNote)
	}
	lifetime := DefaultRegistrationTokenLifetime
	if spec.ExpiresIn != "" {
		d, err := time.ParseDuration(spec.ExpiresIn)
		if err != nil || d <= 0 {
			return RegistrationTokenInfo{}, "", invalidAdmin("expires_in: %q is not a positive duration such as 72h", spec.ExpiresIn)
		}
		lifetime = d
	}
	if spec.MaxUses < 0 {
		return RegistrationTokenInfo{}, "", invalidAdmin("max_uses: %d is negative (0 allows any number)", spec.MaxUses)
	}
	// A token is a secret as a client's is: 256 random bits, kept as
	// its SHA-256.
	token, h := newClientSecret()
	now := a.now()
	t := storage.RegistrationToken{ID: uuid.NewString(), Hash: h.Hash, Note: spec.Note, MaxUses: spec.MaxUses,
		CreatedAt: now, ExpiresAt: now.Add(lifetime)}
	if err := a.store.CreateRegistrationToken(ctx, t); err != nil {
		return RegistrationTokenInfo{}, "", fmt.Errorf("create registration token: %w", err)
	}
	return a.registrationTokenInfo(t), token, a.audit(ctx, actor, "registration-token.create", "registration-token:"+t.ID,
		map[string]string{"expires_at": t.ExpiresAt.Format(time.RFC3339), "max_uses": strconv.Itoa(t.MaxUses), "note": t.Note})
}

// ListRegistrationTokens returns every initial access token, spent ones
// too, without the tokens.
func (a *Admin) ListRegistrationTokens(ctx context.Context) ([]RegistrationTokenInfo, error) {
	list, err := a.store.ListRegistrationTokens(ctx)
	if err != nil {
		return nil, fmt.Errorf("list registration tokens: %w", err)
	}
	out := make([]RegistrationTokenInfo, len(list))
	for i, t := range list {
		out[i] = a.registrationTokenInfo(t)
	}
	return out, nil
}

// RevokeRegistrationToken revokes an initial access token at once. The
// clients it registered stay; delete them as clients.
func (a *Admin) RevokeRegistrationToken(ctx context.Context, actor, id string) error {
	if err := a.store.RevokeRegistrationToken(ctx, id); err != nil {
		return fmt.Errorf("registration token %q: %w", id, err)
	}
	return a.audit(ctx, actor, "registration-token.revoke", "registration-token:"+id, nil)
}

// registrationTokenRoutes mounts /registration-tokens under p.
func (api API) registrationTokenRoutes(mux *http.ServeMux, p string) {
	a := api.Admin
	mux.HandleFunc("GET "+p+"/registration-tokens", func(w http.ResponseWriter, r *http.Request) {
		list, err := a.ListRegistrationTokens(r.Context())
		api.adminReply(w, r, http.StatusOK, map[string]any{"registration_tokens": list}, err)
	})
	mux.HandleFunc("POST "+p+"/registration-tokens", func(w http.ResponseWriter, r *http.Request) {
		var spec RegistrationTokenSpec
		if !api.adminDecode(w, r, &spec) {
			return
		}
		info, token, err := a.CreateRegistrationToken(r.Context(), adminActor(r), spec)
		api.adminReply(w, r, http.StatusCreated, struct {
			RegistrationTokenInfo
			Token string `json:"token"`
		}{info, token}, err)
	})
	mux.HandleFunc("DELETE "+p+"/registration-tokens/{id}", func(w http.ResponseWriter, r *http.Request) {
		api.adminReply(w, r, http.StatusNoContent, nil, a.RevokeRegistrationToken(r.Context(), adminActor(r), r.PathValue("id")))
	})
}

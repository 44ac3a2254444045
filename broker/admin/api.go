package admin

// The admin HTTP API: JSON over /admin/v1/, the operations of admin.go,
// for a bearer token the broker issued for the admin audience with the
// admin scope (RFC 6750 for the challenges).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/idbroker/broker/broker/answer"
	"github.com/idbroker/broker/storage"
)

// PathPrefix is where the admin API is mounted.
const PathPrefix = "/admin/v1/"

type adminActorKey struct{}

// Token is what the broker's own check of an access token found: its
// claims, and the user it was issued for.
type Token struct {
	ClientID string
	Subject  string
	Audience []string
	Scope    string // space-separated
	User     storage.User
}

// Client is what the API asks of the client a token was issued to: the
// scopes and audiences its configuration lists now.
type Client struct {
	ID        string
	Scopes    []string
	Audiences []string
}

// ErrTokenInactive, wrapped by API.VerifyToken's error, means the token
// is not one the broker honours now; ErrUnknownClient, wrapped by
// API.Client's, that no client has the id. Any other error of theirs is
// a failure to answer (503).
var (
	ErrTokenInactive = errors.New("token inactive")
	ErrUnknownClient = errors.New("unknown client")
)

// API is the admin HTTP API over Admin. It takes from the broker only
// what it needs to check a token, as function values: it never sees the
// broker itself.
type API struct {
	Admin    *Admin
	Audience string // Config.Audience
	Log      *slog.Logger
	// VerifyToken checks a broker access token: signature, type,
	// issuer, expiry, revocation, an enabled user (docs/design.md rule 3).
	VerifyToken func(ctx context.Context, raw string) (Token, error)
	// Client looks up the client a token was issued to.
	Client func(ctx context.Context, id string) (Client, error)
	// Failed is told of a failure the API answers with 503, to log and
	// count it; nil tells nobody.
	Failed func(r *http.Request, err error)
	// Routes, when set, wraps the API's own router (the broker records
	// which route served a request with it).
	Routes func(*http.ServeMux) http.Handler
}

// Handler routes the admin API behind its token check. It does not set
// caching headers; the mounting server does.
func (api API) Handler() http.Handler {
	a := api.Admin
	mux := http.NewServeMux()
	p := strings.TrimSuffix(PathPrefix, "/")
	mux.HandleFunc("GET "+p+"/clients", func(w http.ResponseWriter, r *http.Request) {
		list, err := a.ListClients(r.Context())
		api.adminReply(w, r, http.StatusOK, map[string]any{"clients": list}, err)
	})
	mux.HandleFunc("POST "+p+"/clients", func(w http.ResponseWriter, r *http.Request) {
		var spec ClientSpec
		if !api.adminDecode(w, r, &spec) {
			return
		}
		info, secret, err := a.CreateClient(r.Context(), adminActor(r), spec)
		api.adminReply(w, r, http.StatusCreated, struct {
			ClientInfo
			Secret string `json:"client_secret,omitempty"`
		}{info, secret}, err)
	})
	mux.HandleFunc("GET "+p+"/clients/{id}", func(w http.ResponseWriter, r *http.Request) {
		info, err := a.GetClient(r.Context(), r.PathValue("id"))
		api.adminReply(w, r, http.StatusOK, info, err)
	})
	mux.HandleFunc("PATCH "+p+"/clients/{id}", func(w http.ResponseWriter, r *http.Request) {
		var u ClientUpdate
		if !api.adminDecode(w, r, &u) {
			return
		}
		info, err := a.UpdateClient(r.Context(), adminActor(r), r.PathValue("id"), u)
		api.adminReply(w, r, http.StatusOK, info, err)
	})
	mux.HandleFunc("DELETE "+p+"/clients/{id}", func(w http.ResponseWriter, r *http.Request) {
		api.adminReply(w, r, http.StatusNoContent, nil, a.DeleteClient(r.Context(), adminActor(r), r.PathValue("id")))
	})
	mux.HandleFunc("POST "+p+"/clients/{id}/rotate-secret", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Grace string `json:"grace"` // a Go duration: "24h"
		}
		if !api.adminDecode(w, r, &req) {
			return
		}
		var grace time.Duration
		if req.Grace != "" {
			var err error
			if grace, err = time.ParseDuration(req.Grace); err != nil {
				api.adminReply(w, r, 0, nil, invalidAdmin("grace %q is not a duration", req.Grace))
				return
			}
		}
		secret, info, err := a.RotateClientSecret(r.Context(), adminActor(r), r.PathValue("id"), grace)
		api.adminReply(w, r, http.StatusOK, struct {
			ClientInfo
			Secret string `json:"client_secret"`
		}{info, secret}, err)
	})

	mux.HandleFunc("GET "+p+"/users", func(w http.ResponseWriter, r *http.Request) {
		limit := 100
		if v := r.URL.Query().Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				api.adminReply(w, r, 0, nil, invalidAdmin("limit %q is not a positive number", v))
				return
			}
			limit = n
		}
		list, err := a.ListUsers(r.Context(), r.URL.Query().Get("after"), limit)
		resp := map[string]any{"users": list}
		if len(list) == min(limit, MaxUserPage) && len(list) > 0 {
			resp["next_after"] = list[len(list)-1].ID
		}
		api.adminReply(w, r, http.StatusOK, resp, err)
	})
	mux.HandleFunc("GET "+p+"/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		info, err := a.FindUser(r.Context(), r.PathValue("id"))
		api.adminReply(w, r, http.StatusOK, info, err)
	})
	mux.HandleFunc("POST "+p+"/users/{id}/disable", func(w http.ResponseWriter, r *http.Request) {
		api.adminReply(w, r, http.StatusNoContent, nil, a.DisableUser(r.Context(), adminActor(r), r.PathValue("id")))
	})
	mux.HandleFunc("POST "+p+"/users/{id}/enable", func(w http.ResponseWriter, r *http.Request) {
		api.adminReply(w, r, http.StatusNoContent, nil, a.EnableUser(r.Context(), adminActor(r), r.PathValue("id")))
	})
	// A role is a resource of the user: POST grants it, DELETE revokes
	// it, both idempotent. admin is the one role there is.
	mux.HandleFunc("POST "+p+"/users/{id}/roles/{role}", func(w http.ResponseWriter, r *http.Request) {
		err := knownRole(r.PathValue("role"))
		if err == nil {
			err = a.GrantAdmin(r.Context(), adminActor(r), r.PathValue("id"))
		}
		api.adminReply(w, r, http.StatusNoContent, nil, err)
	})
	mux.HandleFunc("DELETE "+p+"/users/{id}/roles/{role}", func(w http.ResponseWriter, r *http.Request) {
		err := knownRole(r.PathValue("role"))
		if err == nil {
			err = a.RevokeAdmin(r.Context(), adminActor(r), r.PathValue("id"))
		}
		api.adminReply(w, r, http.StatusNoContent, nil, err)
	})
	// DELETE is the API's --yes: the method says it.
	mux.HandleFunc("DELETE "+p+"/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		api.adminReply(w, r, http.StatusNoContent, nil, a.DeleteUser(r.Context(), adminActor(r), r.PathValue("id")))
	})
	// An identity is named in the body (link) or the query (unlink):
	// upstream subjects hold "/" and "|", which paths mangle.
	mux.HandleFunc("POST "+p+"/users/{id}/identities", func(w http.ResponseWriter, r *http.Request) {
		var id struct {
			Connector string `json:"connector"`
			Subject   string `json:"subject"`
		}
		if !api.adminDecode(w, r, &id) {
			return
		}
		api.adminReply(w, r, http.StatusNoContent, nil, a.LinkIdentity(r.Context(), adminActor(r), r.PathValue("id"), id.Connector, id.Subject))
	})
	mux.HandleFunc("DELETE "+p+"/users/{id}/identities", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		api.adminReply(w, r, http.StatusNoContent, nil, a.UnlinkIdentity(r.Context(), adminActor(r), r.PathValue("id"), q.Get("connector"), q.Get("subject")))
	})
	api.orgRoutes(mux, p)
	api.connectorRoutes(mux, p)
	api.resourceRoutes(mux, p)
	api.consentRoutes(mux, p)
	api.registrationTokenRoutes(mux, p)
	var routed http.Handler = mux
	if api.Routes != nil {
		routed = api.Routes(mux)
	}
	return api.adminAuth(routed)
}

// adminAuth admits a request bearing a broker access token that is
// active (VerifyToken), whose audience is exactly the admin
// audience, whose scope holds admin, whose user is enabled, whose client
// still exists and is still configured for both, and whose user still
// holds admin rights (holdsAdmin): the admin role, or being that client's
// own service user. Rights end when they are taken away, not when the
// tokens issued under them expire.
// No token or a bad one is 401 with a Bearer challenge (RFC 6750 section
// 3); a good token without the rights is 403 insufficient_scope.
func (api API) adminAuth(h http.Handler) http.Handler {
	aud := api.Audience
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		scheme, raw, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || raw == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="broker-admin"`)
			answer.OAuthError(w, http.StatusUnauthorized, "invalid_request", "an access token is required")
			return
		}
		unauthorized := func(reason string) {
			api.Log.InfoContext(ctx, "admin request refused", "reason", reason)
			w.Header().Set("WWW-Authenticate", `Bearer realm="broker-admin", error="invalid_token"`)
			answer.OAuthError(w, http.StatusUnauthorized, "invalid_token", "the access token is invalid, expired, revoked or not for this API")
		}
		claims, err := api.VerifyToken(ctx, raw)
		user := claims.User
		if errors.Is(err, ErrTokenInactive) {
			unauthorized(err.Error())
			return
		}
		if err != nil {
			api.adminReply(w, r, 0, nil, err)
			return
		}
		if len(claims.Audience) != 1 || claims.Audience[0] != aud {
			unauthorized(fmt.Sprintf("audience %q is not the admin audience alone", claims.Audience))
			return
		}
		client, err := api.Client(ctx, claims.ClientID)
		if errors.Is(err, ErrUnknownClient) {
			unauthorized(fmt.Sprintf("client %q no longer exists", claims.ClientID))
			return
		}
		if err != nil {
			api.adminReply(w, r, 0, nil, err)
			return
		}
		forbidden := func(reason string) {
			api.Log.InfoContext(ctx, "admin request refused", "client_id", claims.ClientID, "user_id", claims.Subject, "reason", reason)
			w.Header().Set("WWW-Authenticate", `Bearer realm="broker-admin", error="insufficient_scope", scope="admin"`)
			answer.OAuthError(w, http.StatusForbidden, "insufficient_scope", "the access token carries no admin rights (the admin scope, for a holder of the admin role)")
		}
		if !slices.Contains(strings.Fields(claims.Scope), Scope) || !slices.Contains(client.Scopes, Scope) || !slices.Contains(client.Audiences, aud) {
			forbidden("no admin scope")
			return
		}
		held, err := holdsAdmin(ctx, api.Admin.store, client.ID, user)
		if err != nil {
			api.adminReply(w, r, 0, nil, err)
			return
		}
		if !held {
			forbidden("the user does not hold the admin role")
			return
		}
		// The audit actor: the client, and the user (a person, or the
		// client's service user).
		actor := claims.ClientID + "/" + claims.Subject
		h.ServeHTTP(w, r.WithContext(context.WithValue(ctx, adminActorKey{}, actor)))
	})
}

// knownRole refuses a role other than RoleAdmin as naming nothing (404).
func knownRole(role string) error {
	if role != RoleAdmin {
		return fmt.Errorf("role %q (the one role is %q): %w", role, RoleAdmin, storage.ErrNotFound)
	}
	return nil
}

func adminActor(r *http.Request) string {
	s, _ := r.Context().Value(adminActorKey{}).(string)
	return s
}

// adminDecode reads a JSON body into v, refusing unknown fields so a
// misspelt setting is an error, not silently ignored.
func (api API) adminDecode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		api.adminReply(w, r, 0, nil, invalidAdmin("body: %v", err))
		return false
	}
	// One JSON value, and nothing after it: a second would be ignored,
	// and what the administrator meant is unclear.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		api.adminReply(w, r, 0, nil, invalidAdmin("body: one JSON object and nothing after it"))
		return false
	}
	return true
}

// adminReply writes v with status, or the error err maps to: 400 for a
// refused request, 404 for nothing by that name, 409 for a conflict, 503
// for anything else (the cause goes to the log).
func (api API) adminReply(w http.ResponseWriter, r *http.Request, status int, v any, err error) {
	switch {
	case errors.Is(err, ErrInvalidRequest):
		answer.OAuthError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	case errors.Is(err, storage.ErrInvalidText):
		// The cause quotes the database; the log has it.
		api.Log.InfoContext(r.Context(), "admin request refused by storage", "err", err)
		answer.OAuthError(w, http.StatusBadRequest, "invalid_request", answer.InvalidTextReason("the request"))
		return
	case errors.Is(err, storage.ErrNotFound):
		answer.OAuthError(w, http.StatusNotFound, "not_found", err.Error())
		return
	case errors.Is(err, storage.ErrAlreadyExists):
		answer.OAuthError(w, http.StatusConflict, "conflict", err.Error())
		return
	case err != nil:
		if api.Failed != nil {
			api.Failed(r, err)
		}
		answer.OAuthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the operation could not be completed; see the broker log")
		return
	}
	if v == nil {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

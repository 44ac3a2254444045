package registration

// RFC 7591 (registration) and RFC 7592 (its read and delete), cited
// section by section. Every error is in the form RFC 7591 section 3.2.2
// gives, that of RFC 6749 section 5.2 (answer.OAuthError).

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/idbroker/broker/broker/answer"
	"github.com/idbroker/broker/broker/edge"
	"github.com/idbroker/broker/broker/ratelimit"
	"github.com/idbroker/broker/keys"
	"github.com/idbroker/broker/storage"
)

// Path is the registration endpoint; a registered client's configuration
// endpoint (RFC 7592) is Path/{client_id}.
const Path = "/register"

// limitName names the open policy's limit in counters and metrics.
const limitName = "register"

// Options are what a Registrar needs.
type Options struct {
	Config Config
	Issuer string
	Store  storage.Storage
	// Limiter counts open registrations per client address.
	Limiter *ratelimit.Limiter
	// Scopes are the broker's own scopes, which a registered client may
	// name.
	Scopes []string
	// ResourceScopes returns the scopes of the resources that accept
	// third-party clients, which a registered client may name too.
	ResourceScopes func(ctx context.Context) ([]string, error)
	// Configured reports whether an id is a client of the configuration
	// file, which no registered client may take.
	Configured func(id string) bool
	Failures   answer.Failures
	Log        *slog.Logger
	Now        func() time.Time
}

// Registrar serves dynamic client registration and ends registered
// clients left unused.
type Registrar struct {
	cfg        Config
	issuer     string
	store      storage.Storage
	limiter    *ratelimit.Limiter
	scopes     []string
	resScopes  func(context.Context) ([]string, error)
	configured func(string) bool
	failures   answer.Failures
	log        *slog.Logger
	now        func() time.Time
}

// New returns the registrar o describes.
func New(o Options) *Registrar {
	return &Registrar{cfg: o.Config, issuer: o.Issuer, store: o.Store, limiter: o.Limiter, scopes: o.Scopes,
		resScopes: o.ResourceScopes, configured: o.Configured, failures: o.Failures, log: o.Log, now: o.Now}
}

// Enabled reports whether the registration endpoint is served, for
// metadata to name it.
func (g *Registrar) Enabled() bool { return g.cfg.Enabled() }

// Register mounts the registration and configuration endpoints on mux,
// when the policy allows registration; otherwise /register is unknown
// (404), as on a server without it. RFC 7592's update (PUT) is not
// offered: 405, and a client registers anew instead.
func (g *Registrar) Register(mux *http.ServeMux) {
	if !g.Enabled() {
		return
	}
	mux.HandleFunc("POST "+Path, g.serveRegister)
	mux.HandleFunc("GET "+Path+"/{client_id}", g.serveRead)
	mux.HandleFunc("DELETE "+Path+"/{client_id}", g.serveDelete)
	mux.HandleFunc(Path+"/{client_id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "GET, DELETE")
		answer.OAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "a registered client is read (GET) or deleted (DELETE); to change one, register anew")
	})
	mux.HandleFunc(Path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "POST")
		answer.OAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "clients register with POST")
	})
}

// Response is the client information response (RFC 7591 section 3.2.1,
// RFC 7592 section 3): the client's identifier and credentials, and its
// metadata as registered.
type Response struct {
	ClientID         string `json:"client_id"`
	ClientIDIssuedAt int64  `json:"client_id_issued_at"`
	ClientSecret     string `json:"client_secret,omitempty"`
	// ClientSecretExpiresAt is 0, never, when a secret is issued.
	ClientSecretExpiresAt   *int64 `json:"client_secret_expires_at,omitempty"`
	RegistrationAccessToken string `json:"registration_access_token,omitempty"`
	RegistrationClientURI   string `json:"registration_client_uri"`
	Metadata
}

// serveRegister is RFC 7591 section 3.1: a client sends its metadata and
// gets an identifier. Under the token policy the initial access token is
// checked first (section 3: a Bearer token, RFC 6750), then the
// metadata; the token's use is spent only with the client stored,
// atomically (storage.Registrations.RegisterClient), so a refusal
// writes nothing.
func (g *Registrar) serveRegister(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	w.Header().Set("Cache-Control", "no-store")
	source := edge.Source(ctx)
	var initial storage.RegistrationToken
	switch g.cfg.Policy {
	case PolicyOpen:
		allowed, wait, err := g.limiter.Take(ctx, limitName, ratelimit.Source(source), g.cfg.OpenRateLimit)
		if err != nil {
			g.failures.WriteStore(ctx, w, "register rate limit", err)
			return
		}
		if !allowed {
			w.Header().Set("Retry-After", ratelimit.RetryAfter(wait))
			answer.OAuthError(w, http.StatusTooManyRequests, "temporarily_unavailable", "too many registrations from this address; retry later")
			return
		}
	case PolicyToken:
		raw, ok := bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="register"`)
			answer.OAuthError(w, http.StatusUnauthorized, "invalid_token", "registration needs an initial access token from the administrator")
			return
		}
		var err error
		initial, err = g.store.RegistrationToken(ctx, hash(raw), g.now())
		if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrExpired) {
			g.refuseInitialToken(w, r, err)
			return
		}
		if err != nil {
			g.failures.WriteStore(ctx, w, "get registration token", err)
			return
		}
	}

	body, err := io.ReadAll(r.Body)
	if err != nil {
		answer.OAuthError(w, http.StatusBadRequest, "invalid_client_metadata", "the body could not be read (at most 64 KiB)")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		answer.OAuthError(w, http.StatusBadRequest, "invalid_client_metadata", "the body must be application/json (RFC 7591 section 3.1)")
		return
	}
	m, ref := decodeMetadata(body)
	if ref == nil {
		scopes, err := g.allowedScopes(ctx, m)
		if err != nil {
			g.failures.WriteStore(ctx, w, "list resource scopes", err)
			return
		}
		var c storage.Client
		c, m, ref = m.check(g.cfg.Policy, scopes)
		if ref == nil {
			g.register(w, r, c, m, initial)
			return
		}
	}
	g.log.InfoContext(ctx, "registration refused", "source", source, "error", ref.code, "reason", ref.description)
	answer.OAuthError(w, http.StatusBadRequest, ref.code, ref.description)
}

// allowedScopes are the scopes a client registering m may name: the
// broker's, and when m names others, those of the resources that accept
// third parties (read only then).
func (g *Registrar) allowedScopes(ctx context.Context, m Metadata) ([]string, error) {
	own := true
	for _, s := range strings.Fields(m.Scope) {
		own = own && slices.Contains(g.scopes, s)
	}
	if own {
		return g.scopes, nil
	}
	res, err := g.resScopes(ctx)
	if err != nil {
		return nil, err
	}
	return append(slices.Clip(g.scopes), res...), nil
}

// register completes a registration whose metadata passed: it gives the
// client its id and credentials, stores it with the initial token's use,
// audits it and answers 201 (RFC 7591 section 3.2.1).
func (g *Registrar) register(w http.ResponseWriter, r *http.Request, c storage.Client, m Metadata, initial storage.RegistrationToken) {
	ctx := r.Context()
	now := g.now()
	resp := Response{Metadata: m}
	if m.usesSecret() {
		secret := keys.RandomID()
		resp.ClientSecret, resp.ClientSecretExpiresAt = secret, new(int64)
		c.SecretHashes = []storage.SecretHash{{Hash: hash(secret)}}
	}
	if ref := checkRules(c); ref != nil {
		g.log.InfoContext(ctx, "registration refused", "source", edge.Source(ctx), "error", ref.code, "reason", ref.description)
		answer.OAuthError(w, http.StatusBadRequest, ref.code, ref.description)
		return
	}
	c.ID = g.newClientID()
	resp.RegistrationAccessToken = keys.RandomID()
	c.RegistrationTokenHash = registrationTokenHash(resp.RegistrationAccessToken)
	c.CreatedAt, c.UpdatedAt = now, now
	err := g.store.RegisterClient(ctx, c, initial.Hash, now)
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrExpired) {
		// The token was revoked or spent since it was checked.
		g.refuseInitialToken(w, r, err)
		return
	}
	if err != nil {
		g.failures.WriteStore(ctx, w, "register client", err)
		return
	}
	details := map[string]string{"policy": g.cfg.Policy, "source": edge.Source(ctx),
		"token_endpoint_auth_method": m.TokenEndpointAuthMethod, "name": m.ClientName}
	if initial.ID != "" {
		details["registration_token"] = initial.ID
	}
	g.audit(ctx, "client.register", c.ID, details)
	resp.ClientID, resp.ClientIDIssuedAt = c.ID, now.Unix()
	resp.RegistrationClientURI = g.issuer + Path + "/" + c.ID
	reply(w, http.StatusCreated, resp)
}

// refuseInitialToken answers a registration whose initial access token
// is unknown, revoked, expired or spent: 401 invalid_token (RFC 6750
// section 3.1), the same for each, so the answer tells nothing of tokens
// the caller does not hold.
func (g *Registrar) refuseInitialToken(w http.ResponseWriter, r *http.Request, err error) {
	g.log.InfoContext(r.Context(), "registration refused", "source", edge.Source(r.Context()), "reason", "initial access token: "+err.Error())
	w.Header().Set("WWW-Authenticate", `Bearer realm="register", error="invalid_token"`)
	answer.OAuthError(w, http.StatusUnauthorized, "invalid_token", "the initial access token is invalid, expired, used up or revoked")
}

// serveRead is RFC 7592 section 2.1: the client reads its registration
// with its registration access token. Section 3 requires the token in
// the answer: it is the one presented, which stays valid (the broker
// keeps only its hash and does not rotate it). The secret is not shown
// again: the broker keeps only its hash.
func (g *Registrar) serveRead(w http.ResponseWriter, r *http.Request) {
	c, ok := g.authorized(w, r)
	if !ok {
		return
	}
	token, _ := bearer(r)
	reply(w, http.StatusOK, Response{
		ClientID: c.ID, ClientIDIssuedAt: c.CreatedAt.Unix(), RegistrationAccessToken: token,
		RegistrationClientURI: g.issuer + Path + "/" + c.ID, Metadata: metadataOf(c),
	})
}

// serveDelete is RFC 7592 section 2.3: the client deregisters itself.
// Afterwards its id, secret and registration access token are unknown,
// so its refresh tokens are refused with it (client authentication
// fails), as when an administrator deletes a client.
func (g *Registrar) serveDelete(w http.ResponseWriter, r *http.Request) {
	c, ok := g.authorized(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	err := g.store.DeleteClient(ctx, c.ID)
	if errors.Is(err, storage.ErrNotFound) {
		// Deleted meanwhile: the token names nothing now.
		refuseRegistrationToken(w)
		return
	}
	if err != nil {
		g.failures.WriteStore(ctx, w, "delete registered client", err)
		return
	}
	g.audit(ctx, "client.unregister", c.ID, map[string]string{"source": edge.Source(ctx)})
	w.WriteHeader(http.StatusNoContent)
}

// authorized returns the registered client of the request's path when
// the request bears its registration access token (RFC 7592 section 3),
// compared in constant time. Otherwise it answers 401 invalid_token,
// alike whether the client exists or not, so a token for one client
// learns nothing of another.
func (g *Registrar) authorized(w http.ResponseWriter, r *http.Request) (storage.Client, bool) {
	ctx := r.Context()
	w.Header().Set("Cache-Control", "no-store")
	raw, ok := bearer(r)
	if !ok {
		refuseRegistrationToken(w)
		return storage.Client{}, false
	}
	c, err := g.store.GetClient(ctx, r.PathValue("client_id"))
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		g.failures.WriteStore(ctx, w, "get registered client", err)
		return storage.Client{}, false
	}
	stored := c.RegistrationTokenHash
	if len(stored) != sha256.Size {
		stored = make([]byte, sha256.Size) // no client, or not a registered one: compared all the same
	}
	if subtle.ConstantTimeCompare(registrationTokenHash(raw), stored) != 1 || c.RegistrationTokenHash == nil {
		g.log.InfoContext(ctx, "registration access refused", "source", edge.Source(ctx))
		refuseRegistrationToken(w)
		return storage.Client{}, false
	}
	return c, true
}

func refuseRegistrationToken(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="register", error="invalid_token"`)
	answer.OAuthError(w, http.StatusUnauthorized, "invalid_token", "the registration access token is invalid")
}

// metadataOf is the metadata of a registered client, as it was
// registered.
func metadataOf(c storage.Client) Metadata {
	m := Metadata{RedirectURIs: c.RedirectURIs, GrantTypes: c.GrantTypes, ResponseTypes: []string{"code"},
		ClientName: c.Name, Scope: strings.Join(c.Scopes, " "), JWKSURI: c.JWKSURL, JWKS: c.JWKS}
	switch {
	case c.Public:
		m.TokenEndpointAuthMethod = authNone
	case len(c.SecretHashes) > 0:
		// The broker accepts a secret either way; basic is the default.
		m.TokenEndpointAuthMethod = authSecretBase
	default:
		m.TokenEndpointAuthMethod = authPrivateJWT
	}
	return m
}

// ExpireUnused deletes the registered clients that obtained no token for
// the configured lifetime (storage.Registrations.DeleteUnusedClients)
// and audits each. It returns how many it deleted.
func (g *Registrar) ExpireUnused(ctx context.Context) (int, error) {
	ids, err := g.store.DeleteUnusedClients(ctx, g.now().Add(-g.cfg.UnusedClientLifetime))
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		g.audit(ctx, "client.expire", id, map[string]string{"unused_for": g.cfg.UnusedClientLifetime.String()})
	}
	return len(ids), nil
}

// audit records what was done. The change stands if the record cannot
// be written; the failure is logged and counted as a store failure.
func (g *Registrar) audit(ctx context.Context, action, clientID string, details map[string]string) {
	err := g.store.AppendAudit(ctx, storage.AuditEvent{Time: g.now(), Actor: "registration", Action: action,
		Target: "client:" + clientID, Details: details})
	if err != nil {
		g.failures.StorageErrors.WithLabelValues("audit " + action).Inc()
		g.log.ErrorContext(ctx, "storage failed", "op", "audit "+action, "client_id", clientID, "err", err)
	}
}

// newClientID returns a fresh client id, none of the configuration's.
func (g *Registrar) newClientID() string {
	for {
		id := "reg-" + keys.RandomID()[:22] // 132 random bits
		if !g.configured(id) {
			return id
		}
	}
}

// bearer returns the request's Bearer token (RFC 6750 section 2.1).
func bearer(r *http.Request) (string, bool) {
	scheme, raw, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	raw = strings.TrimSpace(raw)
	return raw, strings.EqualFold(scheme, "Bearer") && raw != ""
}

// hash is the SHA-256 storage keeps of a client secret or an initial
// access token, as the client model and the admin API that creates
// initial access tokens keep them.
func hash(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}

// registrationTokenHash is how a registration access token is kept
// (keys.TokenHash), of a kind no other token shares.
func registrationTokenHash(token string) []byte {
	return keys.TokenHash("registration access token", token)
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

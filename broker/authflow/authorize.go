package authflow

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/idbroker/broker/broker/answer"
	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/broker/tokens"
	"github.com/idbroker/broker/keys"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/upstream"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// VerifyAuthRequest finds the client of an authorization request. Errors
// here cannot be sent to the client (its redirect URI is not trusted yet),
// so serveAuthorize renders them as a page.
func (f *Flow) VerifyAuthRequest(ctx context.Context, r *op.Request[oidc.AuthRequest]) (*op.ClientRequest[oidc.AuthRequest], error) {
	if r.Data.ClientID == "" {
		return nil, oidc.ErrInvalidRequest().WithDescription("the request names no client (client_id is missing)")
	}
	client, err := f.clients.Get(ctx, r.Data.ClientID)
	if errors.Is(err, clients.ErrDocumentFetchesLimited) {
		return nil, oidc.ErrSlowDown().WithDescription("too many applications were looked up from this address; try again in a minute")
	}
	if errors.Is(err, clients.ErrUnusableDocument) {
		return nil, oidc.ErrInvalidRequest().WithDescription("the application %q could not be verified: its metadata document could not be used", r.Data.ClientID)
	}
	if errors.Is(err, clients.ErrUnknownClient) {
		return nil, oidc.ErrInvalidRequest().WithDescription("the application %q is not registered", r.Data.ClientID)
	}
	if err != nil {
		return nil, f.failures.Store(ctx, "get client", err)
	}
	// The broker's redirect URI rule before the library's, which lets a
	// native client's loopback URI take any port, for every client.
	if r.Data.RedirectURI != "" && !client.RedirectURIAllowed(r.Data.RedirectURI) {
		return nil, oidc.ErrInvalidRequestRedirectURI().WithDescription("the redirect_uri is not one registered for this application")
	}
	return &op.ClientRequest[oidc.AuthRequest]{Request: r, Client: client.RequestView(r.Data.RedirectURI)}, nil
}

// Authorize runs after the library has matched the redirect URI, so every
// error here goes back to the client. It enforces PKCE, stores the request
// bound to the browser (binding.go) and completes it from the browser's
// session when that may answer it (reusableSession), or sends the browser
// to the login page.
func (f *Flow) Authorize(ctx context.Context, r *op.ClientRequest[oidc.AuthRequest]) (*op.Redirect, error) {
	client := r.Client.(*clients.Client)
	req := r.Data
	if err := checkAuthorizeParams(r.Form); err != nil {
		return nil, err
	}
	if req.RequestParam != "" {
		return nil, oidc.ErrRequestNotSupported()
	}
	if req.ResponseMode != "" && req.ResponseMode != oidc.ResponseModeQuery {
		return nil, oidc.ErrInvalidRequest().WithDescription("response_mode %q is not supported; use query", req.ResponseMode)
	}
	// PKCE: required of public clients (they cannot keep a secret, so the
	// verifier is all that binds the code to them) and of third-party ones
	// (the MCP authorization specification requires it of every client);
	// S256 only, since "plain" sends the verifier itself through the
	// browser.
	if req.CodeChallenge == "" && (client.Public() || client.ThirdParty()) {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge is required (PKCE with S256)")
	}
	if req.CodeChallenge != "" && req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	}
	if req.CodeChallenge != "" {
		if err := tokens.CheckCodeChallenge(req.CodeChallenge); err != nil {
			return nil, oidc.ErrInvalidRequest().WithDescription("%s", err.Error())
		}
	}
	if !client.AllowsGrant(clients.GrantAuthorizationCode) {
		return nil, oidc.ErrUnauthorizedClient().WithDescription("this client may not use the authorization code flow")
	}
	// RFC 8707: registered resources and the client's audiences;
	// anything else is invalid_target, sent back to the client.
	audience, err := f.targets.Granted(ctx, client, r.Form["resource"])
	var refusal *oidc.Error
	if err != nil && !errors.As(err, &refusal) {
		return nil, f.failures.Store(ctx, "look up resource", err)
	}
	if err != nil {
		return nil, err
	}
	hintSubject, err := f.idTokenHintSubject(req.IDTokenHint)
	if err != nil {
		return nil, err
	}

	now := f.now()
	browser, setBrowser := f.bindBrowser(r.Header)
	ar := storage.AuthRequest{
		ID:                  keys.RandomID(),
		ClientID:            client.GetID(),
		RedirectURI:         req.RedirectURI,
		Scopes:              req.Scopes,
		State:               req.State,
		Nonce:               req.Nonce,
		ResponseType:        string(req.ResponseType),
		ResponseMode:        string(req.ResponseMode),
		CodeChallenge:       req.CodeChallenge,
		CodeChallengeMethod: string(req.CodeChallengeMethod),
		Prompt:              req.Prompt,
		LoginHint:           req.LoginHint,
		UILocales:           localeStrings(req.UILocales),
		Audience:            audience,
		CreatedAt:           now,
		ExpiresAt:           now.Add(f.cfg.AuthRequestTTL),
		BrowserHash:         browser,
	}
	if req.MaxAge != nil {
		d := time.Duration(*req.MaxAge) * time.Second
		ar.MaxAge = &d
	}
	// organization (Auth0's parameter) starts the login in an
	// organisation, by slug or id: its connectors are offered, one is
	// gone to directly, and the tokens name it. The auth request keeps
	// its id in Org until the login is done (loginOrg).
	var orgConns []upstream.CallbackConnector
	if v := r.Form.Get("organization"); v != "" {
		org, ok := f.orgByParam(v)
		if !ok {
			return nil, oidc.ErrInvalidRequest().WithDescription("organization %q is not known", v)
		}
		ar.Org, orgConns = org.ID, f.orgConnectors(org.ID)
	}
	// idp names the connector, skipping the login page.
	var direct upstream.CallbackConnector
	if idp := r.Form.Get("idp"); idp != "" {
		conn := f.upstreams.Get(idp)
		if conn == nil {
			return nil, oidc.ErrInvalidRequest().WithDescription("idp %q is not a configured connector", idp)
		}
		direct, _ = conn.(upstream.CallbackConnector)
	} else if len(orgConns) == 1 {
		direct = orgConns[0]
	}
	sess, refused, err := f.reusableSession(ctx, r.Header, req, joining(client), r.Form.Get("idp"), ar.Org, hintSubject)
	if err != nil {
		return nil, f.failures.Store(ctx, "get session", err)
	}
	if refused == "" {
		completeFromSession(&ar, sess)
	} else if slices.Contains(req.Prompt, oidc.PromptNone) {
		// prompt=none: never a page, so no session that can answer it
		// means the client hears login_required.
		f.log.InfoContext(ctx, "prompt=none refused", "client_id", client.GetID(), "reason", refused)
		return nil, oidc.ErrLoginRequired().WithDescription("the user must sign in")
	}
	if err := f.store.CreateAuthRequest(ctx, ar); err != nil {
		return nil, f.failures.Store(ctx, "create auth request", err)
	}
	// Every way on from here is a step of this request, which only this
	// browser may take: a browser that has no id yet gets it with the
	// redirect (single sign-on included, whose next step is the callback).
	redirect := func(dest string) *op.Redirect {
		red := op.NewRedirect(dest)
		if setBrowser != nil {
			red.Header.Add("Set-Cookie", setBrowser.String())
		}
		return red
	}
	if ar.Done {
		f.loginOutcome(ctx, ar, ar.IDP, "session")
		return redirect(CallbackPath + "?id=" + url.QueryEscape(ar.ID)), nil
	}
	if direct != nil {
		dest, err := f.upstreamRedirect(ctx, ar, direct, req.LoginHint)
		if errors.Is(err, upstream.ErrUnavailable) {
			// serveAuthorize shows the page saying the service is
			// unavailable; the cause is for the log.
			f.metrics.Logins.WithLabelValues(direct.ID(), "upstream unavailable").Inc()
			f.log.InfoContext(ctx, "login", "connector", direct.ID(), "outcome", "upstream unavailable", "err", err)
			return nil, answer.TemporarilyUnavailable()
		}
		if err != nil {
			return nil, f.failures.Store(ctx, "start upstream login", err)
		}
		return redirect(dest), nil
	}
	return redirect(client.LoginURL(ar.ID)), nil
}

func localeStrings(l oidc.Locales) []string {
	var s []string
	for _, t := range l {
		s = append(s, t.String())
	}
	return s
}

// authorizeCallback finishes an authenticated request: it issues the code
// and sends the browser back to the client with code, state and iss (RFC
// 9207, so a client talking to several providers can tell whose code it
// got).
func (f *Flow) authorizeCallback(w http.ResponseWriter, r *http.Request) {
	ar, ok := f.liveAuthRequest(w, r, r.URL.Query().Get("id"))
	if !ok {
		return
	}
	if !ar.Done {
		f.errorPages.Render(w, r, http.StatusBadRequest, "Sign-in not finished", "This sign-in has not been completed. Go back to the application and start again.")
		return
	}
	client, ok := f.askConsent(w, r, ar)
	if !ok {
		return
	}
	f.issueCode(w, r, ar, client)
}

// issueCode turns the finished auth request ar into a code, atomically
// (one request yields one code), and sends the browser back to the
// client with it.
func (f *Flow) issueCode(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest, client *clients.Client) {
	ctx := r.Context()
	// A third-party client becomes one of the session's clients (which
	// logout tells) only now, once the person allowed it: one refused
	// consent, or asking silently, learns nothing of them. A session that
	// ended meanwhile (a logout in another tab) gives it no code. (Other
	// clients joined at sign-in; a code of an ended session redeems to
	// nothing anyway.)
	if client.ThirdParty() && ar.SessionID != "" {
		err := f.store.TouchSession(ctx, ar.SessionID, ar.ClientID, f.now())
		if errors.Is(err, storage.ErrNotFound) {
			f.signedOutSince(w, r)
			return
		}
		if err != nil {
			f.failures.StorePage(w, r, "touch session", err)
			return
		}
	}
	code := keys.RandomID()
	err := f.store.CreateAuthCode(ctx, storage.AuthCode{
		CodeHash:             tokens.CodeHash(code),
		ClientID:             ar.ClientID,
		RedirectURI:          ar.RedirectURI,
		UserID:               ar.UserID,
		Scopes:               ar.Scopes,
		Audience:             ar.Audience,
		Nonce:                ar.Nonce,
		CodeChallenge:        ar.CodeChallenge,
		CodeChallengeMethod:  ar.CodeChallengeMethod,
		AuthTime:             ar.AuthTime,
		AMR:                  ar.AMR,
		IDP:                  ar.IDP,
		Org:                  ar.Org,
		SessionID:            ar.SessionID,
		UpstreamRefreshToken: ar.UpstreamRefreshToken,
		Impersonator:         ar.Impersonator,
		ExpiresAt:            f.now().Add(f.cfg.CodeTTL),
	}, ar.ID)
	if errors.Is(err, storage.ErrNotFound) {
		// Another tab finished the same request first.
		f.errorPages.Render(w, r, http.StatusBadRequest, "Sign-in already used", "This sign-in was already completed. Go back to the application and start again.")
		return
	}
	if err != nil {
		f.failures.StorePage(w, r, "create auth code", err)
		return
	}
	http.Redirect(w, r, clientRedirect(ar.RedirectURI, url.Values{
		"code":  {code},
		"state": {ar.State},
		"iss":   {f.issuer},
	}), http.StatusSeeOther)
}

// clientRedirect adds params to a registered redirect URI, keeping any
// query it already has.
func clientRedirect(redirectURI string, params url.Values) string {
	u, err := url.Parse(redirectURI)
	if err != nil {
		// Registered and matched earlier, so it parses; fail closed anyway.
		return "/"
	}
	q := u.Query()
	for k, v := range params {
		if len(v) == 1 && v[0] == "" {
			continue
		}
		q[k] = v
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// liveAuthRequest loads an auth request for a step of it, rendering the
// page that says what happened when it cannot be used: unknown, expired,
// or started in another browser (boundToBrowser).
func (f *Flow) liveAuthRequest(w http.ResponseWriter, r *http.Request, id string) (storage.AuthRequest, bool) {
	if id == "" {
		f.errorPages.Render(w, r, http.StatusBadRequest, "Sign-in link incomplete", "This page needs a sign-in request. Go back to the application and choose sign in again.")
		return storage.AuthRequest{}, false
	}
	ar, err := f.store.GetAuthRequest(r.Context(), id)
	if err == nil && !f.now().Before(ar.ExpiresAt) {
		err = storage.ErrNotFound
	}
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrExpired) {
		f.errorPages.Render(w, r, http.StatusNotFound, "This sign-in has expired",
			"For your security a sign-in page works for a limited time, and this one has expired or was already used. Nothing was changed. Go back to the application you came from and choose sign in again.")
		return storage.AuthRequest{}, false
	}
	if err != nil {
		f.failures.StorePage(w, r, "get auth request", err)
		return storage.AuthRequest{}, false
	}
	if !f.boundToBrowser(w, r, ar) {
		return storage.AuthRequest{}, false
	}
	return ar, true
}

// signedOutSince says that the session a sign-in step belongs to ended
// (a logout in another tab) after the sign-in began.
func (f *Flow) signedOutSince(w http.ResponseWriter, r *http.Request) {
	f.errorPages.Render(w, r, http.StatusBadRequest, "Signed out", "You signed out after this sign-in began. Go back to the application and start again.")
}

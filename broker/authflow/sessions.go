package authflow

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/keys"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/upstream"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// sessionCookie returns the name of the cookie that holds the browser's
// single-sign-on session. With https the __Host- prefix pins it to this
// origin, as for the binding cookie (binding.go).
func (f *Flow) sessionCookie() string {
	if f.secure {
		return "__Host-broker_session"
	}
	return "broker_session"
}

// sessionIDFor is the stored session id for a cookie value. The id is
// also the sid clients see, so it is a hash: neither the store nor a
// client holds anything that works as the cookie.
func sessionIDFor(cookieValue string) string {
	return base64.RawURLEncoding.EncodeToString(keys.TokenHash("session", cookieValue))
}

// sessionCookieValue returns the session cookie in request headers h, or "".
func (f *Flow) sessionCookieValue(h http.Header) string {
	c, err := (&http.Request{Header: h}).Cookie(f.sessionCookie())
	if err != nil {
		return ""
	}
	return c.Value
}

// newSessionCookie makes the cookie for value; maxAge < 0 deletes it.
func (f *Flow) newSessionCookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     f.sessionCookie(),
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   f.secure,
		// Lax: sent on the top-level navigations a client starts to
		// /authorize and /end_session, never on cross-site posts.
		SameSite: http.SameSiteLaxMode,
	}
}

// browserSession returns the live session the cookie in h names; ok is
// false when there is none (no cookie, ended, expired).
func (f *Flow) browserSession(ctx context.Context, h http.Header) (s storage.Session, ok bool, err error) {
	value := f.sessionCookieValue(h)
	if value == "" {
		return storage.Session{}, false, nil
	}
	s, err = f.store.GetSession(ctx, sessionIDFor(value), f.now())
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Session{}, false, nil
	}
	if err != nil {
		return storage.Session{}, false, fmt.Errorf("get session: %w", err)
	}
	return s, true, nil
}

// startSession gives the browser a session for a login that just
// succeeded and returns its id. A person signing in again in a browser
// that has their session (prompt=login, max_age) continues it, so one
// logout still ends everything issued in it; its auth_time (which only
// errs toward asking again), org and upstream token stay those of the
// first login.
func (f *Flow) startSession(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest, userID string, now time.Time, idp string, d loginDetails) (string, error) {
	ctx := r.Context()
	current, ok, err := f.browserSession(ctx, r.Header)
	if err != nil {
		return "", err
	}
	// An impersonated login never continues the user's own session, nor
	// the reverse: what single sign-on issues from a session must say
	// whether it was an impersonation.
	joins := f.joinsAtSignIn(ctx, ar.ClientID)
	if ok && current.UserID == userID && current.Impersonator == d.impersonator() {
		err := f.store.TouchSession(ctx, current.ID, joins, now)
		if err == nil {
			return current.ID, nil
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return "", fmt.Errorf("touch session: %w", err)
		}
	} else if ok {
		// Someone else signs in in this browser: the session it held
		// would lose its cookie and live on where no logout from here
		// could end it, so it ends now, and its clients are told.
		ended, err := f.store.EndSession(ctx, current.ID)
		switch {
		case err == nil:
			f.log.InfoContext(ctx, "session ended", "sid", ended.ID, "user_id", ended.UserID, "by", "another sign-in in the browser")
			f.backchannel.Notify(ctx, ended)
		case !errors.Is(err, storage.ErrNotFound):
			return "", fmt.Errorf("end the browser's previous session: %w", err)
		}
	}
	value := keys.RandomID()
	s := storage.Session{
		ID:         sessionIDFor(value),
		UserID:     userID,
		AuthTime:   now,
		AMR:        []string{d.amr},
		IDP:        idp,
		Clients:    sessionClients(joins),
		CreatedAt:  now,
		LastSeenAt: now,
		ExpiresAt:  now.Add(f.cfg.SessionAbsoluteTTL),
		IdleTTL:    f.cfg.SessionIdleTTL,
		// The same sealed bytes as the first family's: a re-check that
		// rotates them finds the session's copy by them.
		Org:                  d.org,
		UpstreamRefreshToken: d.upstreamRefresh,
		Impersonator:         d.impersonator(),
	}
	if err := f.store.CreateSession(ctx, s); err != nil {
		return "", fmt.Errorf("create session: %w", err)
	}
	http.SetCookie(w, f.newSessionCookie(value, int(f.cfg.SessionAbsoluteTTL/time.Second)))
	return s.ID, nil
}

// reusableSession returns the browser's session when it may answer req
// without a login page, having recorded its use, and joins (a client
// that needs no consent; "" for none: joining) as one of its clients.
// Otherwise refused says why (for the log). OpenID Connect Core section
// 3.1.2.1: prompt=login and select_account ask for a login; max_age asks
// for one when the session's login is older (max_age=0: always; the
// library has already turned prompt=login into max_age=0); login_hint and
// id_token_hint naming someone else ask for theirs; so do idp and
// organization naming another connector or organisation than the
// session's login. A disabled user's
// session answers nothing.
func (f *Flow) reusableSession(ctx context.Context, h http.Header, req *oidc.AuthRequest, joins, idp, org, hintSubject string) (s storage.Session, refused string, err error) {
	s, ok, err := f.browserSession(ctx, h)
	if err != nil || !ok {
		return storage.Session{}, "no session", err
	}
	now := f.now()
	switch {
	case slices.Contains(req.Prompt, oidc.PromptLogin), slices.Contains(req.Prompt, oidc.PromptSelectAccount):
		return s, "prompt asks for a login", nil
	case req.MaxAge != nil && (*req.MaxAge == 0 || now.Sub(s.AuthTime) > time.Duration(*req.MaxAge)*time.Second):
		return s, "max_age exceeded", nil
	case idp != "" && idp != s.IDP:
		return s, "idp names another connector", nil
	case s.IDP != "" && f.upstreams.Get(s.IDP) == nil:
		// Deleted or disabled since: it signs nobody in, now or again.
		return s, "its sign-in provider is no longer configured", nil
	case org != "" && org != s.Org:
		return s, "organization names another organisation", nil
	case hintSubject != "" && hintSubject != s.UserID:
		return s, "id_token_hint names another user", nil
	}
	user, err := f.store.GetUser(ctx, s.UserID)
	if errors.Is(err, storage.ErrNotFound) {
		return s, "user no longer exists", nil
	}
	if err != nil {
		return storage.Session{}, "", fmt.Errorf("get session user: %w", err)
	}
	if user.Disabled {
		return s, "user disabled", nil
	}
	// A session from before the address's organisation required SSO (a
	// one-time code's, another connector's) answers nothing more: the
	// person signs in again, through the organisation.
	if _, ok := f.identities.SSORequired(user.Email, storage.Organization{ID: s.Org}); ok {
		return s, "organisation requires its own sign-in", nil
	}
	if req.LoginHint != "" && !hintNames(user, req.LoginHint) {
		return s, "login_hint names someone else", nil
	}
	err = f.store.TouchSession(ctx, s.ID, joins, now)
	if errors.Is(err, storage.ErrNotFound) {
		return s, "session ended", nil
	}
	if err != nil {
		return storage.Session{}, "", fmt.Errorf("touch session: %w", err)
	}
	return s, "", nil
}

// hintNames reports whether a login_hint (a platform UUID or an email
// address) names user. A hint that cannot be matched names someone else:
// a fresh login is the safe answer.
func hintNames(user storage.User, hint string) bool {
	if id, err := uuid.Parse(hint); err == nil {
		return id.String() == user.ID
	}
	email, err := upstream.NormalizeEmail(hint)
	return err == nil && user.Email != "" && email == user.Email
}

// idTokenHintSubject verifies an id_token_hint as logout does and returns
// the user it names; "" when there is no hint.
func (f *Flow) idTokenHintSubject(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	c, err := f.verifyIDTokenHint(raw)
	if err != nil {
		return "", oidc.ErrInvalidRequest().WithDescription("id_token_hint is not a token this service issued")
	}
	return c.Subject, nil
}

// completeFromSession marks ar authenticated by session s: the session's
// user, auth_time and amr, no login page. The org and upstream token go
// with it, so the tokens carry org_id and their family is re-checked
// upstream as the first login's is.
func completeFromSession(ar *storage.AuthRequest, s storage.Session) {
	ar.UserID = s.UserID
	ar.AuthTime = s.AuthTime
	ar.AMR = s.AMR
	ar.IDP = s.IDP
	ar.Org = s.Org
	ar.UpstreamRefreshToken = s.UpstreamRefreshToken
	ar.Impersonator = s.Impersonator
	ar.SessionID = s.ID
	ar.Done = true
}

// logout ends the browser's session, if it has one: its refresh families
// are revoked with it (one storage operation), its clients are told over
// the back channel, and the cookie is cleared. The browser then goes to
// dest, or to the signed-out page when dest is empty.
func (f *Flow) logout(ctx context.Context, h http.Header, dest string) (*op.Redirect, error) {
	value := f.sessionCookieValue(h)
	var idp string
	if value != "" {
		s, err := f.store.EndSession(ctx, sessionIDFor(value))
		switch {
		case err == nil:
			idp = s.IDP
			f.log.InfoContext(ctx, "session ended", "sid", s.ID, "user_id", s.UserID, "by", "logout")
			f.backchannel.Notify(ctx, s)
		case errors.Is(err, storage.ErrNotFound):
			// Already ended (another tab, the CLI) or expired and swept.
		default:
			return nil, f.failures.Store(ctx, "end session", err)
		}
	}
	if dest == "" {
		dest = EndSessionPath + "/done"
		if idp != "" {
			dest += "?idp=" + url.QueryEscape(idp)
		}
	}
	red := op.NewRedirect(dest)
	if value != "" {
		red.Header.Add("Set-Cookie", f.newSessionCookie("", -1).String())
	}
	return red, nil
}

// upstreamLogoutURL is where to sign out of connector idp too, coming
// back to the signed-out page; "" when it publishes no such place. The
// idp comes from the query, so only configured connectors are looked up.
func (f *Flow) upstreamLogoutURL(ctx context.Context, idp string) string {
	conn, ok := f.upstreams.Get(idp).(upstream.Logouter)
	if !ok {
		return ""
	}
	upstreamCtx, cancel := f.upstreams.Context(ctx, idp)
	defer cancel()
	u, err := conn.LogoutURL(upstreamCtx, f.issuer+EndSessionPath+"/done")
	if err != nil {
		f.log.WarnContext(ctx, "upstream logout URL unavailable", "connector", idp, "err", err)
		return ""
	}
	return u
}

// joinsAtSignIn is clientID when it may join the session as soon as the
// person signs in, "" when it joins only once given a code: see joining.
func (f *Flow) joinsAtSignIn(ctx context.Context, clientID string) string {
	c, err := f.clients.Get(ctx, clientID)
	if err != nil {
		return ""
	}
	return joining(c)
}

// joining is c's id when it joins the session the person signs in to at
// once, "" when it joins only once given a code (issueCode): a
// third-party client, which the person may refuse, or which asked
// silently, must not be told of the person at logout. The session's
// clients are who logout tells.
func joining(c *clients.Client) string {
	if c.ThirdParty() {
		return ""
	}
	return c.GetID()
}

// sessionClients are the clients a new session starts with: joins, or
// none for "".
func sessionClients(joins string) []string {
	if joins == "" {
		return nil
	}
	return []string{joins}
}

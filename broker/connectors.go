package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/idbroker/broker/broker/answer"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/upstream"
	upoidc "github.com/idbroker/broker/upstream/oidc"
	"github.com/idbroker/broker/upstream/otp"
	"github.com/idbroker/broker/web"
)

// upstreamCallbackPrefix is where upstreams send the browser back:
// /callback/<connector id>.
const upstreamCallbackPrefix = "/callback/"

// buildConnectors makes the configured connectors. An upstream that is
// down at start does not stop the broker: connectors discover lazily.
func (b *Broker) buildConnectors(ctx context.Context, o Options) error {
	for _, cc := range b.cfg.Connectors {
		conn, err := b.newConnector(ctx, cc, o)
		if err != nil {
			return fmt.Errorf("broker: connector %q: %w", cc.ID, err)
		}
		b.connectors[cc.ID] = conn
		b.connectorConfigs[cc.ID] = cc
		if why := neverRechecked(conn); why != "" {
			b.log.WarnContext(ctx, "connector's users are never re-checked upstream", "connector", cc.ID, "reason", why)
		}
		for _, d := range cc.Domains {
			d = strings.ToLower(strings.TrimSpace(d))
			if other, taken := b.byDomain[d]; taken {
				return fmt.Errorf("broker: domain %q is claimed by connectors %q and %q", d, other, cc.ID)
			}
			b.byDomain[d] = cc.ID
		}
	}
	return nil
}

// neverRechecked says why a connector that signs people in will never be
// asked about them again on a broker refresh (a user blocked there keeps
// their broker session until it ends), or "" when it will be, or when
// there is nothing to ask (a one-time code, a token-exchange-only
// connector).
func neverRechecked(conn upstream.Connector) string {
	if _, ok := conn.(upstream.CallbackConnector); !ok {
		return ""
	}
	switch r := conn.(type) {
	case upstream.RefreshTokenAsker:
		if !r.AsksForRefreshToken() {
			return "its scopes leave out offline_access, so the upstream issues no refresh token"
		}
		return ""
	case upstream.Refresher:
		return ""
	}
	return "the connector cannot refresh"
}

// newConnector opens cc through its type's Config. The one otp connector
// also becomes the broker's one-time-code flow.
func (b *Broker) newConnector(ctx context.Context, cc ConnectorConfig, o Options) (upstream.Connector, error) {
	cfg, err := cc.settings()
	if err != nil {
		return nil, err
	}
	conn, err := cfg.Open(ctx, cc.ID, upstream.Deps{
		HTTPClient: o.HTTPClient, Clock: o.Clock, Logger: b.log, Timeout: cc.Timeout, Mailer: o.Mailer,
	})
	if err != nil {
		return nil, err
	}
	if oc, ok := conn.(*otp.Connector); ok {
		if b.otp != nil {
			return nil, errors.New("only one otp connector may be configured")
		}
		b.otp = oc
	}
	return conn, nil
}

// connectorButtons are the upstream connectors offered on the login page,
// in configuration order.
func (b *Broker) connectorButtons() []web.Connector {
	var out []web.Connector
	for _, cc := range b.cfg.Connectors {
		if _, ok := b.connectors[cc.ID].(upstream.CallbackConnector); ok {
			out = append(out, web.Connector{ID: cc.ID, Name: cc.Name})
		}
	}
	return out
}

// connectorForEmail is home realm discovery: the connector that lists the
// email's domain, or nil for the one-time code.
func (b *Broker) connectorForEmail(email string) upstream.CallbackConnector {
	domain := email[strings.LastIndexByte(email, '@')+1:]
	c, _ := b.connectors[b.byDomain[domain]].(upstream.CallbackConnector)
	return c
}

// upstreamRedirect records a fresh state, nonce and PKCE verifier on the
// auth request and returns the upstream URL to send the browser to.
func (b *Broker) upstreamRedirect(ctx context.Context, ar storage.AuthRequest, conn upstream.CallbackConnector, loginHint string) (string, error) {
	state, nonce, verifier := randomID(), randomID(), randomID()
	_, err := b.store.UpdateAuthRequest(ctx, ar.ID, func(a storage.AuthRequest) (storage.AuthRequest, error) {
		a.ConnectorID = conn.ID()
		a.UpstreamState, a.UpstreamNonce, a.UpstreamVerifier = state, nonce, verifier
		return a, nil
	})
	if err != nil {
		return "", fmt.Errorf("update auth request: %w", err)
	}
	ctx, cancel := b.upstreamContext(ctx, conn.ID())
	defer cancel()
	return conn.LoginURL(ctx, upstream.LoginState{
		CallbackURL:  b.upstreamCallbackURL(conn.ID()),
		State:        state,
		Nonce:        nonce,
		CodeVerifier: verifier,
		LoginHint:    loginHint,
	})
}

// upstreamContext bounds what one request waits on connector id, all its
// calls to the upstream together, by the connector's timeout: a slow
// dependency costs each request at most its own timeout (docs/design.md rule
// 7). The connectors share their discovery and key fetches between
// requests, so requests do not queue behind one another either.
func (b *Broker) upstreamContext(ctx context.Context, id string) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.upstreamTimeout(id))
}

// upstreamTimeout is connector id's timeout (upstreamContext).
func (b *Broker) upstreamTimeout(id string) time.Duration {
	if cc, ok := b.connectorConfigs[id]; ok && cc.Timeout > 0 {
		return cc.Timeout
	}
	return upoidc.DefaultTimeout
}

func (b *Broker) upstreamCallbackURL(id string) string {
	return b.issuer + upstreamCallbackPrefix + url.PathEscape(id)
}

// startUpstream sends the browser to conn for the auth request.
func (b *Broker) startUpstream(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest, conn upstream.CallbackConnector, loginHint string) {
	dest, err := b.upstreamRedirect(r.Context(), ar, conn, loginHint)
	if err != nil {
		b.upstreamFailurePage(w, r, conn.ID(), err)
		return
	}
	http.Redirect(w, r, dest, http.StatusSeeOther)
}

// connectorName is the name a connector is shown by.
func (b *Broker) connectorName(id string) string {
	for _, cc := range b.cfg.Connectors {
		if cc.ID == id && cc.Name != "" {
			return cc.Name
		}
	}
	return id
}

// renderConnector is home realm discovery's interstitial: it names the
// connector email's domain signs in with, and its button posts to
// loginConnector. Nothing is stored until the person continues.
func (b *Broker) renderConnector(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest, conn upstream.CallbackConnector, email string) {
	page := web.ConnectorPage{
		Branding:      b.branding,
		AuthRequestID: ar.ID,
		CSRF:          b.csrfToken(w, r, ar.ID),
		Email:         email,
		Connector:     web.Connector{ID: conn.ID(), Name: b.connectorName(conn.ID())},
	}
	if err := b.pages.RenderIn(w, http.StatusOK, web.RequestLanguage(r, ar.UILocales), page); err != nil {
		b.log.ErrorContext(r.Context(), "render connector page", "err", err)
	}
}

// loginConnector starts a login with the connector a button named (on the
// login page, or on the interstitial, which also posts the email: it is
// passed on as the login hint when its domain belongs to that connector).
func (b *Broker) loginConnector(w http.ResponseWriter, r *http.Request) {
	ar, ok := b.formAuthRequest(w, r)
	if !ok {
		return
	}
	conn, ok := b.connectors[r.PostFormValue("connector")].(upstream.CallbackConnector)
	if !ok {
		b.renderLogin(w, r, ar, http.StatusBadRequest, "", "That sign-in option is not available.")
		return
	}
	hint := ""
	if email, err := upstream.NormalizeEmail(r.PostFormValue("email")); err == nil {
		if c := b.connectorForEmail(email); c != nil && c.ID() == conn.ID() {
			hint = email
		}
	}
	b.startUpstream(w, r, ar, conn, hint)
}

// upstreamCallback finishes an upstream login: the connector verifies
// what came back (state, code, signature, issuer, audience, expiry,
// nonce) and only then is the identity resolved. Any failure shows a page
// and writes nothing.
func (b *Broker) upstreamCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("connector")
	conn, ok := b.connectors[id].(upstream.CallbackConnector)
	if !ok {
		b.errorPages.Render(w, r, http.StatusNotFound, "Unknown sign-in provider", "This address does not belong to a configured sign-in provider.")
		return
	}
	state := r.URL.Query().Get("state")
	if state == "" {
		b.errorPages.Render(w, r, http.StatusBadRequest, "Sign-in could not be completed", "The identity provider's answer was incomplete. Go back to the application and choose sign in again.")
		return
	}
	ar, err := b.store.GetAuthRequestByUpstreamState(ctx, state)
	if err == nil && (!b.now().Before(ar.ExpiresAt) || ar.ConnectorID != id || ar.Done) {
		err = storage.ErrNotFound
	}
	if isNotFound(err) {
		b.log.InfoContext(ctx, "login failed", "connector", id, "outcome", "unknown or used upstream state")
		b.errorPages.Render(w, r, http.StatusBadRequest, "This sign-in has expired",
			"The identity provider sent you back for a sign-in that has expired or was already used. Go back to the application and choose sign in again.")
		return
	}
	if err != nil {
		b.failures.StorePage(w, r, "get auth request by upstream state", err)
		return
	}
	// The state came back through the browser, so anyone who had it could
	// send it from another; before the upstream code is redeemed, the
	// browser must be the one that started the login.
	if !b.boundToBrowser(w, r, ar) {
		return
	}
	upstreamCtx, cancel := b.upstreamContext(ctx, id)
	identity, err := conn.HandleCallback(upstreamCtx, upstream.LoginState{
		CallbackURL:  b.upstreamCallbackURL(id),
		State:        ar.UpstreamState,
		Nonce:        ar.UpstreamNonce,
		CodeVerifier: ar.UpstreamVerifier,
	}, r)
	cancel()
	if err != nil {
		b.upstreamFailurePage(w, r, id, err)
		return
	}
	var sealed []byte
	if identity.RefreshToken != "" {
		if sealed, err = b.sealer.Seal([]byte(identity.RefreshToken)); err != nil {
			b.upstreamFailurePage(w, r, id, err)
			return
		}
	}
	b.completeLogin(w, r, ar, conn, identity, loginDetails{amr: "fed", org: identity.Organization, upstreamRefresh: sealed,
		impersonation: identity.Impersonation})
}

// upstreamFailurePage explains an upstream failure without details an
// attacker could use; the log has them.
func (b *Broker) upstreamFailurePage(w http.ResponseWriter, r *http.Request, connector string, err error) {
	outcome := "upstream invalid"
	switch {
	case errors.Is(err, upstream.ErrDenied):
		outcome = "upstream denied"
	case errors.Is(err, upstream.ErrUnavailable):
		outcome = "upstream unavailable"
	}
	b.metrics.logins.WithLabelValues(connector, outcome).Inc()
	b.log.InfoContext(r.Context(), "login", "connector", connector, "outcome", outcome, "err", err)
	switch {
	case errors.Is(err, upstream.ErrDenied):
		b.errorPages.Render(w, r, http.StatusForbidden, "Sign-in was not completed",
			"Your identity provider did not sign you in (it was cancelled or refused). Go back to the application to try again.")
	case errors.Is(err, upstream.ErrUnavailable):
		// 503, like every other outage: nothing is wrong with the
		// request, and it will work once the upstream answers again.
		b.errorPages.Render(w, r, http.StatusServiceUnavailable, "Identity provider unavailable",
			"Your identity provider could not be reached or did not answer in time. Nothing was changed. Please try again in a moment.")
	default:
		b.errorPages.Render(w, r, http.StatusBadRequest, "Sign-in could not be verified",
			"The answer from your identity provider could not be verified, so you were not signed in. Go back to the application and try again.")
	}
}

// recheckUpstream asks the upstream about the family's user again when the
// last check is older than the connector's recheckInterval, using the
// upstream refresh token kept (sealed) with the family. A refusal there
// (user blocked or deleted) revokes the family; an unreachable upstream
// fails the refresh without deciding anything.
func (b *Broker) recheckUpstream(ctx context.Context, fam storage.RefreshFamily) error {
	if len(fam.UpstreamRefreshToken) == 0 {
		return nil
	}
	conn, ok := b.connectors[fam.IDP].(upstream.Refresher)
	if !ok || b.now().Sub(fam.UpstreamCheckedAt) < b.recheckInterval(fam.IDP) {
		return nil
	}
	token, err := b.sealer.Open(fam.UpstreamRefreshToken)
	if err == nil {
		var id upstream.Identity
		upstreamCtx, cancel := b.upstreamContext(ctx, fam.IDP)
		id, err = conn.Refresh(upstreamCtx, string(token))
		cancel()
		if err == nil {
			next := fam.UpstreamRefreshToken
			if id.RefreshToken != "" && id.RefreshToken != string(token) {
				if next, err = b.sealer.Seal([]byte(id.RefreshToken)); err != nil {
					return b.failures.Store(ctx, "seal upstream token", err)
				}
			}
			if err := b.store.UpdateRefreshFamilyUpstream(ctx, fam.ID, next, b.now()); err != nil {
				return b.failures.Store(ctx, "record upstream check", err)
			}
			// The session and the families single sign-on made from it
			// hold the same token, which a single-use upstream (WorkOS)
			// now refuses: their next re-check would read as the user
			// being refused and end the session. This refresh succeeded
			// either way, so a failure here is logged, not returned.
			if fam.SessionID != "" && !bytes.Equal(next, fam.UpstreamRefreshToken) {
				if err := b.store.UpdateSessionUpstream(ctx, fam.SessionID, fam.UpstreamRefreshToken, next); err != nil {
					b.log.WarnContext(ctx, "recording rotated upstream token on the session failed", "sid", fam.SessionID, "err", err)
				}
			}
			return nil
		}
	}
	if errors.Is(err, upstream.ErrUnavailable) {
		b.log.WarnContext(ctx, "upstream re-check unavailable", "connector", fam.IDP, "err", err)
		return answer.TemporarilyUnavailable()
	}
	if revokeErr := b.revokeGrant(ctx, fam.ID); revokeErr != nil {
		return b.failures.Store(ctx, "revoke family after upstream refusal", revokeErr)
	}
	// The browser session this family came from would otherwise keep
	// signing the user in to other applications.
	if fam.SessionID != "" {
		if _, err := b.store.EndSession(ctx, fam.SessionID); err != nil && !isNotFound(err) {
			return b.failures.Store(ctx, "end session after upstream refusal", err)
		}
	}
	return b.invalidGrant(ctx, "the identity provider no longer accepts this user; sign in again", "connector", fam.IDP, "err", err)
}

func (b *Broker) recheckInterval(connectorID string) time.Duration {
	if cc, ok := b.connectorConfigs[connectorID]; ok {
		return cc.RecheckInterval
	}
	return time.Hour
}

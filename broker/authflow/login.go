package authflow

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/idbroker/broker/broker/edge"
	"github.com/idbroker/broker/broker/identity"
	"github.com/idbroker/broker/broker/ratelimit"
	"github.com/idbroker/broker/keys"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/upstream"
	"github.com/idbroker/broker/upstream/otp"
	"github.com/idbroker/broker/web"
)

// csrfToken returns the form token for purpose (an auth request id, or a
// logout's), giving the browser a binding cookie (binding.go) if it has
// none. The token is an HMAC of the browser id and the purpose, so a form
// posted from another site (no cookie) or for another purpose fails.
func (f *Flow) csrfToken(w http.ResponseWriter, r *http.Request, purpose string) string {
	id, ok := f.browserID(r.Header)
	if !ok {
		id = keys.RandomID()
		http.SetCookie(w, f.newBrowserCookie(id))
	}
	return base64.RawURLEncoding.EncodeToString(f.csrfKey.Sum(id, purpose))
}

func (f *Flow) csrfValid(r *http.Request, purpose string) bool {
	id, ok := f.browserID(r.Header)
	if !ok {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(r.PostFormValue("csrf"))
	if err != nil {
		return false
	}
	return hmac.Equal(got, f.csrfKey.Sum(id, purpose))
}

// formAuthRequest loads the auth request a login form was posted for,
// after checking the method, that the browser is the one that started
// the request (liveAuthRequest), and the CSRF token. The binding comes
// first, so a form posted from another browser gets the page that says
// so; the token then proves the form was one this broker rendered for
// this browser and request.
func (f *Flow) formAuthRequest(w http.ResponseWriter, r *http.Request) (storage.AuthRequest, bool) {
	return f.boundForm(w, r, func(authRequestID string) string { return authRequestID })
}

// boundForm is formAuthRequest for a form whose CSRF token is made for
// purpose(auth request id).
func (f *Flow) boundForm(w http.ResponseWriter, r *http.Request, purpose func(authRequestID string) string) (storage.AuthRequest, bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		f.errorPages.Render(w, r, http.StatusMethodNotAllowed, "Not allowed", "This address only accepts the sign-in form.")
		return storage.AuthRequest{}, false
	}
	if err := r.ParseForm(); err != nil {
		f.errorPages.Render(w, r, http.StatusBadRequest, "Form not readable", "The form could not be read. Go back and try again.")
		return storage.AuthRequest{}, false
	}
	ar, ok := f.liveAuthRequest(w, r, r.PostFormValue("id"))
	if !ok {
		return storage.AuthRequest{}, false
	}
	if !f.csrfValid(r, purpose(ar.ID)) {
		f.log.InfoContext(r.Context(), "login form refused", "reason", "csrf token missing or wrong")
		f.errorPages.Render(w, r, http.StatusForbidden, "Form expired",
			"This form could not be verified, perhaps because it was opened in another browser or cookies are blocked. Go back to the application and choose sign in again.")
		return storage.AuthRequest{}, false
	}
	return ar, true
}

// loginPage shows the email-first page (GET) and takes the email (POST).
func (f *Flow) loginPage(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		ar, ok := f.liveAuthRequest(w, r, r.URL.Query().Get("id"))
		if !ok {
			return
		}
		f.renderLogin(w, r, ar, http.StatusOK, ar.LoginHint, "")
		return
	}
	ar, ok := f.formAuthRequest(w, r)
	if !ok {
		return
	}
	email, err := upstream.NormalizeEmail(r.PostFormValue("email"))
	if err != nil {
		f.renderLogin(w, r, ar, http.StatusBadRequest, r.PostFormValue("email"), "Enter an email address like name@example.com.")
		return
	}
	// Home realm discovery: an organisation's domain goes to its
	// identity provider, named on a page before the browser is sent
	// there (several: a button each); everyone else gets a code. A
	// domain an organisation holds verified routes before one a
	// configured connector lists.
	if org, ok := f.orgOfEmail(email); ok {
		switch conns := f.orgConnectors(org.ID); len(conns) {
		case 0:
		case 1:
			f.renderConnector(w, r, ar, conns[0], email)
			return
		default:
			f.renderLoginWith(w, r, ar, http.StatusOK, email, "", f.buttons(conns))
			return
		}
	}
	if conn := f.upstreams.ForEmail(email); conn != nil {
		f.renderConnector(w, r, ar, conn, email)
		return
	}
	if org, ok := f.identities.SSORequired(email, storage.Organization{}); ok {
		f.refuseSSO(w, r, ar, org, email, "otp")
		return
	}
	if f.upstreams.OTP() == nil {
		f.renderLogin(w, r, ar, http.StatusBadRequest, email, "Sign-in with an email code is not available here.")
		return
	}
	ar, err = f.store.UpdateAuthRequest(r.Context(), ar.ID, func(a storage.AuthRequest) (storage.AuthRequest, error) {
		a.LoginHint = email
		a.ConnectorID = f.upstreams.OTP().ID()
		return a, nil
	})
	if err != nil {
		f.failures.StorePage(w, r, "update auth request", err)
		return
	}
	if !f.sendCode(w, r, ar, false) {
		return
	}
	http.Redirect(w, r, LoginCodePath+"?id="+url.QueryEscape(ar.ID), http.StatusSeeOther)
}

// resendCooldown is the least time between codes for one auth request.
const resendCooldown = 30 * time.Second

// renderLogin shows the login page with the buttons of every connector,
// or, for a login in an organisation (organization=), of the
// organisation's connectors.
func (f *Flow) renderLogin(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest, status int, email, fieldError string) {
	buttons := f.upstreams.Buttons()
	if ar.Org != "" && !ar.Done {
		buttons = f.buttons(f.orgConnectors(ar.Org))
	}
	f.renderLoginWith(w, r, ar, status, email, fieldError, buttons)
}

func (f *Flow) renderLoginWith(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest, status int, email, fieldError string, buttons []web.Connector) {
	page := web.LoginPage{
		Branding:      f.branding,
		AuthRequestID: ar.ID,
		CSRF:          f.csrfToken(w, r, ar.ID),
		Email:         email,
		Error:         fieldError,
		Connectors:    buttons,
	}
	if err := f.pages.RenderIn(w, status, web.RequestLanguage(r, ar.UILocales), page); err != nil {
		f.log.ErrorContext(r.Context(), "render login page", "err", err)
	}
}

func (f *Flow) renderCode(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest, status int, fieldError, notice string) {
	page := web.CodePage{
		Branding:      f.branding,
		AuthRequestID: ar.ID,
		CSRF:          f.csrfToken(w, r, ar.ID),
		Email:         ar.LoginHint,
		Error:         fieldError,
		Notice:        notice,
		ValidMinutes:  int(f.cfg.OTPCodeTTL / time.Minute),
		ResendWait:    f.resendWait(r.Context(), ar),
	}
	if err := f.pages.RenderIn(w, status, web.RequestLanguage(r, ar.UILocales), page); err != nil {
		f.log.ErrorContext(r.Context(), "render code page", "err", err)
	}
}

// resendWait is how long, rounded up to a second, before the auth
// request may have another code (0: now): the longest wait of the limits
// a code counts against. It only reads the counters; a store that cannot
// answer shows no wait (sendCode still enforces them).
func (f *Flow) resendWait(ctx context.Context, ar storage.AuthRequest) int {
	var longest time.Duration
	for _, lim := range f.codeLimits(edge.Source(ctx), ar) {
		// The next code is allowed while the window holds fewer than
		// Count codes.
		limited, wait, err := f.store.RateLimited(ctx, lim.name+":"+lim.key, lim.limit.Count-1, f.now())
		if err != nil {
			return 0
		}
		if limited {
			longest = max(longest, wait)
		}
	}
	return int((longest + time.Second - 1) / time.Second)
}

// namedLimit is a limit and the counter it is taken from.
type namedLimit struct {
	name, key string
	limit     ratelimit.Limit
}

// codeLimits are the limits every code for ar counts against, sent at the
// request of client address source, in the order sendCode takes them. A
// request one of them refuses is not counted by those after it, so the
// requests a stranger is refused never reach the ceiling per address.
//
// A stranger can choose the email address but not the client address:
// codes per address are counted per client address, and the ceiling per
// address, which no client address reaches alone, is reached only by
// many at once.
func (f *Flow) codeLimits(source string, ar storage.AuthRequest) []namedLimit {
	return []namedLimit{
		// One code per auth request per resendCooldown, whichever form
		// asks for it: the email form posted again is a resend too.
		{"otp-resend", ar.ID, ratelimit.Limit{Count: 1, Window: resendCooldown}},
		{"otp-ip", ratelimit.Source(source), f.cfg.OTPPerIP},
		{"otp-email", ratelimit.Key(source, ar.LoginHint), f.cfg.OTPPerEmail},
		{"otp-email-ceiling", ar.LoginHint, f.cfg.OTPPerEmailCeiling},
	}
}

// sendCode makes a new challenge for the request's email, replacing any
// earlier one, and mails it. It answers the same whether or not the email
// belongs to a user, so the page reveals nothing about who has an account.
// Codes are limited (codeLimits); a limited request gets 429 with
// Retry-After on the page it came from (resend: the code page), and the
// challenge the browser holds, if any, is left as it was.
func (f *Flow) sendCode(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest, resend bool) bool {
	ctx := r.Context()
	// The organisation may have required SSO since the first code.
	if org, ok := f.identities.SSORequired(ar.LoginHint, storage.Organization{}); ok {
		f.refuseSSO(w, r, ar, org, ar.LoginHint, "otp")
		return false
	}
	source := f.proxies.ClientIP(r)
	for _, lim := range f.codeLimits(source, ar) {
		allowed, wait, err := f.limiter.Take(ctx, lim.name, lim.key, lim.limit)
		if err != nil {
			f.failures.StorePage(w, r, "take rate-limit slot", err)
			return false
		}
		if allowed {
			continue
		}
		w.Header().Set("Retry-After", ratelimit.RetryAfter(wait))
		lang := web.RequestLanguage(r, ar.UILocales)
		if lim.name == "otp-resend" {
			// Not too many codes, only too soon after the last one: the
			// code page says so beside its button, the email form here.
			if resend {
				f.renderCode(w, r, ar, http.StatusTooManyRequests, "", "")
			} else {
				f.renderLogin(w, r, ar, http.StatusTooManyRequests, ar.LoginHint, web.T(lang, "code.resend_wait", ratelimit.RetryAfter(wait)))
			}
			return false
		}
		f.metrics.OTPCodes.WithLabelValues("limited").Inc()
		msg := web.T(lang, "err.too_many_codes", waitPhrase(lang, wait))
		if resend {
			f.renderCode(w, r, ar, http.StatusTooManyRequests, msg, "")
		} else {
			f.renderLogin(w, r, ar, http.StatusTooManyRequests, ar.LoginHint, msg)
		}
		return false
	}
	code, err := otp.NewCode()
	if err != nil {
		f.log.ErrorContext(ctx, "make one-time code", "err", err)
		f.errorPages.Render(w, r, http.StatusInternalServerError, "Something went wrong", "A code could not be made. Please try again.")
		return false
	}
	now := f.now()
	err = f.store.PutOTPChallenge(ctx, storage.OTPChallenge{
		AuthRequestID: ar.ID,
		Email:         ar.LoginHint,
		CodeHash:      f.otpCodeHash(ar.ID, ar.LoginHint, code),
		// Wrong guesses are pooled per address and client address
		// (storage.AuthFlows.CheckOTPChallenge): a new code, from either
		// form or for another auth request, buys no more of them. Per
		// address alone, a stranger's wrong guesses would spend the
		// owner's.
		AttemptKey: ratelimit.Key(source, ar.LoginHint),
		CreatedAt:  now,
		ExpiresAt:  now.Add(f.cfg.OTPCodeTTL),
	})
	if err != nil {
		f.failures.StorePage(w, r, "put otp challenge", err)
		return false
	}
	if err := f.upstreams.OTP().Send(ctx, otp.Message{To: ar.LoginHint, Code: code, Product: f.branding.ProductName}); err != nil {
		f.metrics.OTPCodes.WithLabelValues("failed").Inc()
		f.log.ErrorContext(ctx, "sending one-time code failed", "err", err)
		f.errorPages.Render(w, r, http.StatusServiceUnavailable, "Code not sent",
			"The code could not be sent just now. Go back and try again in a moment.")
		return false
	}
	f.metrics.OTPCodes.WithLabelValues("sent").Inc()
	f.log.InfoContext(ctx, "one-time code sent", "client_id", ar.ClientID, "email", redactEmail(ar.LoginHint))
	return true
}

// otpCodeHash binds a code to its auth request and email under a key
// derived from the root secret: a leaked table of hashes cannot be
// brute-forced over the million codes without the secret.
func (f *Flow) otpCodeHash(authRequestID, email, code string) []byte {
	return f.otpHash.Sum(authRequestID, email, code)
}

// loginCode shows the code page (GET) and checks a code (POST).
func (f *Flow) loginCode(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		ar, ok := f.liveAuthRequest(w, r, r.URL.Query().Get("id"))
		if !ok {
			return
		}
		if ar.LoginHint == "" || f.upstreams.OTP() == nil || ar.ConnectorID != f.upstreams.OTP().ID() {
			http.Redirect(w, r, LoginPath+"?id="+url.QueryEscape(ar.ID), http.StatusSeeOther)
			return
		}
		notice := ""
		if r.URL.Query().Get("resent") == "1" {
			notice = "We sent a new code. Earlier codes no longer work."
		}
		f.renderCode(w, r, ar, http.StatusOK, "", notice)
		return
	}
	ar, ok := f.formAuthRequest(w, r)
	if !ok {
		return
	}
	if f.upstreams.OTP() == nil || ar.ConnectorID != f.upstreams.OTP().ID() || ar.LoginHint == "" {
		http.Redirect(w, r, LoginPath+"?id="+url.QueryEscape(ar.ID), http.StatusSeeOther)
		return
	}
	ctx := r.Context()
	code := strings.TrimSpace(r.PostFormValue("code"))
	_, err := f.store.CheckOTPChallenge(ctx, ar.ID, f.otpCodeHash(ar.ID, ar.LoginHint, code), f.cfg.OTPMaxAttempts, f.now())
	switch {
	case err == nil:
	case errors.Is(err, storage.ErrOTPMismatch):
		f.loginOutcome(ctx, ar, ar.ConnectorID, "wrong code")
		f.renderCode(w, r, ar, http.StatusBadRequest, "That code is not right. Check the latest email and try again.", "")
		return
	case errors.Is(err, storage.ErrOTPExhausted):
		f.loginOutcome(ctx, ar, ar.ConnectorID, "attempts exhausted")
		// The wrong guesses of this address from here are spent for the
		// code's lifetime (sendCode: AttemptKey): a new code at once
		// would not be checked either.
		f.renderCode(w, r, ar, http.StatusBadRequest, "Too many wrong codes. Wait a few minutes, then send a new code and try again.", "")
		return
	case errors.Is(err, storage.ErrExpired), errors.Is(err, storage.ErrNotFound):
		f.loginOutcome(ctx, ar, ar.ConnectorID, "code expired")
		f.renderCode(w, r, ar, http.StatusBadRequest, "That code has expired. Send a new code and try again.", "")
		return
	default:
		f.failures.StorePage(w, r, "check otp challenge", err)
		return
	}
	id := upstream.Identity{
		ConnectorID:   f.upstreams.OTP().ID(),
		Subject:       ar.LoginHint,
		Email:         ar.LoginHint,
		EmailVerified: true,
	}
	f.completeLogin(w, r, ar, f.upstreams.OTP(), id, loginDetails{amr: "otp"})
}

// loginResend replaces the request's code with a new one.
func (f *Flow) loginResend(w http.ResponseWriter, r *http.Request) {
	ar, ok := f.formAuthRequest(w, r)
	if !ok {
		return
	}
	if f.upstreams.OTP() == nil || ar.ConnectorID != f.upstreams.OTP().ID() || ar.LoginHint == "" {
		http.Redirect(w, r, LoginPath+"?id="+url.QueryEscape(ar.ID), http.StatusSeeOther)
		return
	}
	if !f.sendCode(w, r, ar, true) {
		return
	}
	// Post/redirect/get: reloading the code page does not send again.
	http.Redirect(w, r, LoginCodePath+"?id="+url.QueryEscape(ar.ID)+"&resent=1", http.StatusSeeOther)
}

// loginOutcome logs and counts how a login attempt ended.
func (f *Flow) loginOutcome(ctx context.Context, ar storage.AuthRequest, connector, outcome string) {
	f.metrics.Logins.WithLabelValues(connector, outcome).Inc()
	f.log.InfoContext(ctx, "login", "client_id", ar.ClientID, "connector", connector, "outcome", outcome)
}

// loginDetails are what a login adds to the auth request besides the user.
type loginDetails struct {
	amr             string // "otp" or "fed"
	org             string // the broker organisation's id (loginOrg), "" for none
	upstreamRefresh []byte // sealed
	// impersonation is set when the upstream let someone sign in as the
	// user; every token of the login then names them in act.
	impersonation *upstream.Impersonation
}

// impersonator is what the auth request, code, refresh family and
// session keep of the login's impersonation: the act subject, or "".
func (d loginDetails) impersonator() string {
	if d.impersonation == nil {
		return ""
	}
	return d.impersonation.Actor
}

// completeLogin resolves the identity to a user (identity.Resolver),
// gives the browser a session, marks the auth request authenticated and
// continues to the authorization callback.
func (f *Flow) completeLogin(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest, conn upstream.Connector, id upstream.Identity, d loginDetails) {
	ctx := r.Context()
	res, err := f.identities.Resolve(ctx, conn, id, identity.Options{})
	var sso *identity.SSORequiredError
	switch {
	case errors.As(err, &sso):
		// A code sent before the organisation required SSO, or another
		// connector: the address signs in through its organisation's.
		path := "connector"
		if d.amr == "otp" {
			path = "otp"
		}
		f.loginOutcome(ctx, ar, conn.ID(), "sso required")
		f.metrics.SSOEnforced.WithLabelValues(path).Inc()
		f.errorPages.Render(w, r, http.StatusForbidden, "Use your company login",
			"Your organisation requires you to sign in with its company login, so this sign-in was not completed. Go back to the application, choose sign in again and continue with your company login.")
		return
	case errors.Is(err, identity.ErrUnknownUpstreamOrg):
		f.loginOutcome(ctx, ar, conn.ID(), "unknown upstream organisation")
		f.errorPages.Render(w, r, http.StatusForbidden, "Organisation not recognised",
			"Your identity provider signed you in for an organisation this service does not know, so you were not signed in. Contact your administrator.")
		return
	case errors.Is(err, storage.ErrUserDisabled):
		f.loginOutcome(ctx, ar, conn.ID(), "user disabled")
		f.errorPages.Render(w, r, http.StatusForbidden, "Account disabled", "This account has been disabled. Contact your administrator.")
		return
	case err != nil:
		f.failures.StorePage(w, r, "resolve identity", err)
		return
	}
	if d.org, err = f.loginOrg(ctx, ar, res); errors.Is(err, errNotMember) {
		f.loginOutcome(ctx, ar, conn.ID(), "not a member")
		f.log.InfoContext(ctx, "login refused", "client_id", ar.ClientID, "user_id", res.User.ID, "reason", err.Error())
		f.errorPages.Render(w, r, http.StatusForbidden, "Not a member of this organisation",
			"This account does not belong to the organisation the application asked for. Go back to the application and sign in with an account of that organisation.")
		return
	} else if err != nil {
		f.failures.StorePage(w, r, "organisation of the login", err)
		return
	}
	user, now := res.User, f.now()
	if imp := d.impersonation; imp != nil {
		// Written before anything is issued: an impersonation that
		// leaves no record does not sign in.
		err := f.store.AppendAudit(ctx, storage.AuditEvent{
			Time:   now,
			Actor:  imp.Actor,
			Action: "login.impersonated",
			Target: "user:" + user.ID,
			Details: map[string]string{"connector": conn.ID(), "impersonator": imp.Email, "reason": imp.Reason,
				"client_id": ar.ClientID},
		})
		if err != nil {
			f.failures.StorePage(w, r, "audit impersonated login", err)
			return
		}
		f.log.InfoContext(ctx, "impersonated login", "connector", conn.ID(), "user_id", user.ID, "client_id", ar.ClientID)
	}
	f.loginOutcome(ctx, ar, conn.ID(), "success")
	sessionID, err := f.startSession(w, r, ar, user.ID, now, conn.ID(), d)
	if err != nil {
		f.failures.StorePage(w, r, "start session", err)
		return
	}
	_, err = f.store.UpdateAuthRequest(ctx, ar.ID, func(a storage.AuthRequest) (storage.AuthRequest, error) {
		a.UserID = user.ID
		a.AuthTime = now
		a.AMR = []string{d.amr}
		a.IDP = conn.ID()
		a.Org = d.org
		a.UpstreamRefreshToken = d.upstreamRefresh
		a.Impersonator = d.impersonator()
		a.SessionID = sessionID
		a.Done = true
		return a, nil
	})
	if err != nil {
		f.failures.StorePage(w, r, "complete auth request", err)
		return
	}
	http.Redirect(w, r, CallbackPath+"?id="+url.QueryEscape(ar.ID), http.StatusSeeOther)
}

// redactEmail keeps enough of an address to correlate log lines without
// writing it out: "a***@example.com".
func redactEmail(email string) string {
	at := strings.LastIndexByte(email, '@')
	if at <= 0 {
		return "***"
	}
	return email[:1] + "***" + email[at:]
}

// waitPhrase says how long to wait in words a person reads, in lang.
func waitPhrase(lang string, d time.Duration) string {
	if d < time.Minute {
		return web.T(lang, "wait.minute")
	}
	return web.T(lang, "wait.minutes", int(math.Ceil(d.Minutes())))
}

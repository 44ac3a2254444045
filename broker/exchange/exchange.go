package exchange

// Section numbers are RFC 8693's unless another RFC is named.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/idbroker/broker/broker/answer"
	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/broker/identity"
	"github.com/idbroker/broker/broker/tokens"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/upstream"
	"github.com/idbroker/broker/upstream/jwks"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// errUnacceptable wraps why a subject or actor token was refused. The
// reason goes to the server log only; section 2.2.2 gives the client
// invalid_request and nothing an attacker could tune a forgery with.
var errUnacceptable = errors.New("token not acceptable")

func unacceptable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUnacceptable, fmt.Sprintf(format, args...))
}

// TokenExchange answers the token-exchange grant (section 2). The library
// has already authenticated the client through VerifyClient, which
// refuses a public client (authenticatedGrants: section 2.1 leaves
// unauthenticated clients to the deployment, and here none may), and
// refused, with unauthorized_client, a client whose grant types lack
// token-exchange.
//
// The subject token is an upstream JWT, matched to its connector by its
// iss (or by the connector form parameter) and verified by that connector;
// an opaque legacy session token, verified by the connector the client
// names; or an access token the broker issued, which may only be narrowed.
// Refresh tokens and opaque tokens no named connector vouches for are
// never subject tokens. The subject is resolved to a platform user as at
// login, provisioning a first-time user; an unreachable store or upstream
// is 503 temporarily_unavailable.
// Nothing is stored for the issued token: it names its grant in its jti,
// and introspection and revocation answer for it from that
// (tokens.AccessClaims.ref).
func (x *Exchanger) TokenExchange(ctx context.Context, r *op.ClientRequest[oidc.TokenExchangeRequest]) (*op.Response, error) {
	client := r.Client.(*clients.Client)
	req, err := parseExchange(r.Form)
	if err != nil {
		return nil, err
	}
	if req.requestedTokenType == TokenTypeIDJAG {
		return x.identityAssertion(ctx, client, req, r.Form)
	}
	var named upstream.TokenVerifier
	if req.connector != "" {
		var ok bool
		if named, ok = x.upstreams.Get(req.connector).(upstream.TokenVerifier); !ok {
			return nil, oidc.ErrInvalidRequest().WithDescription("connector %q does not verify tokens for exchange", req.connector)
		}
	}

	subject, err := x.verifyExchangeToken(ctx, req.subjectToken, req.subjectTokenType, named)
	if err == nil && subject.own != nil {
		err = ownTokenHeldBy(subject.own, client)
	}
	if err != nil {
		// Labelled by the connector the client named, if any (a
		// configured one: any other was refused above). A legacy
		// connector always is named, and its traffic tells when the
		// legacy validation can be retired (docs/migration.md).
		x.exchanges.WithLabelValues(req.connector, exchangeOutcome(err)).Inc()
		if errors.Is(err, storage.ErrUserDisabled) {
			// As for an upstream token of a disabled user: the token is
			// sound, the grant is not.
			return nil, answer.InvalidGrant(ctx, x.log, "the user is disabled", "client_id", client.GetID())
		}
		return nil, x.tokenRefused(ctx, client.GetID(), "subject_token", err)
	}
	audience, scopes, res, err := x.exchangeTarget(ctx, client, req, subject)
	if err != nil {
		return nil, err
	}
	act, err := x.exchangeActor(ctx, client, req, subject)
	if err != nil {
		return nil, err
	}
	// The subject is resolved after every check of the request, so an
	// exchange refused by policy provisions no subject.
	g, token, ttl, err := x.exchangeIssue(ctx, client, subject, tokens.Grant{ClientID: client.GetID(), Audience: audience, Scopes: scopes, Resource: res}, act)
	if err != nil {
		return nil, err
	}
	x.exchanges.WithLabelValues(g.IDP, "issued").Inc()
	x.log.InfoContext(ctx, "token exchanged", "client_id", client.GetID(), "idp", g.IDP, "user_id", g.User.ID,
		"audience", audience, "delegated", act != nil)
	// Section 2.2.1. A "jwt" is asked for by clients that want to read
	// it: the broker's access tokens are JWTs, so it is the same token.
	return op.NewResponse(&oidc.TokenExchangeResponse{
		AccessToken:     token,
		IssuedTokenType: req.requestedTokenType,
		TokenType:       oidc.BearerToken,
		ExpiresIn:       uint64(ttl / time.Second),
		Scopes:          g.AccessScopes(),
	}), nil
}

// exchangeRequest is a section 2.1 request as read from the form.
type exchangeRequest struct {
	subjectToken       string
	subjectTokenType   string
	actorToken         string
	actorTokenType     string
	requestedTokenType oidc.TokenType // access_token when not asked for
	targets            []string       // audience and resource values, each once
	scopes             []string       // nil when scope was not sent
	// connector names the connector that verifies the subject token,
	// for upstreams whose issuer does not identify them (multi-tenant
	// Entra ID without allowedTenants).
	connector string
}

// parseExchange reads the request from the form itself rather than
// trusting the library's decoding. A repeated parameter never gets here:
// /token refuses it first (RFC 6749 section 3.2; section 2.1 lets audience
// and resource repeat).
func parseExchange(form url.Values) (exchangeRequest, error) {
	// RFC 6749 section 3.2: "Parameters sent without a value MUST be
	// treated as if they were omitted from the request." form.Get does so.
	req := exchangeRequest{
		subjectToken:     form.Get("subject_token"),
		subjectTokenType: form.Get("subject_token_type"),
		actorToken:       form.Get("actor_token"),
		actorTokenType:   form.Get("actor_token_type"),
		connector:        form.Get("connector"),
	}
	switch {
	case req.subjectToken == "" || req.subjectTokenType == "":
		return req, oidc.ErrInvalidRequest().WithDescription("subject_token and subject_token_type are required")
	// Section 2.1, actor_token_type: "REQUIRED when the actor_token
	// parameter is present in the request but MUST NOT be included
	// otherwise."
	case req.actorToken != "" && req.actorTokenType == "":
		return req, oidc.ErrInvalidRequest().WithDescription("actor_token_type is required with actor_token")
	case req.actorToken == "" && req.actorTokenType != "":
		return req, oidc.ErrInvalidRequest().WithDescription("actor_token_type must not be sent without actor_token")
	}
	switch t := oidc.TokenType(form.Get("requested_token_type")); t {
	case "":
		req.requestedTokenType = oidc.AccessTokenType
	case oidc.AccessTokenType, oidc.JWTTokenType, TokenTypeIDJAG:
		req.requestedTokenType = t
	default:
		return req, oidc.ErrInvalidRequest().WithDescription("requested_token_type %q is not issued; ask for an access_token or a jwt", t)
	}
	for _, v := range form["resource"] {
		// Section 2.1, resource: "MUST be an absolute URI ... and MUST NOT
		// include a fragment component." RFC 8707 section 2 makes a
		// malformed one invalid_target.
		if u, err := url.Parse(v); v != "" && (err != nil || !u.IsAbs() || u.Fragment != "") {
			return req, oidc.ErrInvalidTarget().WithDescription("resource %q is not an absolute URI without a fragment", v)
		}
	}
	for _, v := range slices.Concat(form["audience"], form["resource"]) {
		if v != "" && !slices.Contains(req.targets, v) {
			req.targets = append(req.targets, v)
		}
	}
	if s := form.Get("scope"); s != "" {
		req.scopes = []string{}
		for scope := range strings.FieldsSeq(s) {
			if !slices.Contains(req.scopes, scope) {
				req.scopes = append(req.scopes, scope)
			}
		}
	}
	return req, nil
}

// exchangeToken is a subject or actor token that passed verification:
// either an upstream's (conn and identity) or the broker's own access
// token (own and record).
type exchangeToken struct {
	conn      upstream.Connector
	identity  upstream.Identity
	raw       string // the upstream token, to ask its upstream more with
	tokenType string
	own       *tokens.AccessClaims
	ownUser   storage.User // the user of own, active
}

// verifyExchangeToken verifies a subject or actor token of tokenType. The
// token's verifier is conn when not nil; else a token whose iss is the
// broker's is one of the broker's access tokens, and any other is verified
// by the one connector that lists its issuer. Only a named conn that
// verifies opaque tokens gets a token that is not a JWT. A refusal wraps
// errUnacceptable; an unreachable upstream wraps upstream.ErrUnavailable;
// anything else is the store failing.
func (x *Exchanger) verifyExchangeToken(ctx context.Context, raw, tokenType string, conn upstream.TokenVerifier) (exchangeToken, error) {
	// Section 3 defines a refresh_token type, but a refresh token is a
	// credential of the client it was issued to, not an assertion about
	// its user; the broker never exchanges one, of any client.
	if tokenType == string(oidc.RefreshTokenType) {
		return exchangeToken{}, unacceptable("token type %s is never exchanged", tokenType)
	}
	if opaque, ok := conn.(upstream.OpaqueTokenVerifier); ok {
		// A session token has no issuer to read and no signature to
		// pre-check: the client named its connector, which asks the
		// service that issued it.
		return x.verifyUpstreamToken(ctx, raw, tokenType, opaque)
	}
	// The issuer is read before the signature is checked only to pick
	// the verifier, which then checks everything, the issuer included.
	// Parsing admits asymmetric algorithms alone, so "none" and HMAC
	// (signed with a public key as secret) never get that far.
	// A JWT is in compact serialization (RFC 7519 section 1).
	jws, err := jwks.ParseCompact(raw)
	if err != nil {
		// Broker refresh tokens, and every other opaque token, end here.
		return exchangeToken{}, unacceptable("not a JWT signed with an asymmetric algorithm: %v", err)
	}
	var unverified struct {
		Issuer string `json:"iss"`
	}
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &unverified); err != nil {
		return exchangeToken{}, unacceptable("claims: %v", err)
	}
	if conn == nil && unverified.Issuer == x.issuer {
		if tokenType != string(oidc.AccessTokenType) && tokenType != string(oidc.JWTTokenType) {
			return exchangeToken{}, unacceptable("the broker's own tokens are exchanged only as access tokens, not %s", tokenType)
		}
		claims, user, err := x.tokens.VerifyAccessToken(ctx, raw)
		if errors.Is(err, tokens.ErrInactive) {
			return exchangeToken{}, fmt.Errorf("%w: broker access token: %w", errUnacceptable, err)
		}
		if err != nil {
			return exchangeToken{}, fmt.Errorf("get access token: %w", err)
		}
		return exchangeToken{own: &claims, ownUser: user}, nil
	}
	if conn == nil {
		if conn, err = x.upstreams.ForIssuer(unverified.Issuer); err != nil {
			return exchangeToken{}, unacceptable("%v", err)
		}
	}
	if parsed, ok := conn.(upstream.ParsedTokenVerifier); ok {
		ctx, cancel := x.upstreams.Context(ctx, conn.ID())
		defer cancel()
		id, err := parsed.VerifyParsedToken(ctx, raw, jws, tokenType)
		return upstreamVerified(conn, raw, tokenType, id, err)
	}
	return x.verifyUpstreamToken(ctx, raw, tokenType, conn)
}

// verifyUpstreamToken has conn verify an upstream token, with the errors
// of verifyExchangeToken.
func (x *Exchanger) verifyUpstreamToken(ctx context.Context, raw, tokenType string, conn upstream.TokenVerifier) (exchangeToken, error) {
	ctx, cancel := x.upstreams.Context(ctx, conn.ID())
	defer cancel()
	id, err := conn.VerifyToken(ctx, raw, tokenType)
	return upstreamVerified(conn, raw, tokenType, id, err)
}

// upstreamVerified sorts what conn answered for raw, a token of tokenType.
func upstreamVerified(conn upstream.TokenVerifier, raw, tokenType string, id upstream.Identity, err error) (exchangeToken, error) {
	if errors.Is(err, upstream.ErrUnavailable) {
		return exchangeToken{}, err
	}
	if err != nil {
		return exchangeToken{}, fmt.Errorf("%w: connector %q: %w", errUnacceptable, conn.ID(), err)
	}
	// An upstream's own delegation names upstream subjects, which must
	// never reach a broker token, and dropping it would turn a delegated
	// token into a direct one.
	if _, ok := id.Claims["act"]; ok {
		return exchangeToken{}, unacceptable("connector %q: the token carries act; upstream delegation is not exchanged", conn.ID())
	}
	return exchangeToken{conn: conn, identity: id, raw: raw, tokenType: tokenType}, nil
}

// ownTokenHeldBy refuses one of the broker's access tokens presented as a
// subject token by a client it was neither issued to nor meant for: the
// rule Revocation applies, so a token leaked to a third client cannot be
// re-minted by it.
func ownTokenHeldBy(claims *tokens.AccessClaims, client *clients.Client) error {
	if claims.ClientID != client.GetID() && !slices.Contains(claims.Audience, client.GetID()) {
		return unacceptable("broker access token of client %q presented by client %q", claims.ClientID, client.GetID())
	}
	return nil
}

// tokenRefused turns a verifyExchangeToken error about param
// (subject_token or actor_token) into the client's error.
func (x *Exchanger) tokenRefused(ctx context.Context, clientID, param string, err error) error {
	switch {
	case errors.Is(err, errUnacceptable):
		x.log.InfoContext(ctx, "token exchange refused", "client_id", clientID, "param", param, "reason", err.Error())
		// Section 2.2.2: "If the request itself is not valid or if either
		// the subject_token or actor_token are invalid for any reason, or
		// are unacceptable based on policy, the invalid_request error code
		// MUST be used."
		return oidc.ErrInvalidRequest().WithDescription("%s is invalid or not acceptable", param)
	case errors.Is(err, upstream.ErrUnavailable):
		x.log.WarnContext(ctx, "token exchange: upstream unavailable", "client_id", clientID, "param", param, "err", err)
		return answer.TemporarilyUnavailable()
	}
	return x.failures.Store(ctx, "verify "+param, err)
}

// exchangeOutcome names a verifyExchangeToken error for the exchanges
// metric.
func exchangeOutcome(err error) string {
	switch {
	case errors.Is(err, errUnacceptable):
		return "refused"
	case errors.Is(err, upstream.ErrUnavailable):
		return "unavailable"
	}
	return "error"
}

// defaultExchangeScopes are granted for an upstream subject token when
// the client lists no scopes of its own.
func defaultExchangeScopes() []string {
	return []string{oidc.ScopeOpenID, oidc.ScopeEmail, oidc.ScopeProfile}
}

// exchangeTarget picks the issued token's audience and scope (section 2.1
// audience, resource and scope). Each target must be a registered
// resource, asked for alone, or one the client may name (invalid_target
// otherwise, section 2.2.2); with none, the client's default audience.
// A registered resource bounds the scope too (tokens.CheckResourceScopes). For one of the broker's own tokens the targets must
// also be in its audience, the subject token's whole audience by default:
// an exchange narrows, never widens. Scope likewise can only narrow, from
// the subject token's scope or, for an upstream token, from the client's
// scopes (openid email profile when it lists none). offline_access is
// never granted: an exchange issues no refresh token.
func (x *Exchanger) exchangeTarget(ctx context.Context, client *clients.Client, req exchangeRequest, subject exchangeToken) (audience, scopes []string, res *storage.Resource, err error) {
	granted := client.Scopes()
	var grantedAudience []string // nil: whatever the client may name
	if subject.own != nil {
		grantedAudience = subject.own.Audience
		granted = strings.Fields(subject.own.Scope)
	} else if len(granted) == 0 {
		granted = defaultExchangeScopes()
	}
	// A registered resource (RFC 8707) is asked for alone and bounds the
	// scope: scopes named explicitly must be the resource's.
	audience, res, err = x.tokens.ChooseTarget(ctx, client, req.targets, grantedAudience)
	if err != nil {
		return nil, nil, nil, err
	}
	granted = slices.DeleteFunc(slices.Clone(granted), func(s string) bool { return s == oidc.ScopeOfflineAccess })
	if req.scopes == nil {
		return audience, granted, res, nil
	}
	for _, s := range req.scopes {
		if !slices.Contains(granted, s) {
			// RFC 6749 section 5.2: invalid_scope is a scope that
			// "exceeds the scope granted by the resource owner".
			return nil, nil, nil, oidc.ErrInvalidScope().WithDescription("scope %q exceeds what this exchange may grant; scope can only be narrowed", s)
		}
	}
	if err := tokens.CheckResourceScopes(res, req.scopes); err != nil {
		return nil, nil, nil, err
	}
	return audience, req.scopes, res, nil
}

// exchangeActor verifies the actor token, if any, and returns the act
// claim of the issued token (nil for none). The actor must be one the
// client's policy (ClientConfig.Actors) names; an upstream actor is
// resolved to its platform user first, so act.sub, like sub, is always a
// platform UUID. Without an actor token a narrowed broker token keeps its
// act: dropping it would make a delegated token look direct.
func (x *Exchanger) exchangeActor(ctx context.Context, client *clients.Client, req exchangeRequest, subject exchangeToken) (any, error) {
	var prior any
	if subject.own != nil {
		prior = subject.own.Act
	}
	if req.actorToken == "" {
		return prior, nil
	}
	actor, err := x.verifyExchangeToken(ctx, req.actorToken, req.actorTokenType, nil)
	if err != nil {
		return nil, x.tokenRefused(ctx, client.GetID(), "actor_token", err)
	}
	var act tokens.ActClaim
	var names []string // how the policy may name this actor
	if actor.own != nil {
		// verifyExchangeToken refused it if its user is gone or disabled.
		act = tokens.ActClaim{Subject: actor.own.Subject, ClientID: actor.own.ClientID, Act: actor.own.Act}
		names = []string{"client:" + actor.own.ClientID, "user:" + actor.own.Subject}
	} else {
		// Only a user entry can name an upstream actor, and resolving
		// one may provision it: without such entries, refuse first.
		if !slices.ContainsFunc(client.Actors(), func(n string) bool { return strings.HasPrefix(n, "user:") }) {
			return nil, x.tokenRefused(ctx, client.GetID(), "actor_token", unacceptable("connector %q: client %q names no user actors", actor.conn.ID(), client.GetID()))
		}
		res, err := x.resolveExchanged(ctx, actor)
		user := res.User
		// An actor is held to the organisation rules as a subject is.
		var sso *identity.SSORequiredError
		if errors.As(err, &sso) {
			x.ssoEnforced.WithLabelValues("exchange").Inc()
		}
		if sso != nil || errors.Is(err, identity.ErrUnknownUpstreamOrg) {
			return nil, x.tokenRefused(ctx, client.GetID(), "actor_token", fmt.Errorf("%w: connector %q: %w", errUnacceptable, actor.conn.ID(), err))
		}
		if errors.Is(err, storage.ErrUserDisabled) {
			return nil, x.tokenRefused(ctx, client.GetID(), "actor_token", unacceptable("connector %q: actor is disabled", actor.conn.ID()))
		}
		if errors.Is(err, errUnacceptable) || errors.Is(err, upstream.ErrUnavailable) {
			return nil, x.tokenRefused(ctx, client.GetID(), "actor_token", err)
		}
		if err != nil {
			return nil, x.failures.Store(ctx, "resolve actor", err)
		}
		act = tokens.ActClaim{Subject: user.ID}
		names = []string{"user:" + user.ID}
	}
	if !slices.ContainsFunc(names, func(n string) bool { return slices.Contains(client.Actors(), n) }) {
		return nil, x.tokenRefused(ctx, client.GetID(), "actor_token", unacceptable("actor %q may not act for client %q's subjects", names, client.GetID()))
	}
	// Section 4.1: "A chain of delegation can be expressed by nesting one
	// act claim within another." The prior actor is the actor token's own
	// or the subject token's; with both, the chain would be ambiguous.
	if prior != nil {
		if act.Act != nil {
			return nil, x.tokenRefused(ctx, client.GetID(), "actor_token", unacceptable("subject and actor tokens both carry act"))
		}
		act.Act = prior
	}
	return act, nil
}

// exchangeIssue resolves the subject to its user, exactly as a login
// would (docs/design.md rule 1), and issues the access token: it returns the
// grant the token was issued from and the token. The scopes lose admin
// unless that user holds the admin role now (userScopes), whatever the
// subject token said. A disabled user is invalid_grant; a store that
// cannot answer fails the exchange (rule 2): no fallback identity.
//
// For a known, unchanged identity that is one store round trip, a read:
// issuing the token writes nothing.
func (x *Exchanger) exchangeIssue(ctx context.Context, client *clients.Client, subject exchangeToken, g tokens.Grant, act any) (tokens.Grant, string, time.Duration, error) {
	if own := subject.own; own != nil {
		g.User, g.AMR, g.IDP, g.Org = subject.ownUser, own.AMR, own.IDP, own.Org
		// Revoking the subject token's grant (its refresh family)
		// revokes what was narrowed from it too.
		g.GrantID = own.Ref().GrantID
		if own.AuthTime != 0 {
			g.AuthTime = time.Unix(own.AuthTime, 0)
		}
		g.NotAfter = time.Unix(own.Expiry, 0)
		g.Scopes = tokens.UserScopes(client, g.User, g.Scopes)
		token, ttl, err := x.tokens.IssueAccessToken(g, act)
		return g, token, ttl, err
	}
	conn, id := subject.conn, subject.identity
	g.AMR, g.IDP = []string{"fed"}, conn.ID()
	res, err := x.resolveExchanged(ctx, subject)
	var sso *identity.SSORequiredError
	switch {
	case errors.As(err, &sso):
		// The organisation's members sign in through its own identity
		// provider only: a token from another connector would keep a
		// removed employee's access alive.
		x.ssoEnforced.WithLabelValues("exchange").Inc()
		return tokens.Grant{}, "", 0, answer.InvalidGrant(ctx, x.log, "this address must sign in through its organisation's own identity provider",
			"client_id", client.GetID(), "connector", conn.ID(), "org_id", sso.Org.ID)
	case errors.Is(err, identity.ErrUnknownUpstreamOrg):
		return tokens.Grant{}, "", 0, answer.InvalidGrant(ctx, x.log, "the token's upstream organisation is not an organisation of this service",
			"client_id", client.GetID(), "connector", conn.ID())
	case errors.Is(err, storage.ErrUserDisabled):
		return tokens.Grant{}, "", 0, answer.InvalidGrant(ctx, x.log, "the user is disabled", "client_id", client.GetID(), "connector", conn.ID())
	case errors.Is(err, storage.ErrAlreadyExists) && id.UserID != "":
		// The upstream named a platform UUID (a legacy session service)
		// that belongs to a user without this identity, and no trusted
		// verified email linked them. Naming an id does not take a user
		// over, and another id would be a guess: refuse, write nothing.
		return tokens.Grant{}, "", 0, x.tokenRefused(ctx, client.GetID(), "subject_token", unacceptable(
			"connector %q: user %s exists without this identity; import it as one of the user's identities", conn.ID(), id.UserID))
	case errors.Is(err, errUnacceptable), errors.Is(err, upstream.ErrUnavailable):
		return tokens.Grant{}, "", 0, x.tokenRefused(ctx, client.GetID(), "subject_token", err)
	case err != nil:
		return tokens.Grant{}, "", 0, x.failures.Store(ctx, "resolve identity", err)
	}
	g.User, g.Org = res.User, res.Org.ID
	g.Scopes = tokens.UserScopes(client, g.User, g.Scopes)
	token, ttl, err := x.tokens.IssueAccessToken(g, act)
	return g, token, ttl, err
}

// resolveExchanged resolves the identity of a verified upstream token as
// a login does (identity.Resolver), with one step more for an access
// token: a first contact that names no verified email is completed
// upstream first where the connector allows (identity.Options
// AccessToken), within the connector's timeout. An upstream that cannot
// answer fails the exchange (upstream.ErrUnavailable, 503) rather than
// resolve without the email; an answer about someone else is
// errUnacceptable.
func (x *Exchanger) resolveExchanged(ctx context.Context, t exchangeToken) (identity.Resolution, error) {
	var o identity.Options
	if t.tokenType == string(oidc.AccessTokenType) {
		o.AccessToken, o.UpstreamTimeout = t.raw, x.upstreams.Timeout(t.conn.ID())
	}
	res, err := x.identities.Resolve(ctx, t.conn, t.identity, o)
	if errors.Is(err, identity.ErrRefused) {
		return identity.Resolution{}, fmt.Errorf("%w: %w", errUnacceptable, err)
	}
	return res, err
}

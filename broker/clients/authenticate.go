package clients

// Client authentication at the token, introspection and revocation
// endpoints: a secret (client_secret_basic or client_secret_post), or a
// signed assertion (private_key_jwt: RFC 7523 sections 2.2 and 3, as
// OpenID Connect Core section 9 profiles it), each accepted once. Failures
// are counted and limited per client and client address, never per
// client alone (docs/design.md rule 7).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/idbroker/broker/broker/answer"
	"github.com/idbroker/broker/broker/edge"
	"github.com/idbroker/broker/broker/ratelimit"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/upstream"
	"github.com/idbroker/broker/upstream/jwks"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Authenticator decides whether a request's client authenticates.
type Authenticator struct {
	Directory *Directory
	KeySets   *KeySets
	// ThirdPartyKeySets fetch the keys of third-party clients
	// (registered ones and metadata-document ones), whose jwks_uri
	// anyone may choose, through a client that dials public addresses
	// only (broker/safefetch).
	ThirdPartyKeySets *KeySets
	// Recent lets clients that just authenticated from an address skip
	// the failure count in storage there.
	Recent   *Successes
	Limiter  *ratelimit.Limiter
	JTIs     storage.Abuse // used assertion identifiers
	Failures answer.Failures
	Log      *slog.Logger
	Now      func() time.Time
	// Issuer and TokenEndpoint are what an assertion's aud may name.
	Issuer, TokenEndpoint string
	ClockSkew             time.Duration
	// FailureLimit is limits.tokenFailuresPerClient.
	FailureLimit ratelimit.Limit
}

// Counters of failed client authentications. A failure is charged to
// whoever can be shown to have made it: a client and the address it
// came from once the client proved who it is (a verified assertion), or
// the address alone while nothing is proven (a forged one). Never to a
// client everywhere, so nobody's failures lock a client out where it
// authenticates correctly (docs/design.md rule 7).
const (
	clientFailures     = "token-failures"        // key: ratelimit.Key(address, client id)
	unprovenAssertions = "unverified-assertions" // key: ratelimit.Source(address)
)

// authenticatedGrants are the grants only an authenticated client may
// use. RFC 6749 section 5.2 answers "no client authentication included"
// with invalid_client, and keeps unauthorized_client for "the
// authenticated client" that may not use a grant: a public client that
// presents its client_id has authenticated nothing, so it is the former,
// whatever grants it is configured with. Token exchange: RFC 8693 section
// 2.1 leaves "whether or not to allow unauthenticated or unidentified
// clients" to the deployment, and here none may. Client credentials: RFC
// 6749 section 4.4, "MUST only be used by confidential clients".
// Jwt-bearer: an identity assertion grant names the client it is for, and
// only an authenticated client can show that it is that client.
var authenticatedGrants = []oidc.GrantType{oidc.GrantTypeTokenExchange, oidc.GrantTypeClientCredentials, oidc.GrantTypeBearer}

// VerifyClient authenticates the client of a token, introspection or
// revocation request. Public clients present only their id; confidential
// clients their secret or a signed assertion. A failure is 401
// invalid_client; so is a public client asking for one of the
// authenticatedGrants, refused here before the library's grant check
// could call it unauthorized_client. An address that failed too often for
// a client is refused with 429 (limited).
func (a *Authenticator) VerifyClient(ctx context.Context, r *op.Request[op.ClientCredentials]) (op.Client, error) {
	client, err := a.Authenticate(ctx, r.Data)
	if err != nil {
		return nil, err
	}
	if grant := oidc.GrantType(r.Form.Get("grant_type")); client.Public() && slices.Contains(authenticatedGrants, grant) {
		a.Log.InfoContext(ctx, "client authentication failed", "client_id", client.GetID(), "reason", "public client", "grant_type", grant)
		return nil, answer.InvalidClient(ctx, "this grant needs client authentication, and a public client has none")
	}
	return client, nil
}

// Authenticate returns the client cc authenticates, by its secret or its
// assertion; a public client by its id alone.
func (a *Authenticator) Authenticate(ctx context.Context, cc *op.ClientCredentials) (*Client, error) {
	if cc.ClientAssertion != "" {
		return a.authenticateAssertion(ctx, cc)
	}
	key := ratelimit.Key(edge.Source(ctx), cc.ClientID)
	client, err := a.Directory.Get(ctx, cc.ClientID)
	if errors.Is(err, ErrUnknownClient) {
		// Refused as a wrong secret is, limit included, so that the
		// answers do not tell which client ids exist.
		if err := a.limited(ctx, clientFailures, key); err != nil {
			return nil, err
		}
		a.Log.InfoContext(ctx, "client authentication failed", "client_id", cc.ClientID, "reason", "unknown client")
		a.countFailure(ctx, clientFailures, key)
		return nil, answer.InvalidClient(ctx, "client authentication failed")
	}
	if err != nil {
		return nil, a.Failures.Store(ctx, "get client", err)
	}
	if client.Public() {
		// A public client proves nothing, so there is nothing to guess:
		// it is never limited, and nobody's failure is charged to it.
		if cc.ClientSecret != "" {
			return nil, answer.InvalidClient(ctx, "a public client has no secret")
		}
		return client, nil
	}
	now := a.Now()
	if !a.Recent.Fresh(key, now) {
		if err := a.limited(ctx, clientFailures, key); err != nil {
			return nil, err
		}
	}
	if cc.ClientSecret == "" || !client.CheckSecret(cc.ClientSecret, now) {
		a.Log.InfoContext(ctx, "client authentication failed", "client_id", cc.ClientID, "reason", "missing or wrong secret")
		a.countFailure(ctx, clientFailures, key)
		return nil, answer.InvalidClient(ctx, "client authentication failed")
	}
	a.Recent.Succeeded(key, now)
	return client, nil
}

// authenticateAssertion authenticates a client by its client_assertion
// (RFC 7523 section 3): signed by one of the client's keys, iss and sub
// the client's id, aud the broker (its issuer or token endpoint), exp
// present and at most MaxAssertionLifetime ahead, jti present and never
// seen before. The jti is consumed only after the signature verifies, so
// forged assertions cannot burn a client's identifiers. Every refusal is
// a 401 invalid_client whose reason goes to the log only; the assertion
// itself is never logged.
//
// Until the signature verifies, the assertion is only its sender's word:
// a refusal then counts against the address it came from, never against
// the client it names, which anyone can name. Refusals after it count
// against the client at that address.
func (a *Authenticator) authenticateAssertion(ctx context.Context, cc *op.ClientCredentials) (*Client, error) {
	// Assertions are compact JWTs (RFC 7523); the JSON serialization is
	// refused. A client proves itself with a private key, never a shared
	// secret, and "none" proves nothing: asymmetric algorithms only.
	jws, err := jwks.ParseCompact(cc.ClientAssertion)
	if err != nil || len(jws.Signatures) != 1 {
		a.Log.InfoContext(ctx, "client authentication failed", "client_id", cc.ClientID, "reason", "client_assertion is not a JWS with one asymmetric signature")
		return nil, answer.InvalidClient(ctx, "client authentication failed")
	}
	// The subject names the client whose keys verify the assertion; it is
	// read unverified only to find them.
	var unverified struct {
		Subject string `json:"sub"`
	}
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &unverified); err != nil || unverified.Subject == "" {
		a.Log.InfoContext(ctx, "client authentication failed", "client_id", cc.ClientID, "reason", "client_assertion has no sub")
		return nil, answer.InvalidClient(ctx, "client authentication failed")
	}
	id, source := unverified.Subject, edge.Source(ctx)
	key := ratelimit.Key(source, id)
	refuse := func(name, key, reason string) error {
		a.Log.InfoContext(ctx, "client authentication failed", "client_id", id, "method", "private_key_jwt", "reason", reason)
		a.countFailure(ctx, name, key)
		return answer.InvalidClient(ctx, "client authentication failed")
	}
	unproven := func(reason string) error {
		// The address is sending what the client would not: a recent
		// success there no longer skips the limits.
		a.Recent.Forget(key)
		return refuse(unprovenAssertions, ratelimit.Source(source), reason)
	}
	fail := func(reason string) error { return refuse(clientFailures, key, reason) }
	if !a.Recent.Fresh(key, a.Now()) {
		if err := a.limited(ctx, unprovenAssertions, ratelimit.Source(source)); err != nil {
			return nil, err
		}
		if err := a.limited(ctx, clientFailures, key); err != nil {
			return nil, err
		}
	}
	if cc.ClientID != "" && cc.ClientID != id {
		return nil, unproven(fmt.Sprintf("client_id %q differs from the assertion's sub", cc.ClientID))
	}
	client, err := a.Directory.Get(ctx, id)
	if errors.Is(err, ErrUnknownClient) {
		return nil, unproven("unknown client")
	}
	if err != nil {
		return nil, a.Failures.Store(ctx, "get client", err)
	}
	if client.Public() {
		return nil, unproven("a public client has no keys")
	}
	sets := a.KeySets
	if client.ThirdParty() {
		sets = a.ThirdPartyKeySets
	}
	payload, err := client.VerifySignature(ctx, sets, jws)
	if errors.Is(err, upstream.ErrUnavailable) && client.ThirdParty() {
		// The keys are where the client itself said; that they cannot
		// be fetched is the client's failure, as its document's would
		// be, not the broker's.
		return nil, unproven("key set of the third-party client: " + err.Error())
	}
	if errors.Is(err, upstream.ErrUnavailable) {
		a.Log.WarnContext(ctx, "client key set unavailable", "client_id", id, "err", err)
		return nil, answer.TemporarilyUnavailable()
	}
	if err != nil {
		return nil, unproven("signature: " + err.Error())
	}
	var claims jwt.Claims
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, fail("claims: " + err.Error())
	}
	now, skew := a.Now(), a.ClockSkew
	switch {
	case claims.Issuer != id || claims.Subject != id:
		return nil, fail(fmt.Sprintf("iss %q and sub must both be the client id", claims.Issuer))
	case !slices.ContainsFunc(claims.Audience, func(aud string) bool { return aud == a.Issuer || aud == a.TokenEndpoint }):
		return nil, fail(fmt.Sprintf("aud %q names neither the issuer nor the token endpoint", []string(claims.Audience)))
	case claims.Expiry == nil:
		return nil, fail("no exp")
	case !now.Before(claims.Expiry.Time().Add(skew)):
		return nil, fail("expired")
	case claims.Expiry.Time().After(now.Add(MaxAssertionLifetime + skew)):
		return nil, fail(fmt.Sprintf("exp is more than %v ahead", MaxAssertionLifetime))
	case claims.NotBefore != nil && now.Add(skew).Before(claims.NotBefore.Time()):
		return nil, fail("not yet valid (nbf)")
	case claims.ID == "":
		return nil, fail("no jti")
	case len(claims.ID) > MaxJTILength:
		return nil, fail(fmt.Sprintf("jti is longer than %d bytes", MaxJTILength))
	}
	// jti values are unique per issuer, so each client has its own space.
	err = a.JTIs.ConsumeJTI(ctx, "client_assertion:"+id+":"+claims.ID, claims.Expiry.Time().Add(skew))
	if errors.Is(err, storage.ErrReplay) {
		return nil, fail("assertion replayed (jti already used)")
	}
	if err != nil {
		return nil, a.Failures.Store(ctx, "consume jti", err)
	}
	a.Recent.Succeeded(key, now)
	return client, nil
}

// limited refuses a request whose failures under name and key reached
// FailureLimit, before anything about its credentials is checked, so a
// secret cannot be guessed at speed. The answer is 429 with Retry-After
// and temporarily_unavailable: RFC 6749 section 5.2 has no error for a
// limit, and this one passes.
func (a *Authenticator) limited(ctx context.Context, name, key string) error {
	// Count failures are allowed; the attempt after them is refused.
	reached, wait, err := a.Limiter.Reached(ctx, name, key, a.FailureLimit.Count-1)
	if err != nil {
		return a.Failures.Store(ctx, "rate limited", err)
	}
	if !reached {
		return nil
	}
	edge.SetResponseHeader(ctx, "Retry-After", ratelimit.RetryAfter(wait))
	return op.NewStatusError(&oidc.Error{ErrorType: "temporarily_unavailable",
		Description: "too many failed client authentications from this address; retry later"}, http.StatusTooManyRequests)
}

// countFailure records a failed client authentication under name and
// key. A failure for a client at an address also ends the shortcut a
// recent success there gave.
func (a *Authenticator) countFailure(ctx context.Context, name, key string) {
	if name == clientFailures {
		a.Recent.Forget(key)
	}
	if _, _, err := a.Limiter.Take(ctx, name, key, a.FailureLimit); err != nil {
		a.Log.WarnContext(ctx, "could not count a failed client authentication", "err", err)
	}
}

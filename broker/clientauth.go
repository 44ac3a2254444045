package broker

// Client authentication with private_key_jwt: RFC 7523 sections 2.2 and
// 3, as OpenID Connect Core section 9 profiles it. A client registers its
// public keys (inline or by URL) and authenticates by signing a short-lived
// JWT about itself; each assertion is accepted once.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/idbroker/broker/broker/answer"
	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/upstream"
	"github.com/idbroker/broker/upstream/jwks"
	"github.com/zitadel/oidc/v3/pkg/op"
	"gopkg.in/yaml.v3"
)

// JSONDocument is a JSON value in the configuration, written either as
// YAML or as a string holding JSON.
type JSONDocument []byte

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *JSONDocument) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		*d = JSONDocument(n.Value)
		return nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("line %d: not representable as JSON: %w", n.Line, err)
	}
	*d = b
	return nil
}

// authenticateAssertion authenticates a client by its client_assertion
// (RFC 7523 section 3): signed by one of the client's keys, iss and sub
// the client's id, aud the broker (its issuer or token endpoint), exp
// present and at most clients.MaxAssertionLifetime ahead, jti present and never
// seen before. The jti is consumed only after the signature verifies, so
// forged assertions cannot burn a client's identifiers. Every refusal is
// a 401 invalid_client whose reason goes to the log only; the assertion
// itself is never logged.
//
// Until the signature verifies, the assertion is only its sender's word:
// a refusal then counts against the address it came from, never against
// the client it names, which anyone can name. Refusals after it count
// against the client at that address.
func (b *Broker) authenticateAssertion(ctx context.Context, cc *op.ClientCredentials) (*clients.Client, error) {
	// Assertions are compact JWTs (RFC 7523); the JSON serialization is
	// refused. A client proves itself with a private key, never a shared
	// secret, and "none" proves nothing: asymmetric algorithms only.
	jws, err := jwks.ParseCompact(cc.ClientAssertion)
	if err != nil || len(jws.Signatures) != 1 {
		b.log.InfoContext(ctx, "client authentication failed", "client_id", cc.ClientID, "reason", "client_assertion is not a JWS with one asymmetric signature")
		return nil, invalidClient("client authentication failed")
	}
	// The subject names the client whose keys verify the assertion; it is
	// read unverified only to find them.
	var unverified struct {
		Subject string `json:"sub"`
	}
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &unverified); err != nil || unverified.Subject == "" {
		b.log.InfoContext(ctx, "client authentication failed", "client_id", cc.ClientID, "reason", "client_assertion has no sub")
		return nil, invalidClient("client authentication failed")
	}
	id, source := unverified.Subject, requestSource(ctx)
	key := limitKey(source, id)
	refuse := func(name, key, reason string) error {
		b.log.InfoContext(ctx, "client authentication failed", "client_id", id, "method", "private_key_jwt", "reason", reason)
		b.countClientAuthFailure(ctx, name, key)
		return invalidClient("client authentication failed")
	}
	unproven := func(reason string) error {
		// The address is sending what the client would not: a recent
		// success there no longer skips the limits.
		b.recentClientAuth.Forget(key)
		return refuse(unprovenAssertions, limitSource(source), reason)
	}
	fail := func(reason string) error { return refuse(clientFailures, key, reason) }
	if !b.recentClientAuth.Fresh(key, b.now()) {
		if err := b.clientAuthLimited(ctx, unprovenAssertions, limitSource(source)); err != nil {
			return nil, err
		}
		if err := b.clientAuthLimited(ctx, clientFailures, key); err != nil {
			return nil, err
		}
	}
	if cc.ClientID != "" && cc.ClientID != id {
		return nil, unproven(fmt.Sprintf("client_id %q differs from the assertion's sub", cc.ClientID))
	}
	client, err := b.clients.Get(ctx, id)
	if errors.Is(err, clients.ErrUnknownClient) {
		return nil, unproven("unknown client")
	}
	if err != nil {
		return nil, b.failures.Store(ctx, "get client", err)
	}
	if client.Public() {
		return nil, unproven("a public client has no keys")
	}
	payload, err := client.VerifySignature(ctx, b.clientKeys, jws)
	if errors.Is(err, upstream.ErrUnavailable) {
		b.log.WarnContext(ctx, "client key set unavailable", "client_id", id, "err", err)
		return nil, answer.TemporarilyUnavailable()
	}
	if err != nil {
		return nil, unproven("signature: " + err.Error())
	}
	var claims jwt.Claims
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, fail("claims: " + err.Error())
	}
	now, skew := b.now(), b.cfg.Tokens.ClockSkew
	switch {
	case claims.Issuer != id || claims.Subject != id:
		return nil, fail(fmt.Sprintf("iss %q and sub must both be the client id", claims.Issuer))
	case !slices.ContainsFunc(claims.Audience, func(a string) bool { return a == b.issuer || a == b.issuer+tokenPath }):
		return nil, fail(fmt.Sprintf("aud %q names neither the issuer nor the token endpoint", []string(claims.Audience)))
	case claims.Expiry == nil:
		return nil, fail("no exp")
	case !now.Before(claims.Expiry.Time().Add(skew)):
		return nil, fail("expired")
	case claims.Expiry.Time().After(now.Add(clients.MaxAssertionLifetime + skew)):
		return nil, fail(fmt.Sprintf("exp is more than %v ahead", clients.MaxAssertionLifetime))
	case claims.NotBefore != nil && now.Add(skew).Before(claims.NotBefore.Time()):
		return nil, fail("not yet valid (nbf)")
	case claims.ID == "":
		return nil, fail("no jti")
	}
	// jti values are unique per issuer, so each client has its own space.
	err = b.store.ConsumeJTI(ctx, "client_assertion:"+id+":"+claims.ID, claims.Expiry.Time().Add(skew))
	if errors.Is(err, storage.ErrReplay) {
		return nil, fail("assertion replayed (jti already used)")
	}
	if err != nil {
		return nil, b.failures.Store(ctx, "consume jti", err)
	}
	b.recentClientAuth.Succeeded(key, now)
	return client, nil
}

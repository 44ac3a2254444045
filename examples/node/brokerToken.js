// Express middleware that accepts a broker access token for one audience.
//
// jose checks what RFC 9068 asks of a JWT access token: the signature,
// against the broker's published key set (createRemoteJWKSet fetches and
// caches it, and refetches for an unknown kid); the header's typ (at+jwt,
// so an ID token is never taken for an access token; application/at+jwt
// too); iss, aud, exp; and the alg, which must be an asymmetric algorithm
// (never none or HS*) that fits the key the token names. Required scopes
// come from the space-separated scope claim. Refusals follow RFC 6750: 401
// with error="invalid_token", 403 with error="insufficient_scope".
import { createRemoteJWKSet, errors, jwtVerify } from 'jose';

const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

// brokerTokens returns requireToken(...scopes), which makes a middleware
// that puts the verified token on req.auth: { sub, clientId, scopes, claims }.
// sub is the platform user's UUID (a machine client's service user).
export function brokerTokens({ issuer, audience, clockTolerance = 60 }) {
  issuer = issuer.replace(/\/+$/, '');
  const keys = createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`));

  return function requireToken(...scopes) {
    return async (req, res, next) => {
      const bearer = /^Bearer +(\S+)$/i.exec(req.get('authorization') ?? '');
      if (!bearer) {
        // No token at all: a challenge without an error (RFC 6750 section 3.1).
        return res.set('WWW-Authenticate', 'Bearer').status(401).json({ error: 'bearer token required' });
      }
      let payload;
      try {
        ({ payload } = await jwtVerify(bearer[1], keys, {
          issuer,
          audience,
          typ: 'at+jwt',
          algorithms: ALGORITHMS,
          clockTolerance,
          requiredClaims: ['exp', 'iat', 'sub'],
        }));
      } catch (err) {
        if (keySetUnavailable(err)) {
          return res.set('Retry-After', '5').status(503).json({ error: "cannot fetch the broker's keys" });
        }
        return res.set('WWW-Authenticate', 'Bearer error="invalid_token"').status(401).json({ error: 'invalid token' });
      }
      if (payload.scope !== undefined && typeof payload.scope !== 'string') {
        return res.set('WWW-Authenticate', 'Bearer error="invalid_token"').status(401).json({ error: 'invalid token' });
      }
      const granted = new Set((payload.scope ?? '').split(' ').filter(Boolean));
      if (!scopes.every((s) => granted.has(s))) {
        return res
          .set('WWW-Authenticate', `Bearer error="insufficient_scope", scope="${scopes.join(' ')}"`)
          .status(403)
          .json({ error: 'insufficient scope' });
      }
      req.auth = { sub: payload.sub, clientId: payload.client_id, scopes: granted, claims: payload };
      next();
    };
  };
}

// keySetUnavailable tells a key set that could not be fetched (the broker
// down, a timeout, an answer that is not a key set) from a bad token.
function keySetUnavailable(err) {
  return (
    !(err instanceof errors.JOSEError) ||
    err instanceof errors.JWKSTimeout ||
    err.code === 'ERR_JOSE_GENERIC' ||
    err.code === 'ERR_JWKS_INVALID'
  );
}

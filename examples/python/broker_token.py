"""A FastAPI dependency that accepts a broker access token for one audience.

It checks what RFC 9068 asks of a JWT access token: the signature, against
the broker's published key set (PyJWKClient fetches and caches it); the
header's typ (at+jwt, so an ID token is never taken for an access token);
iss, aud, exp; and the alg, which must be an asymmetric algorithm of the key
the token names (never none, never HS256 with a public key as the secret).
Required scopes come from the space-separated scope claim. Refusals follow
RFC 6750: 401 with error="invalid_token", 403 with error="insufficient_scope".
"""

from dataclasses import dataclass

import jwt
from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

# The asymmetric algorithms, by the key type each needs.
KEY_TYPES = {
    "RS256": "RSA", "RS384": "RSA", "RS512": "RSA",
    "PS256": "RSA", "PS384": "RSA", "PS512": "RSA",
    "ES256": "EC", "ES384": "EC", "ES512": "EC",
    "EdDSA": "OKP",
}
ACCESS_TOKEN_TYPES = {"at+jwt", "application/at+jwt"}
_jwt = jwt.PyJWT()


class KeySetUnavailable(Exception):
    """The broker's key set could not be fetched: not the token's fault."""


class _KeySet(jwt.PyJWKClient):
    def fetch_data(self):
        try:
            return super().fetch_data()
        except jwt.PyJWKClientError as e:  # only fetching raises it here
            raise KeySetUnavailable(str(e)) from e


@dataclass(frozen=True)
class AccessToken:
    sub: str  # the platform user's UUID (a machine client's service user)
    client_id: str
    scopes: frozenset
    claims: dict


class BrokerTokens:
    """Verifies broker access tokens issued for audience."""

    def __init__(self, issuer: str, audience: str, leeway: int = 60):
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.leeway = leeway
        self._keys = _KeySet(self.issuer + "/.well-known/jwks.json", lifespan=900)

    def verify(self, token: str) -> AccessToken:
        """Returns the token's claims or raises jwt.InvalidTokenError
        (or KeySetUnavailable)."""
        header = jwt.get_unverified_header(token)
        alg = header.get("alg")
        if alg not in KEY_TYPES:
            raise jwt.InvalidAlgorithmError(f"algorithm {alg!r} is not accepted")
        try:
            key = self._keys.get_signing_key(header.get("kid"))
        except jwt.PyJWKClientError as e:  # no key of that kid, even after a refetch
            raise jwt.InvalidTokenError(str(e)) from e
        if key.key_type != KEY_TYPES[alg]:
            raise jwt.InvalidAlgorithmError(f"algorithm {alg!r} does not fit the key")
        decoded = _jwt.decode_complete(
            token,
            key.key,
            algorithms=[alg],
            audience=self.audience,
            issuer=self.issuer,
            leeway=self.leeway,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
        typ = decoded["header"].get("typ")
        if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
            raise jwt.InvalidTokenError("not an access token (typ is not at+jwt)")
        claims = decoded["payload"]
        scope = claims.get("scope", "")
        if not isinstance(scope, str):
            raise jwt.InvalidTokenError("scope is not a string")
        return AccessToken(
            sub=claims["sub"],
            client_id=claims.get("client_id", ""),
            scopes=frozenset(scope.split()),
            claims=claims,
        )


_bearer = HTTPBearer(auto_error=False)


def require_token(tokens: BrokerTokens, *scopes: str):
    """A dependency giving the verified AccessToken, with every one of
    scopes granted."""

    def dependency(
        credentials: HTTPAuthorizationCredentials = Depends(_bearer),
    ) -> AccessToken:
        if credentials is None:  # no token at all: a challenge without an error
            raise HTTPException(401, "bearer token required", {"WWW-Authenticate": "Bearer"})
        try:
            token = tokens.verify(credentials.credentials)
        except KeySetUnavailable:
            raise HTTPException(503, "cannot fetch the broker's keys", {"Retry-After": "5"})
        except jwt.InvalidTokenError:
            raise HTTPException(401, "invalid token", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if not token.scopes.issuperset(scopes):
            challenge = f'Bearer error="insufficient_scope", scope="{" ".join(scopes)}"'
            raise HTTPException(403, "insufficient scope", {"WWW-Authenticate": challenge})
        return token

    return dependency

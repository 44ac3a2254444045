"""An API that trusts the broker: uvicorn app:app --port 8000.

BROKER_ISSUER (default the development instance, http://127.0.0.1:8080)
and API_AUDIENCE (default "dev": the development instance's client, whose
tokens name it as their audience) configure it.
"""

import os

from fastapi import Depends, FastAPI

from broker_token import AccessToken, BrokerTokens, require_token


def create_app(issuer: str, audience: str) -> FastAPI:
    tokens = BrokerTokens(issuer, audience)
    app = FastAPI()

    @app.get("/me")
    def me(token: AccessToken = Depends(require_token(tokens))):
        return {"sub": token.sub, "client_id": token.client_id, "scope": sorted(token.scopes)}

    @app.get("/orders")
    def orders(token: AccessToken = Depends(require_token(tokens, "orders.read"))):
        return {"sub": token.sub, "orders": []}

    return app


app = create_app(
    os.environ.get("BROKER_ISSUER", "http://127.0.0.1:8080"),
    os.environ.get("API_AUDIENCE", "dev"),
)

"""Runs requests against app.py with FastAPI's test client, for the Go test
(examples/examples_test.go) and for trying tokens by hand.

stdin:  {"issuer": "...", "cases": [{"name": "...", "audience": "...", "path": "/me", "token": "..."}]}
stdout: {"results": [{"name": "...", "status": 200, "www_authenticate": "...", "body": {...}}]}

A case without a token sends no Authorization header.
"""

import json
import sys

from fastapi.testclient import TestClient

from app import create_app


def main() -> None:
    request = json.load(sys.stdin)
    clients = {}
    results = []
    for case in request["cases"]:
        audience = case["audience"]
        if audience not in clients:
            clients[audience] = TestClient(create_app(request["issuer"], audience))
        headers = {"Authorization": "Bearer " + case["token"]} if case.get("token") else {}
        response = clients[audience].get(case["path"], headers=headers)
        results.append({
            "name": case["name"],
            "status": response.status_code,
            "www_authenticate": response.headers.get("www-authenticate", ""),
            "body": response.json(),
        })
    json.dump({"results": results}, sys.stdout)


if __name__ == "__main__":
    main()

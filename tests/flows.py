"""Browser-like helpers: follow the authorization flow through the HTML forms."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.conftest import PASSWORD

REDIRECT_URI = "https://rp.example.com/cb"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def form_value(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no {name} in form"
    return match.group(1)


def query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def auth_params(client_id: str, challenge: str, **extra: Any) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile email offline_access",
        "state": secrets.token_urlsafe(8),
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update({k: v for k, v in extra.items() if v is not None})
    return {k: v for k, v in params.items() if v != ""}


def follow(client: Any, response: Any, *, username: str = "alice", password: str = PASSWORD,
           consent: str | None = "allow", max_steps: int = 8) -> Any:
    """Follow redirects inside the server, submitting login and consent forms,
    until a redirect leaves the server (returned) or a page that is not a form."""
    for _ in range(max_steps):
        if response.status_code in (302, 303):
            location = response.headers["location"]
            if location.startswith("http") and not location.startswith(str(client.base_url)):
                return response
            response = client.get(location, headers={"accept": "text/html"})
            continue
        html = response.text
        if 'action="/login"' in html and response.status_code == 200 and 'id="login-error"' not in html:
            response = client.post("/login", data={
                "csrf_token": form_value(html, "csrf_token"), "rid": form_value(html, "rid"),
                "username": username, "password": password})
            continue
        if 'action="/consent"' in html and consent:
            response = client.post("/consent", data={
                "csrf_token": form_value(html, "csrf_token"), "rid": form_value(html, "rid"),
                "decision": consent})
            continue
        return response
    raise AssertionError("too many steps")


def login_rid(response: Any) -> str:
    """The ``rid`` of the login form that ``/authorize`` shows itself when the request
    needs a login (no redirect to ``/login``); fails when the answer is anything else."""
    assert response.status_code == 200 and 'action="/login"' in response.text, response.status_code
    return form_value(response.text, "rid")


def get_code(client: Any, client_id: str, **extra: Any) -> tuple[str, str, dict[str, str]]:
    """Run the browser flow; returns ``(code, verifier, params)``."""
    verifier, challenge = pkce()
    params = auth_params(client_id, challenge, **extra)
    response = follow(client, client.get("/authorize", params=params))
    assert response.status_code in (302, 303), response.text[:500]
    q = query(response.headers["location"])
    assert "code" in q, q
    assert q["state"] == params["state"] and q["iss"] == str(client.base_url).rstrip("/")
    return q["code"], verifier, params


def exchange(client: Any, client_id: str, secret: str | None, code: str, verifier: str) -> Any:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier}
    if secret is None:
        data["client_id"] = client_id
        return client.post("/token", data=data)
    return client.post("/token", data=data, auth=(client_id, secret))


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def tokens(client: Any, client_id: str, secret: str | None, **extra: Any) -> dict[str, Any]:
    """The whole code flow through the forms; returns the token response body
    plus ``_params`` (the authorization request sent)."""
    code, verifier, params = get_code(client, client_id, **extra)
    response = exchange(client, client_id, secret, code, verifier)
    assert response.status_code == 200, response.text
    return {**response.json(), "_params": params}


def refresh(client: Any, client_id: str, secret: str | None, refresh_token: str, **extra: str) -> Any:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    if secret is None:
        return client.post("/token", data={**data, "client_id": client_id})
    return client.post("/token", data=data, auth=(client_id, secret))


def introspect(client: Any, client_id: str, secret: str | None, token: str) -> dict[str, Any]:
    response = client.post("/introspect", data={"token": token}, auth=(client_id, secret))
    assert response.status_code == 200, response.text
    return dict(response.json())


def unverified(token: str) -> dict[str, Any]:
    import jwt

    return dict(jwt.decode(token, options={"verify_signature": False}))

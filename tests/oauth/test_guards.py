"""Checks of the grants and the token service that the rest of the suite left
unguarded (found by mutation testing, docs/mutation.md): each test fails when
its check is removed."""

from __future__ import annotations

from tests.conftest import PASSWORD


def test_password_grant_refused_to_a_user_without_mfa_at_a_client_requiring_it(client, make_user, make_client):
    make_user()
    cid, secret = make_client(grant_types=["password"], require_mfa=True)
    response = client.post("/token", data={"grant_type": "password", "username": "alice",
                                           "password": PASSWORD, "scope": "openid"}, auth=(cid, secret))
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert "multi-factor" in response.json()["error_description"]

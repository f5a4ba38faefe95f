from __future__ import annotations

import jwt

from tests.flows import exchange, get_code


def test_code_flow_through_forms(client, make_user, make_client):
    make_user()
    cid, secret = make_client()
    code, verifier, params = get_code(client, cid)
    r = exchange(client, cid, secret, code, verifier)
    assert r.status_code == 200, r.text
    body = r.json()
    claims = jwt.decode(body["id_token"], options={"verify_signature": False})
    assert claims["nonce"] == params["nonce"] and claims["aud"] == cid
    assert "refresh_token" in body
    r = client.get("/userinfo", headers={"authorization": f"Bearer {body['access_token']}"})
    assert r.status_code == 200 and r.json()["email"] == "alice@example.com"
    # replay revokes the refresh token
    r = exchange(client, cid, secret, code, verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
                    auth=(cid, secret))
    assert r.json()["error"] == "invalid_grant"

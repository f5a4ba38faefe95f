"""PAR, private_key_jwt and an ES256 ID token against the live server over real HTTP:
the client pushes with a signed assertion, the browser forms run, the code is redeemed
with another assertion, and PyJWT's ``PyJWKClient`` verifies the ID token from ``/jwks.json``."""

from __future__ import annotations

import jwt
import pytest

from tests.flows import REDIRECT_URI, auth_params, follow, pkce, query
from tests.interop.conftest import Live
from tests.oauth.test_private_key_jwt import ASSERTION_TYPE, Signer, jwks

pytestmark = pytest.mark.interop


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_par_with_private_key_jwt_and_an_id_token_alg(live: Live, alg: str) -> None:
    live.make_user()
    signer = Signer("EdDSA" if alg == "EdDSA" else "ES256")
    cid, secret = live.make_client(token_endpoint_auth_method="private_key_jwt", jwks=jwks(signer),
                                   redirect_uris=[REDIRECT_URI], id_token_signed_response_alg=alg,
                                   require_pushed_authorization_requests=True)
    assert secret is None
    verifier, challenge = pkce()
    params = auth_params(cid, challenge)
    with live.http() as http:
        r = http.post("/par", data={**params, "client_assertion_type": ASSERTION_TYPE,
                                    "client_assertion": signer.assertion(cid, aud=live.url)})
        assert r.status_code == 201, r.text
        response = follow(http, http.get("/authorize", params={"client_id": cid,
                                                               "request_uri": r.json()["request_uri"]}))
        q = query(response.headers["location"])
        assert q["state"] == params["state"] and q["iss"] == live.url
        r = http.post("/token", data={"grant_type": "authorization_code", "code": q["code"],
                                      "redirect_uri": REDIRECT_URI, "code_verifier": verifier,
                                      "client_assertion_type": ASSERTION_TYPE,
                                      "client_assertion": signer.assertion(cid, aud=f"{live.url}/token")})
        assert r.status_code == 200, r.text
        id_token = r.json()["id_token"]
        # without PAR this client is refused
        r = http.get("/authorize", params=auth_params(cid, challenge))
        assert query(r.headers["location"])["error"] == "invalid_request"
    key = jwt.PyJWKClient(f"{live.url}/jwks.json").get_signing_key_from_jwt(id_token)
    claims = jwt.decode(id_token, key, algorithms=[alg], audience=cid, issuer=live.url)
    assert claims["nonce"] == params["nonce"] and jwt.get_unverified_header(id_token)["alg"] == alg

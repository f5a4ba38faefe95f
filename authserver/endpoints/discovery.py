"""OpenID Provider metadata (OIDC Discovery §3) and RFC 8414 metadata.

Built once per process; names only what works at this commit.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from authserver.i18n import LOCALES
from authserver.oauth import vocabulary as v
from authserver.passkeys.service import RelyingParty
from authserver.settings import Settings
from authserver.web.prebuilt import Prebuilt

CLAIMS = ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid",
          "at_hash", "name", "preferred_username", "locale", "updated_at", "email", "email_verified", "roles"]


def metadata(settings: Settings) -> dict[str, Any]:
    base = settings.issuer
    return {
        "issuer": base,
        "authorization_endpoint": f"{base}/authorize",
        "token_endpoint": f"{base}/token",
        "userinfo_endpoint": f"{base}/userinfo",
        "jwks_uri": f"{base}/jwks.json",
        "revocation_endpoint": f"{base}/revoke",
        "introspection_endpoint": f"{base}/introspect",
        "registration_endpoint": f"{base}/register",
        "end_session_endpoint": f"{base}/logout",
        "device_authorization_endpoint": f"{base}/device_authorization",
        # RFC 9126 §5
        "pushed_authorization_request_endpoint": f"{base}/par",
        "require_pushed_authorization_requests": settings.require_pushed_authorization_requests,
        "scopes_supported": list(v.SCOPES),
        "response_types_supported": list(v.RESPONSE_TYPES),
        "response_modes_supported": list(v.RESPONSE_MODES),
        "grant_types_supported": list(v.GRANT_TYPES),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(v.ID_TOKEN_SIGNING_ALGS),
        "token_endpoint_auth_methods_supported": list(v.AUTH_METHODS),
        "revocation_endpoint_auth_methods_supported": list(v.AUTH_METHODS),
        "introspection_endpoint_auth_methods_supported": list(v.AUTH_METHODS),
        # private_key_jwt assertions (RFC 8414 §2, OIDC Discovery §3)
        "token_endpoint_auth_signing_alg_values_supported": list(v.CLIENT_ASSERTION_SIGNING_ALGS),
        "revocation_endpoint_auth_signing_alg_values_supported": list(v.CLIENT_ASSERTION_SIGNING_ALGS),
        "introspection_endpoint_auth_signing_alg_values_supported": list(v.CLIENT_ASSERTION_SIGNING_ALGS),
        "code_challenge_methods_supported": list(v.CODE_CHALLENGE_METHODS),
        "dpop_signing_alg_values_supported": list(v.DPOP_SIGNING_ALGS),  # RFC 9449 §5.1
        "claims_supported": CLAIMS,
        "claims_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "require_request_uri_registration": False,
        "prompt_values_supported": list(v.PROMPT_VALUES),
        # phishing-resistant (a passkey) only where passkeys work: a domain name as issuer host
        "acr_values_supported": [*v.ACR_VALUES, *([v.ACR_PHR] if RelyingParty.for_issuer(base) else [])],
        "authorization_response_iss_parameter_supported": True,
        "frontchannel_logout_supported": False,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        # no claim has language variants (name#fr): claims_locales changes nothing (docs/i18n.md)
        "claims_locales_supported": ["en"],
        "ui_locales_supported": list(LOCALES),
        # no service_documentation: the server serves no documentation page (RFC 8414 §2: OPTIONAL)
    }


async def openid_configuration(request: Request) -> Response:
    prebuilt: Prebuilt = request.app.state.discovery
    return prebuilt.answer(request)


def render(settings: Settings) -> Prebuilt:
    """The document as one pre-built response with an ``ETag`` (``304`` on ``If-None-Match``)."""
    body = json.dumps(metadata(settings), separators=(",", ":")).encode()
    return Prebuilt(body, "application/json", "public, max-age=3600")


routes = [
    Route("/.well-known/openid-configuration", openid_configuration, methods=["GET"]),
    Route("/.well-known/oauth-authorization-server", openid_configuration, methods=["GET"]),
]

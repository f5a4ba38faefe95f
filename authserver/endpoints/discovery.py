"""OpenID Provider metadata (OIDC Discovery §3) and RFC 8414 metadata.

Built once per process; names only what works at this commit.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from authserver.oauth import vocabulary as v
from authserver.settings import Settings
from authserver.web.prebuilt import Prebuilt

CLAIMS = ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid",
          "at_hash", "name", "preferred_username", "updated_at", "email", "email_verified", "roles"]


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
        "scopes_supported": list(v.SCOPES),
        "response_types_supported": list(v.RESPONSE_TYPES),
        "response_modes_supported": list(v.RESPONSE_MODES),
        "grant_types_supported": list(v.GRANT_TYPES),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(v.ID_TOKEN_SIGNING_ALGS),
        "token_endpoint_auth_methods_supported": list(v.AUTH_METHODS),
        "revocation_endpoint_auth_methods_supported": list(v.AUTH_METHODS),
        "introspection_endpoint_auth_methods_supported": list(v.AUTH_METHODS),
        "code_challenge_methods_supported": list(v.CODE_CHALLENGE_METHODS),
        "claims_supported": CLAIMS,
        "claims_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "require_request_uri_registration": False,
        "prompt_values_supported": list(v.PROMPT_VALUES),
        "acr_values_supported": list(v.ACR_VALUES),
        "authorization_response_iss_parameter_supported": True,
        "frontchannel_logout_supported": False,
        "backchannel_logout_supported": False,
        "claims_locales_supported": ["en"],
        "ui_locales_supported": ["en"],
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

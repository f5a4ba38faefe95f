"""The protocol words this server understands, spelt once.

Discovery (OIDC Discovery §3, RFC 8414 §2), client validation (RFC 7591 §2),
the grants, the consent page and the CLI all derive from these names; adding a
scope or a grant type starts here. Imports nothing from the app.
"""

from __future__ import annotations

from typing import Final


def N_(message: str) -> str:
    """The consent page translates these (docs/i18n.md); here they stay English."""
    return message

# -- scopes (RFC 6749 §3.3, OIDC Core §5.4, §11) --------------------------------

OPENID: Final = "openid"
OFFLINE_ACCESS: Final = "offline_access"
#: roles and permissions in tokens and userinfo (RFC 9068 §2.2.3.1, docs/roles.md)
ROLES: Final = "roles"
#: opens the admin API; what the caller may do there comes from its roles (docs/roles.md)
ADMIN_SCOPE: Final = "authserver:admin"

#: scope → what the consent page tells the user it allows
SCOPE_DESCRIPTIONS: Final[dict[str, str]] = {
    OPENID: N_("Sign you in with your account"),
    "profile": N_("See your name and username"),
    "email": N_("See your e-mail address"),
    OFFLINE_ACCESS: N_("Stay signed in to your account when you are not using it"),
    ROLES: N_("See your roles and the permissions they give you"),
}
SCOPES: Final[tuple[str, ...]] = tuple(SCOPE_DESCRIPTIONS)
#: scopes a dynamically registered client may ask for (RFC 7591 §2): all of them
REGISTRABLE_SCOPES: Final[tuple[str, ...]] = SCOPES
#: scopes that need an end user; dropped from a ``client_credentials`` token
USER_SCOPES: Final[frozenset[str]] = frozenset({OPENID, OFFLINE_ACCESS})
#: what a registered code-flow client gets when it names no scope
DEFAULT_SCOPE: Final = "openid profile email"
#: API scopes of this server itself: an administrator registers clients with them
#: (``clients create --scope``); never self-registered, never advertised in discovery
API_SCOPE_DESCRIPTIONS: Final[dict[str, str]] = {
    ADMIN_SCOPE: N_("Administer this server with the permissions of your roles"),
}

# -- grant types (RFC 6749 §4, §6) -------------------------------------------------

AUTHORIZATION_CODE: Final = "authorization_code"
REFRESH_TOKEN: Final = "refresh_token"
PASSWORD: Final = "password"
CLIENT_CREDENTIALS: Final = "client_credentials"
GRANT_TYPES: Final[tuple[str, ...]] = (AUTHORIZATION_CODE, REFRESH_TOKEN, PASSWORD, CLIENT_CREDENTIALS)
#: never ``password`` by self-registration (RFC 9700 §2.4)
REGISTRABLE_GRANT_TYPES: Final[tuple[str, ...]] = (AUTHORIZATION_CODE, REFRESH_TOKEN, CLIENT_CREDENTIALS)
#: grants that a public client cannot use: they need a client secret
CONFIDENTIAL_GRANT_TYPES: Final[frozenset[str]] = frozenset({PASSWORD, CLIENT_CREDENTIALS})

# -- authorization endpoint (RFC 6749 §3.1, RFC 7636 §4.3, OIDC Core §3.1.2.1) ------

CODE: Final = "code"
RESPONSE_TYPES: Final[tuple[str, ...]] = (CODE,)
RESPONSE_MODES: Final[tuple[str, ...]] = ("query",)
CODE_CHALLENGE_METHODS: Final[tuple[str, ...]] = ("S256",)
PROMPT_VALUES: Final[tuple[str, ...]] = ("none", "login", "consent")

# -- client authentication (RFC 6749 §2.3, RFC 7591 §2) ----------------------------

CLIENT_SECRET_BASIC: Final = "client_secret_basic"
CLIENT_SECRET_POST: Final = "client_secret_post"
#: a JWT signed with the client's registered key (RFC 7523 §2.2, OIDC Core §9)
PRIVATE_KEY_JWT: Final = "private_key_jwt"
NONE: Final = "none"  # a public client (RFC 7591 §2)
#: methods that authenticate with a shared secret: only these clients get one
SECRET_AUTH_METHODS: Final[tuple[str, ...]] = (CLIENT_SECRET_BASIC, CLIENT_SECRET_POST)
CONFIDENTIAL_AUTH_METHODS: Final[tuple[str, ...]] = (*SECRET_AUTH_METHODS, PRIVATE_KEY_JWT)
AUTH_METHODS: Final[tuple[str, ...]] = (*CONFIDENTIAL_AUTH_METHODS, NONE)
DEFAULT_AUTH_METHOD: Final = CLIENT_SECRET_BASIC
#: ``client_assertion_type`` of a JWT client assertion (RFC 7523 §2.2)
CLIENT_ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: what a client assertion may be signed with: asymmetric only, never ``none`` or HS* (RFC 7523 §3,
#: RFC 8725 §3.1)
CLIENT_ASSERTION_SIGNING_ALGS: Final[tuple[str, ...]] = ("RS256", "PS256", "ES256", "EdDSA")

# -- authentication context (OIDC Core §2: acr, amr) ------------------------------

ACR_PWD: Final = "urn:authserver:acr:pwd"
ACR_MFA: Final = "urn:authserver:acr:mfa"
#: phishing-resistant: the sign-in included a passkey (NIST SP 800-63B §5.2.5, verifier-impersonation
#: resistance); stronger than ``ACR_MFA`` and satisfies it. Advertised only where passkeys work.
ACR_PHR: Final = "urn:authserver:acr:phr"
ACR_VALUES: Final[tuple[str, ...]] = (ACR_PWD, ACR_MFA)
#: RFC 8176 §2 ``amr`` values that are a second factor: a one-time code, or a passkey
#: (``hwk``, proof of possession of a hardware-secured key)
AMR_SECOND_FACTORS: Final = frozenset({"otp", "hwk"})

# -- tokens (RFC 6750 §1, RFC 7009 §2.1, RFC 7662 §2.2) ---------------------------

BEARER: Final = "Bearer"
#: ``token_type`` of an access token bound to a DPoP key (RFC 9449 §5, §6.2) and its
#: ``Authorization`` scheme (§7.1)
DPOP: Final = "DPoP"
#: JWS algorithms accepted for DPoP proofs (RFC 9449 §5.1 ``dpop_signing_alg_values_supported``):
#: asymmetric only (§4.2), the ones joserfc verifies
DPOP_SIGNING_ALGS: Final[tuple[str, ...]] = (
    "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512", "Ed25519")
#: ``token_type`` of an introspected refresh token, as in a ``token_type_hint``
REFRESH_TOKEN_TYPE: Final = REFRESH_TOKEN
#: what ID tokens can be signed with, per client (OIDC Registration §2); RS256 the default
ID_TOKEN_SIGNING_ALGS: Final[tuple[str, ...]] = ("RS256", "ES256", "EdDSA")

# -- redirect URIs (RFC 8252 §7.3, RFC 9700 §2.1) ----------------------------------

#: hosts for which plain ``http`` is allowed (redirect URIs, a development issuer)
LOOPBACK_HOSTS: Final[frozenset[str]] = frozenset({"127.0.0.1", "localhost", "::1"})

# -- caching (RFC 6749 §5.1, RFC 6750 §3) -----------------------------------------

#: on every response carrying a token, an error or a secret; also as a list for Authlib
NO_STORE: Final[dict[str, str]] = {"Cache-Control": "no-store", "Pragma": "no-cache"}
NO_STORE_ITEMS: Final[tuple[tuple[str, str], ...]] = tuple(NO_STORE.items())

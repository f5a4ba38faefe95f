"""``/admin/api/clients``: list, show, create (the secret shown once), change in place
(``PATCH`` keeps the ``client_id``), rotate the secret, delete (clients and roles services)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from authserver.admin.api.common import PAGE, SEARCH, STRING_ID, page, read, stamp, timestamp, write
from authserver.admin.api.schema import (
    OPTIONAL_TIMESTAMP,
    TIMESTAMP,
    Schema,
    array,
    boolean,
    nullable,
    obj,
    page_of,
    ref,
    text,
)
from authserver.admin.api.table import Call, Operation
from authserver.clients import service as clients
from authserver.clients.models import Client
from authserver.oauth import vocabulary
from authserver.roles import service as roles

URI = text(2000, min_length=1)
_FIELDS: dict[str, Schema] = {
    "client_name": text(200, min_length=1),
    "redirect_uris": array(URI, 50),
    "post_logout_redirect_uris": array(URI, 50),
    "grant_types": array({"type": "string", "enum": list(vocabulary.GRANT_TYPES)}, 4, minItems=1),
    "scope": text(2000, description="space-separated scope-tokens (RFC 6749 §3.3)"),
    "token_endpoint_auth_method": {"type": "string", "enum": list(vocabulary.AUTH_METHODS)},
    "audience": array(text(200, min_length=1), 20),
    "permission_prefixes": array(text(200, min_length=1), 50),
    "roles": array(text(100, min_length=1), 50),
    "skip_consent": boolean(),
    "require_mfa": boolean(),
    "introspect_any": boolean(),
    "dpop_bound_access_tokens": boolean(description="every token request needs a DPoP proof (RFC 9449 §5.2)"),
    "jwks": nullable({"type": "object", "properties": {"keys": array({"type": "object"}, 10, minItems=1)},
                      "required": ["keys"],
                      "description": "private_key_jwt: the client's public JWK Set (RFC 7517 §5); "
                                     "one of jwks and jwks_uri"}),
    "jwks_uri": nullable(text(2000, min_length=1, description="private_key_jwt: where the client publishes "
                                                              "its JWK Set (https)")),
    "id_token_signed_response_alg": {"type": "string", "enum": list(vocabulary.ID_TOKEN_SIGNING_ALGS)},
    "require_pushed_authorization_requests": boolean(description="authorization requests only through "
                                                                 "/par (RFC 9126 §6)"),
}
_SHOWN: dict[str, Schema] = {
    **_FIELDS,
    "client_id": text(64),
    "grant_types": array({"type": "string"}, 10),
    "response_types": array({"type": "string"}, 10),
    "redirect_uris": array(text(2000), 1000),
    "post_logout_redirect_uris": array(text(2000), 1000),
    "audience": array(text(200), 1000),
    "permission_prefixes": array(text(200), 1000),
    "roles": array(text(100), 1000),
    "scope": text(100_000),
    "created_at": TIMESTAMP,
    "updated_at": TIMESTAMP,
    "secret_rotated_at": OPTIONAL_TIMESTAMP,
}

SCHEMAS: dict[str, Schema] = {
    "Client": obj(_SHOWN, tuple(_SHOWN)),
    "NewClientSecret": obj({**_SHOWN, "client_secret": text(100)}, tuple(_SHOWN),
                           description="client_secret is present only when a secret was just issued "
                                       "(shown this once)"),
    "ClientPage": page_of("Client"),
    "NewClient": obj(_FIELDS, ("client_name", "grant_types"),
                     description="token_endpoint_auth_method defaults to client_secret_basic; "
                                 "none makes a public client (no secret)."),
    "ClientChanges": obj(_FIELDS,
                         description="Only the fields given change; the client_id stays, and so does the "
                                     "secret unless the client becomes public (none: the secret is dropped)."),
    "ClientSecret": obj({"client_id": text(64), "client_secret": text(100)}, ("client_id", "client_secret")),
}


def client_json(db: Session, client: Client) -> dict[str, Any]:
    return {
        "client_id": client.client_id, "client_name": client.client_name,
        "redirect_uris": list(client.redirect_uris),
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "grant_types": list(client.grant_types), "response_types": list(client.response_types),
        "scope": client.scope, "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "audience": list(client.audience), "permission_prefixes": list(client.permission_prefixes),
        "roles": roles.client_roles(db, client.client_id),
        "skip_consent": client.skip_consent, "require_mfa": client.require_mfa,
        "introspect_any": client.introspect_any,
        "dpop_bound_access_tokens": client.dpop_bound_access_tokens, "created_at": stamp(client.created_at),
        "updated_at": stamp(client.updated_at), "secret_rotated_at": timestamp(client.secret_rotated_at),
        "jwks": client.jwks, "jwks_uri": client.jwks_uri,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "require_pushed_authorization_requests": client.require_pushed_authorization_requests,
    }


def _client(call: Call) -> Client:
    return clients.require_client(call.db, call.path["client_id"])


def list_clients(call: Call) -> dict[str, Any]:
    return page(lambda offset, limit: clients.search_clients(call.db, call.query.get("q", ""), offset=offset,
                                                             limit=limit),
                call.query, lambda c: client_json(call.db, c))


def show_client(call: Call) -> dict[str, Any]:
    return client_json(call.db, _client(call))


def create_client(call: Call) -> dict[str, Any]:
    body = dict(call.body)
    role_names = body.pop("roles", None)
    body.setdefault("redirect_uris", [])
    body.setdefault("scope", "")
    new = clients.create_client(call.db, call.ctx.box, **body, actor=call.actor)
    if role_names:
        roles.set_client_roles(call.db, new.client, role_names, actor=call.actor)
    result = client_json(call.db, new.client)
    if new.client_secret is not None:
        result["client_secret"] = new.client_secret
    return result


def update_client(call: Call) -> dict[str, Any]:
    client = _client(call)
    changes = dict(call.body)
    role_names = changes.pop("roles", None)
    updated = clients.update_client(call.db, call.ctx.box, client.client_id, actor=call.actor, **changes)
    if role_names is not None:
        roles.set_client_roles(call.db, client, role_names, actor=call.actor)
    result = client_json(call.db, client)
    if updated.client_secret is not None:
        result["client_secret"] = updated.client_secret
    return result


def rotate_secret(call: Call) -> dict[str, Any]:
    client_id = _client(call).client_id
    return {"client_id": client_id,
            "client_secret": clients.rotate_secret(call.db, call.ctx.box, client_id, revoked=call.ctx.revoked,
                                                 actor=call.actor)}


def delete_client(call: Call) -> None:
    clients.delete_client(call.db, _client(call).client_id, revoked=call.ctx.revoked, actor=call.actor)


CLIENT = {"client_id": STRING_ID}
TAG = "clients"
OPERATIONS = [
    Operation("GET", "/clients", read("clients"), "List clients (search, pages)", list_clients, TAG,
              ref("ClientPage"), query={**SEARCH, **PAGE}),
    Operation("POST", "/clients", write("clients"), "Register a client; the secret is shown once",
              create_client, TAG, ref("NewClientSecret"), 201, request=ref("NewClient")),
    Operation("GET", "/clients/{client_id}", read("clients"), "Show a client (never its secret)", show_client,
              TAG, ref("Client"), path_parameters=CLIENT),
    Operation("PATCH", "/clients/{client_id}", write("clients"),
              "Change a client in place; a public client made confidential gets a secret, shown once",
              update_client, TAG, ref("NewClientSecret"), request=ref("ClientChanges"), path_parameters=CLIENT),
    Operation("POST", "/clients/{client_id}/secret", write("clients"),
              "Replace the secret (the old one stops working); the new one is shown once", rotate_secret, TAG,
              ref("ClientSecret"), path_parameters=CLIENT),
    Operation("DELETE", "/clients/{client_id}", write("clients"), "Delete a client, its codes and tokens",
              delete_client, TAG, None, 204, path_parameters=CLIENT),
]

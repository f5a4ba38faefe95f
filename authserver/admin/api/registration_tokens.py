"""``/admin/api/registration-tokens``: initial access tokens for dynamic client
registration (RFC 7591 §3), shown once at creation and stored hashed."""

from __future__ import annotations

from typing import Any

from authserver.admin.api.common import NUMBER_ID, read, stamp, timestamp, write
from authserver.admin.api.schema import OPTIONAL_TIMESTAMP, TIMESTAMP, Schema, integer, obj, ref, text
from authserver.admin.api.table import Call, Operation
from authserver.clients import registration
from authserver.clients.models import InitialAccessToken

_SHOWN: dict[str, Schema] = {"id": integer(1), "description": text(200), "created_at": TIMESTAMP,
                             "expires_at": OPTIONAL_TIMESTAMP}
SCHEMAS: dict[str, Schema] = {
    "RegistrationToken": obj(_SHOWN, tuple(_SHOWN)),
    "RegistrationTokenList": obj({"items": {"type": "array", "items": ref("RegistrationToken")}}, ("items",)),
    "NewRegistrationToken": obj({"description": text(200),
                                 "expires_in": integer(1, 366 * 86400, description="seconds; absent: no expiry")}),
    "IssuedRegistrationToken": obj({**_SHOWN, "initial_access_token": text(200)},
                                   (*_SHOWN, "initial_access_token")),
}


def token_json(row: InitialAccessToken) -> dict[str, Any]:
    return {"id": row.id, "description": row.description, "created_at": stamp(row.created_at),
            "expires_at": timestamp(row.expires_at)}


def list_tokens(call: Call) -> dict[str, Any]:
    return {"items": [token_json(r) for r in registration.list_initial_access_tokens(call.db)]}


def create_token(call: Call) -> dict[str, Any]:
    issued = registration.issue_initial_access_token(call.db, call.ctx.box, call.body.get("description", ""),
                                                     expires_in=call.body.get("expires_in"), actor=call.actor)
    return {**token_json(issued.row), "initial_access_token": issued.token}


def revoke_token(call: Call) -> None:
    registration.revoke_initial_access_token(call.db, call.path["token_id"], actor=call.actor)


TAG = "registration tokens"
OPERATIONS = [
    Operation("GET", "/registration-tokens", read("registration_tokens"),
              "List initial access tokens (never the tokens)", list_tokens, TAG, ref("RegistrationTokenList")),
    Operation("POST", "/registration-tokens", write("registration_tokens"),
              "Mint an initial access token for POST /register (shown once)", create_token, TAG,
              ref("IssuedRegistrationToken"), 201, request=ref("NewRegistrationToken")),
    Operation("DELETE", "/registration-tokens/{token_id}", write("registration_tokens"),
              "Revoke an initial access token (clients it registered stay)", revoke_token, TAG, None, 204,
              path_parameters={"token_id": NUMBER_ID}),
]

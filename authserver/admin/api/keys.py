"""``/admin/api/keys``: the signing keys with their state, and rotation (keys service;
docs/decisions.md "Rotation publishes before it signs")."""

from __future__ import annotations

from typing import Any

from authserver.admin.api.common import read, write
from authserver.admin.api.schema import OPTIONAL_TIMESTAMP, TIMESTAMP, Schema, integer, obj, ref, text
from authserver.admin.api.table import Call, Operation
from authserver.keys import service as keys
from authserver.keys.algorithms import SIGNING_ALGS
from authserver.keys.service import SigningKey

STATES = ["pending", "active", "published", "retired"]

SCHEMAS: dict[str, Schema] = {
    "Key": obj({
        "kid": text(100), "alg": {"type": "string", "enum": list(SIGNING_ALGS)},
        "status": {"type": "string", "enum": STATES,
                   "description": "pending: published, signs from activates_at; active: signs; "
                                  "published: verifies only, until retires_at; retired: no longer published"},
        "created_at": TIMESTAMP, "activates_at": TIMESTAMP, "retires_at": OPTIONAL_TIMESTAMP,
    }, ("kid", "alg", "status", "created_at", "activates_at", "retires_at")),
    "KeyList": obj({"items": {"type": "array", "items": ref("Key")}}, ("items",)),
    "KeyRotation": obj({"activation_delay": integer(0, 30 * 86400, description=(
        "seconds before the new key signs (default: the server's KEY_ACTIVATION_DELAY, longer than "
        "the JWKS max-age)"))}),
}


def key_json(key: SigningKey) -> dict[str, Any]:
    return {"kid": key.kid, "alg": key.alg, "status": key.status, "created_at": key.created_at,
            "activates_at": key.activates_at, "retires_at": key.retires_at}


def list_keys(call: Call) -> dict[str, Any]:
    store = call.ctx.keys
    return {"items": [key_json(k) for k in store.keys()]}  # noqa: SIM118 (a KeyStore, not a dict)


def rotate_key(call: Call) -> dict[str, Any]:
    key = keys.rotate(call.db, call.ctx.keys, delay=call.body.get("activation_delay"), actor=call.actor)
    states = call.ctx.keys.keys()
    return next((key_json(k) for k in states if k.kid == key.kid), key_json(key))


TAG = "keys"
OPERATIONS = [
    Operation("GET", "/keys", read("keys"), "List signing keys and their state", list_keys, TAG, ref("KeyList")),
    Operation("POST", "/keys", write("keys"), "Add a signing key (published now, signs after the delay)",
              rotate_key, TAG, ref("Key"), 201, request=ref("KeyRotation")),
]

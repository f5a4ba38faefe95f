"""``/admin/api/consents``: remembered consents by user or client, and withdrawal
(consents service: the user's refresh tokens at that client are revoked too)."""

from __future__ import annotations

from typing import Any

from authserver.admin.api.common import NUMBER_ID, PAGE, STRING_ID, page, read, stamp, write
from authserver.admin.api.schema import TIMESTAMP, Schema, integer, obj, page_of, ref, text
from authserver.admin.api.table import Call, NotFound, Operation
from authserver.consents import service as consents
from authserver.consents.models import Consent

SCHEMAS: dict[str, Schema] = {
    "Consent": obj({
        "id": integer(1), "user_id": text(36), "client_id": text(64), "scope": text(100_000),
        "created_at": TIMESTAMP, "updated_at": TIMESTAMP,
    }, ("id", "user_id", "client_id", "scope", "created_at", "updated_at")),
    "ConsentPage": page_of("Consent"),
}


def consent_json(row: Consent) -> dict[str, Any]:
    return {"id": row.id, "user_id": row.user_id, "client_id": row.client_id, "scope": row.scope,
            "created_at": stamp(row.created_at), "updated_at": stamp(row.updated_at)}


def list_consents(call: Call) -> dict[str, Any]:
    return page(lambda offset, limit: consents.search(call.db, user_id=call.query.get("user_id"),
                                                      client_id=call.query.get("client_id"),
                                                      offset=offset, limit=limit),
                call.query, consent_json)


def revoke_consent(call: Call) -> None:
    row = consents.get(call.db, call.path["consent_id"])
    if row is None:
        raise NotFound(f"no such consent: {call.path['consent_id']}")
    consents.withdraw(call.db, call.ctx.revoked, row, actor=call.actor)


TAG = "consents"
OPERATIONS = [
    Operation("GET", "/consents", read("consents"), "List remembered consents (by user or client)",
              list_consents, TAG, ref("ConsentPage"),
              query={"user_id": STRING_ID, "client_id": STRING_ID, **PAGE}),
    Operation("DELETE", "/consents/{consent_id}", write("consents"),
              "Withdraw a consent and revoke the user's refresh tokens at that client", revoke_consent, TAG,
              None, 204, path_parameters={"consent_id": NUMBER_ID}),
]

"""``/admin/api/deny-list``: the IP/CIDR deny list (security.denylist service)."""

from __future__ import annotations

from typing import Any

from authserver.admin.api.common import NUMBER_ID, read, stamp, write
from authserver.admin.api.schema import TIMESTAMP, Schema, integer, obj, ref, text
from authserver.admin.api.table import Call, NotFound, Operation
from authserver.security import denylist
from authserver.security.models import IpDenyEntry

SCHEMAS: dict[str, Schema] = {
    "DenyEntry": obj({"id": integer(1), "cidr": text(50), "reason": text(200), "created_at": TIMESTAMP},
                     ("id", "cidr", "reason", "created_at")),
    "DenyList": obj({"items": {"type": "array", "items": ref("DenyEntry")}}, ("items",)),
    "NewDenyEntry": obj({"cidr": text(50, min_length=1, description="an address or a network (203.0.113.0/24)"),
                         "reason": text(denylist.MAX_REASON_LENGTH)}, ("cidr",)),
}


def entry_json(row: IpDenyEntry) -> dict[str, Any]:
    return {"id": row.id, "cidr": row.cidr, "reason": row.reason, "created_at": stamp(row.created_at)}


def list_entries(call: Call) -> dict[str, Any]:
    return {"items": [entry_json(r) for r in denylist.list_entries(call.db)]}


def add_entry(call: Call) -> dict[str, Any]:
    return entry_json(denylist.add_entry(call.db, call.body["cidr"], call.body.get("reason", ""),
                                         actor=call.actor))


def remove_entry(call: Call) -> None:
    row = denylist.get_entry(call.db, call.path["entry_id"])
    if row is None:
        raise NotFound(f"no such deny-list entry: {call.path['entry_id']}")
    denylist.remove_entry(call.db, row.cidr, actor=call.actor)


TAG = "deny list"
OPERATIONS = [
    Operation("GET", "/deny-list", read("deny_list"), "List denied addresses and networks", list_entries, TAG,
              ref("DenyList")),
    Operation("POST", "/deny-list", write("deny_list"), "Deny an address or network", add_entry, TAG,
              ref("DenyEntry"), 201, request=ref("NewDenyEntry")),
    Operation("DELETE", "/deny-list/{entry_id}", write("deny_list"), "Remove an entry", remove_entry, TAG,
              None, 204, path_parameters={"entry_id": NUMBER_ID}),
]

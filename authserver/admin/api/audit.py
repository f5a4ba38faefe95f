"""``/admin/api/audit-events``: the audit log, newest first, filtered by user, client,
kind and time (audit service)."""

from __future__ import annotations

from typing import Any

from authserver.admin.api.common import PAGE, STRING_ID, page, read, stamp
from authserver.admin.api.schema import Schema, integer, nullable, obj, page_of, text
from authserver.admin.api.table import Call, Operation
from authserver.audit import service as audit
from authserver.audit.models import AuditEvent

TIME = text(40, min_length=1, description="RFC 3339 date-time or date (UTC if no offset), seconds since "
                                          "the epoch, or a duration before now: 30m, 12h, 7d, 2w")
SCHEMAS: dict[str, Schema] = {
    "AuditEvent": obj({
        "id": integer(1, 2**62), "created_at": integer(0, 2**40), "kind": text(60),
        "user_id": nullable(text(36)), "client_id": nullable(text(64)), "ip": nullable(text(45)),
        "request_id": nullable(text(64)),
        "detail": {"type": "object", "description": "what the event records (never a secret)"},
    }, ("id", "created_at", "kind", "user_id", "client_id", "ip", "request_id", "detail")),
    "AuditEventPage": page_of("AuditEvent"),
}


def event_json(row: AuditEvent) -> dict[str, Any]:
    return {"id": row.id, "created_at": stamp(row.created_at), "kind": row.event, "user_id": row.user_id,
            "client_id": row.client_id, "ip": row.ip, "request_id": row.request_id, "detail": dict(row.detail or {})}


def list_events(call: Call) -> dict[str, Any]:
    q = call.query
    since = audit.parse_time(q["since"]) if "since" in q else None
    until = audit.parse_time(q["until"]) if "until" in q else None
    return page(lambda offset, limit: audit.search(
        call.db, user_id=q.get("user_id"), client_id=q.get("client_id"), event=q.get("kind"), since=since,
        until=until, offset=offset, limit=limit), q, event_json)


TAG = "audit"
OPERATIONS = [
    Operation("GET", "/audit-events", read("audit"), "Read the audit log, newest first", list_events, TAG,
              {"$ref": "#/components/schemas/AuditEventPage"},
              query={"user_id": STRING_ID, "client_id": STRING_ID,
                     "kind": {"type": "string", "enum": sorted(audit.EVENTS)},
                     "since": TIME, "until": TIME, **PAGE}),
]

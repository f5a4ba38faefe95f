"""``/admin/api/users``: list, show, create, change, enable, disable, delete, set the
password, unlock, end sessions, reset MFA (accounts and roles services)."""

from __future__ import annotations

from typing import Any

from authserver.accounts import letters
from authserver.accounts import mfa as factors
from authserver.accounts import service as accounts
from authserver.accounts.models import User
from authserver.admin.api.common import PAGE, SEARCH, STRING_ID, page, read, stamp, write
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
from authserver.roles import service as roles
from authserver.sessions import service as sessions
from authserver.sessions.models import BrowserSession

ROLE_NAMES = array(text(100, min_length=1), 50)

SCHEMAS: dict[str, Schema] = {
    "User": obj({
        "id": text(36), "username": text(150), "email": text(320), "email_verified": boolean(),
        "name": nullable(text(200)), "disabled": boolean(), "roles": array(text(100), 1000),
        "mfa": boolean(description="a confirmed second factor"),
        "created_at": TIMESTAMP, "updated_at": TIMESTAMP, "password_changed_at": TIMESTAMP,
    }, ("id", "username", "email", "email_verified", "name", "disabled", "roles", "mfa", "created_at",
        "updated_at", "password_changed_at")),
    "UserPage": page_of("User"),
    "NewUser": obj({
        "username": text(63, min_length=1), "email": text(320, min_length=1),
        "password": text(1000, min_length=1), "name": nullable(text(200)), "roles": ROLE_NAMES,
    }, ("username", "email", "password")),
    "UserChanges": obj({
        "email": text(320, min_length=1), "name": nullable(text(200)), "email_verified": boolean(),
        "roles": ROLE_NAMES,
    }, description="Only the fields given change. An e-mail address set here counts as verified "
                   "unless email_verified is false."),
    "NewPassword": obj({"password": text(1000, min_length=1)}, ("password",)),
    "Session": obj({
        "sid": text(64), "created_at": TIMESTAMP, "last_seen_at": TIMESTAMP, "expires_at": TIMESTAMP,
        "auth_time": OPTIONAL_TIMESTAMP, "amr": array(text(20), 10), "acr": nullable(text(100)),
        "ip": nullable(text(45)), "user_agent": nullable(text(300)),
    }, ("sid", "created_at", "last_seen_at", "expires_at", "auth_time", "amr", "acr", "ip", "user_agent")),
    "SessionList": obj({"items": {"type": "array", "items": ref("Session")}}, ("items",)),
    "EndedSessions": obj({"ended": {"type": "integer", "minimum": 0}}, ("ended",)),
}


def user_json(call: Call, user: User) -> dict[str, Any]:
    return {
        "id": user.id, "username": user.username, "email": user.email, "email_verified": user.email_verified,
        "name": user.name, "disabled": user.disabled, "roles": user.role_names,
        "mfa": factors.has_mfa(call.db, user.id), "created_at": stamp(user.created_at),
        "updated_at": stamp(user.updated_at), "password_changed_at": stamp(user.password_changed_at),
    }


def session_json(row: BrowserSession) -> dict[str, Any]:
    return {
        "sid": row.sid, "created_at": stamp(row.created_at), "last_seen_at": stamp(row.last_seen_at),
        "expires_at": stamp(row.expires_at), "auth_time": row.auth_time, "amr": list(row.amr or []),
        "acr": row.acr, "ip": row.ip, "user_agent": row.user_agent,
    }


def _user(call: Call) -> User:
    return accounts.require_user_id(call.db, call.path["user_id"])


def list_users(call: Call) -> dict[str, Any]:
    return page(lambda offset, limit: accounts.search_users(call.db, call.query.get("q", ""), offset=offset,
                                                            limit=limit),
                call.query, lambda u: user_json(call, u))


def show_user(call: Call) -> dict[str, Any]:
    return user_json(call, _user(call))


def create_user(call: Call) -> dict[str, Any]:
    body = call.body
    user = accounts.create_user(call.db, call.ctx.passwords, username=body["username"], email=body["email"],
                                password=body["password"], roles=body.get("roles"), name=body.get("name"),
                                actor=call.actor)
    return user_json(call, user)


def update_user(call: Call) -> dict[str, Any]:
    user = _user(call)
    body = call.body
    accounts.update_user(call.db, user, email=body.get("email"),
                         name=body.get("name", accounts.UNSET),
                         email_verified=body.get("email_verified"), actor=call.actor)
    if "roles" in body:
        roles.set_user_roles(call.db, user, body["roles"], actor=call.actor)
    return user_json(call, user)


def disable_user(call: Call) -> dict[str, Any]:
    user = _user(call)
    accounts.disable_user(call.db, call.ctx.revoked, user, actor=call.actor)
    return user_json(call, user)


def enable_user(call: Call) -> dict[str, Any]:
    user = _user(call)
    accounts.enable_user(call.db, user, actor=call.actor)
    return user_json(call, user)


def delete_user(call: Call) -> None:
    accounts.delete_user(call.db, call.ctx.revoked, _user(call), actor=call.actor)


def set_password(call: Call) -> None:
    accounts.set_password(call.db, call.ctx, _user(call), call.body["password"], event="password_set_by_admin",
                          actor=call.actor)


def unlock_user(call: Call) -> None:
    accounts.unlock_user(call.db, call.ctx.lockout, _user(call), actor=call.actor)


def reset_mfa(call: Call) -> dict[str, Any]:
    user = _user(call)
    if accounts.reset_mfa(call.db, user, actor=call.actor):
        # the owner hears of it, in their language, once the change is committed
        call.after.append(letters.mfa_changed(call.ctx.settings, user, enabled=False, by_admin=True))
    return user_json(call, user)


def list_sessions(call: Call) -> dict[str, Any]:
    return {"items": [session_json(r) for r in sessions.for_user(call.db, _user(call).id)]}


def end_session(call: Call) -> None:
    accounts.end_session(call.db, _user(call), call.path["sid"], actor=call.actor)


def end_sessions(call: Call) -> dict[str, Any]:
    return {"ended": accounts.end_sessions(call.db, _user(call), actor=call.actor)}


USER = {"user_id": STRING_ID}
TAG = "users"
OPERATIONS = [
    Operation("GET", "/users", read("users"), "List users (search, pages)", list_users, TAG, ref("UserPage"),
              query={**SEARCH, **PAGE}),
    Operation("POST", "/users", write("users"), "Create a user", create_user, TAG, ref("User"), 201,
              request=ref("NewUser")),
    Operation("GET", "/users/{user_id}", read("users"), "Show a user", show_user, TAG, ref("User"),
              path_parameters=USER),
    Operation("PATCH", "/users/{user_id}", write("users"), "Change e-mail, name or roles", update_user, TAG,
              ref("User"), request=ref("UserChanges"), path_parameters=USER),
    Operation("DELETE", "/users/{user_id}", write("users"), "Delete a user, their sessions and tokens",
              delete_user, TAG, None, 204, path_parameters=USER),
    Operation("POST", "/users/{user_id}/disable", write("users"), "Disable; ends sessions and revokes tokens",
              disable_user, TAG, ref("User"), path_parameters=USER),
    Operation("POST", "/users/{user_id}/enable", write("users"), "Let a disabled user log in again",
              enable_user, TAG, ref("User"), path_parameters=USER),
    Operation("PUT", "/users/{user_id}/password", write("users"),
              "Set the password; ends sessions and revokes tokens", set_password, TAG, None, 204,
              request=ref("NewPassword"), path_parameters=USER),
    Operation("POST", "/users/{user_id}/unlock", write("users"), "Clear the account lockout", unlock_user, TAG,
              None, 204, path_parameters=USER),
    Operation("DELETE", "/users/{user_id}/mfa", write("users"),
              "Remove the second factors (TOTP, backup codes, passkeys)", reset_mfa, TAG, ref("User"),
              path_parameters=USER),
    Operation("GET", "/users/{user_id}/sessions", read("sessions"), "List browser sessions", list_sessions,
              TAG, ref("SessionList"), path_parameters=USER),
    Operation("DELETE", "/users/{user_id}/sessions", write("sessions"), "End every browser session",
              end_sessions, TAG, ref("EndedSessions"), path_parameters=USER),
    Operation("DELETE", "/users/{user_id}/sessions/{sid}", write("sessions"), "End one browser session",
              end_session, TAG, None, 204, path_parameters={**USER, "sid": STRING_ID}),
]

"""Helpers for the MFA, account, sign-up and reset tests."""

from __future__ import annotations

import email
import email.policy
import time
from pathlib import Path
from typing import Any

import pyotp

from authserver.accounts import mfa as factors
from authserver.db import transaction
from tests.conftest import PASSWORD
from tests.flows import form_value


def login(client: Any, username: str = "alice", password: str = PASSWORD, rid: str = "") -> Any:
    page = client.get("/login" + (f"?rid={rid}" if rid else ""))
    return client.post("/login", data={"csrf_token": form_value(page.text, "csrf_token"), "rid": rid,
                                       "username": username, "password": password})


def enrol(ctx: Any, user_id: str) -> tuple[str, list[str]]:
    """Give the user a confirmed TOTP factor; returns ``(secret, backup_codes)``.

    Confirmation spends the code of the step before now, so tests can still use
    the codes of the current and next steps.
    """
    if time.time() % 30 > 29:  # keep all the steps used in a test within the verify window
        time.sleep(1.1)
    with transaction(ctx.sessions) as db:
        secret = factors.start_enrolment(db, ctx.box, user_id)
        codes = factors.confirm_enrolment(db, ctx.box, user_id, totp_code(secret, -1))
    assert codes is not None
    return secret, codes


def totp_code(secret: str, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


def csrf(client: Any, path: str = "/account") -> str:
    return form_value(client.get(path).text, "csrf_token")


def outbox_codes(settings: Any) -> list[tuple[str, str]]:
    """``(to, body)`` of each mail in the dev outbox, oldest first."""
    folder = Path(settings.data_dir) / "outbox"
    result = []
    for path in sorted(folder.glob("*.eml")) if folder.exists() else []:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        result.append((message["To"], body.get_content() if body is not None else ""))
    return result

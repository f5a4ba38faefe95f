"""After full flows, no issued secret is stored in plaintext in any table, and
none appears in any log line or audit row."""

from __future__ import annotations

import io
import re

import sqlalchemy as sa

from authserver.db import Base
from authserver.logging import configure_logging
from authserver.security.totp import normalize_backup_code
from tests.account_flows import enrol, login, outbox_codes, totp_code
from tests.conftest import PASSWORD
from tests.flows import REDIRECT_URI, auth_params, exchange, follow, form_value, login_rid, pkce, query

NEW_PASSWORD = "another long passphrase here"
SIGNUP_PASSWORD = "signup passphrase for bob"


def _mfa(client, rid, code):
    page = client.get(f"/login/mfa?rid={rid}")
    return client.post("/login/mfa", data={"csrf_token": form_value(page.text, "csrf_token"),
                                          "rid": rid, "code": code})


def _run_flows(client, ctx, settings, make_user, make_client) -> list[str]:
    """Every kind of secret the server issues or receives, in plaintext."""
    secrets_seen = [PASSWORD, NEW_PASSWORD, SIGNUP_PASSWORD]
    user = make_user()
    totp_secret, backup = enrol(ctx, user.id)
    secrets_seen += [totp_secret, *backup, *(normalize_backup_code(c) for c in backup)]
    cid, client_secret = make_client(grant_types=["authorization_code", "refresh_token", "password"])
    secrets_seen.append(client_secret)

    # a wrong password and a wrong TOTP code first
    login(client, password="wrong password typed")
    secrets_seen.append("wrong password typed")

    verifier, challenge = pkce()
    rid = login_rid(client.get("/authorize", params=auth_params(cid, challenge)))
    r = login(client, rid=rid)
    secrets_seen.append(client.cookies.get("authserver_session"))
    assert _mfa(client, rid, "999999").status_code == 200
    otp = totp_code(totp_secret)
    secrets_seen.append(otp)
    r = _mfa(client, rid, otp)
    r = follow(client, client.get(r.headers["location"]))
    code = query(r.headers["location"])["code"]
    assert r.headers["location"].startswith(REDIRECT_URI)
    tokens = exchange(client, cid, client_secret, code, verifier).json()
    refreshed = client.post("/token", auth=(cid, client_secret), data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}).json()
    secrets_seen += [code, verifier, tokens["access_token"], tokens["refresh_token"], tokens["id_token"],
                     refreshed["access_token"], refreshed["refresh_token"]]
    client.post("/introspect", data={"token": refreshed["access_token"]}, auth=(cid, client_secret))
    client.get("/userinfo", headers={"authorization": f"Bearer {refreshed['access_token']}"})
    client.post("/revoke", data={"token": refreshed["refresh_token"]}, auth=(cid, client_secret))
    # password grant refused for the MFA user, with the real password
    client.post("/token", data={"grant_type": "password", "username": "alice", "password": PASSWORD},
                auth=(cid, client_secret))
    # a backup code at a second login
    client.cookies.clear()
    login(client)
    assert _mfa(client, "", backup[0]).headers["location"] == "/account"

    # sign-up and reset with mailed codes
    client.cookies.clear()
    page = client.get("/signup")
    client.post("/signup", data={"csrf_token": form_value(page.text, "csrf_token"), "username": "bob",
                                 "email": "bob@example.com", "password": SIGNUP_PASSWORD})
    page = client.get("/password/reset")
    client.post("/password/reset", data={"csrf_token": form_value(page.text, "csrf_token"),
                                         "email": "alice@example.com"})
    # the codes (the second login's new-device notice has none)
    mailed = [m.group(1) for _to, body in outbox_codes(settings) if (m := re.search(r"\b(\d{8})\b", body))]
    assert len(mailed) == 2 and len(outbox_codes(settings)) == 3
    secrets_seen += mailed
    page = client.get("/signup/verify")
    client.post("/signup/verify", data={"csrf_token": form_value(page.text, "csrf_token"), "code": mailed[0]})
    page = client.get("/password/reset/confirm")
    client.post("/password/reset/confirm", data={"csrf_token": form_value(page.text, "csrf_token"),
                                                 "code": mailed[1], "new_password": NEW_PASSWORD,
                                                 "confirm_password": NEW_PASSWORD})
    return [s for s in secrets_seen if s]


def _all_rows(ctx) -> str:
    parts = []
    with ctx.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                parts.append(f"{table.name}: {tuple(row)!r}")
    return "\n".join(parts)


def test_no_secret_at_rest_or_in_logs(client, ctx, settings, make_user, make_client):
    buffer = io.StringIO()
    configure_logging("json", "debug", stream=buffer)
    try:
        issued = _run_flows(client, ctx, settings, make_user, make_client)
    finally:
        configure_logging(settings.log_format, settings.log_level)
    rows = _all_rows(ctx)
    logs = buffer.getvalue()
    assert "audit_events" in rows and "mfa_succeeded" in logs and "backup_code_used" in logs
    assert "password_reset" in logs and "signup_completed" in logs
    for secret in issued:
        assert secret not in rows, f"a secret ({len(secret)} chars) is stored in plaintext"
        assert secret not in logs, f"a secret ({len(secret)} chars) appears in the log"
    # e-mails are masked in logs
    assert "bob@example.com" not in logs and "alice@example.com" not in logs

"""``authserver`` CLI: driven in-process through ``main(argv)`` (and once as a real
console script), configured only through ``AUTHSERVER_*`` variables pointing at
the test database, Redis and a key directory of its own."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from authserver import cli
from authserver.accounts.models import EmailCode, User
from authserver.accounts.service import lockout_key
from authserver.audit.models import AuditEvent
from authserver.clients.models import Client
from authserver.db import transaction, utcnow
from authserver.keys.service import KeyStore
from authserver.security.models import IpDenyEntry
from authserver.sessions.models import BrowserSession
from authserver.tokens.models import AuthorizationCode, RefreshToken
from tests.conftest import PASSWORD

AUTHSERVER = Path(sys.executable).parent / "authserver"


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    """Keys of this test only: ``keys rotate`` must not leak into other tests."""
    path = tmp_path / "keys"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def cli_env(settings: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in list(os.environ):
        if name.startswith("AUTHSERVER_") and not name.startswith("AUTHSERVER_TEST_"):
            monkeypatch.delenv(name)
    env = {
        "AUTHSERVER_ISSUER": settings.issuer,
        "AUTHSERVER_DATABASE_URL": settings.database_url,
        "AUTHSERVER_REDIS_URL": settings.redis_url or "",
        "AUTHSERVER_REDIS_PREFIX": settings.redis_prefix,
        "AUTHSERVER_KEYS_DIR": str(settings.keys_dir),
        "AUTHSERVER_SECRET_KEY": settings.secret_key.get(),
        "AUTHSERVER_RATE_LIMITS": "off",
        "AUTHSERVER_ARGON2_TIME_COST": "1",
        "AUTHSERVER_ARGON2_MEMORY_COST": "8",
        "AUTHSERVER_ARGON2_PARALLELISM": "1",
        "AUTHSERVER_KEY_ACTIVATION_DELAY": "0",
        "AUTHSERVER_LOG_FORMAT": "json",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def run(cli_env: dict[str, str], ctx: Any, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> Any:
    """``run(*argv, stdin=None) -> (status, stdout, stderr)``."""

    def run(*argv: str, stdin: str | None = None) -> tuple[int, str, str]:
        capsys.readouterr()
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin or ""))
        status = cli.main(list(argv))
        out, err = capsys.readouterr()
        return status, out, err

    return run


def assert_error(result: tuple[int, str, str], *fragments: str) -> None:
    status, out, err = result
    assert status == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def audit_events(ctx: Any, event: str) -> list[AuditEvent]:
    with transaction(ctx.sessions) as db:
        return list(db.scalars(sa.select(AuditEvent).where(AuditEvent.event == event).order_by(AuditEvent.id)))


def get_user(ctx: Any, username: str) -> User | None:
    with transaction(ctx.sessions) as db:
        return db.scalar(sa.select(User).where(User.username == username))


# -- parsing and configuration ------------------------------------------------


def test_no_command_is_one_line_error(run):
    assert_error(run(), "required")


def test_unknown_option_is_one_line_error(run):
    assert_error(run("users", "list", "--bogus"), "--bogus")


def test_help_exits_zero(run):
    status, out, _ = run("--help")
    assert status == 0 and "clients" in out and "deny-list" in out


@pytest.mark.parametrize(("name", "value"), [
    ("AUTHSERVER_ISSUER", "ftp://example.com"),
    ("AUTHSERVER_ACCESS_TOKEN_TTL", "ten"),
    ("AUTHSERVER_SECRET_KEY", "short"),
])
def test_bad_setting_names_the_variable(run, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    assert_error(run("users", "list"), name)


def test_missing_sqlite_file_says_migrate(run, monkeypatch, tmp_path):
    monkeypatch.setenv("AUTHSERVER_DATABASE_URL", f"sqlite:///{tmp_path / 'none.db'}")
    assert_error(run("users", "list"), "authserver migrate")
    assert not (tmp_path / "none.db").exists()


def test_unmigrated_database_says_migrate_then_migrate_fixes_it(run, monkeypatch, tmp_path):
    path = tmp_path / "empty.db"
    path.touch()
    monkeypatch.setenv("AUTHSERVER_DATABASE_URL", f"sqlite:///{path}")
    assert_error(run("clients", "list"), "run `authserver migrate`")
    status, out, _ = run("migrate")
    assert status == 0 and "revision" in out
    assert run("clients", "list")[0] == 0
    assert run("migrate")[0] == 0  # idempotent


# -- users --------------------------------------------------------------------


def test_users_create_reads_one_line_of_stdin(run, ctx):
    status, out, err = run("users", "create", "--username", "Alice", "--email", "alice@example.com",
                           "--password-stdin", "--role", "admin", "--role", "ops", "--name", "Alice A",
                           stdin=PASSWORD + "\nsecond line ignored\n")
    assert status == 0, err
    assert "alice" in out and PASSWORD not in out + err
    user = get_user(ctx, "alice")
    assert user is not None and user.role_names == ["admin", "ops"] and user.name == "Alice A"
    assert ctx.passwords.verify(user.password_hash, PASSWORD)
    assert len(audit_events(ctx, "user_created")) == 1


def test_users_create_strips_crlf(run, ctx):
    assert run("users", "create", "--username", "bob", "--email", "bob@example.com", "--password-stdin",
               stdin=PASSWORD + "\r\n")[0] == 0
    assert ctx.passwords.verify(get_user(ctx, "bob").password_hash, PASSWORD)


def test_users_create_empty_stdin(run):
    assert_error(run("users", "create", "--username", "bob", "--email", "bob@example.com",
                     "--password-stdin", stdin=""), "stdin")


def test_users_create_prompts_twice(run, ctx, monkeypatch):
    answers = iter([PASSWORD, PASSWORD])
    prompts: list[str] = []
    monkeypatch.setattr(cli, "_stdin_is_tty", lambda: True)
    monkeypatch.setattr(cli.getpass, "getpass", lambda prompt: prompts.append(prompt) or next(answers))
    assert run("users", "create", "--username", "carol", "--email", "carol@example.com")[0] == 0
    assert len(prompts) == 2
    assert get_user(ctx, "carol") is not None


def test_users_create_prompt_mismatch(run, ctx, monkeypatch):
    answers = iter([PASSWORD, PASSWORD + "x"])
    monkeypatch.setattr(cli, "_stdin_is_tty", lambda: True)
    monkeypatch.setattr(cli.getpass, "getpass", lambda prompt: next(answers))
    assert_error(run("users", "create", "--username", "carol", "--email", "carol@example.com"), "differ")
    assert get_user(ctx, "carol") is None


def test_users_create_without_terminal_needs_password_stdin(run):
    assert_error(run("users", "create", "--username", "carol", "--email", "carol@example.com"),
                 "--password-stdin")


def test_password_is_never_an_argument(run):
    assert_error(run("users", "create", "--username", "dave", "--email", "dave@example.com",
                     "--password", PASSWORD))


@pytest.mark.parametrize(("argv", "stdin", "fragment"), [
    (["--username", "erin", "--email", "erin@example.com"], "password\n", "common"),
    (["--username", "erin", "--email", "erin@example.com"], "short\n", "at least"),
    (["--username", "erin", "--email", "not-an-email"], PASSWORD + "\n", "e-mail"),
    (["--username", "x", "--email", "erin@example.com"], PASSWORD + "\n", "username"),
    (["--username", "erin", "--email", "erin@example.com", "--role", "bad role"], PASSWORD + "\n", "role"),
])
def test_users_create_rejects(run, ctx, argv, stdin, fragment):
    result = run("users", "create", *argv, "--password-stdin", stdin=stdin)
    assert_error(result, fragment)
    assert PASSWORD not in result[2]
    assert get_user(ctx, "erin") is None


def test_users_create_duplicate(run, make_user):
    make_user("alice")
    assert_error(run("users", "create", "--username", "alice", "--email", "other@example.com",
                     "--password-stdin", stdin=PASSWORD + "\n"), "already exists")


def test_users_list(run, make_user):
    make_user("alice", roles=["admin"])
    make_user("bob")
    status, out, _ = run("users", "list")
    lines = out.splitlines()
    assert status == 0
    assert lines[0].split() == ["USERNAME", "EMAIL", "ROLES", "DISABLED", "CREATED"]
    assert lines[1].split()[:4] == ["alice", "alice@example.com", "admin", "no"]
    assert lines[2].split()[:4] == ["bob", "bob@example.com", "-", "no"]


def test_users_disable(run, ctx, make_user):
    make_user("alice")
    status, out, _ = run("users", "disable", "alice")
    assert status == 0 and "disabled alice" in out
    assert get_user(ctx, "alice").disabled is True
    assert len(audit_events(ctx, "user_disabled")) == 1
    assert "already" in run("users", "disable", "alice@example.com")[1]


def test_users_disable_unknown(run):
    assert_error(run("users", "disable", "nobody"), "no such user")


def test_users_unlock_clears_a_lock(run, ctx, settings, make_user):
    user = make_user("alice")
    key = lockout_key(user, "alice")
    for _ in range(settings.lockout_account_threshold):
        ctx.lockout.register_failure(key, "192.0.2.1")
    assert ctx.lockout.check(key, "192.0.2.9") > 0
    result = run("users", "unlock", "alice")
    if settings.redis_url is None:
        # embedded default: the counters live in the server process, not reachable from here
        assert_error(result, "AUTHSERVER_REDIS_URL")
        return
    assert result[0] == 0, result
    assert ctx.lockout.check(key, "192.0.2.9") == 0
    assert len(audit_events(ctx, "account_unlocked")) == 1


def test_users_unlock_with_redis_down(run, monkeypatch, make_user):
    make_user("alice")
    monkeypatch.setenv("AUTHSERVER_REDIS_URL", "redis://127.0.0.1:1/0")
    assert_error(run("users", "unlock", "alice"), "Redis")


def test_users_unlock_unknown(run, settings):
    result = run("users", "unlock", "nobody")
    assert_error(result, "no such user" if settings.redis_url else "AUTHSERVER_REDIS_URL")


# -- clients ------------------------------------------------------------------


def test_clients_create_json_works_at_the_token_endpoint(run, ctx, client):
    status, out, err = run("clients", "create", "--name", "Backend", "--grant-type", "client_credentials",
                           "--scope", "api:read api:write", "--json")
    assert status == 0, err
    body = json.loads(out)
    assert set(body) == {"client_id", "client_secret", "client_name", "redirect_uris", "grant_types",
                         "scope", "token_endpoint_auth_method", "post_logout_redirect_uris"}
    assert body["grant_types"] == ["client_credentials"]
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    r = client.post("/token", data={"grant_type": "client_credentials", "scope": "api:read"},
                    auth=(body["client_id"], body["client_secret"]))
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "api:read"
    [event] = audit_events(ctx, "client_created")
    assert event.client_id == body["client_id"]
    assert body["client_secret"] not in json.dumps(event.detail)


def test_clients_create_text_output(run):
    status, out, _ = run("clients", "create", "--name", "Web", "--redirect-uri", "https://rp.example.com/cb",
                         "--grant-type", "authorization_code", "--scope", "openid")
    assert status == 0
    assert out.startswith("client_id:") and "client_secret:" in out


@pytest.mark.parametrize("public", [
    ["--public"], ["--auth-method", "none"], ["--public", "--auth-method", "none"],
])
def test_clients_create_public_has_no_secret(run, ctx, public):
    status, out, _ = run("clients", "create", "--name", "SPA", "--redirect-uri", "https://spa.example.com/cb",
                         "--grant-type", "authorization_code", "refresh_token", "--scope", "openid profile",
                         *public, "--json")
    assert status == 0
    body = json.loads(out)
    assert "client_secret" not in body and body["token_endpoint_auth_method"] == "none"
    with transaction(ctx.sessions) as db:
        assert db.get(Client, body["client_id"]).client_secret_hash is None


@pytest.mark.parametrize("spelling", [
    ["--redirect-uri", "https://a.example.com/cb", "--redirect-uri", "https://b.example.com/cb"],
    ["--redirect-uri", "https://a.example.com/cb", "https://b.example.com/cb"],
])
def test_clients_create_repeated_or_listed_values(run, spelling):
    status, out, _ = run("clients", "create", "--name", "Two", *spelling,
                         "--grant-type", "authorization_code", "--grant-type", "refresh_token",
                         "--scope", "openid", "--post-logout-redirect-uri", "https://a.example.com/bye",
                         "--skip-consent", "--json")
    body = json.loads(out)
    assert status == 0
    assert body["redirect_uris"] == ["https://a.example.com/cb", "https://b.example.com/cb"]
    assert body["grant_types"] == ["authorization_code", "refresh_token"]
    assert body["post_logout_redirect_uris"] == ["https://a.example.com/bye"]


def test_clients_create_flags_are_stored(run, ctx):
    status, out, _ = run("clients", "create", "--name", "RS", "--grant-type", "client_credentials",
                         "--scope", "api", "--introspect-any", "--audience", "https://api.example.com",
                         "--require-mfa", "--auth-method", "client_secret_post", "--json")
    assert status == 0
    with transaction(ctx.sessions) as db:
        row = db.get(Client, json.loads(out)["client_id"])
        assert row.introspect_any and row.require_mfa and not row.skip_consent
        assert row.audience == ["https://api.example.com"]
        assert row.token_endpoint_auth_method == "client_secret_post"


@pytest.mark.parametrize(("argv", "fragment"), [
    (["--grant-type", "implicit", "--redirect-uri", "https://rp.example.com/cb"], "unsupported grant type"),
    (["--grant-type", "authorization_code", "--redirect-uri", "http://rp.example.com/cb"], "https"),
    (["--grant-type", "authorization_code", "--redirect-uri", "https://rp.example.com/cb#x"], "fragment"),
    (["--grant-type", "authorization_code"], "redirect URI"),
    (["--grant-type", "client_credentials", "--public"], "public clients"),
    (["--grant-type", "client_credentials", "--public", "--auth-method", "client_secret_post"], "--public"),
    (["--grant-type", "client_credentials", "--auth-method", "private_key_jwt"], "invalid choice"),
    (["--redirect-uri", "https://rp.example.com/cb"], "--grant-type"),
])
def test_clients_create_rejects(run, ctx, argv, fragment):
    assert_error(run("clients", "create", "--name", "Bad", "--scope", "openid", *argv), fragment)
    with transaction(ctx.sessions) as db:
        assert db.scalar(sa.select(sa.func.count()).select_from(Client)) == 0


def test_clients_create_rejects_bad_scope(run):
    assert_error(run("clients", "create", "--name", "Bad", "--grant-type", "client_credentials",
                     "--scope", 'api "quoted"'), "invalid scope")


def test_clients_list(run, make_client):
    cid, _ = make_client(client_name="Listed")
    status, out, _ = run("clients", "list")
    assert status == 0 and cid in out and "Listed" in out
    status, out, _ = run("clients", "list", "--json")
    [entry] = json.loads(out)
    assert entry["client_id"] == cid and "client_secret" not in entry


# A client_id may start with "-" (base64url), hence the "--" before it.


def test_clients_rotate_secret(run, ctx, client, make_client):
    cid, old = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="api")
    status, out, _ = run("clients", "rotate-secret", "--json", "--", cid)
    assert status == 0
    body = json.loads(out)
    assert body["client_id"] == cid and body["client_secret"] != old
    data = {"grant_type": "client_credentials"}
    assert client.post("/token", data=data, auth=(cid, old)).status_code == 401
    assert client.post("/token", data=data, auth=(cid, body["client_secret"])).status_code == 200
    assert len(audit_events(ctx, "client_secret_rotated")) == 1
    status, out, _ = run("clients", "rotate-secret", "--", cid)
    assert status == 0 and out.startswith("client_secret: ")


def test_clients_rotate_secret_of_public_client(run, make_client):
    cid, _ = make_client(token_endpoint_auth_method="none")
    assert_error(run("clients", "rotate-secret", "--", cid), "public")


@pytest.mark.parametrize("command", ["rotate-secret", "delete"])
def test_clients_unknown_id(run, command):
    assert_error(run("clients", command, "no-such-client"), "no such client")


def test_clients_delete(run, ctx, make_client):
    cid, _ = make_client()
    status, _, _ = run("clients", "delete", "--", cid)
    assert status == 0
    with transaction(ctx.sessions) as db:
        assert db.get(Client, cid) is None
    assert [e.client_id for e in audit_events(ctx, "client_deleted")] == [cid]


# -- keys ---------------------------------------------------------------------


def test_keys_rotate_then_list_shows_two_keys(run, ctx):
    [first] = ctx.keys.keys()
    status, out, _ = run("keys", "rotate", "--delay", "3600")
    assert status == 0
    new_kid = out.split()[2].rstrip(":")
    assert new_kid != first.kid
    status, out, _ = run("keys", "list")
    lines = out.splitlines()
    assert lines[0].split() == ["KID", "STATUS", "CREATED", "ACTIVATES", "RETIRES"]
    statuses = {line.split()[0]: line.split()[1] for line in lines[1:]}
    assert statuses == {first.kid: "active", new_kid: "pending"}
    [event] = audit_events(ctx, "key_rotated")
    assert event.detail["kid"] == new_kid


def test_keys_rotate_default_delay_activates_now(run, ctx, settings):
    [first] = ctx.keys.keys()
    meta_path = settings.keys_dir / f"{first.kid}.json"
    meta = json.loads(meta_path.read_text())
    meta["activates_at"] -= 60  # not the same second as the new key
    meta_path.write_text(json.dumps(meta))
    status, out, _ = run("keys", "rotate")
    assert status == 0
    kid = out.split()[2].rstrip(":")
    fresh = KeyStore(settings.keys_dir, activation_delay=0, retain_seconds=600)  # ctx.keys caches 1 s
    statuses = {k.kid: k.status for k in fresh.keys()}  # noqa: SIM118
    assert statuses[kid] == "active" and sorted(statuses.values()) == ["active", "published"]


def test_keys_rotate_negative_delay(run):
    assert_error(run("keys", "rotate", "--delay", "-5"), "--delay")


# -- cleanup ------------------------------------------------------------------


def test_cleanup_deletes_only_dead_rows(run, ctx, make_user, make_client):
    user = make_user("alice")
    cid, _ = make_client()
    now = utcnow()
    old, fresh = now - dt.timedelta(days=3), now + dt.timedelta(hours=1)

    def code(n: int, expires: dt.datetime) -> AuthorizationCode:
        return AuthorizationCode(code_hash=f"c{n}", client_id=cid, user_id=user.id, redirect_uri="x",
                                 scope="openid", auth_time=0, expires_at=expires)

    def token(n: int, expires: dt.datetime, family: dt.datetime, **kw: Any) -> RefreshToken:
        return RefreshToken(token_hash=f"t{n}", family_id=f"f{n}", client_id=cid, user_id=user.id,
                            scope="openid", expires_at=expires, family_expires_at=family, **kw)

    def session(n: int, expires: dt.datetime) -> BrowserSession:
        return BrowserSession(id=f"s{n}", sid=f"sid{n}", csrf_secret="x", expires_at=expires)

    with transaction(ctx.sessions) as db:
        db.add_all([
            code(1, old), code(2, now - dt.timedelta(seconds=30)),
            token(1, old, old),  # family expired
            token(2, old, fresh, revoked_at=old),  # revoked and expired
            token(3, old, fresh),  # idle-expired, never rotated
            token(4, old, fresh, rotated_at=old),  # rotated: kept for reuse detection until the family ends
            token(5, fresh, fresh),
            session(1, old), session(2, fresh),
            EmailCode(purpose="reset", email="a@example.com", code_hash="e1", expires_at=old),
            EmailCode(purpose="reset", email="a@example.com", code_hash="e2", expires_at=fresh),
        ])
    status, out, _ = run("cleanup")
    assert status == 0
    counts = dict(line.split(":", 1) for line in out.splitlines())
    assert counts["authorization_codes"].strip() == "1 deleted"
    assert counts["refresh_tokens"].strip() == "3 deleted"
    assert counts["browser_sessions"].strip() == "1 deleted"
    assert counts["email_codes"].strip() == "1 deleted"
    with transaction(ctx.sessions) as db:
        assert db.scalars(sa.select(AuthorizationCode.code_hash)).all() == ["c2"]
        assert sorted(db.scalars(sa.select(RefreshToken.token_hash))) == ["t4", "t5"]
        assert db.scalars(sa.select(BrowserSession.id)).all() == ["s2"]
        assert db.scalars(sa.select(EmailCode.code_hash)).all() == ["e2"]


def test_cleanup_removes_retired_keys(run, ctx, settings):
    [first] = ctx.keys.keys()
    ctx.keys.rotate(delay=0)
    # make the first key's successor old enough that the first one is retired
    meta_files = sorted(settings.keys_dir.glob("*.json"))
    for meta_path in meta_files:
        meta = json.loads(meta_path.read_text())
        meta["activates_at"] -= 86400
        meta["created_at"] -= 86400
        if meta["kid"] == first.kid:
            meta["activates_at"] -= 86400
        meta_path.write_text(json.dumps(meta))
    status, out, _ = run("cleanup")
    assert status == 0 and "retired_keys: 1 deleted" in out
    assert not (settings.keys_dir / f"{first.kid}.pem").exists()


# -- deny list ----------------------------------------------------------------


def test_deny_list_add_list_remove(run, ctx):
    assert run("deny-list", "add", "203.0.113.7", "--reason", "abuse")[0] == 0
    assert run("deny-list", "add", "2001:db8::/32")[0] == 0
    status, out, _ = run("deny-list", "list")
    assert status == 0 and "203.0.113.7/32" in out and "abuse" in out and "2001:db8::/32" in out
    with transaction(ctx.sessions) as db:
        assert sorted(db.scalars(sa.select(IpDenyEntry.cidr))) == ["2001:db8::/32", "203.0.113.7/32"]
    assert_error(run("deny-list", "add", "203.0.113.7/32"), "already")
    assert run("deny-list", "remove", "203.0.113.7")[0] == 0
    assert_error(run("deny-list", "remove", "203.0.113.7"), "not on the deny list")
    assert [e.detail["action"] for e in audit_events(ctx, "deny_list_changed")] == ["add", "add", "remove"]


@pytest.mark.parametrize("cidr", ["10.0.0.1/8", "not-an-ip", "300.1.1.1"])
def test_deny_list_rejects_bad_cidr(run, cidr):
    assert_error(run("deny-list", "add", cidr))


# -- serve --------------------------------------------------------------------


def test_serve_migrates_sqlite_makes_a_key_and_prints_how_to_start(run, monkeypatch, tmp_path):
    import uvicorn

    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    monkeypatch.setenv("AUTHSERVER_DATABASE_URL", f"sqlite:///{tmp_path / 'fresh' / 'a.db'}")
    keys = tmp_path / "fresh-keys"
    monkeypatch.setenv("AUTHSERVER_KEYS_DIR", str(keys))
    monkeypatch.delenv("AUTHSERVER_SECRET_KEY")
    monkeypatch.delenv("AUTHSERVER_REDIS_URL")
    status, out, _ = run("serve", "--port", "8000", "--workers", "2")
    assert status == 0
    assert "http://127.0.0.1:8000/.well-known/openid-configuration" in out
    assert "users create" in out and "clients create" in out
    [(app, kw)] = calls
    assert app == "authserver.app:app_from_env"
    assert kw == {"factory": True, "host": "127.0.0.1", "port": 8000, "workers": 2, "proxy_headers": False,
                  "server_header": False, "date_header": True, "access_log": False, "log_config": None,
                  "http": "authserver.security.http_limits:LimitedHttpToolsProtocol"}
    assert (keys / "secret_key").stat().st_mode & 0o777 == 0o600
    assert len(list(keys.glob("*.pem"))) == 1
    assert run("users", "list")[0] == 0  # migrated


def test_serve_rejects_bad_port(run):
    assert_error(run("serve", "--port", "70000"), "--port")
    assert_error(run("serve", "--port", "http"), "--port")


# -- the real console script ---------------------------------------------------


def test_console_script(cli_env, ctx, client):
    env = {**os.environ, **cli_env}
    result = subprocess.run(
        [str(AUTHSERVER), "clients", "create", "--name", "Script", "--grant-type", "client_credentials",
         "--scope", "api", "--json"],
        env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=False,
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    r = client.post("/token", data={"grant_type": "client_credentials"},
                    auth=(body["client_id"], body["client_secret"]))
    assert r.status_code == 200

    result = subprocess.run(
        [str(AUTHSERVER), "users", "create", "--username", "zed", "--email", "zed@example.com",
         "--password-stdin"],
        env=env, input="password\n", capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1
    assert result.stdout == ""

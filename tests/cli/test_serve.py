"""``authserver serve`` and ``authserver migrate``."""

from __future__ import annotations

from typing import Any

from tests.cli.conftest import assert_error


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
    status, out, _ = run("keys", "list")  # the first key of each algorithm, in the database
    assert status == 0 and [line.split()[1] for line in out.splitlines()[1:]] == ["active"] * 3
    assert run("users", "list")[0] == 0  # migrated


def test_serve_rejects_bad_port(run):
    assert_error(run("serve", "--port", "70000"), "--port")
    assert_error(run("serve", "--port", "http"), "--port")

"""``authserver serve`` and ``authserver migrate``."""

from __future__ import annotations

import socket
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
    status, out, _ = run("serve", "--port", "8000")
    assert status == 0
    assert "http://127.0.0.1:8000/.well-known/openid-configuration" in out
    assert "users create" in out and "clients create" in out
    [(app, kw)] = calls
    assert app == "authserver.app:app_from_env"
    assert kw == {"factory": True, "host": "127.0.0.1", "port": 8000, "proxy_headers": False,
                  "server_header": False, "date_header": True, "access_log": False, "log_config": None,
                  "http": "authserver.security.http_limits:LimitedHttpToolsProtocol"}
    assert (keys / "secret_key").stat().st_mode & 0o777 == 0o600
    status, out, _ = run("keys", "list")  # the first key of each algorithm, in the database
    assert status == 0 and [line.split()[1] for line in out.splitlines()[1:]] == ["active"] * 3
    assert run("users", "list")[0] == 0  # migrated


def test_serve_rejects_bad_port(run):
    assert_error(run("serve", "--port", "70000"), "--port")
    assert_error(run("serve", "--port", "http"), "--port")


def test_serve_with_workers_runs_its_own_supervisor_holding_the_port(run, monkeypatch, tmp_path):
    """Several workers: the same options, through cli/workers.py (run for real in
    tests/cli/test_workers.py), with the port already held before anything is printed."""
    from authserver.cli import workers
    from tests.serving import free_port

    port = free_port()

    def held() -> bool:
        with socket.socket() as other:
            try:
                other.bind(("127.0.0.1", port))
            except OSError:
                return True
            return False

    seen: list[tuple[Any, bool]] = []
    monkeypatch.setattr(workers.Supervisor, "run", lambda self: seen.append((self.config, held())) or 0)
    monkeypatch.setenv("AUTHSERVER_DATABASE_URL", f"sqlite:///{tmp_path / 'a.db'}")
    status, out, _ = run("serve", "--port", str(port), "--workers", "2")
    assert status == 0 and "with 2 worker(s)" in out
    [(config, was_held)] = seen
    assert was_held and not held()  # held while the supervisor runs, released after
    assert (config.app, config.factory, config.host, config.port, config.workers) == (
        "authserver.app:app_from_env", True, "127.0.0.1", port, 2)
    assert (config.proxy_headers, config.server_header, config.access_log, config.log_config) == (
        False, False, False, None)
    assert config.http == "authserver.security.http_limits:LimitedHttpToolsProtocol"

    with socket.socket() as other:  # the port is held while serve runs, refused to anyone else
        other.bind(("127.0.0.1", port))
        other.listen()
        assert_error(run("serve", "--port", str(port), "--workers", "2"), "Address already in use")

"""The SQLite database and its directory are private to the server's user (issue 10)."""

from __future__ import annotations

import stat

import sqlalchemy as sa

from authserver.db import create_engine


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_sqlite_file_and_directory_are_private(tmp_path):
    path = tmp_path / "data" / "nested" / "authserver.db"
    engine = create_engine(f"sqlite:///{path}", pool_size=1)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (x TEXT)"))
        conn.execute(sa.text("INSERT INTO t VALUES ('argon2 hash')"))
    try:
        assert _mode(path.parent) == 0o700
        assert _mode(tmp_path / "data") == 0o700
        assert _mode(path) == 0o600
        for extra in ("-wal", "-shm"):
            side = path.with_name(path.name + extra)
            if side.exists():
                assert _mode(side) & 0o077 == 0, extra
    finally:
        engine.dispose()


def test_existing_world_readable_file_is_narrowed(tmp_path):
    path = tmp_path / "authserver.db"
    path.touch(mode=0o644)
    path.chmod(0o644)
    create_engine(f"sqlite:///{path}", pool_size=1).dispose()
    assert _mode(path) == 0o600

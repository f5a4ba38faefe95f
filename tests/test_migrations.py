"""Alembic: ``upgrade head`` builds exactly the models' schema, ``downgrade base``
removes it, on SQLite and on Postgres (a throwaway database per test)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from authserver.db import Base, alembic_config, create_engine, downgrade, import_models, migrate
from tests.conftest import PG_URL, _unavailable

import_models()


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'mig.db'}", pool_size=2)
        yield engine
        engine.dispose()
        return
    admin_url = sa.engine.make_url(PG_URL).set(database="postgres")
    name = f"authserver_test_mig_{secrets.token_hex(4)}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        _unavailable("Postgres", exc)
    engine = create_engine(admin_url.set(database=name).render_as_string(hide_password=False), pool_size=2)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def pending_diff(engine: sa.Engine) -> list[object]:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)


def tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def current(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def test_upgrade_matches_models_downgrade_removes_everything(engine):
    heads = set(ScriptDirectory.from_config(alembic_config("")).get_heads())
    assert len(heads) == 1, "migrations have branched; merge them"

    migrate(engine)
    assert current(engine) == heads
    assert pending_diff(engine) == []
    assert tables(engine) == {t.name for t in Base.metadata.sorted_tables} | {"alembic_version"}

    downgrade(engine, "base")
    assert tables(engine) <= {"alembic_version"}
    assert current(engine) == set()

    migrate(engine)
    assert current(engine) == heads
    assert pending_diff(engine) == []


def test_upgrade_is_idempotent(engine):
    migrate(engine)
    migrate(engine)
    assert pending_diff(engine) == []


def test_every_revision_has_a_docstring_and_a_downgrade():
    script = ScriptDirectory.from_config(alembic_config(""))
    for revision in script.walk_revisions():
        module = revision.module
        assert (module.__doc__ or "").strip(), revision.revision
        assert callable(getattr(module, "downgrade", None)), revision.revision

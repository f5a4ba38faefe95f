"""Migration 0003 on a database holding users with role names (SQLite and Postgres):
every name becomes a role and every assignment is kept; the built-in roles are
seeded as :data:`BUILT_IN_ROLES` says; the schema then matches the models; the
downgrade gives the names back."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from authserver.db import downgrade, migrate
from authserver.roles.permissions import BUILT_IN_ROLES
from tests.test_migrations import engine, pending_diff  # noqa: F401 (the engine fixture)

NOW = dt.datetime(2026, 11, 1, 12, 0, 0)
USERS = {"u-alice": ["admin", "ops"], "u-bob": ["ops", "Team.Lead"], "u-carol": []}


def user_roles(conn: sa.Connection) -> dict[str, list[str]]:
    held: dict[str, list[str]] = {u: [] for u in USERS}
    for user_id, role in conn.execute(sa.text("SELECT user_id, role FROM user_roles")):
        held[user_id].append(role)
    return {u: sorted(r) for u, r in held.items()}


def test_existing_user_roles_survive_and_become_roles(engine):  # noqa: F811
    migrate(engine, "0001")
    with engine.begin() as conn:
        for user_id, names in USERS.items():
            name = user_id[2:]
            conn.execute(sa.text(
                "INSERT INTO users (id, username, email, email_verified, password_hash, disabled, created_at,"
                " updated_at, password_changed_at) VALUES (:id, :u, :e, true, 'x', false, :t, :t, :t)"),
                {"id": user_id, "u": name, "e": f"{name}@example.com", "t": NOW})
            for role in names:
                conn.execute(sa.text("INSERT INTO user_roles (user_id, role) VALUES (:u, :r)"),
                             {"u": user_id, "r": role})
        conn.execute(sa.text(
            "INSERT INTO clients (client_id, client_name, redirect_uris, post_logout_redirect_uris, grant_types,"
            " response_types, scope, token_endpoint_auth_method, audience, skip_consent, require_mfa,"
            " introspect_any, created_at, updated_at) VALUES ('c1', 'App', '[]', '[]', '[]', '[]', 'api',"
            " 'client_secret_basic', '[]', false, false, false, :t, :t)"), {"t": NOW})
    before = {u: sorted(r) for u, r in USERS.items()}

    migrate(engine)
    assert pending_diff(engine) == []
    with engine.begin() as conn:
        assert user_roles(conn) == before
        rows = {name: (built_in, description) for name, built_in, description in
                conn.execute(sa.text("SELECT name, built_in, description FROM roles"))}
        assert set(rows) == {"admin", "auditor", "support", "ops", "Team.Lead"}
        assert {n for n, (b, _) in rows.items() if b} == set(BUILT_IN_ROLES)
        assert rows["ops"] == (False, "") and rows["Team.Lead"] == (False, "")
        seeded: dict[str, set[str]] = {}
        for role, permission in conn.execute(sa.text("SELECT role, permission FROM role_permissions")):
            seeded.setdefault(role, set()).add(permission)
        # the migration's frozen copy equals the code's mapping
        assert seeded == {name: set(r.permissions) for name, r in BUILT_IN_ROLES.items()}
        assert {name: d for name, (_, d) in rows.items() if name in BUILT_IN_ROLES} == {
            name: r.description for name, r in BUILT_IN_ROLES.items()}
        prefixes = conn.execute(sa.text("SELECT permission_prefixes FROM clients")).scalar_one()
        assert (json.loads(prefixes) if isinstance(prefixes, str) else prefixes) == []

    # user_roles now references roles: an unknown name is refused by the database
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO user_roles (user_id, role) VALUES ('u-carol', 'ghost')"))

    downgrade(engine, "0001")
    with engine.begin() as conn:
        assert user_roles(conn) == before
        assert "roles" not in sa.inspect(conn).get_table_names()

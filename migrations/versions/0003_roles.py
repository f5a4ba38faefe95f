"""Roles as data: roles with permissions, client roles, user roles referencing roles, client permission prefixes.

Existing ``user_roles`` names become roles (no description, no permission) so
every assignment is kept; the built-in ``admin``, ``auditor`` and ``support``
roles are seeded with their admin permissions (a frozen copy of
``authserver.roles.permissions.BUILT_IN_ROLES``: a migration must not change
when the code does). Downgrade keeps the users' role names and drops the roles,
their permissions and the client roles.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-30 07:20:00
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

import authserver.db

revision = '0003'
down_revision = '0001'
branch_labels = None
depends_on = None

_ADMIN = [f"admin:{resource}:{action}" for resource, actions in (
    ("users", ("read", "write")), ("clients", ("read", "write")), ("keys", ("read", "write")),
    ("consents", ("read", "write")), ("registration_tokens", ("read", "write")),
    ("deny_list", ("read", "write")), ("audit", ("read",)), ("roles", ("read", "write")),
    ("sessions", ("read", "write"))) for action in actions]
BUILT_IN = {
    "admin": ("Administrators: every admin permission", _ADMIN),
    "auditor": ("Auditors: read everything on the admin surface, change nothing",
                [p for p in _ADMIN if p.endswith(":read")]),
    "support": ("Support: users and their sessions",
                ["admin:users:read", "admin:users:write", "admin:sessions:read", "admin:sessions:write"]),
}


def upgrade() -> None:
    roles = op.create_table('roles',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.String(length=500), server_default='', nullable=False),
    sa.Column('built_in', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('created_at', authserver.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', authserver.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_roles'))
    )
    role_permissions = op.create_table('role_permissions',
    sa.Column('role', sa.String(length=100), nullable=False),
    sa.Column('permission', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['role'], ['roles.name'], name=op.f('fk_role_permissions_role_roles'),
                            onupdate='CASCADE', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('role', 'permission', name=op.f('pk_role_permissions'))
    )
    op.create_table('client_roles',
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['clients.client_id'], name=op.f('fk_client_roles_client_id_clients'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['role'], ['roles.name'], name=op.f('fk_client_roles_role_roles'),
                            onupdate='CASCADE', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('client_id', 'role', name=op.f('pk_client_roles'))
    )
    with op.batch_alter_table('client_roles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_client_roles_role'), ['role'], unique=False)

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    op.bulk_insert(roles, [{"name": name, "description": description, "built_in": True,
                            "created_at": now, "updated_at": now}
                           for name, (description, _) in BUILT_IN.items()])
    op.bulk_insert(role_permissions, [{"role": name, "permission": permission}
                                      for name, (_, permissions) in BUILT_IN.items()
                                      for permission in permissions])
    # data migration: every role name already held by a user becomes a role
    user_roles = sa.table('user_roles', sa.column('role', sa.String))
    existing = sa.select(user_roles.c.role).distinct().where(user_roles.c.role.not_in(sa.select(roles.c.name)))
    op.execute(roles.insert().from_select(
        ['name', 'description', 'built_in', 'created_at', 'updated_at'],
        sa.select(existing.subquery().c.role, sa.literal(''), sa.false(),
                  sa.literal(now, authserver.db.UTCDateTime()), sa.literal(now, authserver.db.UTCDateTime()))))

    with op.batch_alter_table('user_roles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_roles_role'), ['role'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_user_roles_role_roles'), 'roles', ['role'], ['name'],
                                    onupdate='CASCADE', ondelete='CASCADE')

    # plain ADD COLUMN: a batch copy of ``clients`` would drop the table its children cascade from
    op.add_column('clients', sa.Column('permission_prefixes', sa.JSON(), server_default='[]', nullable=False))


def downgrade() -> None:
    op.drop_column('clients', 'permission_prefixes')
    with op.batch_alter_table('user_roles', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_user_roles_role_roles'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_user_roles_role'))
    with op.batch_alter_table('client_roles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_client_roles_role'))
    op.drop_table('client_roles')
    op.drop_table('role_permissions')
    op.drop_table('roles')

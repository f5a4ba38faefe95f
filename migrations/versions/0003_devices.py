"""Devices for the device limit: the devices table and the device of sessions, codes and refresh tokens.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 07:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import authserver.db

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('devices',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('created_at', authserver.db.UTCDateTime(), nullable=False),
    sa.Column('last_used_at', authserver.db.UTCDateTime(), nullable=False),
    sa.Column('ended_at', authserver.db.UTCDateTime(), nullable=True),
    sa.Column('ended_reason', sa.String(length=40), nullable=True),
    sa.Column('ended_by', sa.String(length=36), nullable=True),
    sa.ForeignKeyConstraint(['ended_by'], ['devices.id'], name=op.f('fk_devices_ended_by_devices'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_devices_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_devices'))
    )
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_devices_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('browser_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('device_id', sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f('ix_browser_sessions_device_id'), ['device_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_browser_sessions_device_id_devices'), 'devices',
                                    ['device_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('device_id', sa.String(length=36), nullable=True))

    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('device_id', sa.String(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.drop_column('device_id')

    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.drop_column('device_id')

    with op.batch_alter_table('browser_sessions', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_browser_sessions_device_id_devices'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_browser_sessions_device_id'))
        batch_op.drop_column('device_id')

    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_devices_user_id'))

    op.drop_table('devices')

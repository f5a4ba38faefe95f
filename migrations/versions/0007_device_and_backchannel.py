"""Device authorization grant (RFC 8628) and back-channel logout (OIDC Back-Channel Logout 1.0).

``device_authorizations``: one row per device authorization request, codes stored as
keyed hashes. ``clients.backchannel_logout_uri`` and
``backchannel_logout_session_required`` (§2.2); ``logout_deliveries``: the outbox of
logout tokens the maintenance worker delivers.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 10:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import authserver.db

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('device_authorizations',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('device_code_hash', sa.String(length=64), nullable=False),
    sa.Column('user_code_hash', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('poll_interval', sa.Integer(), nullable=False),
    sa.Column('last_polled_at', sa.Float(), nullable=True),
    sa.Column('user_id', sa.String(length=36), nullable=True),
    sa.Column('auth_time', sa.BigInteger(), nullable=True),
    sa.Column('amr', sa.JSON(), nullable=False),
    sa.Column('acr', sa.String(length=100), nullable=True),
    sa.Column('sid', sa.String(length=64), nullable=True),
    sa.Column('created_at', authserver.db.UTCDateTime(), nullable=False),
    sa.Column('expires_at', authserver.db.UTCDateTime(), nullable=False),
    sa.Column('decided_at', authserver.db.UTCDateTime(), nullable=True),
    sa.Column('used_at', authserver.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['clients.client_id'],
                            name=op.f('fk_device_authorizations_client_id_clients'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_device_authorizations_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_device_authorizations')),
    sa.UniqueConstraint('device_code_hash', name=op.f('uq_device_authorizations_device_code_hash')),
    sa.UniqueConstraint('user_code_hash', name=op.f('uq_device_authorizations_user_code_hash'))
    )
    with op.batch_alter_table('device_authorizations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_device_authorizations_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_device_authorizations_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_device_authorizations_sid'), ['sid'], unique=False)
        batch_op.create_index(batch_op.f('ix_device_authorizations_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('backchannel_logout_uri', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('backchannel_logout_session_required', sa.Boolean(),
                                      server_default=sa.false(), nullable=False))

    op.create_table('logout_deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('sub', sa.String(length=64), nullable=True),
    sa.Column('sid', sa.String(length=64), nullable=True),
    sa.Column('jti', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', authserver.db.UTCDateTime(), nullable=False),
    sa.Column('last_error', sa.String(length=200), nullable=True),
    sa.Column('created_at', authserver.db.UTCDateTime(), nullable=False),
    sa.Column('finished_at', authserver.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['clients.client_id'],
                            name=op.f('fk_logout_deliveries_client_id_clients'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_logout_deliveries'))
    )
    with op.batch_alter_table('logout_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_logout_deliveries_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_logout_deliveries_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_logout_deliveries_next_attempt_at'), ['next_attempt_at'],
                              unique=False)


def downgrade() -> None:
    op.drop_table('logout_deliveries')
    # in place, never a batch copy of ``clients`` (see 0006)
    op.drop_column('clients', 'backchannel_logout_session_required')
    op.drop_column('clients', 'backchannel_logout_uri')
    op.drop_table('device_authorizations')

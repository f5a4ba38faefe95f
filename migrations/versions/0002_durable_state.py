"""Durable security state: revoked access tokens, subject cutoffs, signing keys, change counters.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 06:42:17.187662
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import authserver.db

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('cluster_state',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('value', sa.BigInteger(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_cluster_state'))
    )
    op.create_table('revoked_tokens',
    sa.Column('jti', sa.String(length=64), nullable=False),
    sa.Column('expires_at', authserver.db.UTCDateTime(), nullable=False),
    sa.Column('revoked_at', authserver.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('jti', name=op.f('pk_revoked_tokens'))
    )
    with op.batch_alter_table('revoked_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_revoked_tokens_expires_at'), ['expires_at'], unique=False)

    op.create_table('signing_keys',
    sa.Column('kid', sa.String(length=64), nullable=False),
    sa.Column('alg', sa.String(length=10), server_default='RS256', nullable=False),
    sa.Column('sealed_private_key', sa.Text(), nullable=False),
    sa.Column('created_at', authserver.db.UTCDateTime(), nullable=False),
    sa.Column('activates_at', authserver.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('kid', name=op.f('pk_signing_keys'))
    )
    op.create_table('token_cutoffs',
    sa.Column('subject_kind', sa.String(length=10), nullable=False),
    sa.Column('subject_id', sa.String(length=64), nullable=False),
    sa.Column('not_before', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', authserver.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('subject_kind', 'subject_id', name=op.f('pk_token_cutoffs'))
    )
    with op.batch_alter_table('token_cutoffs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_token_cutoffs_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('token_cutoffs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_token_cutoffs_expires_at'))

    op.drop_table('token_cutoffs')
    op.drop_table('signing_keys')
    with op.batch_alter_table('revoked_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_revoked_tokens_expires_at'))

    op.drop_table('revoked_tokens')
    op.drop_table('cluster_state')

"""PAR, private_key_jwt and ID-token algorithms: client metadata, the assertion replay
store and pushed authorization requests.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import authserver.db

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('jwks', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('jwks_uri', sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column('require_pushed_authorization_requests', sa.Boolean(),
                                      server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('id_token_signed_response_alg', sa.String(length=10),
                                      server_default='RS256', nullable=False))

    op.create_table('client_assertion_jtis',
    sa.Column('jti_hash', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('expires_at', authserver.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('jti_hash', name=op.f('pk_client_assertion_jtis'))
    )
    with op.batch_alter_table('client_assertion_jtis', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_client_assertion_jtis_expires_at'), ['expires_at'], unique=False)

    op.create_table('pushed_authorization_requests',
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('sealed_params', sa.Text(), nullable=False),
    sa.Column('created_at', authserver.db.UTCDateTime(), nullable=False),
    sa.Column('expires_at', authserver.db.UTCDateTime(), nullable=False),
    sa.Column('used_at', authserver.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['clients.client_id'],
                            name=op.f('fk_pushed_authorization_requests_client_id_clients'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('request_hash', name=op.f('pk_pushed_authorization_requests'))
    )
    with op.batch_alter_table('pushed_authorization_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pushed_authorization_requests_client_id'), ['client_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_pushed_authorization_requests_expires_at'), ['expires_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('pushed_authorization_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pushed_authorization_requests_expires_at'))
        batch_op.drop_index(batch_op.f('ix_pushed_authorization_requests_client_id'))
    op.drop_table('pushed_authorization_requests')

    with op.batch_alter_table('client_assertion_jtis', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_client_assertion_jtis_expires_at'))
    op.drop_table('client_assertion_jtis')

    # in place (SQLite 3.35+ too), never a batch copy of ``clients``: dropping the old
    # table on SQLite would cascade to the clients' codes, tokens and consents
    for column in ('id_token_signed_response_alg', 'require_pushed_authorization_requests', 'jwks_uri', 'jwks'):
        op.drop_column('clients', column)

"""DPoP (RFC 9449): the key a public client's refresh token is bound to (§5), the key an
authorization code is bound to (``dpop_jkt``, §10), and the per-client
``dpop_bound_access_tokens`` flag (§5.2).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN: a batch copy of ``clients`` would drop the table its children cascade from
    op.add_column('clients', sa.Column('dpop_bound_access_tokens', sa.Boolean(), server_default=sa.false(),
                                       nullable=False))
    op.add_column('refresh_tokens', sa.Column('dpop_jkt', sa.String(length=64), nullable=True))
    op.add_column('authorization_codes', sa.Column('dpop_jkt', sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column('authorization_codes', 'dpop_jkt')
    op.drop_column('refresh_tokens', 'dpop_jkt')
    op.drop_column('clients', 'dpop_bound_access_tokens')

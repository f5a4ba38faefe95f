"""The language a user last used: their mails' language and the ``locale`` claim.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=16), nullable=True))


def downgrade() -> None:
    # in place (SQLite 3.35+ too), never a batch copy of ``users``: dropping the old
    # table on SQLite would cascade to every row that references a user
    op.drop_column('users', 'locale')

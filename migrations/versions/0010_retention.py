"""Retention: how many days a user keeps their finished runs (NULL: for ever, the default).

`flask runs prune --retention` deletes each user's runs that finished longer ago than their
users.retention_days. The check bounds it to what the settings page accepts (1 to 3650 days). On
SQLite the column and its check come with a copy of the users table (env.py turns foreign keys off
around it, so the copy does not cascade into the runs).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("retention_days", sa.Integer(), nullable=True))
        batch.create_check_constraint(
            op.f("ck_users_retention_days"), "retention_days IS NULL OR retention_days BETWEEN 1 AND 3650"
        )


def downgrade():
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint(op.f("ck_users_retention_days"), type_="check")
        batch.drop_column("retention_days")

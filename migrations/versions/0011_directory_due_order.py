"""directory: the due steps' index in the order run-due takes them

Run-due takes pending steps by (effective_date, id), 200 at a time. The index ended in next_attempt_at,
so every chunk sorted all the steps due on a date (a backlog of 10,000 joiners starting the same day was
sorted 50 times); ending it in id lets the database read the first 200 in order and stop.

Revision ID: 0011_directory_due_order
Revises: 0010_config_backups
Create Date: 2026-11-25 23:40:00

"""
from alembic import op

revision = '0011_directory_due_order'
down_revision = '0010_config_backups'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('directory_actions', schema=None) as batch_op:
        batch_op.drop_index('ix_directory_actions_due')
        batch_op.create_index('ix_directory_actions_due', ['state', 'effective_date', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('directory_actions', schema=None) as batch_op:
        batch_op.drop_index('ix_directory_actions_due')
        batch_op.create_index('ix_directory_actions_due', ['state', 'effective_date', 'next_attempt_at'],
                              unique=False)

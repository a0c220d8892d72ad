"""monitoring: configuration backups of network devices

Revision ID: 0010_config_backups
Revises: 0009_monitoring
Create Date: 2026-11-25 17:00:00

"""
from alembic import op
import sqlalchemy as sa

import itops.core.database

revision = '0010_config_backups'
down_revision = '0009_monitoring'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'config_backups',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('asset_id', sa.Integer(), nullable=False),
        sa.Column('taken_at', itops.core.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('command', sa.String(length=100), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], name=op.f('fk_config_backups_asset_id_assets'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_config_backups')),
    )
    with op.batch_alter_table('config_backups', schema=None) as batch_op:
        batch_op.create_index('ix_config_backups_asset_taken', ['asset_id', 'taken_at'], unique=False)


def downgrade():
    with op.batch_alter_table('config_backups', schema=None) as batch_op:
        batch_op.drop_index('ix_config_backups_asset_taken')
    op.drop_table('config_backups')

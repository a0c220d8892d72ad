"""scim: HR systems' bearer tokens, and the SCIM userName and deletion of people

Revision ID: 0008_scim_tokens
Revises: 0007_directory
Create Date: 2026-11-25 17:00:00

"""
from alembic import op
import sqlalchemy as sa

import itops.core.database


# revision identifiers, used by Alembic.
revision = '0008_scim_tokens'
down_revision = '0007_directory'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('scim_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', itops.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', itops.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', itops.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scim_tokens')),
    sa.UniqueConstraint('name', name=op.f('uq_scim_tokens_name')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_scim_tokens_token_hash'))
    )
    op.create_table('scim_users',
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('user_name', sa.String(length=255), nullable=True),
    sa.Column('user_name_key', sa.String(length=255), nullable=True),
    sa.Column('deleted_at', itops.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_scim_users_person_id_people'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('person_id', name=op.f('pk_scim_users')),
    sa.UniqueConstraint('user_name_key', name=op.f('uq_scim_users_user_name_key'))
    )


def downgrade():
    op.drop_table('scim_users')
    op.drop_table('scim_tokens')

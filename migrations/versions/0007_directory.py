"""directory: people, dated directory actions, group mappings, kit templates, batches, usernames in use

Revision ID: 0007_directory
Revises: 0006_tickets_search
Create Date: 2026-11-25 16:20:54.922656

"""
from alembic import op
import sqlalchemy as sa

import itops.core.database


# revision identifiers, used by Alembic.
revision = '0007_directory'
down_revision = '0006_tickets_search'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('directory_group_mappings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('department', sa.String(length=100), nullable=True),
    sa.Column('title', sa.String(length=100), nullable=True),
    sa.Column('groups', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_directory_group_mappings')),
    sa.UniqueConstraint('department', 'title', name='uq_directory_group_mappings_department_title')
    )
    op.create_table('directory_kit_templates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('department', sa.String(length=100), nullable=False),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_directory_kit_templates')),
    sa.UniqueConstraint('department', name=op.f('uq_directory_kit_templates_department'))
    )
    op.create_table('directory_batches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('summary', sa.String(length=500), nullable=False),
    sa.Column('removals', sa.Integer(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_by_label', sa.String(length=120), nullable=False),
    sa.Column('created_at', itops.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_by_label', sa.String(length=120), nullable=True),
    sa.Column('decided_at', itops.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_directory_batches_created_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_directory_batches'))
    )
    with op.batch_alter_table('directory_batches', schema=None) as batch_op:
        batch_op.create_index('ix_directory_batches_state_created', ['state', 'created_at'], unique=False)

    op.create_table('people',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('employee_number', sa.String(length=64), nullable=False),
    sa.Column('external_id', sa.String(length=255), nullable=True),
    sa.Column('given_name', sa.String(length=100), nullable=False),
    sa.Column('family_name', sa.String(length=100), nullable=False),
    sa.Column('preferred_name', sa.String(length=100), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('department', sa.String(length=100), nullable=True),
    sa.Column('title', sa.String(length=100), nullable=True),
    sa.Column('manager_id', sa.Integer(), nullable=True),
    sa.Column('location', sa.String(length=100), nullable=True),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=True),
    sa.Column('dn', sa.String(length=512), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('disabled_at', itops.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('deleted_at', itops.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('provisioning_ticket_id', sa.Integer(), nullable=True),
    sa.Column('return_ticket_id', sa.Integer(), nullable=True),
    sa.Column('created_at', itops.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', itops.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['manager_id'], ['people.id'], name=op.f('fk_people_manager_id_people'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['provisioning_ticket_id'], ['tickets.id'], name=op.f('fk_people_provisioning_ticket_id_tickets'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['return_ticket_id'], ['tickets.id'], name=op.f('fk_people_return_ticket_id_tickets'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_people_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_people')),
    sa.UniqueConstraint('employee_number', name=op.f('uq_people_employee_number')),
    sa.UniqueConstraint('external_id', name=op.f('uq_people_external_id')),
    sa.UniqueConstraint('user_id', name=op.f('uq_people_user_id'))
    )
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.create_index('ix_people_department_family', ['department', 'family_name', 'id'], unique=False)
        batch_op.create_index('ix_people_family_given', ['family_name', 'given_name', 'id'], unique=False)
        batch_op.create_index('ix_people_manager', ['manager_id'], unique=False)
        batch_op.create_index('ix_people_state_family', ['state', 'family_name', 'id'], unique=False)
        batch_op.create_index('ix_people_username', ['username'], unique=False)

    op.create_table('directory_actions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('target_dn', sa.String(length=512), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('effective_date', sa.Date(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', itops.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('planned', sa.JSON(), nullable=True),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('secret_encrypted', sa.Text(), nullable=True),
    sa.Column('batch_id', sa.Integer(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_by_label', sa.String(length=120), nullable=False),
    sa.Column('created_at', itops.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('done_at', itops.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['batch_id'], ['directory_batches.id'], name=op.f('fk_directory_actions_batch_id_directory_batches'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_directory_actions_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_directory_actions_person_id_people'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_directory_actions'))
    )
    with op.batch_alter_table('directory_actions', schema=None) as batch_op:
        batch_op.create_index('ix_directory_actions_batch', ['batch_id'], unique=False)
        batch_op.create_index('ix_directory_actions_due', ['state', 'effective_date', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_directory_actions_person', ['person_id', 'id'], unique=False)

    op.create_table('directory_kit_reservations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('asset_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('created_at', itops.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], name=op.f('fk_directory_kit_reservations_asset_id_assets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_directory_kit_reservations_person_id_people'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_directory_kit_reservations')),
    sa.UniqueConstraint('asset_id', name=op.f('uq_directory_kit_reservations_asset_id'))
    )
    with op.batch_alter_table('directory_kit_reservations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_directory_kit_reservations_person_id'), ['person_id'], unique=False)

    op.create_table('usernames_in_use',
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('reserved_until', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_usernames_in_use_person_id_people'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('username', name=op.f('pk_usernames_in_use'))
    )


def downgrade():
    op.drop_table('usernames_in_use')
    with op.batch_alter_table('directory_kit_reservations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_directory_kit_reservations_person_id'))

    op.drop_table('directory_kit_reservations')
    with op.batch_alter_table('directory_actions', schema=None) as batch_op:
        batch_op.drop_index('ix_directory_actions_person')
        batch_op.drop_index('ix_directory_actions_due')
        batch_op.drop_index('ix_directory_actions_batch')

    op.drop_table('directory_actions')
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.drop_index('ix_people_username')
        batch_op.drop_index('ix_people_state_family')
        batch_op.drop_index('ix_people_manager')
        batch_op.drop_index('ix_people_family_given')
        batch_op.drop_index('ix_people_department_family')

    op.drop_table('people')
    with op.batch_alter_table('directory_batches', schema=None) as batch_op:
        batch_op.drop_index('ix_directory_batches_state_created')

    op.drop_table('directory_batches')
    op.drop_table('directory_kit_templates')
    op.drop_table('directory_group_mappings')

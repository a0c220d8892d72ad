"""monitoring: checks, health, samples, roll-ups, maintenance, poll cycles, scheduler lease and job store

Revision ID: 0009_monitoring
Revises: 0008_scim_tokens
Create Date: 2026-11-25 16:25:23.076884

"""
from alembic import op
import sqlalchemy as sa

import itops.core.database


# revision identifiers, used by Alembic.
revision = '0009_monitoring'
down_revision = '0008_scim_tokens'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('poll_cycles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('started_at', itops.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', itops.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('executor', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_poll_cycles'))
    )
    with op.batch_alter_table('poll_cycles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_poll_cycles_started_at'), ['started_at'], unique=False)

    op.create_table('scheduler_jobs',
    sa.Column('id', sa.Unicode(length=191), nullable=False),
    sa.Column('next_run_time', sa.Float(precision=25), nullable=True),
    sa.Column('job_state', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scheduler_jobs'))
    )
    with op.batch_alter_table('scheduler_jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scheduler_jobs_next_run_time'), ['next_run_time'], unique=False)

    op.create_table('scheduler_leases',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=200), nullable=False),
    sa.Column('expires_at', itops.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('acquired_at', itops.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_scheduler_leases'))
    )
    op.create_table('maintenance_windows',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('asset_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('starts_at', itops.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ends_at', itops.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('weekday', sa.SmallInteger(), nullable=True),
    sa.Column('start_minute', sa.SmallInteger(), nullable=True),
    sa.Column('duration_minutes', sa.Integer(), nullable=True),
    sa.Column('created_at', itops.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], name=op.f('fk_maintenance_windows_asset_id_assets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_maintenance_windows'))
    )
    with op.batch_alter_table('maintenance_windows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_maintenance_windows_asset_id'), ['asset_id'], unique=False)

    op.create_table('monitor_checks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('asset_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('interval_seconds', sa.Integer(), nullable=False),
    sa.Column('timeout_seconds', sa.Float(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('next_due_at', itops.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_run_at', itops.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_status', sa.String(length=16), nullable=True),
    sa.Column('last_latency_ms', sa.Float(), nullable=True),
    sa.Column('last_values', sa.JSON(), nullable=True),
    sa.Column('last_details', sa.JSON(), nullable=True),
    sa.Column('last_output', sa.Text(), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('created_at', itops.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], name=op.f('fk_monitor_checks_asset_id_assets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_monitor_checks'))
    )
    with op.batch_alter_table('monitor_checks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_monitor_checks_asset_id'), ['asset_id'], unique=False)
        batch_op.create_index('ix_monitor_checks_due', ['enabled', 'next_due_at'], unique=False)

    op.create_table('asset_health',
    sa.Column('asset_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('state_rank', sa.SmallInteger(), nullable=False),
    sa.Column('changed_at', itops.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('polled_at', itops.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('successes', sa.Integer(), nullable=False),
    sa.Column('recent_changes', sa.JSON(), nullable=False),
    sa.Column('flapping', sa.Boolean(), nullable=False),
    sa.Column('parent_asset_id', sa.Integer(), nullable=True),
    sa.Column('incident_ticket_id', sa.Integer(), nullable=True),
    sa.Column('incident_open', sa.Boolean(), nullable=False),
    sa.Column('incident_resolved_at', itops.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('incidents_opened', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], name=op.f('fk_asset_health_asset_id_assets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['incident_ticket_id'], ['tickets.id'], name=op.f('fk_asset_health_incident_ticket_id_tickets'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['parent_asset_id'], ['assets.id'], name=op.f('fk_asset_health_parent_asset_id_assets'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('asset_id', name=op.f('pk_asset_health'))
    )
    with op.batch_alter_table('asset_health', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_asset_health_parent_asset_id'), ['parent_asset_id'], unique=False)
        batch_op.create_index('ix_asset_health_board', ['state_rank', 'changed_at', 'asset_id'], unique=False)

    op.create_table('monitor_sample_hours',
    sa.Column('check_id', sa.Integer(), nullable=False),
    sa.Column('hour', sa.Integer(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('up_count', sa.Integer(), nullable=False),
    sa.Column('latency_n', sa.Integer(), nullable=False),
    sa.Column('latency_sum', sa.Float(), nullable=False),
    sa.Column('latency_min', sa.Float(), nullable=True),
    sa.Column('latency_max', sa.Float(), nullable=True),
    sa.Column('values', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['check_id'], ['monitor_checks.id'], name=op.f('fk_monitor_sample_hours_check_id_monitor_checks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('check_id', 'hour', name=op.f('pk_monitor_sample_hours'))
    )
    op.create_table('probe_outcomes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cycle_id', sa.Integer(), nullable=False),
    sa.Column('check_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('latency_ms', sa.Float(), nullable=True),
    sa.Column('values', sa.JSON(), nullable=True),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.Column('output', sa.Text(), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('executed_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', itops.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['check_id'], ['monitor_checks.id'], name=op.f('fk_probe_outcomes_check_id_monitor_checks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['cycle_id'], ['poll_cycles.id'], name=op.f('fk_probe_outcomes_cycle_id_poll_cycles'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_probe_outcomes'))
    )
    with op.batch_alter_table('probe_outcomes', schema=None) as batch_op:
        batch_op.create_index('ix_probe_outcomes_cycle', ['cycle_id', 'check_id'], unique=False)

    op.create_table('monitor_samples',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('check_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.Integer(), nullable=False),
    sa.Column('status', sa.SmallInteger(), nullable=False),
    sa.Column('latency_ms', sa.Float(), nullable=True),
    sa.Column('values', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['check_id'], ['monitor_checks.id'], name=op.f('fk_monitor_samples_check_id_monitor_checks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_monitor_samples'))
    )
    with op.batch_alter_table('monitor_samples', schema=None) as batch_op:
        batch_op.create_index('ix_monitor_samples_check_at', ['check_id', 'at'], unique=False)



def downgrade():
    with op.batch_alter_table('probe_outcomes', schema=None) as batch_op:
        batch_op.drop_index('ix_probe_outcomes_cycle')
    op.drop_table('probe_outcomes')
    with op.batch_alter_table('monitor_samples', schema=None) as batch_op:
        batch_op.drop_index('ix_monitor_samples_check_at')

    op.drop_table('monitor_samples')
    op.drop_table('monitor_sample_hours')
    with op.batch_alter_table('asset_health', schema=None) as batch_op:
        batch_op.drop_index('ix_asset_health_board')
        batch_op.drop_index(batch_op.f('ix_asset_health_parent_asset_id'))

    op.drop_table('asset_health')
    with op.batch_alter_table('monitor_checks', schema=None) as batch_op:
        batch_op.drop_index('ix_monitor_checks_due')
        batch_op.drop_index(batch_op.f('ix_monitor_checks_asset_id'))

    op.drop_table('monitor_checks')
    with op.batch_alter_table('maintenance_windows', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_maintenance_windows_asset_id'))

    op.drop_table('maintenance_windows')
    op.drop_table('scheduler_leases')
    with op.batch_alter_table('scheduler_jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scheduler_jobs_next_run_time'))

    op.drop_table('scheduler_jobs')
    with op.batch_alter_table('poll_cycles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_poll_cycles_started_at'))

    op.drop_table('poll_cycles')

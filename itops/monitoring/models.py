"""Monitoring's tables: checks per asset, each asset's health, samples and their hourly roll-ups,
maintenance windows, configuration backups, poll cycles, and the scheduler's lease and job store."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON, Boolean, Column, Float, ForeignKey, Index, Integer, LargeBinary, SmallInteger, String, Table, Text, Unicode,
)
from sqlalchemy.orm import Mapped, mapped_column

from itops.core.database import UTCDateTime, utcnow
from itops.extensions import db
from itops.monitoring.choices import Health


class Check(db.Model):
    """One thing polled on one asset: a kind, its parameters, how often and how long to wait."""
    __tablename__ = "monitor_checks"
    __table_args__ = (Index("ix_monitor_checks_due", "enabled", "next_due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    interval_seconds: Mapped[int] = mapped_column(Integer, default=60)
    timeout_seconds: Mapped[float] = mapped_column(Float, default=5.0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    next_due_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status: Mapped[str | None] = mapped_column(String(16))
    last_latency_ms: Mapped[float | None] = mapped_column(Float)
    last_values: Mapped[dict | None] = mapped_column(JSON)
    last_details: Mapped[dict | None] = mapped_column(JSON)
    last_output: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AssetHealth(db.Model):
    """An asset's current health with the streaks that damp it, its parent, and its open incident."""
    __tablename__ = "asset_health"
    # The dashboard's order: worst state first, latest change first within it.
    __table_args__ = (Index("ix_asset_health_board", "state_rank", "changed_at", "asset_id"),)

    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default=Health.UNKNOWN.value)
    state_rank: Mapped[int] = mapped_column(SmallInteger, default=Health.UNKNOWN.rank)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failures: Mapped[int] = mapped_column(Integer, default=0)     # consecutive failed polls
    successes: Mapped[int] = mapped_column(Integer, default=0)    # consecutive good polls
    # Recent state changes (ISO times), newest last: how flapping is detected.
    recent_changes: Mapped[list] = mapped_column(JSON, default=list)
    flapping: Mapped[bool] = mapped_column(Boolean, default=False)
    parent_asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id", ondelete="SET NULL"), index=True)
    # The last incident ticket: open while the outage lasts, reopened if it falls over again soon after.
    incident_ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    incident_open: Mapped[bool] = mapped_column(Boolean, default=False)
    incident_resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    incidents_opened: Mapped[int] = mapped_column(Integer, default=0)   # numbers each outage's dedup key

    @property
    def health(self) -> Health:
        return Health(self.state)

    def set_state(self, state: Health) -> None:
        self.state, self.state_rank = state.value, state.rank


class Sample(db.Model):
    """One poll's result. Narrow on purpose (epoch seconds, a status code, latency, optional values):
    there are many; a chart reads one check's samples over a time range through the (check, at) index."""
    __tablename__ = "monitor_samples"
    __table_args__ = (Index("ix_monitor_samples_check_at", "check_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    check_id: Mapped[int] = mapped_column(ForeignKey("monitor_checks.id", ondelete="CASCADE"))
    at: Mapped[int] = mapped_column(Integer)                 # Unix seconds, UTC
    status: Mapped[int] = mapped_column(SmallInteger)        # choices.SAMPLE_STATUS
    latency_ms: Mapped[float | None] = mapped_column(Float)
    values: Mapped[dict | None] = mapped_column(JSON)


class SampleHour(db.Model):
    """Samples older than the raw retention, rolled up per check and hour, kept for a year. Sums and
    counts rather than averages, so that rolling up the same hour in two runs merges exactly."""
    __tablename__ = "monitor_sample_hours"

    check_id: Mapped[int] = mapped_column(ForeignKey("monitor_checks.id", ondelete="CASCADE"), primary_key=True)
    hour: Mapped[int] = mapped_column(Integer, primary_key=True)   # Unix seconds at the start of the hour
    count: Mapped[int] = mapped_column(Integer)
    up_count: Mapped[int] = mapped_column(Integer)
    latency_n: Mapped[int] = mapped_column(Integer)
    latency_sum: Mapped[float] = mapped_column(Float)
    latency_min: Mapped[float | None] = mapped_column(Float)
    latency_max: Mapped[float | None] = mapped_column(Float)
    values: Mapped[dict | None] = mapped_column(JSON)   # {name: [min, max, sum, n]}

    @property
    def latency_avg(self) -> float | None:
        return self.latency_sum / self.latency_n if self.latency_n else None


class MaintenanceWindow(db.Model):
    """A time when an asset's state changes and alerts are suppressed: one-off (starts/ends) or weekly
    (weekday 0=Monday, start minute of the day in UTC, duration in minutes)."""
    __tablename__ = "maintenance_windows"

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    weekday: Mapped[int | None] = mapped_column(SmallInteger)
    start_minute: Mapped[int | None] = mapped_column(SmallInteger)
    duration_minutes: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ConfigBackup(db.Model):
    """A network device's running configuration, stored when it differs from the last one (normalised,
    with secrets removed, so a diff between versions shows real changes only)."""
    __tablename__ = "config_backups"
    __table_args__ = (Index("ix_config_backups_asset_taken", "asset_id", "taken_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sha256: Mapped[str] = mapped_column(String(64))
    command: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)


class PollCycle(db.Model):
    """One run of the due checks, with its progress for the poll-cycle view."""
    __tablename__ = "poll_cycles"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    executor: Mapped[str] = mapped_column(String(16), default="threads")


class ProbeOutcome(db.Model):
    """A probe's result written by a Celery worker, read back by the scheduler's poll cycle (then deleted)."""
    __tablename__ = "probe_outcomes"
    __table_args__ = (Index("ix_probe_outcomes_cycle", "cycle_id", "check_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("poll_cycles.id", ondelete="CASCADE"))
    check_id: Mapped[int] = mapped_column(ForeignKey("monitor_checks.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    latency_ms: Mapped[float | None] = mapped_column(Float)
    values: Mapped[dict | None] = mapped_column(JSON)
    details: Mapped[dict | None] = mapped_column(JSON)
    output: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(String(500))
    executed_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SchedulerLease(db.Model):
    """Who runs the scheduler: one row per lease name; the holder renews it, a standby takes it once expired."""
    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# APScheduler's persistent job store keeps its jobs here. The layout is APScheduler's own (its
# SQLAlchemyJobStore only creates the table when missing); declaring it here lets the migration create
# it and the migration test check it like every other table. APScheduler alone reads and writes it.
SCHEDULER_JOBS_TABLE = "scheduler_jobs"
scheduler_jobs = Table(
    SCHEDULER_JOBS_TABLE, db.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)

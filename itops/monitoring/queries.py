"""What the dashboard reads: devices by health (worst first), counts per state, the poll cycles,
and chart series (raw samples for short ranges, hourly roll-ups beyond the raw retention)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select

from itops.core.database import utcnow
from itops.core.errors import ValidationFailed
from itops.core.pagination import Page, keyset_page
from itops.extensions import db
from itops.monitoring.choices import Health
from itops.monitoring.models import AssetHealth, Check, PollCycle, Sample, SampleHour

PERIODS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
RAW_PERIODS = ("1h", "24h")   # beyond a day a chart reads the hourly roll-ups (and the last hours' raw samples)


@dataclass(frozen=True)
class BoardFilters:
    state: str | None = None

    def validated(self) -> BoardFilters:
        if self.state is not None and self.state not in {h.value for h in Health}:
            raise ValidationFailed("Unknown state.", errors={"state": [", ".join(Health)]})
        return self


def board_page(filters: BoardFilters, *, cursor: str | None = None, limit: int = 50) -> Page:
    """Monitored devices, worst state first, most recent change first within a state."""
    filters = filters.validated()
    query = select(AssetHealth)
    if filters.state:
        query = query.where(AssetHealth.state == filters.state)
    sort = [(AssetHealth.state_rank, False), (AssetHealth.changed_at, True), (AssetHealth.asset_id, False)]
    return keyset_page(query, sort, cursor=cursor, limit=limit)


def state_counts() -> dict[str, int]:
    counts = dict(db.session.execute(select(AssetHealth.state, func.count()).group_by(AssetHealth.state)).all())
    return {health.value: counts.get(health.value, 0) for health in Health}


def checks_of(asset_id: int) -> list[Check]:
    return list(db.session.scalars(select(Check).where(Check.asset_id == asset_id).order_by(Check.id)))


def recent_cycles(limit: int = 20) -> list[PollCycle]:
    return list(db.session.scalars(select(PollCycle).order_by(PollCycle.id.desc()).limit(limit)))


def series(check_id: int, period: str, *, now: datetime | None = None) -> dict:
    """Points for a chart: {"points": [[unix_seconds, latency_ms, status_or_up_share], ...], "resolution"}.

    Raw samples for up to a day; hourly roll-ups (avg latency, share of good polls) for 7 and 30 days."""
    if period not in PERIODS:
        raise ValidationFailed("Unknown period.", errors={"period": list(PERIODS)})
    now = now or utcnow()
    since = int((now - PERIODS[period]).timestamp())
    if period in RAW_PERIODS:
        rows = db.session.execute(select(Sample.at, Sample.latency_ms, Sample.status).where(
            Sample.check_id == check_id, Sample.at >= since).order_by(Sample.at)).all()
        return {"resolution": "raw", "points": [[at, latency, 1.0 if status == 0 else 0.0]
                                                for at, latency, status in rows]}
    hours = db.session.execute(select(SampleHour.hour, SampleHour.latency_sum, SampleHour.latency_n,
                                      SampleHour.up_count, SampleHour.count)
                               .where(SampleHour.check_id == check_id, SampleHour.hour >= since)
                               .order_by(SampleHour.hour)).all()
    points = [[hour, total / n if n else None, up / count if count else None] for hour, total, n, up, count in hours]
    # Samples newer than the last roll-up are still raw: summarise them per hour the same way.
    rolled_until = hours[-1][0] + 3600 if hours else since
    raw = db.session.execute(select(
        (Sample.at - Sample.at % 3600).label("hour"), func.avg(Sample.latency_ms), func.count(),
        func.sum(case((Sample.status == 0, 1), else_=0)))
        .where(Sample.check_id == check_id, Sample.at >= rolled_until)
        .group_by("hour").order_by("hour")).all()
    points += [[hour, latency, (up or 0) / count if count else None] for hour, latency, count, up in raw]
    return {"resolution": "hourly", "points": points}

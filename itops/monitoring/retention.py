"""History retention: raw samples older than ITOPS_MONITOR_RAW_DAYS are rolled up per check and hour
(count, good polls, latency min/avg/max, each value's min/avg/max) and deleted; roll-ups older than
ITOPS_MONITOR_HOURLY_DAYS are deleted. Idempotent: an hour already rolled up is merged, never doubled."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select

from itops.core.database import utcnow
from itops.extensions import db
from itops.monitoring.models import Sample, SampleHour

BATCH_HOURS = 24 * 7   # one run rolls up at most a week of hours, so a long backlog is worked off in steps


def _merge(row: SampleHour | None, samples: list[Sample], check_id: int, hour: int) -> SampleHour:
    row = row or SampleHour(check_id=check_id, hour=hour, count=0, up_count=0, latency_n=0, latency_sum=0.0)
    latencies = [s.latency_ms for s in samples if s.latency_ms is not None]
    row.count += len(samples)
    row.up_count += sum(1 for s in samples if s.status == 0)
    if latencies:
        row.latency_n += len(latencies)
        row.latency_sum += sum(latencies)
        row.latency_min = min(latencies + ([row.latency_min] if row.latency_min is not None else []))
        row.latency_max = max(latencies + ([row.latency_max] if row.latency_max is not None else []))
    values = dict(row.values or {})
    for sample in samples:
        for name, number in (sample.values or {}).items():
            if isinstance(number, (int, float)) and not isinstance(number, bool):
                low, high, total, n = values.get(name, (number, number, 0.0, 0))
                values[name] = [min(low, number), max(high, number), total + number, n + 1]
    row.values = values or None
    return row


def apply_retention(now: datetime | None = None) -> dict:
    now = now or utcnow()
    raw_cutoff = int((now - timedelta(days=current_app.config["ITOPS_MONITOR_RAW_DAYS"])).timestamp())
    raw_cutoff -= raw_cutoff % 3600   # whole hours only
    hourly_cutoff = int((now - timedelta(days=current_app.config["ITOPS_MONITOR_HOURLY_DAYS"])).timestamp())
    oldest = db.session.scalar(select(Sample.at).where(Sample.at < raw_cutoff).order_by(Sample.at).limit(1))
    rolled = 0
    if oldest is not None:
        until = min(raw_cutoff, oldest - oldest % 3600 + BATCH_HOURS * 3600)
        groups: dict[tuple[int, int], list[Sample]] = {}
        for sample in db.session.scalars(select(Sample).where(Sample.at < until)):
            groups.setdefault((sample.check_id, sample.at - sample.at % 3600), []).append(sample)
        for (check_id, hour), samples in groups.items():
            db.session.add(_merge(db.session.get(SampleHour, (check_id, hour)), samples, check_id, hour))
            rolled += len(samples)
        db.session.flush()
        db.session.execute(delete(Sample).where(Sample.at < until))
    dropped = db.session.execute(delete(SampleHour).where(SampleHour.hour < hourly_cutoff)).rowcount
    return {"rolled_up": rolled, "hourly_dropped": dropped}

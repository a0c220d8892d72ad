"""History: raw samples roll up to hourly min/avg/max after the raw retention, exactly once; old
roll-ups expire; chart series read raw samples for short ranges and roll-ups for long ones."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select

from itops.core.database import utcnow
from itops.core.errors import ValidationFailed
from itops.extensions import db
from itops.monitoring import queries, retention, services
from itops.monitoring.models import Sample, SampleHour


@pytest.fixture
def check(make_asset, make_user):
    asset = make_asset("server", name="db-1")
    made = services.add_check(asset.id, "tcp", params={"port": 5432, "host": "127.0.0.1"}, by=make_user("admin"))
    db.session.commit()
    return made


def _samples(check, now, *, days: int, every_minutes: int = 10):
    """Samples over the last `days`: latency 10 ms, every fifth poll down without latency; a load value."""
    rows, start = [], int((now - timedelta(days=days)).timestamp())
    for index, at in enumerate(range(start, int(now.timestamp()), every_minutes * 60)):
        down = index % 5 == 4
        rows.append({"check_id": check.id, "at": at, "status": 2 if down else 0,
                     "latency_ms": None if down else 10.0 + index % 3, "values": {"load1": float(index % 4)}})
    db.session.execute(insert(Sample), rows)
    db.session.commit()
    return rows


def test_old_samples_are_rolled_up_per_hour_and_deleted_once(app, check):
    now = utcnow().replace(minute=30, second=0, microsecond=0)
    rows = _samples(check, now, days=10)
    cutoff = int((now - timedelta(days=7)).timestamp())
    cutoff -= cutoff % 3600
    old = [r for r in rows if r["at"] < cutoff]

    while retention.apply_retention(now)["rolled_up"]:
        db.session.commit()
    db.session.commit()

    assert db.session.scalar(select(func.min(Sample.at))) >= cutoff
    hours = list(db.session.scalars(select(SampleHour).order_by(SampleHour.hour)))
    assert sum(h.count for h in hours) == len(old)
    assert sum(h.up_count for h in hours) == sum(1 for r in old if r["status"] == 0)
    first = hours[0]
    in_first = [r for r in old if r["at"] - r["at"] % 3600 == first.hour]
    latencies = [r["latency_ms"] for r in in_first if r["latency_ms"] is not None]
    assert first.latency_min == min(latencies) and first.latency_max == max(latencies)
    assert first.latency_avg == pytest.approx(sum(latencies) / len(latencies))
    low, high, total, n = first.values["load1"]
    loads = [r["values"]["load1"] for r in in_first]
    assert (low, high, n) == (min(loads), max(loads), len(loads)) and total == pytest.approx(sum(loads))

    again = retention.apply_retention(now)   # nothing left to roll up: nothing doubles
    db.session.commit()
    assert again["rolled_up"] == 0
    assert sum(h.count for h in db.session.scalars(select(SampleHour))) == len(old)


def test_roll_ups_older_than_a_year_are_dropped(app, check):
    now = utcnow()
    ancient = int((now - timedelta(days=400)).timestamp())
    db.session.add(SampleHour(check_id=check.id, hour=ancient - ancient % 3600, count=1, up_count=1, latency_n=1,
                              latency_sum=5.0, latency_min=5.0, latency_max=5.0))
    db.session.commit()
    assert retention.apply_retention(now)["hourly_dropped"] == 1


def test_chart_series_raw_for_a_day_hourly_beyond(app, check):
    now = utcnow().replace(minute=30, second=0, microsecond=0)
    _samples(check, now, days=10)
    while retention.apply_retention(now)["rolled_up"]:
        db.session.commit()
    db.session.commit()
    hour = queries.series(check.id, "1h", now=now)
    assert hour["resolution"] == "raw" and len(hour["points"]) == 6
    assert {p[2] for p in hour["points"]} <= {0.0, 1.0}
    month = queries.series(check.id, "30d", now=now)
    assert month["resolution"] == "hourly"
    stamps = [p[0] for p in month["points"]]
    assert stamps == sorted(stamps) and len(stamps) == len(set(stamps))
    assert 10 * 24 - 2 <= len(stamps) <= 10 * 24 + 1      # every hour of the ten days, roll-ups and raw alike
    assert all(0.0 <= p[2] <= 1.0 for p in month["points"])
    with pytest.raises(ValidationFailed):
        queries.series(check.id, "1y")

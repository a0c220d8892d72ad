"""A poll cycle: run the due checks, store their samples, move each asset's health, open or resolve
incidents. The scheduler runs `run_cycle` every few seconds; each check has its own interval.

Probes run outside the database transaction, in a bounded thread pool (or on Celery workers with
ITOPS_EXECUTOR=celery: the same probe functions, results back through the database); everything
they return is written at the end in one transaction, committed by the caller (the task boundary).
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, insert, select

from itops.assets import services as assets_services
from itops.core.database import utcnow
from itops.extensions import db
from itops.monitoring import services
from itops.monitoring.choices import SAMPLE_STATUS, CheckKind, Health
from itops.monitoring.health import OUT, HealthBefore, next_health, poll_outcome
from itops.monitoring.models import AssetHealth, Check, PollCycle, ProbeOutcome, Sample
from itops.monitoring.probes import ProbeResult, ProbeTarget, run_probe

log = logging.getLogger(__name__)

OUTPUT_LIMIT = 20_000


@dataclass(frozen=True)
class ProbeJob:
    check_id: int
    kind: str
    target: ProbeTarget
    params: dict
    timeout: float


def due_checks(now: datetime, limit: int | None = None) -> list[Check]:
    query = (select(Check).where(Check.enabled.is_(True), Check.next_due_at <= now)
             .order_by(Check.next_due_at, Check.id))
    return list(db.session.scalars(query.limit(limit) if limit else query))


def agent_result(asset, params: dict, now: datetime) -> ProbeResult:
    """The inventory agent's heartbeat: its last report is the probe; stale beyond a threshold means down."""
    stale_after = int(params.get("stale_seconds") or current_app.config["ITOPS_MONITOR_AGENT_STALE_SECONDS"])
    if asset.last_seen_at is None:
        return ProbeResult("down", None, {}, {}, None, "the agent has never reported")
    age = (now - asset.last_seen_at).total_seconds()
    if age > stale_after:
        return ProbeResult("down", None, {"report_age_s": age}, {}, None,
                           f"last report {int(age // 60)} min ago (stale after {stale_after // 60} min)")
    return ProbeResult("up", None, {"report_age_s": age}, {"last_user": asset.last_user}, None, None)


def _run_in_threads(jobs: list[ProbeJob], progress) -> dict[int, ProbeResult]:
    results: dict[int, ProbeResult] = {}
    if not jobs:
        return results
    workers = min(len(jobs), current_app.config["ITOPS_POLL_THREADS"])
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe") as pool:
        futures = {pool.submit(run_probe, job.kind, job.target, job.params, job.timeout): job for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            try:
                results[job.check_id] = future.result()
            except Exception as exc:  # a probe must not raise; if one does, it is that check's failure only
                log.exception("probe %s for check %s raised", job.kind, job.check_id)
                results[job.check_id] = ProbeResult("down", None, {}, {}, None, f"probe error: {type(exc).__name__}")
            if progress is not None:
                progress(1)
    return results


def _probe(check: Check, asset, now: datetime) -> ProbeResult | ProbeJob:
    """The agent heartbeat is answered from the asset at once; every other kind becomes a probe job."""
    if check.kind == CheckKind.AGENT:
        return agent_result(asset, check.params or {}, now)
    return ProbeJob(check.id, check.kind, services.probe_target(asset, check.kind, check.params or {}),
                    dict(check.params or {}), check.timeout_seconds)


def probe_and_store(cycle_id: int, check_id: int, *, executed_by: str) -> None:
    """A Celery worker's half of a cycle: probe one check and write the outcome for the scheduler."""
    check = db.session.get(Check, check_id)
    if check is None:
        return  # deleted since it was sent: the scheduler counts it as unanswered
    [asset] = assets_services.get_assets([check.asset_id])
    job = _probe(check, asset, utcnow())
    result = job if isinstance(job, ProbeResult) else run_probe(job.kind, job.target, job.params, job.timeout)
    db.session.add(ProbeOutcome(cycle_id=cycle_id, check_id=check_id, status=result.status,
                                latency_ms=result.latency_ms, values=result.values, details=result.details,
                                output=result.output, error=result.error and result.error[:500],
                                executed_by=executed_by[:200]))


def _run_on_celery(cycle: PollCycle, checks: list[Check], progress) -> dict[int, ProbeResult]:
    """Send every check to the workers, then collect their outcomes from the database until all are in
    or the slowest probe's timeout (plus a margin) has passed; a check nobody answered counts as down."""
    from itops.worker import probe_check

    probe_check.app.conf.broker_url = current_app.config["ITOPS_CELERY_BROKER_URL"]
    db.session.commit()  # the workers must see the cycle they write outcomes for
    slowest = max(check.timeout_seconds for check in checks)
    for check in checks:
        probe_check.apply_async(args=(cycle.id, check.id), queue=current_app.config["ITOPS_CELERY_QUEUE"],
                                expires=slowest + 60)
    deadline = time.monotonic() + slowest + current_app.config["ITOPS_CELERY_WAIT_SECONDS"]
    results: dict[int, ProbeResult] = {}
    while len(results) < len(checks) and time.monotonic() < deadline:
        db.session.rollback()  # a fresh snapshot each round (PostgreSQL and SQLite WAL both need one)
        for outcome in db.session.scalars(select(ProbeOutcome).where(ProbeOutcome.cycle_id == cycle.id,
                                                                    ProbeOutcome.check_id.not_in(results))):
            results[outcome.check_id] = ProbeResult(outcome.status, outcome.latency_ms, outcome.values or {},
                                                    {**(outcome.details or {}), "executed_by": outcome.executed_by},
                                                    outcome.output, outcome.error)
            if progress is not None:
                progress(1)
        if len(results) < len(checks):
            time.sleep(0.2)
    for check in checks:
        results.setdefault(check.id, ProbeResult("down", None, {}, {}, None, "no worker answered in time"))
    db.session.execute(delete(ProbeOutcome).where(ProbeOutcome.cycle_id == cycle.id))
    return results


def run_cycle(*, now: datetime | None = None, limit: int | None = None, progress=None) -> dict:
    """Poll what is due now; returns counts. `progress(n)` is called as probes finish."""
    now = now or utcnow()
    executor = current_app.config["ITOPS_EXECUTOR"]
    checks = due_checks(now, limit)
    cycle = PollCycle(started_at=now, total=len(checks), done=0, failed=0, executor=executor)
    db.session.add(cycle)
    db.session.flush()
    started = time.monotonic()
    if executor == "celery" and checks:
        results = _run_on_celery(cycle, checks, progress)
    else:
        assets = {asset.id: asset for asset in assets_services.get_assets(sorted({c.asset_id for c in checks}))}
        jobs, results = [], {}
        for check in checks:
            probe = _probe(check, assets[check.asset_id], now)
            if isinstance(probe, ProbeResult):
                results[check.id] = probe
            else:
                jobs.append(probe)
        # The probes wait on the network; the session holds no lock meanwhile (only reads so far).
        results.update(_run_in_threads(jobs, progress))
    elapsed = time.monotonic() - started

    _record(checks, results, now)
    changes = _move_health(checks, results, now)
    cycle.done, cycle.failed = len(results), sum(r.status == "down" for r in results.values())
    cycle.finished_at = utcnow()
    return {"checks": len(checks), "down": cycle.failed, "changes": changes, "probe_seconds": round(elapsed, 3)}


def _record(checks: list[Check], results: dict[int, ProbeResult], now: datetime) -> None:
    epoch = int(now.timestamp())
    rows = []
    for check in checks:
        result = results[check.id]
        check.last_run_at, check.last_status = now, result.status
        check.last_latency_ms, check.last_values, check.last_details = result.latency_ms, result.values, result.details
        check.last_output = (result.output or None) and result.output[:OUTPUT_LIMIT]
        check.last_error = (result.error or None) and result.error[:500]
        check.next_due_at = now + timedelta(seconds=check.interval_seconds)
        rows.append({"check_id": check.id, "at": epoch, "status": SAMPLE_STATUS[result.status],
                     "latency_ms": result.latency_ms, "values": result.values or None})
    if rows:
        db.session.execute(insert(Sample), rows)


def _depth(asset_id: int, parents: dict[int, int | None]) -> int:
    depth, cursor, seen = 0, parents.get(asset_id), {asset_id}
    while cursor is not None and cursor not in seen:
        seen.add(cursor)
        depth, cursor = depth + 1, parents.get(cursor)
    return depth


def _move_health(checks: list[Check], results: dict[int, ProbeResult], now: datetime) -> int:
    """Each polled asset's health from this poll, parents before children; incidents follow."""
    by_asset: dict[int, list[ProbeResult]] = {}
    for check in checks:
        by_asset.setdefault(check.asset_id, []).append(results[check.id])
    healths = {h.asset_id: h for h in db.session.scalars(select(AssetHealth).where(
        AssetHealth.asset_id.in_(by_asset)))}
    for asset_id in by_asset.keys() - healths.keys():
        healths[asset_id] = services.health_of(asset_id)
    parent_ids = {h.parent_asset_id for h in healths.values() if h.parent_asset_id}
    parent_states = dict(db.session.execute(select(AssetHealth.asset_id, AssetHealth.state).where(
        AssetHealth.asset_id.in_(parent_ids))).all()) if parent_ids else {}
    parents = {asset_id: h.parent_asset_id for asset_id, h in healths.items()}
    maintenance = services.assets_in_maintenance(set(by_asset), now)
    damping = services.damping()
    changes = 0
    for asset_id in sorted(by_asset, key=lambda a: _depth(a, parents)):
        health = healths[asset_id]
        parent_state = parent_states.get(health.parent_asset_id)
        if health.parent_asset_id in healths:
            parent_state = healths[health.parent_asset_id].state  # polled in this cycle: its new state
        outcome = poll_outcome([r.status for r in by_asset[asset_id]])
        before = HealthBefore(Health(health.state), health.failures, health.successes,
                              tuple(datetime.fromisoformat(t) for t in health.recent_changes or ()),
                              health.incident_open, health.incident_resolved_at)
        after = next_health(before, outcome, now=now, parent_out=parent_state in {h.value for h in OUT},
                            in_maintenance=asset_id in maintenance, damping=damping)
        down_since = health.changed_at
        health.set_state(after.state)
        health.failures, health.successes = after.failures, after.successes
        health.recent_changes = [t.isoformat() for t in after.recent_changes]
        health.flapping, health.polled_at = after.flapping, now
        if after.changed:
            health.changed_at = now
            changes += 1
        reason = "; ".join(f"{r.error}" for r in by_asset[asset_id] if r.error) or "no check answered"
        if after.open_incident:
            services.open_incident(health, reason, now)
        elif after.reopen_incident:
            services.reopen_incident(health, reason, now)
        elif after.resolve_incident:
            services.resolve_incident(health, now, down_since)
    return changes

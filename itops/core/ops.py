"""Operations endpoints: /healthz for load balancers, /metrics for Prometheus."""
from __future__ import annotations

import hmac
import os
import time

from flask import Blueprint, Response, current_app, g, jsonify, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from itops.core.errors import error_response
from itops.core.policy import public
from itops.extensions import db

bp = Blueprint("ops", __name__)


class Metrics:
    """Per-app metric objects (a registry per app keeps test apps from colliding)."""

    def __init__(self, multiprocess_dir: str | None):
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("itops_http_requests_total", "HTTP requests by endpoint and status",
                                ["method", "endpoint", "status"], registry=self.registry)
        self.latency = Histogram("itops_http_request_duration_seconds", "HTTP request latency by endpoint",
                                 ["method", "endpoint"], registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

    def exposition(self) -> bytes:
        if self.multiprocess_dir:
            # Several gunicorn workers: each writes its own files, the scrape sums them.
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
            return generate_latest(registry)
        return generate_latest(self.registry)


def install_metrics(app) -> None:
    multiprocess_dir = app.config.get("ITOPS_METRICS_DIR")
    if multiprocess_dir and os.environ.get("PROMETHEUS_MULTIPROC_DIR") != multiprocess_dir:
        raise RuntimeError("ITOPS_METRICS_DIR needs PROMETHEUS_MULTIPROC_DIR set to the same folder "
                           "before the process starts")
    metrics = Metrics(multiprocess_dir)
    app.extensions["itops_metrics"] = metrics

    @app.before_request
    def _start_timer():
        g.request_started = time.perf_counter()

    @app.after_request
    def _observe(response):
        started = g.pop("request_started", None)
        if started is not None:
            # The endpoint name, not the path: /assets/17 and /assets/18 are one series.
            endpoint = request.endpoint or "unmatched"
            metrics.requests.labels(request.method, endpoint, str(response.status_code)).inc()
            metrics.latency.labels(request.method, endpoint).observe(time.perf_counter() - started)
        return response


@bp.get("/healthz")
@public
def healthz():
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to reach the database means unhealthy
        current_app.logger.warning("health check: database unreachable: %s", type(exc).__name__)
        return jsonify(status="unavailable", database="unreachable"), 503
    return jsonify(status="ok", database="ok")


@bp.get("/metrics")
@public
def metrics():
    expected = current_app.config.get("ITOPS_METRICS_TOKEN")
    if expected:
        supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(supplied.encode(), expected.encode()):
            return error_response(401, "Send the metrics token as 'Authorization: Bearer <token>'.")
    return Response(current_app.extensions["itops_metrics"].exposition(), mimetype=CONTENT_TYPE_LATEST)

"""Per-request cost of the foundation: sign-in, session and token authentication, the policy guard.

Runs in-process against a throwaway SQLite instance and prints figures; it asserts nothing.
usage: .venv/bin/python bench/auth_overhead.py [--requests N]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def timed(call, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def report(label: str, samples: list[float]) -> None:
    samples = sorted(samples)
    p95 = samples[int(len(samples) * 0.95) - 1]
    print(f"{label:44} median {statistics.median(samples):7.2f} ms   p95 {p95:7.2f} ms   n={len(samples)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as instance:
        os.environ["ITOPS_INSTANCE_DIR"] = instance
        import flask_migrate

        from itops import create_app
        from itops.core.auth import services
        from itops.extensions import db

        from itops.core.migrations import init_migrations

        app = create_app()
        init_migrations(app)
        with app.app_context():
            flask_migrate.upgrade()
            user = services.create_local_user("bench", "a long bench password", role="it_staff")
            secret = services.issue_token(user, "bench").secret
            db.session.commit()

        client = app.test_client()
        login_page = client.get("/login").get_data(as_text=True)
        csrf = login_page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
        form = {"username": "bench", "password": "a long bench password", "csrf_token": csrf}
        report("sign-in (scrypt verify + audit + commit)",
               timed(lambda: (client.post("/login", data=form), client.post("/logout", data={"csrf_token": csrf})),
                     max(10, args.requests // 25)))
        client.post("/login", data=form)
        report("GET /api/v1/me with a session cookie", timed(lambda: client.get("/api/v1/me"), args.requests))
        token_client = app.test_client()
        headers = {"Authorization": f"Bearer {secret}"}
        report("GET /api/v1/me with a bearer token",
               timed(lambda: token_client.get("/api/v1/me", headers=headers), args.requests))
        report("GET /healthz (no auth)", timed(lambda: token_client.get("/healthz"), args.requests))
        report("GET / (HTML page, session)", timed(lambda: client.get("/"), args.requests))


if __name__ == "__main__":
    main()

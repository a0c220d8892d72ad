"""Latency of the asset pages and API under concurrent use, against an instance seeded by assets_seed.py.

Starts gunicorn (2 sync workers, as the README serves the app) on a free loopback port, signs in as
the seed's IT staff user through /login (one session per load thread), warms up, then fires REQUESTS
requests per scenario from CONCURRENCY threads (keep-alive, own cookies) and prints p50/p95/p99/max in ms
and requests/s, each line against the target p95 < 50 ms. Exit status 0 even when a line misses the
target (this is a report); 1 when the server fails or answers anything but 200.

usage: .venv/bin/python bench/assets_bench.py [--instance var/bench-assets] [--requests 400] [--concurrency 8]
"""
from __future__ import annotations

import argparse
import random
import sys
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from _common import (
    GUNICORN_LOG, TABLE_HEADER, BenchError, Http, Server, add_page_bench_arguments, excerpt, instance_env, machine_load,
    read_credentials, run_against, run_load, sign_in, show_problem, sigterm_as_interrupt, sqlalchemy_url, table_line,
)

P95_TARGET_MS = 50


@dataclass
class Scenario:
    label: str
    paths: list[str]          # one is picked at random per request
    api: bool = False         # bearer token instead of the signed-in session
    optional: bool = False    # a 404 on the first request means "not built yet": skipped, not failed


def sample_data(instance: Path, database_url: str | None, rng: random.Random) -> dict:
    """Ids, serial fragments and holders' usernames that exist in the seeded database."""
    from sqlalchemy import create_engine, text

    url = sqlalchemy_url(database_url) if database_url else f"sqlite:///{instance / 'itops.db'}"
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            low, high, count = connection.execute(text("SELECT min(id), max(id), count(*) FROM assets")).one()
            serials = connection.execute(text(
                "SELECT serial FROM assets WHERE serial IS NOT NULL ORDER BY random() LIMIT 300")).scalars().all()
            holders = connection.execute(text(
                "SELECT DISTINCT u.username FROM assets a JOIN users u ON u.id = a.holder_id")).scalars().all()
    finally:
        engine.dispose()
    if not count:
        raise BenchError("the instance has no assets: run bench/assets_seed.py first")
    fragments = []
    for serial in serials:
        length = min(6, len(serial))
        start = rng.randint(0, len(serial) - length)
        fragments.append(serial[start:start + length].lower())
    return {"ids": (low, high), "count": count, "fragments": fragments,
            "holders": rng.sample(holders, min(300, len(holders)))}


def scenarios(data: dict, rng: random.Random) -> list[Scenario]:
    quote = urllib.parse.quote
    low, high = data["ids"]
    return [
        Scenario("list /assets/", ["/assets/"]),
        Scenario("filtered /assets/?kind=laptop&status=deployed", ["/assets/?kind=laptop&status=deployed"]),
        Scenario("search /assets/?q=<serial fragment>", [f"/assets/?q={quote(f)}" for f in data["fragments"]]),
        Scenario("search /assets/?q=<holder username>", [f"/assets/?q={quote(u)}" for u in data["holders"]]),
        Scenario("asset page /assets/<random id>", [f"/assets/{rng.randint(low, high)}" for _ in range(2000)]),
        Scenario("API /api/v1/assets?limit=50 (token)", ["/api/v1/assets?limit=50"], api=True, optional=True),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_page_bench_arguments(parser, instance_name="bench-assets")
    args = parser.parse_args()
    sigterm_as_interrupt()
    instance = args.instance.resolve()
    rng = random.Random(args.seed)
    try:
        credentials = read_credentials(instance)
        database_url = args.database_url or credentials.get("database_url")
        data = sample_data(instance, database_url, rng)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    server = Server(instance_env(instance, database_url), instance / GUNICORN_LOG,
                    workers=args.workers, threads=args.threads)
    def measure() -> bool:
        failed = False
        server.start()
        print(f"{data['count']} assets in {instance} ({database_url or 'SQLite'}); {server.description}")
        print(f"{args.requests} requests per scenario, {args.concurrency} client threads, "
              f"{args.warmup} warm-up requests each; machine: {machine_load()}")
        clients: dict[tuple[bool, int], Http] = {}

        def client_for(api: bool, number: int) -> Http:
            key = (api, number)
            if key not in clients:
                if api:
                    clients[key] = Http(server.port, headers={"Authorization": f"Bearer {credentials['api_token']}",
                                                              "Accept": "application/json"})
                else:
                    clients[key] = Http(server.port)
                    sign_in(clients[key], credentials["username"], credentials["password"])
            return clients[key]

        print()
        print(TABLE_HEADER)
        for scenario in scenarios(data, rng):
            probe = client_for(scenario.api, 0).get(scenario.paths[0])
            if probe.status != 200:
                if probe.status == 404 and scenario.optional:
                    print(f"{scenario.label:46} SKIP: {scenario.paths[0]} answers 404 (not built yet?)")
                    continue
                failed = True
                print(f"{scenario.label:46} FAIL: {scenario.paths[0]} answered {probe.status}: {excerpt(probe.body)}")
                time.sleep(0.2)  # let gunicorn flush the traceback to its log
                for problem in server.log_problems()[-1:]:
                    print(show_problem(problem))
                continue

            def task(client: Http, _sequence: int, paths=scenario.paths) -> int:
                return client.get(rng.choice(paths)).status

            def setup(number: int, api=scenario.api) -> Http:
                return client_for(api, number)

            run_load(task, concurrency=args.concurrency, setup=setup, requests=args.warmup)
            cpu_before, server_before = time.process_time(), server.cpu_seconds()
            result = run_load(task, concurrency=args.concurrency, setup=setup, requests=args.requests)
            server_after = server.cpu_seconds()
            client_cpu = (time.process_time() - cpu_before) / result.wall_s * 100 if result.wall_s else 0
            line, _met = table_line(scenario.label, result, p95_target_ms=P95_TARGET_MS)
            server_ms = ((server_after - server_before) / result.count * 1000
                         if server_before is not None and server_after is not None and result.count else float("nan"))
            print(f"{line}  (gunicorn CPU {server_ms:.1f} ms/req, client CPU {client_cpu:.0f}%, "
                  f"{len(probe.body) // 1024} KiB)")
            if result.problems():
                failed = True
                for example in result.examples[:2]:
                    print(f"    {example}")
            server.check_alive()
        return failed

    return run_against(server, measure)


if __name__ == "__main__":
    sys.exit(main())

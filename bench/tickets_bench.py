"""Latency of the helpdesk pages and ticket creation under concurrent use, against an instance seeded by
tickets_seed.py.

Starts gunicorn (2 sync workers, preloaded: see _common.Server) on a free loopback port, signs in as the
seed's IT staff user through /login (one session per load thread), warms up, then fires REQUESTS requests
per scenario from CONCURRENCY threads (keep-alive, own cookies): the open queue, a filtered queue, search for
a common and for a rare word, a ticket page, and ticket creation through the API with the employee's token.
Prints p50/p95/p99/max in ms and requests/s against the targets (p95 < 50 ms; creation > 300/s), then the
resident memory of the gunicorn workers (target: < 120 MB together). Exit status 0 even when a line misses
its target (this is a report) or a page is missing (404: SKIP); 1 when a scenario fails (any other
unexpected answer).

usage: .venv/bin/python bench/tickets_bench.py [--instance var/bench-tickets] [--requests 400] [--concurrency 8]
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
    GUNICORN_LOG, TABLE_HEADER, BenchError, Http, Server, add_page_bench_arguments, excerpt, human_bytes, instance_env,
    machine_busy_seconds, machine_load, process_rss, read_credentials, run_against, run_load, sign_in, show_problem, sigterm_as_interrupt,
    sqlalchemy_url, table_line,
)

P95_TARGET_MS = 50
CREATE_TARGET_PER_S = 300
RSS_TARGET = 120 * 1024 * 1024

CREATE_WORDS = ("laptop", "printer", "vpn", "outlook", "password", "monitor", "docking", "station", "slow", "error",
                "after", "update", "cannot", "connect", "teams", "meeting", "headset", "battery", "screen", "wifi",
                "please", "help", "since", "this", "morning", "again", "broken", "keyboard", "mouse", "access")


@dataclass
class Scenario:
    label: str
    paths: list[str]          # one is picked at random per request
    method: str = "GET"
    expected: tuple[int, ...] = (200,)
    employee_api: bool = False   # the employee's bearer token instead of the staff's signed-in session


def sample_data(instance: Path, database_url: str | None) -> dict:
    """Id range, categories and counts from the seeded database."""
    from sqlalchemy import create_engine, text

    url = sqlalchemy_url(database_url) if database_url else f"sqlite:///{instance / 'itops.db'}"
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            low, high, count = connection.execute(text("SELECT min(id), max(id), count(*) FROM tickets")).one()
            open_count = connection.execute(text("SELECT count(*) FROM tickets WHERE is_open")).scalar()
            categories = connection.execute(text(
                "SELECT id, name FROM ticket_categories WHERE active ORDER BY id")).all()
    finally:
        engine.dispose()
    if not count:
        raise BenchError("the instance has no tickets: run bench/tickets_seed.py first")
    return {"ids": (low, high), "count": count, "open": open_count, "categories": categories}


def scenarios(data: dict, credentials: dict, rng: random.Random) -> list[Scenario]:
    quote = urllib.parse.quote
    low, high = data["ids"]
    filtered = [f"/tickets/?queue=open&priority=high&category_id={cid}" for cid, _ in data["categories"]]
    common, rare = credentials.get("common_word", "outlook"), credentials.get("rare_word", "kerberos")
    return [
        Scenario("queue /tickets/?queue=open", ["/tickets/?queue=open"]),
        Scenario("filtered ?queue=open&priority=high&category_id=", filtered),
        Scenario(f"search common ?queue=all&q={common}", [f"/tickets/?queue=all&q={quote(common)}"]),
        Scenario(f"search rare ?queue=all&q={rare}", [f"/tickets/?queue=all&q={quote(rare)}"]),
        Scenario("ticket page /tickets/<random id>", [f"/tickets/{rng.randint(low, high)}" for _ in range(3000)]),
        Scenario("create POST /api/v1/tickets (employee token)", ["/api/v1/tickets"], method="POST",
                 expected=(201,), employee_api=True),
    ]


def new_ticket(rng: random.Random, categories: list) -> dict:
    words = [rng.choice(CREATE_WORDS) for _ in range(rng.randint(4, 9))]
    body = " ".join(rng.choice(CREATE_WORDS) for _ in range(rng.randint(20, 80)))
    return {"title": " ".join(words).capitalize(), "body": body.capitalize() + ".",
            "category_id": rng.choice(categories)[0] if categories else None,
            "impact": rng.choice(("high", "medium", "low", "low")), "urgency": rng.choice(("high", "medium", "low"))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_page_bench_arguments(parser, instance_name="bench-tickets")
    parser.add_argument("--max-seconds", type=float, default=60,
                        help="fewer requests (at least 5 per client thread) for a scenario that would take longer")
    parser.add_argument("--only", help="run only the scenarios whose label contains this text")
    args = parser.parse_args()
    sigterm_as_interrupt()
    instance = args.instance.resolve()
    rng = random.Random(args.seed)
    try:
        credentials = read_credentials(instance)
        if "employee_api_token" not in credentials:
            raise BenchError(f"{instance / 'bench.json'} was not written by tickets_seed.py")
        database_url = args.database_url or credentials.get("database_url")
        data = sample_data(instance, database_url)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    server = Server(instance_env(instance, database_url), instance / GUNICORN_LOG,
                    workers=args.workers, threads=args.threads)

    def measure() -> bool:
        failed = False
        server.start()
        print(f"{data['count']:,} tickets ({data['open']:,} open) in {instance} ({database_url or 'SQLite'}); "
              f"{server.description}")
        print(f"{args.requests} requests per scenario, {args.concurrency} client threads, "
              f"{args.warmup} warm-up requests each; machine: {machine_load()}")
        clients: dict[tuple[bool, int], Http] = {}

        def client_for(employee_api: bool, number: int) -> Http:
            key = (employee_api, number)
            if key not in clients:
                if employee_api:
                    clients[key] = Http(server.port, headers={
                        "Authorization": f"Bearer {credentials['employee_api_token']}", "Accept": "application/json"})
                else:
                    clients[key] = Http(server.port)
                    sign_in(clients[key], credentials["username"], credentials["password"])
            return clients[key]

        def request(client: Http, scenario: Scenario, path: str):
            if scenario.method == "POST":
                return client.post_json(path, new_ticket(rng, data["categories"]))
            return client.get(path)

        print()
        print(TABLE_HEADER)
        for scenario in scenarios(data, credentials, rng):
            if args.only and args.only not in scenario.label:
                continue
            probe = request(client_for(scenario.employee_api, 0), scenario, scenario.paths[0])
            if probe.status not in scenario.expected:
                time.sleep(0.3)  # let gunicorn flush the traceback to its log
                verdict = "SKIP" if probe.status == 404 else "FAIL"   # 404: not built (yet); not a failure
                failed = failed or verdict == "FAIL"
                print(f"{scenario.label:46} {verdict}: {scenario.method} {scenario.paths[0]} answered {probe.status}: "
                      f"{excerpt(probe.body)}")
                for problem in server.log_problems()[-1:]:
                    print(show_problem(problem))
                continue

            def task(client: Http, _sequence: int, scenario=scenario) -> int:
                return request(client, scenario, rng.choice(scenario.paths)).status

            def setup(number: int, employee_api=scenario.employee_api) -> Http:
                return client_for(employee_api, number)

            warmup = run_load(task, concurrency=args.concurrency, setup=setup, requests=args.warmup)
            requests = args.requests
            if warmup.rate and args.requests / warmup.rate > args.max_seconds:  # a slow page: keep the run bounded
                requests = max(5 * args.concurrency, int(warmup.rate * args.max_seconds))
            cpu_before, server_before, busy_before = time.process_time(), server.cpu_seconds(), machine_busy_seconds()
            result = run_load(task, concurrency=args.concurrency, setup=setup, requests=requests)
            server_after, busy_after = server.cpu_seconds(), machine_busy_seconds()
            client_s = time.process_time() - cpu_before
            client_cpu = client_s / result.wall_s * 100 if result.wall_s else 0
            others = float("nan")
            if None not in (server_before, server_after, busy_before, busy_after) and result.wall_s:
                others = max(0.0, (busy_after - busy_before) - (server_after - server_before) - client_s) / result.wall_s
            if scenario.method == "POST":
                line, _met = table_line(scenario.label, result, expected=scenario.expected)
                met = result.rate > CREATE_TARGET_PER_S
                line += f"{CREATE_TARGET_PER_S}/s < {result.rate:.0f}/s {'PASS' if met else 'MISS'}"
            else:
                line, _met = table_line(scenario.label, result, p95_target_ms=P95_TARGET_MS,
                                        expected=scenario.expected)
            server_ms = ((server_after - server_before) / result.count * 1000
                         if server_before is not None and server_after is not None and result.count else float("nan"))
            print(f"{line}  (gunicorn CPU {server_ms:.1f} ms/req, client CPU {client_cpu:.0f}%, rest of the machine "
                  f"{100 * others:.0f}% of a core, {len(probe.body) // 1024} KiB)")
            if result.problems(scenario.expected):
                failed = True
                for example in result.examples[:2]:
                    print(f"    {example}")
                for problem in server.log_problems()[-1:]:
                    print(show_problem(problem))
            server.check_alive()

        rss, pss = server.workers_rss(), server.workers_pss()
        total = sum(rss.values())
        print(f"\nworkers' resident memory (VmRSS) after the run: {human_bytes(total)} in all "
              f"({', '.join(human_bytes(v) for v in rss.values())}; {len(rss)} workers) - target < "
              f"{human_bytes(RSS_TARGET)}: {'PASS' if total < RSS_TARGET else 'MISS'}")
        if pss:
            print(f"  (proportional set size, shared pages counted once: {human_bytes(sum(pss.values()))} in all; "
                  f"the master: {human_bytes(process_rss(server.process.pid) or 0)} RSS)")
        return failed

    return run_against(server, measure)


if __name__ == "__main__":
    sys.exit(main())

"""The memory floor of the mandated stack: gunicorn workers serving a minimal Flask + Flask-SQLAlchemy app.

The helpdesk bench's target is the workers' summed RSS under 120 MB. RSS counts every shared page in every
worker, so this prints what two workers of an app with nothing of itops in it take after REQUESTS requests:
one route that runs `SELECT 1` on a SQLite file through Flask-SQLAlchemy, served exactly as tickets_bench.py
serves itops (same gunicorn, `--preload`, same worker count). What itops adds is the difference.

    .venv/bin/python bench/worker_memory_floor.py          # --workers 2 --threads 1 --requests 200
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from _common import Http, Server, add_gunicorn_arguments, human_bytes, process_rss, sigterm_as_interrupt

MINIMAL_APP = '''
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import text

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + __file__.rpartition("/")[0] + "/floor.db"
db = SQLAlchemy(app)


@app.get("/healthz")
def healthz():
    return {"ok": db.session.execute(text("SELECT 1")).scalar() == 1}
'''


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_gunicorn_arguments(parser)
    parser.add_argument("--requests", type=int, default=200, help="requests before memory is read (default 200)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="itops-floor-") as folder:
        Path(folder, "minimal_app.py").write_text(MINIMAL_APP)
        env = dict(os.environ, PYTHONPATH=folder)
        with Server(env, Path(folder, "gunicorn.log"), workers=args.workers, threads=args.threads,
                    app="minimal_app:app", cwd=Path(folder)) as server:
            client = Http(server.port)
            for _ in range(args.requests):
                if client.get("/healthz").status != 200:
                    print("the minimal app did not answer 200", file=sys.stderr)
                    return 1
            client.close()
            rss, pss = server.workers_rss(), server.workers_pss()
            print(f"minimal Flask + Flask-SQLAlchemy app, {server.description}, after {args.requests} requests:")
            print(f"  workers' RSS: {human_bytes(sum(rss.values()))} in all "
                  f"({', '.join(human_bytes(v) for v in rss.values())})")
            print(f"  workers' PSS (shared pages counted once): {human_bytes(sum(pss.values()))}; "
                  f"the master: {human_bytes(process_rss(server.process.pid) or 0)} RSS")
    return 0


if __name__ == "__main__":
    sigterm_as_interrupt()
    sys.exit(main())

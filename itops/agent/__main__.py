"""Command line of the inventory agent: enroll, run (a loop, or --once) and collect.

Exit statuses are the ones docs/agent-protocol.md gives: 0 done, 2 usage or local configuration,
3 token refused, 4 server or network failure, 5 report refused.
"""
from __future__ import annotations

import argparse
import json
import os
import logging
import random
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from itops.agent import client, collect, state

log = logging.getLogger("itops.agent")

EXIT_OK = 0
EXIT_CONFIG = 2
DEFAULT_INTERVAL = 3600
MIN_INTERVAL = 10
# Answer fields the agent keeps in its state file when the server changes them.
REMEMBERED = ("asset_id", "asset_tag", "report_interval_seconds")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="itops-agent: %(levelname)s: %(message)s")
    try:
        return args.handler(args)
    except state.StateError as error:
        log.error("%s", error)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m itops.agent",
                                     description="Report this machine's inventory to the itops server.")
    parser.add_argument("--version", action="version", version=f"itops-agent {collect.AGENT_VERSION}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    enroll = commands.add_parser("enroll", help="register this machine with the server and save its agent token")
    enroll.add_argument("--server", required=True, type=_server_url, metavar="URL",
                        help="the itops server, e.g. https://itops.example.com")
    enroll.add_argument("--token", required=True, metavar="TOKEN", help="an enrollment token (itops_enr_...)")
    enroll.set_defaults(handler=cmd_enroll)

    run = commands.add_parser("run", help="report now, then every interval")
    run.add_argument("--once", action="store_true", help="report once and exit with the protocol's status")
    run.add_argument("--interval", type=_interval, metavar="SECONDS",
                     help=f"seconds between reports, at least {MIN_INTERVAL} "
                          f"(default: the server's, else {DEFAULT_INTERVAL})")
    run.set_defaults(handler=cmd_run)

    for command in (enroll, run):
        command.add_argument("--state", type=Path, metavar="PATH",
                             help=f"state file (default: ${state.ENV_VAR}, else {state.SYSTEM_PATH} "
                                  f"as root, else {state.USER_PATH})")

    commands.add_parser("collect", help="print this machine's report as JSON; send nothing").set_defaults(
        handler=cmd_collect)
    return parser


def _server_url(value: str) -> str:
    try:
        return client.normalize_server(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _interval(value: str) -> int:
    try:
        seconds = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of seconds") from None
    if seconds < MIN_INTERVAL:
        raise argparse.ArgumentTypeError(f"the interval must be at least {MIN_INTERVAL} seconds")
    return seconds


def cmd_collect(args: argparse.Namespace) -> int:
    try:
        print(json.dumps(collect.collect_report(), indent=2))
    except BrokenPipeError:  # `collect | head` closed the pipe early; that is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_OK


def cmd_enroll(args: argparse.Namespace) -> int:
    path = args.state or state.default_path()
    state.ensure_writable(path)  # before the server issues a token we could not keep
    try:
        answer = client.enroll(args.server, args.token, collect.collect_report())
    except client.PushError as error:
        log.error("enrollment failed: %s", error.detail)
        return error.exit_code
    settings = {"server": args.server, "agent_token": answer["agent_token"], "asset_id": answer["asset_id"],
                "asset_tag": answer.get("asset_tag"),
                "report_interval_seconds": answer.get("report_interval_seconds")}
    state.save(path, settings)
    print(f"enrolled with {args.server}: asset {asset_label(settings)}; "
          f"agent token {client.token_hint(settings['agent_token'])} saved in {path}")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    path = args.state or state.default_path()
    settings = state.load(path)
    try:
        settings["server"] = client.normalize_server(settings["server"])
    except ValueError as error:
        raise state.StateError(f"the state file {path}: {error}") from None
    if args.once:
        return run_once(path, settings)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return run_loop(path, settings, args.interval, stop)


def run_once(path: Path, settings: dict[str, Any]) -> int:
    try:
        answer = report(path, settings)
    except client.PushError as error:
        log.error("%s", describe(error))
        return error.exit_code
    print(summary(settings, answer))
    return EXIT_OK


def run_loop(path: Path, settings: dict[str, Any], interval_override: int | None,
             stop: threading.Event, rng: Any = random) -> int:
    """Report every interval until `stop` is set; back off and retry on failures worth retrying.

    A refused token ends the loop (exit 3): only a new enrollment can fix it. A refused report is
    logged and tried again at the next interval, since the next report may differ.
    """
    attempt = 0
    while not stop.is_set():
        try:
            answer = report(path, settings)
        except client.TokenRefused as error:
            log.error("%s", describe(error))
            return error.exit_code
        except client.Retryable as error:
            delay = client.next_delay(attempt, report_interval(settings, interval_override), error.retry_after, rng)
            attempt += 1
            log.warning("%s; retrying in %.0f s", describe(error), delay)
        except client.ReportRefused as error:
            attempt, delay = 0, report_interval(settings, interval_override)
            log.error("%s; next report in %.0f s", describe(error), delay)
        else:
            attempt, delay = 0, report_interval(settings, interval_override)
            log.info("%s", summary(settings, answer))
        stop.wait(delay)
    log.info("stopped")
    return EXIT_OK


def report(path: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """Collect and push one report; keep in `settings` and the state file what the server changed."""
    answer = client.push(settings["server"], settings["agent_token"], collect.collect_report())
    updates = {key: answer[key] for key in REMEMBERED if key in answer and answer[key] != settings.get(key)}
    if updates:
        settings.update(updates)
        try:
            state.save(path, settings)
        except state.StateError as error:  # the report went through; only the bookkeeping failed
            log.warning("%s", error)
    return answer


def report_interval(settings: dict[str, Any], override: int | None) -> float:
    """--interval, else the interval the server asked for, else an hour; never below MIN_INTERVAL."""
    from_server = settings.get("report_interval_seconds")
    if not isinstance(from_server, (int, float)) or isinstance(from_server, bool):
        from_server = None
    return max(MIN_INTERVAL, override or from_server or DEFAULT_INTERVAL)


def describe(error: client.PushError) -> str:
    """The error's message, with what to do when only a person can fix it."""
    if isinstance(error, client.TokenRefused):
        return f"{error.detail}; enroll this machine again"
    return error.detail


def asset_label(settings: dict[str, Any]) -> str:
    return settings.get("asset_tag") or f"#{settings.get('asset_id')}"


def summary(settings: dict[str, Any], answer: dict[str, Any]) -> str:
    changes = answer.get("changes", 0)
    noun = "change" if changes == 1 else "changes"
    return f"reported to {settings['server']}: asset {asset_label(settings)}, {changes} {noun}"


if __name__ == "__main__":
    sys.exit(main())

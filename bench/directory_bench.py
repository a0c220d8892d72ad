"""Directory figures against a real slapd: raw ldap3 adds (the baseline), itops onboarding, reconcile.

Starts a private slapd (itops.demo.slapd) on a free loopback port and a throwaway itops instance (SQLite in a
temp folder, or --database-url), then prints:

1. the raw ldap3 add rate: COUNT inetOrgPerson entries shaped like itops's (same attributes, {SSHA} password
   hashed beforehand), one connection, one `conn.add` each; and, for reference (not the target's baseline), the
   same adds on a slapd of their own encoded as itops encodes its pipelined adds (itops.directory.ldap_wire), which
   shows how much of the baseline is ldap3's own encoding;
2. itops onboarding of COUNT people: an HR CSV through `csv_io.import_csv` (check and directory preview,
   then the joiners recorded), then `tasks.run_due_steps` creating the accounts, with group mappings that
   put each account in 1-2 groups, the itops users and provisioning tickets; target at most 1.5x the raw time;
3. a reconcile (`reconcile.reconcile()`) of the COUNT accounts after 1% drift made behind itops' back
   (attributes changed, groups left and joined, orphans added, accounts deleted); target under 10 s.

A report: it asserts nothing about speed (exit 1 only when it could not run). Everything it starts (slapd)
and writes (the temp folder) goes on exit, on Ctrl-C and on SIGTERM.

usage: .venv/bin/python bench/directory_bench.py [--count 10000] [--seed 1] [--profile DIR]
                                                 [--database-url postgresql://... [--wipe-database]]
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from _common import (
    BenchError, fresh_instance, machine_load, process_cpu_seconds, sigterm_as_interrupt, use_instance_in_process,
)

ONBOARD_TARGET = 1.5        # itops onboarding time / raw add time
RECONCILE_TARGET_S = 10.0
DRIFT_SHARE = 0.01
SLAPD_PASSWORD = "bench-directory-admin"

DEPARTMENTS = {  # department: (share of staff, titles)
    "Engineering": (0.30, ["Software engineer", "Senior software engineer", "Site reliability engineer",
                           "QA engineer"]),
    "Sales": (0.18, ["Account manager", "Sales representative", "Sales engineer"]),
    "Support": (0.14, ["Support agent", "Support specialist"]),
    "Operations": (0.10, ["Operations analyst", "Facilities coordinator"]),
    "Marketing": (0.08, ["Marketing specialist", "Content writer", "Designer"]),
    "Finance": (0.07, ["Accountant", "Financial analyst"]),
    "People": (0.05, ["HR partner", "Recruiter"]),
    "Legal": (0.03, ["Counsel", "Paralegal"]),
    "IT": (0.05, ["IT technician", "Systems administrator"]),
}
TEAM_LEAD = "Team lead"
LOCATIONS = ["Berlin", "London", "Paris", "Madrid", "Warsaw", "Oslo", "Lisbon", "Remote"]
GIVEN = ("Anna Ben Carla David Eva Felix Greta Hugo Ida Jonas Karin Lars Mia Noah Olga Paul Rosa Sam Tina Umar "
         "Vera Will Xenia Yusuf Zoe Ahmed Bianca Chen Dmitri Elif Farah Goran Hana Ivan Jana Kenji Lea Marco Nina "
         "Oscar Priya Quinn Rafael Sofia Tomas Ulla Viktor Wanda Yara Zeynep").split() + [
    "José", "Zoë", "Łukasz", "Søren", "Chloé", "Jürgen", "Ágnes", "Françoise", "Çağla", "Ørjan"]
FAMILY_STEMS = ("Ander Berg Carl Dahl Eck Falk Gran Hart Ivers Jans Kühl Lind Mor Nord Olsen Pet Quist Ros Sand "
                "Thor Ull Vik Wall Yng Zell Brook Fair Green Hol Kirk Lang Marsh Oak Rid Stone West Ash Birch "
                "Clay Dun").split()
FAMILY_ENDS = "son sen man er berg ström dal holm field wood ley ton by ford well".split()
FAMILY_EXTRA = ["Müller", "García", "Ødegård", "Nguyễn", "Łukaszewicz", "Śliwa", "Žižek", "Dvořák", "O'Neil",
                "Smith", "Jones", "Brown", "Kowalski", "Rossi", "Silva"]


@dataclass
class Staff:
    number: str
    given: str
    family: str
    department: str
    title: str
    location: str
    manager: str | None


def make_staff(count: int, seed: int) -> list[Staff]:
    """An organisation: a head per department, team leads (1 in 8) under them, everyone else under a lead,
    in an order where every manager comes before their reports."""
    rng = random.Random(seed)
    names = list(DEPARTMENTS)
    weights = [DEPARTMENTS[d][0] for d in names]
    heads: dict[str, str] = {}
    leads: dict[str, list[str]] = {d: [] for d in names}
    staff = []
    for index in range(count):
        number = f"E{index + 1:06d}"
        department = names[index] if index < len(names) else rng.choices(names, weights)[0]
        if department not in heads:
            title, manager = "Head of " + department, None
            heads[department] = number
        elif not leads[department] or rng.random() < 1 / 8:
            title, manager = TEAM_LEAD, heads[department]
            leads[department].append(number)
        else:
            title, manager = rng.choice(DEPARTMENTS[department][1]), rng.choice(leads[department])
        family = rng.choice(FAMILY_EXTRA) if rng.random() < 0.08 else rng.choice(FAMILY_STEMS) + rng.choice(FAMILY_ENDS)
        staff.append(Staff(number, rng.choice(GIVEN), family, department, title, rng.choice(LOCATIONS), manager))
    return staff


def group_mappings() -> list[tuple[str | None, str | None, list[str]]]:
    """As a company would set them up: a group per department, one for all team leads and heads, and an
    on-call group for the engineers who carry the pager. Each account lands in 1 or 2 groups."""
    mappings = [(department, None, [f"staff-{department.lower()}"]) for department in DEPARTMENTS]
    mappings.append((None, TEAM_LEAD, ["team-leads"]))
    mappings += [(department, "Head of " + department, ["team-leads"]) for department in DEPARTMENTS]
    mappings.append(("Engineering", "Site reliability engineer", ["on-call"]))
    return mappings


def staff_csv(staff: list[Staff], today: date) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["employee_number", "given_name", "family_name", "email", "department", "title",
                     "manager_employee_number", "location", "start_date"])
    for person in staff:
        writer.writerow([person.number, person.given, person.family, f"{person.number.lower()}@example.org",
                         person.department, person.title, person.manager or "", person.location, today.isoformat()])
    return out.getvalue().encode()


# --- 1. raw adds -------------------------------------------------------------------------------

def raw_adds(slapd, staff: list[Staff], *, encoded_by: str = "ldap3") -> float:
    """Seconds for one connection to add every entry under ou=raw (built and hashed before the clock starts),
    one at a time: ldap3's `conn.add` (the baseline), or (encoded_by="itops") the same adds encoded as itops
    sends its pipelined adds (itops.directory.ldap_wire), to show what the directory itself takes."""
    from ldap3 import ASYNC, NONE, Connection, Server

    from itops.directory import ldap

    branch = f"ou=raw,{slapd.base_dn}"
    entries = []
    for index, person in enumerate(staff):
        uid = f"raw{index:06d}"
        display = f"{person.given} {person.family}"
        manager = f"uid=raw{int(person.manager[1:]) - 1:06d},{branch}" if person.manager else None
        attributes = {"uid": uid, "cn": display, "sn": person.family, "givenName": person.given,
                      "displayName": display, "mail": f"{uid}@example.org", "employeeNumber": person.number,
                      "departmentNumber": person.department, "title": person.title, "l": person.location,
                      "userPassword": ldap.ssha(os.urandom(15).hex())}
        if manager:
            attributes["manager"] = manager
        entries.append((f"uid={uid},{branch}", attributes))
    if encoded_by == "itops":
        connection = Connection(Server(slapd.url, get_info=NONE), slapd.admin_dn, slapd.admin_password,
                                auto_bind=True, client_strategy=ASYNC, raise_exceptions=False)

        def add(dn, object_class, attributes):
            operation = ldap.LdapOperation("add", dn, attributes={"objectClass": object_class, **{
                name: [value] for name, value in attributes.items()}})
            _, result = connection.get_response(ldap._send_add_pipelined(connection, operation), timeout=30)
            connection.result = result
            return result["result"] == 0
    else:
        connection = slapd.admin_connection()
        add = connection.add
    try:
        if not add(branch, ["organizationalUnit"], {"ou": "raw"}):
            raise BenchError(f"add {branch}: {connection.result['description']}")
        started = time.perf_counter()
        for dn, attributes in entries:
            if not add(dn, ["inetOrgPerson"], attributes):
                raise BenchError(f"add {dn}: {connection.result['description']} {connection.result['message']}")
        return time.perf_counter() - started
    finally:
        connection.unbind()


def raw_adds_encoded_by_itops(workdir: Path, staff: list[Staff]) -> float:
    """raw_adds(encoded_by="itops") on a slapd of its own, so the directory of phases 2 and 3 is as without it."""
    from itops.demo.slapd import free_port, start_slapd

    slapd = start_slapd(workdir / "slapd-reference", port=free_port(), admin_password=SLAPD_PASSWORD)
    try:
        return raw_adds(slapd, staff, encoded_by="itops")
    finally:
        slapd.stop()


# --- 2. itops onboarding -------------------------------------------------------------------------

class Profiler:
    """cProfile around a phase when --profile is given (the .prof file is named after the phase)."""

    def __init__(self, folder: Path | None):
        self.folder = folder

    def run(self, name: str, call):
        if self.folder is None:
            return call()
        import cProfile

        self.folder.mkdir(parents=True, exist_ok=True)
        profile = cProfile.Profile()
        try:
            return profile.runcall(call)
        finally:
            profile.dump_stats(self.folder / f"{name}.prof")


def onboard(staff: list[Staff], profiler: Profiler, slapd_pid: int | None) -> dict[str, float]:
    """Seconds per phase of onboarding everyone through the HR CSV and run-due; checks what came out."""
    from itops.core.auth import services as auth_services
    from itops.directory import csv_io, services, tasks
    from itops.directory.choices import PersonState
    from itops.directory.models import Person
    from itops.extensions import db
    from sqlalchemy import func, select

    hr = auth_services.create_local_user("bench.hr", os.urandom(12).hex(), role="hr", display_name="Bench HR")
    for department, title, groups in group_mappings():
        services.save_group_mapping(department=department, title=title, groups=groups, by="bench")
    db.session.commit()

    data = staff_csv(staff, date.today())
    phases: dict[str, float] = {}
    cpu, slapd_cpu = time.process_time(), process_cpu_seconds(slapd_pid)
    started = time.perf_counter()
    outcome = profiler.run("import_csv", lambda: csv_io.import_csv(data, by=hr))
    if outcome.applied is None:
        errors = [f"line {row.number}: {'; '.join(row.errors)}" for row in outcome.preview.error_rows[:5]]
        raise BenchError("the HR CSV was not applied: " + ("; ".join(errors) or f"held as batch {outcome.held_batch}"))
    db.session.commit()
    phases["import"] = time.perf_counter() - started
    phases["import_cpu"], cpu = time.process_time() - cpu, time.process_time()
    writers_cpu = children_cpu()
    started = time.perf_counter()
    totals = profiler.run("run_due", lambda: tasks.run_due_steps(by="scheduler"))
    phases["run_due"] = time.perf_counter() - started
    phases["run_due_cpu"] = time.process_time() - cpu
    phases["writers_cpu"] = children_cpu() - writers_cpu
    phases["slapd_cpu"] = process_cpu_seconds(slapd_pid) - slapd_cpu
    if totals["done"] != len(staff) or totals["failed"] or totals["retrying"]:
        raise BenchError(f"run-due did not create every account: {totals}")
    active = db.session.scalar(select(func.count()).select_from(Person)
                               .where(Person.state == PersonState.ACTIVE.value))
    if active != len(staff):
        raise BenchError(f"{active} people are active after onboarding {len(staff)}")
    return phases


def directory_counts(slapd) -> tuple[int, int]:
    """(accounts under ou=people, group memberships) as slapd has them."""
    connection = slapd.admin_connection()
    try:
        people = connection.extend.standard.paged_search(slapd.people_dn, "(objectClass=inetOrgPerson)",
                                                         attributes=["uid"], paged_size=1000, generator=True)
        accounts = sum(1 for entry in people if entry["type"] == "searchResEntry")
        connection.search(slapd.groups_dn, "(objectClass=groupOfNames)", attributes=["member"])
        memberships = sum(len(entry["attributes"].get("member", [])) for entry in connection.response
                          if entry["type"] == "searchResEntry")
        return accounts, memberships
    finally:
        connection.unbind()


# --- 3. reconcile ----------------------------------------------------------------------------

def make_drift(slapd, share: float, seed: int) -> dict[str, int]:
    """Change the directory behind itops' back, for `share` of the accounts; what reconcile should find."""
    from ldap3 import MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE

    from itops.directory.ldap import ssha

    rng = random.Random(seed + 1)
    connection = slapd.admin_connection()
    try:
        found = connection.extend.standard.paged_search(slapd.people_dn, "(objectClass=inetOrgPerson)",
                                                        attributes=["uid", "memberOf"], paged_size=1000,
                                                        generator=False)
        accounts = sorted(((e["dn"], e["attributes"].get("memberOf") or []) for e in found
                           if e["type"] == "searchResEntry"), key=lambda a: a[0])
        total = max(4, round(len(accounts) * share))
        sizes = [total - 3 * (total // 4), total // 4, total // 4]   # attributes, groups, missing; the rest orphans
        chosen = rng.sample(accounts, sum(sizes))
        attributes, groups, missing = chosen[:sizes[0]], chosen[sizes[0]:-sizes[2]], chosen[-sizes[2]:]
        orphans = total // 4
        for dn, _ in attributes:
            change = rng.choice([{"title": [(MODIFY_REPLACE, ["Changed by hand"])]},
                                 {"mail": [(MODIFY_REPLACE, ["someone.else@example.org"])]},
                                 {"l": [(MODIFY_DELETE, [])]}])
            _check(connection, connection.modify(dn, change), dn)
        for index, (dn, member_of) in enumerate(groups):
            department_groups = [g for g in member_of if g.lower().startswith("cn=staff-")]
            if index % 2 and department_groups:  # leave their department's group
                _check(connection, connection.modify(department_groups[0], {"member": [(MODIFY_DELETE, [dn])]}), dn)
            else:  # join a managed group the mappings do not give them
                other = f"cn=on-call,{slapd.groups_dn}"
                if other.lower() in {g.lower() for g in member_of}:
                    other = f"cn=staff-legal,{slapd.groups_dn}"
                _check(connection, connection.modify(other, {"member": [(MODIFY_ADD, [dn])]}), dn)
        for dn, _ in missing:
            _check(connection, connection.delete(dn), dn)
        for index in range(orphans):
            uid = f"orphan{index:04d}"
            _check(connection, connection.add(f"uid={uid},{slapd.people_dn}", ["inetOrgPerson"],
                                              {"uid": uid, "cn": "Unknown Person", "sn": "Person",
                                               "userPassword": ssha(os.urandom(8).hex())}), uid)
        return {"attributes": len(attributes), "groups": len(groups), "missing": len(missing), "orphan": orphans}
    finally:
        connection.unbind()


def _check(connection, ok: bool, what: str) -> None:
    if not ok:
        raise BenchError(f"drift on {what}: {connection.result['description']} {connection.result['message']}")


def wait_for_refint(slapd, seconds: float = 10) -> None:
    """refint drops deleted accounts from their groups in the background: wait until it has."""
    connection = slapd.admin_connection()
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            connection.search(slapd.groups_dn, "(objectClass=groupOfNames)", attributes=["member"])
            members = {m.lower() for e in connection.response if e["type"] == "searchResEntry"
                       for m in e["attributes"].get("member", [])}
            people = connection.extend.standard.paged_search(slapd.base_dn, "(objectClass=inetOrgPerson)",
                                                             attributes=[], paged_size=1000, generator=False)
            present = {e["dn"].lower() for e in people if e["type"] == "searchResEntry"}
            if members <= present | {slapd.admin_dn.lower()}:
                return
            time.sleep(0.1)
    finally:
        connection.unbind()


def run_reconcile(profiler: Profiler) -> tuple[float, dict[str, int]]:
    from itops.directory import reconcile

    started = time.perf_counter()
    report = profiler.run("reconcile", reconcile.reconcile)
    return time.perf_counter() - started, report.counts


# --- the run -----------------------------------------------------------------------------------

def children_cpu() -> float:
    """CPU seconds of this process's children that have ended (the writer processes, once closed)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def verdict(met: bool) -> str:
    return "PASS" if met else "MISS"


def measure(args, workdir: Path) -> None:
    from itops.demo.slapd import free_port, start_slapd

    print(f"machine before: {machine_load()}")
    staff = make_staff(args.count, args.seed)
    slapd = start_slapd(workdir / "slapd", port=free_port(), admin_password=SLAPD_PASSWORD)
    try:
        print(f"slapd {slapd.url} (mdb, dynlist memberOf, refint, ppolicy) in {workdir}")
        cpu, slapd_cpu = time.process_time(), process_cpu_seconds(slapd.pid())
        raw_s = raw_adds(slapd, staff)
        cpu, slapd_cpu = time.process_time() - cpu, process_cpu_seconds(slapd.pid()) - slapd_cpu
        print(f"\n1. raw ldap3 adds, 1 connection      {args.count:7d} entries  {raw_s:7.1f} s  "
              f"{args.count / raw_s:7.0f}/s   (baseline)")
        print(f"   client CPU {cpu:.1f} s (hashing before the clock included); slapd CPU {slapd_cpu:.1f} s")
        print(f"   machine: {machine_load()}")
        reference_s = raw_adds_encoded_by_itops(workdir, staff)
        print(f"   for reference: the same adds encoded as itops sends them (itops.directory.ldap_wire), one at a time "
              f"on a fresh slapd: {reference_s:.1f} s, {args.count / reference_s:.0f}/s")

        instance = workdir / "instance"
        fresh_instance(instance, args.database_url, wipe_database=args.wipe_database)
        use_instance_in_process(instance, args.database_url)
        os.environ.update({"ITOPS_LDAP_URL": slapd.url, "ITOPS_LDAP_BASE_DN": slapd.base_dn,
                           "ITOPS_LDAP_BIND_DN": slapd.admin_dn, "ITOPS_LDAP_BIND_PASSWORD": SLAPD_PASSWORD,
                           "ITOPS_LOG_LEVEL": "WARNING"})
        from itops import create_app

        app = create_app()
        profiler = Profiler(args.profile)
        with app.app_context():
            phases = onboard(staff, profiler, slapd.pid())
            onboard_s = phases["import"] + phases["run_due"]
            ratio = onboard_s / raw_s
            accounts, memberships = directory_counts(slapd)
            print(f"\n2. itops onboarding (CSV + run-due)  {args.count:7d} people   {onboard_s:7.1f} s  "
                  f"{args.count / onboard_s:7.0f}/s   {ratio:.2f}x raw, target <= {ONBOARD_TARGET:g}x  "
                  f"{verdict(ratio <= ONBOARD_TARGET)}")
            print(f"   CSV import (check, preview, record) {phases['import']:.1f} s; run-due (accounts, groups, "
                  f"users, tickets) {phases['run_due']:.1f} s")
            print(f"   {onboard_s / reference_s:.2f}x the reference adds encoded as itops sends them "
                  f"({reference_s:.1f} s; ldap3's encoding is most of the baseline's client CPU)")
            cpu_ms = 1000 * (phases['import_cpu'] + phases['run_due_cpu']) / args.count
            print(f"   itops CPU (all threads of this process): import {phases['import_cpu']:.1f} s, run-due "
                  f"{phases['run_due_cpu']:.1f} s ({cpu_ms:.2f} ms per person); writer processes "
                  f"{phases['writers_cpu']:.1f} s; slapd (both phases) {phases['slapd_cpu']:.1f} s")
            total_cpu = sum(phases[name] for name in ("import_cpu", "run_due_cpu", "writers_cpu", "slapd_cpu"))
            cores = os.cpu_count() or 1
            print(f"   all of it {total_cpu:.1f} s of CPU: on {cores} cores no less than {total_cpu / cores:.1f} s "
                  f"({total_cpu / cores / raw_s:.2f}x raw) however well it overlapped; it took "
                  f"{total_cpu / onboard_s:.2f} cores on average")
            print(f"   directory: {accounts} accounts, {memberships} group memberships "
                  f"({memberships / max(accounts, 1):.2f} per account)")
            print(f"   database: {args.database_url or 'SQLite (temp instance)'}; machine: {machine_load()}")

            expected = make_drift(slapd, DRIFT_SHARE, args.seed)
            wait_for_refint(slapd)
            reconcile_s, counts = run_reconcile(profiler)
            found = {kind: counts.get(kind, 0) for kind in expected}
            print(f"\n3. reconcile, {DRIFT_SHARE:.0%} drift                {counts['accounts']:7d} accounts "
                  f"{reconcile_s:7.1f} s             target < {RECONCILE_TARGET_S:g} s  "
                  f"{verdict(reconcile_s < RECONCILE_TARGET_S)}")
            print("   drift made: " + ", ".join(f"{n} {kind}" for kind, n in expected.items()))
            print("   found:      " + ", ".join(f"{n} {kind}" for kind, n in found.items())
                  + ("" if found == expected else "   ! not what was made: " + str(
                      {k: v for k, v in counts.items() if k not in ('accounts', 'people')})))
            from itops.directory.ldap import gateway

            gateway().close()
    finally:
        slapd.stop()
    print(f"\nmachine after: {machine_load()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="people (and raw entries) (default 10000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (same seed, same organisation)")
    parser.add_argument("--database-url", help="a PostgreSQL URL instead of a temp SQLite file (must be empty)")
    parser.add_argument("--wipe-database", action="store_true",
                        help="with --database-url: drop every table already in that database first")
    parser.add_argument("--profile", type=Path, help="write cProfile stats of each itops phase to this folder")
    args = parser.parse_args()
    if args.count < len(DEPARTMENTS):
        parser.error(f"--count must be at least {len(DEPARTMENTS)}")

    sigterm_as_interrupt()
    from itops.demo.slapd import SlapdError

    workdir = Path(tempfile.mkdtemp(prefix="itops-directory-bench-"))
    try:
        measure(args, workdir)
    except (BenchError, SlapdError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; slapd stopped and temp files removed", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

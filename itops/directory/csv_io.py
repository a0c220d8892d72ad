"""The HR CSV import: check every row first (the preview, with per-row errors), then apply all or nothing.

A row with an employee number itops does not know is a joiner; a known one is compared with HR's
record and becomes a correction, a move (department, title, manager, effective today), a leaver
(an end date) or a cancelled leaver (the end date removed). Rows may name managers that appear
later in the same file. An import that would disable or delete more accounts than the mass-change
guard allows is held, unapplied, for an administrator's approval.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date

from flask import current_app

from itops.core.errors import DomainError, ValidationFailed
from itops.directory import services, validation
from itops.directory.choices import CSV_COLUMNS, CSV_REQUIRED, LIVE_STATES, BatchKind, PersonState
from itops.directory.models import Batch

MAX_BYTES = 10 * 1024 * 1024
MAX_ROWS = 50_000
FLUSH_ROWS = 200   # joiners written together


@dataclass
class RowCheck:
    number: int                      # the line in the file (the header is line 1)
    employee_number: str
    action: str = "unchanged"        # create | update | unchanged
    values: dict = field(default_factory=dict)
    changes: list[str] = field(default_factory=list)
    ldap: list[dict] = field(default_factory=list)   # the operations it leads to, each on its date
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class ImportPreview:
    rows: list[RowCheck]
    removals: int = 0                # leavers the import would disable

    @property
    def error_rows(self) -> list[RowCheck]:
        return [row for row in self.rows if row.errors]

    @property
    def ok(self) -> bool:
        return not self.error_rows

    @property
    def counts(self) -> dict[str, int]:
        return {"rows": len(self.rows), "create": sum(r.action == "create" for r in self.rows),
                "update": sum(r.action == "update" for r in self.rows),
                "unchanged": sum(r.action == "unchanged" for r in self.rows), "errors": len(self.error_rows),
                "leavers": self.removals}


def read_rows(data: bytes) -> list[dict]:
    if len(data) > MAX_BYTES:
        raise ValidationFailed(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed("The file is not UTF-8 text.") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in CSV_REQUIRED if name not in header]
    unknown = [name for name in header if name not in CSV_COLUMNS]
    if missing or unknown:
        raise ValidationFailed("The header row " + "; ".join(filter(None, [
            f"lacks {', '.join(missing)}" if missing else "", f"has unknown columns {', '.join(unknown)}" if unknown
            else ""])) + f". Columns: {', '.join(CSV_COLUMNS)}.")
    rows = []
    for row in reader:
        if len(rows) >= MAX_ROWS:
            raise ValidationFailed(f"The file has more than {MAX_ROWS} rows; split it.")
        rows.append({(k or "").strip(): (v if isinstance(v, str) else "") for k, v in row.items() if k})
    return rows


def _lookups(rows: list[dict]) -> services.Lookups:
    """What checking and applying these rows look up: the people they name (employees and managers) and,
    for a large file, every username taken."""
    numbers = {row.get(name) for row in rows for name in ("employee_number", "manager_employee_number")}
    return services.Lookups(numbers, people_count=len(rows))


def check(rows: list[dict], *, lookups: services.Lookups | None = None, with_ldap: bool = True) -> ImportPreview:
    """Check every row against HR's records and the rest of the file; writes nothing. `with_ldap`: each row's
    directory operations too (what a preview shows; applying the rows does not need them)."""
    checks: list[RowCheck] = []
    seen: dict[str, RowCheck] = {}
    in_file = {(row.get("employee_number") or "").strip() for row in rows}
    lookups = lookups or _lookups(rows)
    for number, row in enumerate(rows, start=2):
        employee_number = (row.get("employee_number") or "").strip()
        result = RowCheck(number, employee_number)
        checks.append(result)
        if employee_number in seen:
            result.errors.append(f"employee number {employee_number} is also on line {seen[employee_number].number}")
            seen[employee_number].errors.append(f"employee number {employee_number} is also on line {number}")
            continue
        seen[employee_number] = result
        try:
            _check_row(row, result, in_file, lookups)
        except DomainError as exc:
            result.errors.append(exc.detail)
    _check_file_reporting_lines(rows, checks, lookups)
    if with_ldap and current_app.config.get("ITOPS_LDAP") is not None:
        _preview_ldap([c for c in checks if not c.errors and c.action != "unchanged"], lookups)
    preview = ImportPreview(checks)
    preview.removals = sum(1 for r in checks if not r.errors and any(c.startswith("leaves ") for c in r.changes))
    return preview


def _check_row(row: dict, result: RowCheck, in_file: set[str], lookups: services.Lookups) -> None:
    # A column the file does not have leaves that field as HR's record has it.
    values = {name: row[name] for name in CSV_COLUMNS if name in row}
    person = lookups.find(result.employee_number)
    if "manager_employee_number" in values:
        manager_number = (values.pop("manager_employee_number") or "").strip()
    else:
        manager_number = person.manager.employee_number if person is not None and person.manager else ""
    if manager_number and manager_number == result.employee_number:
        raise ValidationFailed("a person cannot be their own manager")
    if manager_number and manager_number not in in_file and lookups.find(manager_number) is None:
        raise ValidationFailed(f"the manager {manager_number} is neither in HR's records nor in this file")
    checked = services.check_person_values(values, person=person, lookups=lookups)
    result.warnings += checked.warnings
    result.values = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in checked.values.items()}
    result.values["manager_employee_number"] = manager_number or None
    if person is None:
        result.action = "create"
        result.changes.append(f"joiner {checked.values['given_name']} {checked.values['family_name']}, starts "
                              f"{checked.values['start_date']}")
        if checked.values["end_date"]:
            result.changes.append(f"leaves {checked.values['end_date']}")
        return
    if person.state_enum == PersonState.DELETED:
        raise ValidationFailed(f"{person.display_name} has been deleted; give a joiner a new employee number")
    changes = []
    for name in ("given_name", "family_name", "preferred_name", "email", "location", "start_date", "department",
                 "title"):
        if getattr(person, name) != checked.values[name]:
            changes.append(f"{name}: {getattr(person, name) or '—'} -> {checked.values[name] or '—'}")
    current_manager = person.manager.employee_number if person.manager else None
    if (manager_number or None) != current_manager:
        changes.append(f"manager: {current_manager or '—'} -> {manager_number or '—'}")
    end = checked.values["end_date"] if "end_date" in row else person.end_date
    if end and end != person.end_date and person.state_enum in (PersonState.PENDING, *LIVE_STATES):
        changes.append(f"leaves {end}")
    elif not end and person.state_enum == PersonState.LEAVING:
        changes.append("no longer leaves")
    result.changes, result.action = changes, ("update" if changes else "unchanged")


def _preview_ldap(checks: list[RowCheck], lookups: services.Lookups) -> None:
    """Each changed row's directory operations (a manager new in this file is left out of the preview)."""
    for result in checks:
        values = dict(result.values)
        for name in ("start_date", "end_date"):
            values[name] = validation.clean_date(values, name)
        number = values.get("manager_employee_number")
        try:
            result.ldap = services.preview_record(lookups.find(result.employee_number), values,
                                                  manager=lookups.find(number) if number else None, lookups=lookups)
        except DomainError as exc:  # e.g. the directory is unreachable: the preview says so, the import may go on
            result.warnings.append(f"directory preview unavailable: {exc.detail}")


def _check_file_reporting_lines(rows: list[dict], checks: list[RowCheck], lookups: services.Lookups) -> None:
    """A loop among the file's own rows (A manages B, B manages A) is caught here; the rest by the services."""
    manager_of = {(r.get("employee_number") or "").strip(): (r.get("manager_employee_number") or "").strip()
                  for r in rows}
    for result in checks:
        seen, current = {result.employee_number}, manager_of.get(result.employee_number)
        while current:
            if current in seen:
                result.errors.append(f"the managers from employee {result.employee_number} up lead back to "
                                     f"{current}: a reporting loop")
                break
            seen.add(current)
            current = manager_of[current] if current in manager_of else _recorded_manager_of(current, lookups)


def _recorded_manager_of(employee_number: str, lookups: services.Lookups) -> str | None:
    person = lookups.find(employee_number)
    return person.manager.employee_number if person is not None and person.manager is not None else None


def apply_rows(rows: list[dict], *, by, batch: Batch | None = None, progress=None,
               lookups: services.Lookups | None = None) -> dict:
    """Apply checked rows (RowCheck.values), managers first; steps due today wait for run_due.
    `lookups`: the check's, when it ran in the same transaction (nothing has changed since)."""
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    pending = {row["employee_number"]: row for row in rows}
    lookups = lookups or _lookups(rows)
    passwords: dict[str, str] = {}
    while pending:
        ready = [row for row in pending.values() if not row.get("manager_employee_number")
                 or row["manager_employee_number"] not in pending]
        if not ready:
            raise ValidationFailed("The file's reporting lines form a loop.")
        for row in ready:
            outcome = _apply_row(row, by=by, batch=batch, lookups=lookups)
            if isinstance(outcome, services.OnboardResult):
                passwords[outcome.username] = outcome.initial_password
                outcome = "created"
            counts[outcome] += 1
            del pending[row["employee_number"]]
            if len(lookups.joiners) >= FLUSH_ROWS:
                lookups.flush()
            if progress is not None:
                progress.advance(message=f"{row['employee_number']}: {outcome}")
    lookups.flush()
    return {**counts, "passwords": passwords}


def _apply_row(row: dict, *, by, batch: Batch | None, lookups: services.Lookups):
    values = {k: v for k, v in row.items() if k != "manager_employee_number"}
    manager = lookups.find(row["manager_employee_number"]) if row.get("manager_employee_number") else None
    person = lookups.find(row["employee_number"])
    if person is None:
        return services.onboard({**values, "manager": manager}, by=by, run_now=False, batch=batch, lookups=lookups)
    before = services.person_summary(person)
    services.update_person(person, {k: v for k, v in values.items() if k not in ("department", "title",
                                                                                  "end_date")},
                           by=by, run_now=False)
    if (person.department, person.title, person.manager_id) != (values["department"], values["title"],
                                                                 manager.id if manager else None):
        services.move(person, effective=date.today(), by=by, department=values["department"], title=values["title"],
                      manager=manager, run_now=False, batch=batch)
    end = validation.clean_date(values, "end_date")
    if end and end != person.end_date:
        services.offboard(person, end_date=end, by=by, run_now=False, batch=batch)
    elif not end and person.state_enum == PersonState.LEAVING:
        services.cancel_offboard(person, by=by)
    return "updated" if services.person_summary(person) != before else "unchanged"


@dataclass
class ImportOutcome:
    preview: ImportPreview
    applied: dict | None = None      # counts and the joiners' initial passwords (shown once)
    held_batch: Batch | None = None  # over the mass-change guard: waits for approval, nothing applied


def import_csv(data: bytes, *, by, dry_run: bool = False) -> ImportOutcome:
    """All or nothing: any row with an error means nothing is written; over the guard, nothing is written
    but the held batch."""
    rows = read_rows(data)
    lookups = _lookups(rows)  # the check's look-ups serve the apply: one transaction, nothing changes between
    preview = check(rows, lookups=lookups, with_ldap=dry_run)
    if dry_run or not preview.ok:
        return ImportOutcome(preview)
    changed = [row.values for row in preview.rows if row.action != "unchanged"]
    if preview.removals and services.guard_trips(preview.removals):
        batch = services.hold_batch(BatchKind.CSV_IMPORT, f"HR import of {len(changed)} changed rows",
                                    removals=preview.removals, by=by, payload={"rows": changed})
        return ImportOutcome(preview, held_batch=batch)
    return ImportOutcome(preview, applied=apply_rows(changed, by=by, lookups=lookups))

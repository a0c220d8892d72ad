"""Assets as CSV: export (streamed), a dry-run check of an uploaded file, and the import that writes it.

One column set serves both ways, so an exported file imports back as updates that change nothing.

Import rules, row by row:

- A row updates the asset whose tag it names; failing that, the asset with its serial; otherwise it
  creates one (an empty tag gets the next IT-nnnnnn tag). An update never changes an asset's kind.
- The file is the truth for the columns it has: an empty cell clears that field, a column the file
  does not have leaves the field alone. An empty status means "as it is" (a new asset: in stock).
- Holder and status go through the lifecycle services, as a person would: a row with a holder is
  created in stock and then checked out (deployed). A different holder on an existing asset is a
  check-in (to stock) followed by a check-out to the new holder; an empty holder cell checks the
  asset in. A status other than the one those steps reach is then a plain status change, and must
  be one the lifecycle allows (a held asset cannot be "in stock"; "deployed" needs a holder).
- check() only reads. apply() writes nothing unless the file has no errors, or it is told to take
  the valid rows only; then rows with errors are left out and counted.
"""
from __future__ import annotations

import csv
import io
import os
import re
import secrets
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import select

from itops.assets import services, validation
from itops.assets.choices import (
    CHECKIN_STATUS, CHECKOUT_STATUS, DEVICE_TYPE_NAMES, HELD_STATUSES, KIND_SPECIFIC_FIELDS, AssetKind,
    EventKind, Status,
)
from itops.assets.models import Asset
from itops.core.auth.models import User
from itops.core.auth.services import normalise_username
from itops.core.errors import DomainError, NotFound, ValidationFailed
from itops.extensions import db

COLUMNS = (
    "tag", "kind", "name", "status", "serial", "manufacturer", "model", "location", "holder", "purchase_date",
    "cost", "supplier", "warranty_end", "notes", "imei", "phone_number", "iccid", "carrier", "mac", "extension",
    "management_address", "device_type",
)
REQUIRED_COLUMNS = ("kind", "name")
MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 50_000
NOTES_MAX = 5000  # as the asset form
EXPORT_CHUNK_ROWS = 200
LOOKUP_CHUNK = 500
UPLOAD_MAX_AGE_SECONDS = 24 * 3600

# Cells starting with these are formulas to a spreadsheet (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

_FIELD_CHECKS = {
    "purchase_date": validation.iso_date, "warranty_end": validation.iso_date, "cost": validation.money,
    "imei": validation.imei, "mac": validation.mac, "phone_number": validation.e164, "iccid": validation.iccid,
}
# Fields written with create_asset/update_asset; kind, status and holder have their own operations.
_VALUE_COLUMNS = tuple(c for c in COLUMNS if c in services.EDITABLE_FIELDS)
_IMPORT_ID = re.compile(r"[A-Za-z0-9_-]{22,64}")


class UnusableFile(ValidationFailed):
    """The file as a whole cannot be read: wrong encoding, too large, no header, unknown columns."""

    def __init__(self, detail: str):
        super().__init__(detail, errors={"file": [detail]})


# --- export ------------------------------------------------------------------------------------

def escape_cell(text: str) -> str:
    """Guard against CSV injection: a cell starting with = + - @ tab or CR gets a leading apostrophe,
    so a spreadsheet shows it as text instead of running it as a formula.

    A cell that already starts with an apostrophe followed by one of those (or by another
    apostrophe) gets one too, so that unescape_cell() gives back exactly what was exported.
    """
    if text.startswith(FORMULA_STARTS) or (text.startswith("'") and text[1:2] in (*FORMULA_STARTS, "'")):
        return "'" + text
    return text


def unescape_cell(text: str) -> str:
    """The inverse of escape_cell(): drop the apostrophe escape_cell() added, and only that one."""
    if text.startswith("'") and text[1:2] and text[1:2] in (*FORMULA_STARTS, "'"):
        return text[1:]
    return text


def _cell(asset: Asset, column: str) -> str:
    if column == "holder":
        return asset.holder.username if asset.holder is not None else ""
    value = getattr(asset, column)
    if value is None:
        return ""
    if column == "cost":
        return f"{value:.2f}"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def export_row(asset: Asset) -> list[str]:
    return [escape_cell(_cell(asset, column)) for column in COLUMNS]


def export_chunks(assets: Iterable[Asset], *, bom: bool = False) -> Iterator[str]:
    """The CSV text for `assets`, a few hundred rows per chunk, for a streamed response or a file.

    Every cell goes through escape_cell() (CSV injection guard). With `bom`, the text starts with a
    UTF-8 byte order mark so that spreadsheets pick the right encoding; import accepts it.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if bom:
        buffer.write("\ufeff")
    writer.writerow(COLUMNS)
    for count, asset in enumerate(assets, 1):
        writer.writerow(export_row(asset))
        if count % EXPORT_CHUNK_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


# --- reading a file ----------------------------------------------------------------------------

def read_limited(stream) -> bytes:
    """Read an upload, refusing more than MAX_BYTES without reading all of it."""
    data = stream.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise UnusableFile(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MiB; split it into smaller files.")
    return data


def _decode(data: bytes) -> str:
    if len(data) > MAX_BYTES:
        raise UnusableFile(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MiB; split it into smaller files.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnusableFile(f"The file is not UTF-8 (byte {exc.start + 1} cannot be read). Save it as "
                           "\"CSV UTF-8\" and upload it again.") from None
    if not text.strip():
        raise UnusableFile("The file is empty; it needs a header line and at least one row.")
    return text


def _header(cells: list[str]) -> list[str]:
    columns = [cell.strip().lower() for cell in cells]
    if not any(c in COLUMNS for c in columns):
        raise UnusableFile("The first line must be a header naming the columns (at least "
                           f"{', '.join(REQUIRED_COLUMNS)}); it is missing.")
    unknown = [c or "(empty)" for c in columns if c not in COLUMNS]
    if unknown:
        raise UnusableFile(f"Unknown column{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}. "
                           f"The columns are: {', '.join(COLUMNS)}.")
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise UnusableFile(f"Column{'s' if len(repeated) > 1 else ''} named twice: {', '.join(repeated)}.")
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise UnusableFile(f"Required column{'s' if len(missing) > 1 else ''} missing: {', '.join(missing)}.")
    return columns


def _records(text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the non-blank records, each with its row number (the header is row 1)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = None
        records = []
        for number, cells in enumerate(reader, 1):
            if header is None:
                if not any(cell.strip() for cell in cells):
                    raise UnusableFile("The first line must be a header naming the columns (at least "
                                       f"{', '.join(REQUIRED_COLUMNS)}); it is missing.")
                header = _header(cells)
                continue
            if not any(cell.strip() for cell in cells):
                continue
            records.append((number, cells))
            if len(records) > MAX_ROWS:
                raise UnusableFile(f"The file has more than {MAX_ROWS:,} rows; split it into smaller files.")
    except csv.Error as exc:
        raise UnusableFile(f"The file is not valid CSV (row {reader.line_num}: {exc}).") from None
    if not records:
        raise UnusableFile("The file has a header but no rows.")
    return header, records


# --- checking rows -----------------------------------------------------------------------------

@dataclass
class Row:
    """One row of the file: what it will do, or why it cannot."""
    number: int
    cells: dict[str, str]
    action: str = "create"                           # "create" or "update"
    asset_id: int | None = None
    current_tag: str | None = None
    kind: AssetKind | None = None
    values: dict[str, Any] = field(default_factory=dict)   # create_asset/update_asset values
    status: Status | None = None                     # the status asked for; None: as it is
    holder: str | None = None                        # a username, "" for none, None: column absent
    holder_id: int | None = None
    initial_status: Status = Status.IN_STOCK         # for a create
    steps: list[tuple] = field(default_factory=list)  # ("checkin",), ("checkout", user_id), ("status", Status)
    errors: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        tag = self.values.get("tag") or self.current_tag or self.cells.get("tag", "").strip()
        name = self.cells.get("name", "").strip()
        return " · ".join(part for part in (tag, name) if part) or "—"


@dataclass
class Preview:
    columns: list[str]
    rows: list[Row]

    @property
    def valid_rows(self) -> list[Row]:
        return [row for row in self.rows if not row.errors]

    @property
    def error_rows(self) -> list[Row]:
        return [row for row in self.rows if row.errors]

    @property
    def counts(self) -> dict[str, int]:
        valid = self.valid_rows
        return {"rows": len(self.rows), "create": sum(r.action == "create" for r in valid),
                "update": sum(r.action == "update" for r in valid), "errors": len(self.rows) - len(valid),
                "valid": len(valid)}


def _column_length(column: str) -> int | None:
    if column == "notes":
        return NOTES_MAX
    return getattr(Asset.__table__.c[column].type, "length", None)


def _parse_cells(row: Row) -> None:
    """Field by field: required values, choices, formats (validation.py) and lengths."""
    cells = row.cells
    kind = cells["kind"].strip().lower()
    if not kind:
        row.errors.append("kind: required.")
    elif kind not in AssetKind.__members__.values():
        row.errors.append(f"kind: unknown kind {kind!r}; use one of {', '.join(k.value for k in AssetKind)}.")
    else:
        row.kind = AssetKind(kind)
    if "status" in cells and cells["status"].strip():
        status = cells["status"].strip().lower()
        if status in Status.__members__.values():
            row.status = Status(status)
        else:
            row.errors.append(f"status: unknown status {status!r}; use one of {', '.join(s.value for s in Status)}.")
    if "holder" in cells:
        row.holder = normalise_username(cells["holder"])
    for column in _VALUE_COLUMNS:
        if column not in cells:
            continue
        raw = cells[column] if column == "notes" else cells[column].strip()
        if not raw.strip():
            row.values[column] = None
            continue
        try:
            if column == "tag":
                value = validation.tag(raw)
            elif column in _FIELD_CHECKS:
                value = _FIELD_CHECKS[column](raw)
            else:
                value = raw
        except ValueError as exc:
            row.errors.append(f"{column}: {exc}")
            continue
        if column == "device_type" and value not in DEVICE_TYPE_NAMES:
            row.errors.append(f"device_type: unknown device type {value!r}.")
            continue
        limit = _column_length(column)
        if limit and isinstance(value, str) and len(value) > limit:
            row.errors.append(f"{column}: at most {limit} characters.")
            continue
        row.values[column] = value
    if row.values.get("name", "") is None:
        row.errors.append("name: required.")


def _mark_duplicates(rows: list[Row]) -> None:
    """The same tag, serial or IMEI on more than one row of the file."""
    for column, label in services.UNIQUE_FIELDS.items():
        seen: dict[Any, list[Row]] = defaultdict(list)
        for row in rows:
            if row.values.get(column):
                seen[row.values[column]].append(row)
        for value, same in seen.items():
            if len(same) > 1:
                numbers = ", ".join(str(r.number) for r in same)
                for row in same:
                    row.errors.append(f"{column}: {value} is on rows {numbers} of the file; a {label} "
                                      "belongs to one asset.")


_SNAPSHOT_COLUMNS = ("id", "tag", "serial", "imei", "kind", "status", "holder_id", *sorted(KIND_SPECIFIC_FIELDS))


def _existing(column: str, values: set) -> dict[Any, dict]:
    """Existing assets by `column`, as plain dicts (nothing for the session to keep track of)."""
    found: dict[Any, dict] = {}
    values = sorted(values)
    target = getattr(Asset, column)
    for start in range(0, len(values), LOOKUP_CHUNK):
        chunk = values[start:start + LOOKUP_CHUNK]
        query = select(*(getattr(Asset, c) for c in _SNAPSHOT_COLUMNS)).where(target.in_(chunk))
        for mapping in db.session.execute(query).mappings():
            found[mapping[column]] = dict(mapping)
    return found


def _people(usernames: set[str]) -> dict[str, tuple[int, bool]]:
    people: dict[str, tuple[int, bool]] = {}
    usernames = sorted(usernames)
    for start in range(0, len(usernames), LOOKUP_CHUNK):
        chunk = usernames[start:start + LOOKUP_CHUNK]
        for user_id, username, active in db.session.execute(
                select(User.id, User.username, User.active).where(User.username.in_(chunk))):
            people[username] = (user_id, active)
    return people


def plan_lifecycle(status: Status, holder_id: int | None, target: Status | None,
                   target_holder_id: int | None) -> list[tuple]:
    """The checkin/checkout/status steps from (status, holder) to (target, target holder).

    `target` None keeps the status the holder change leads to. Raises ValueError with the reason
    when the lifecycle (choices.TRANSITIONS) does not allow it; services enforce the same rules.
    """
    steps: list[tuple] = []
    if target_holder_id != holder_id:
        if holder_id is not None:
            steps.append(("checkin",))
            status = CHECKIN_STATUS
        if target_holder_id is not None:
            if not status.can_move_to(CHECKOUT_STATUS):
                raise ValueError(f"an asset that is {status.label.lower()} cannot be checked out; "
                                 "move it to stock first.")
            steps.append(("checkout", target_holder_id))
            status = CHECKOUT_STATUS
    if target is not None and target != status:
        if target_holder_id is not None and target not in HELD_STATUSES:
            raise ValueError(f"an asset with a holder cannot be {target.label.lower()}; leave holder empty "
                             "to check it in.")
        if target_holder_id is None and target in (Status.DEPLOYED, Status.PENDING_RETURN):
            raise ValueError(f"{target.label.lower()} needs a holder.")
        if not status.can_move_to(target):
            allowed = ", ".join(s.label.lower() for s in status.allowed_next) or "none"
            raise ValueError(f"cannot go from {status.label.lower()} to {target.label.lower()} "
                             f"(allowed next: {allowed}).")
        steps.append(("status", target))
    return steps


def _match(row: Row, by_tag: dict, by_serial: dict, by_imei: dict) -> dict | None:
    """The existing asset this row updates (tag first, then serial), after checking clashes."""
    tag, serial, imei = row.values.get("tag"), row.values.get("serial"), row.values.get("imei")
    asset = by_tag.get(tag) if tag else None
    if asset is None and serial:
        asset = by_serial.get(serial)
    if asset is not None:
        row.action, row.asset_id, row.current_tag = "update", asset["id"], asset["tag"]
    for column, value, index in (("tag", tag, by_tag), ("serial", serial, by_serial), ("imei", imei, by_imei)):
        other = index.get(value) if value else None
        if other is not None and other["id"] != row.asset_id:
            row.errors.append(f"{column}: {value} belongs to another asset ({other['tag']}).")
    return asset


def _plan(row: Row, asset: dict | None, people: dict) -> None:
    """Action, kind rules (services.check_kind_fields) and the lifecycle steps for a parsed row."""
    holder_id = None
    if row.holder:
        person = people.get(row.holder)
        if person is None or not person[1]:
            row.errors.append(f"holder: no active person with username {row.holder!r}.")
            return
        holder_id = person[0]
    row.holder_id = holder_id
    if asset is None:
        row.action = "create"
        try:
            services.check_kind_fields(row.kind, row.values)
        except DomainError as exc:
            row.errors.append(exc.detail)
        try:
            if holder_id is None and (row.status is None or row.status not in HELD_STATUSES):
                row.initial_status = row.status or Status.IN_STOCK
            else:
                row.steps = plan_lifecycle(Status.IN_STOCK, None, row.status, holder_id)
        except ValueError as exc:
            row.errors.append(f"status: {exc}")
        return
    if row.values.get("tag") is None:
        row.values.pop("tag", None)  # an empty tag cell keeps the tag; a tag cannot be cleared
    if row.kind.value != asset["kind"]:
        row.errors.append(f"kind: {asset['tag']} is a {AssetKind(asset['kind']).label.lower()}; "
                          "import does not change an asset's kind.")
        return
    merged = {f: asset[f] for f in KIND_SPECIFIC_FIELDS} | row.values
    try:
        services.check_kind_fields(row.kind, merged)
    except DomainError as exc:
        row.errors.append(exc.detail)
    target_holder = asset["holder_id"] if row.holder is None else holder_id
    try:
        row.steps = plan_lifecycle(Status(asset["status"]), asset["holder_id"], row.status, target_holder)
    except ValueError as exc:
        row.errors.append(f"status/holder: {exc}")


def check(data: bytes) -> Preview:
    """Parse and check every row of an uploaded file without writing anything.

    Raises UnusableFile when the file as a whole cannot be used; row problems are in the rows.
    """
    columns, records = _records(_decode(data))
    rows, parsed = [], []
    for number, cells in records:
        row = Row(number=number, cells={c: unescape_cell(v) for c, v in zip(columns, cells)})
        rows.append(row)
        if len(cells) != len(columns):
            row.errors.append(f"the row has {len(cells)} cells; the header has {len(columns)}.")
            continue
        _parse_cells(row)
        parsed.append(row)
    _mark_duplicates(parsed)
    by_tag = _existing("tag", {r.values["tag"] for r in parsed if r.values.get("tag")})
    by_serial = _existing("serial", {r.values["serial"] for r in parsed if r.values.get("serial")})
    by_imei = _existing("imei", {r.values["imei"] for r in parsed if r.values.get("imei")})
    people = _people({r.holder for r in parsed if r.holder})
    targets: dict[int, list[Row]] = defaultdict(list)
    for row in parsed:
        asset = _match(row, by_tag, by_serial, by_imei)
        if not row.errors:
            _plan(row, asset, people)
        if row.asset_id is not None:
            targets[row.asset_id].append(row)
    for same in targets.values():
        # Rows sharing a tag or serial were reported above; this catches one by tag, one by serial.
        if len(same) > 1 and len({r.values.get("tag") for r in same}) > 1 \
                and len({r.values.get("serial") for r in same}) > 1:
            numbers = ", ".join(str(r.number) for r in same)
            for row in same:
                row.errors.append(f"rows {numbers} all update {row.current_tag}; keep one.")
    return Preview(columns=columns, rows=rows)


# --- importing ---------------------------------------------------------------------------------

def refusal(preview: Preview, *, valid_only: bool) -> str | None:
    """Why this file cannot be imported as asked, or None."""
    counts = preview.counts
    if counts["errors"] and not valid_only:
        return (f"{counts['errors']} of {counts['rows']} rows have errors, so nothing was imported. Fix the file, "
                "or import only the valid rows.")
    if not counts["valid"]:
        return "No row of the file is valid; nothing was imported."
    return None


def _apply_row(row: Row, *, by) -> str:
    """Write one checked row; returns "created", "updated" or "skipped" (nothing to change)."""
    if row.action == "create":
        asset = services.create_asset(row.kind, row.values, by=by, status=row.initial_status,
                                      event=EventKind.IMPORTED)
        changed = True
    else:
        asset = services.get_asset(row.asset_id)
        changed = bool(services.update_asset(asset, row.values, by=by, event=EventKind.IMPORTED))
    for step in row.steps:
        if step[0] == "checkin":
            services.checkin(asset, by=by)
        elif step[0] == "checkout":
            services.checkout(asset, db.session.get(User, step[1]), by=by)
        else:
            services.change_status(asset, step[1], by=by)
    if row.action == "create":
        return "created"
    return "updated" if changed or row.steps else "skipped"


def apply(preview: Preview, *, by, valid_only: bool, progress=None) -> dict[str, int]:
    """Write a checked file through the asset services; the caller's boundary commits.

    Nothing is written unless every row is valid or `valid_only` is given. If a service still
    refuses a row (the data changed since the check), the error names the row and the caller
    rolls everything back. Rows with a tag go first, so a tag given in the file is taken before
    the automatic IT-nnnnnn tags of tagless rows are handed out.

    Returns counts: created, updated, skipped (rows that matched an asset and changed nothing)
    and errors (rows with errors, left out).
    """
    reason = refusal(preview, valid_only=valid_only)
    if reason:
        raise ValidationFailed(reason)
    rows = sorted(preview.valid_rows, key=lambda r: not (r.values.get("tag") or r.current_tag))
    counts = {"created": 0, "updated": 0, "skipped": 0, "errors": preview.counts["errors"]}
    if progress is not None:
        progress.set_total(len(rows))
    for row in rows:
        try:
            outcome = _apply_row(row, by=by)
        except DomainError as exc:
            raise ValidationFailed(f"Row {row.number} ({row.label}): {exc.detail} Nothing was imported.") from None
        counts[outcome] += 1
        if progress is not None:
            progress.advance(message=f"row {row.number}: {row.label}")
    if progress is not None:
        progress.note(", ".join(f"{count} {name}" for name, count in counts.items()))
    return counts


def import_file(data: bytes, *, by, valid_only: bool, progress=None) -> dict[str, int]:
    """check() then apply(), for a job started some time after the preview: the data may have moved."""
    return apply(check(data), by=by, valid_only=valid_only, progress=progress)


# --- uploads kept between preview and confirm --------------------------------------------------

def _uploads_dir() -> Path:
    path = Path(current_app.config["ITOPS_INSTANCE_DIR"]) / "imports"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _upload_path(import_id: str, owner_id: int) -> Path:
    # The owner is part of the name: someone else's id finds no file and gets a 404.
    if not _IMPORT_ID.fullmatch(import_id or ""):
        raise NotFound("No such import.")
    return _uploads_dir() / f"u{int(owner_id)}-{import_id}.csv"


def store_upload(data: bytes, *, owner_id: int) -> str:
    """Keep an uploaded file (mode 0600) until its uploader confirms it; returns its random id."""
    directory = _uploads_dir()
    cutoff = time.time() - UPLOAD_MAX_AGE_SECONDS
    for old in directory.glob("u*-*.csv"):
        try:
            if old.stat().st_mtime < cutoff:
                old.unlink()
        except FileNotFoundError:
            pass
    import_id = secrets.token_urlsafe(24)
    fd = os.open(_upload_path(import_id, owner_id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return import_id


_GONE = "No such import: it was confirmed already, is older than a day, or was uploaded by someone else."


def load_upload(import_id: str, *, owner_id: int) -> bytes:
    try:
        return _upload_path(import_id, owner_id).read_bytes()
    except FileNotFoundError:
        raise NotFound(_GONE) from None


def discard_upload(import_id: str, *, owner_id: int) -> None:
    """Take the file away so a second confirm (a double click) cannot import it again."""
    try:
        _upload_path(import_id, owner_id).unlink()
    except FileNotFoundError:
        raise NotFound(_GONE) from None

"""Ticket attachments: type checked by content, stored under a random name outside the web root.

What a file *is* comes from its first bytes, not its name; the name's extension must agree with the
content, so a script renamed to .png is refused. Files are only ever served as downloads.
"""
from __future__ import annotations

import hashlib
import os
import secrets
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from flask import current_app, send_file

from itops.core.errors import NotFound, ValidationFailed

MAX_FILENAME = 255
READ_CHUNK = 64 * 1024

# detected type -> (content type, extensions the name may have)
ALLOWED = {
    "png": ("image/png", {".png"}),
    "jpeg": ("image/jpeg", {".jpg", ".jpeg"}),
    "gif": ("image/gif", {".gif"}),
    "webp": ("image/webp", {".webp"}),
    "pdf": ("application/pdf", {".pdf"}),
    "text": ("text/plain", {".txt", ".log", ".csv", ".json", ".xml", ".yaml", ".yml", ".conf", ".cfg", ".ini", ".md"}),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", {".docx"}),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", {".xlsx"}),
    "pptx": ("application/vnd.openxmlformats-officedocument.presentationml.presentation", {".pptx"}),
    "zip": ("application/zip", {".zip"}),
}
ALLOWED_EXTENSIONS = sorted({ext for _, exts in ALLOWED.values() for ext in exts})
_OFFICE_PARTS = {"word/": "docx", "xl/": "xlsx", "ppt/": "pptx"}


@dataclass(frozen=True)
class StoredFile:
    filename: str
    content_type: str
    size: int
    sha256: str
    storage_name: str


def storage_dir() -> Path:
    path = Path(current_app.config["ITOPS_INSTANCE_DIR"]) / "attachments"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def clean_filename(name: str) -> str:
    """The name as shown and offered on download: no path parts, no control characters."""
    name = os.path.basename((name or "").replace("\\", "/")).strip()
    name = "".join(ch for ch in name if ch.isprintable() and ch not in '"')
    if not name or name in (".", ".."):
        raise ValidationFailed("The file has no usable name.", errors={"attachments": ["Give the file a name."]})
    return name[-MAX_FILENAME:]


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:  # a multi-byte character cut at the end of the sample is fine
        return exc.start >= len(head) - 3
    return True


def detect(path: Path, head: bytes) -> str | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except zipfile.BadZipFile:
            return None
        if "[Content_Types].xml" in names:
            for prefix, kind in _OFFICE_PARTS.items():
                if any(n.startswith(prefix) for n in names):
                    return kind
        return "zip"
    return "text" if _is_text(head) else None


def store(stream: BinaryIO, filename: str) -> StoredFile:
    """Copy an upload to storage within the size limit, check its type, and describe it."""
    name = clean_filename(filename)
    limit = current_app.config["ITOPS_ATTACHMENT_MAX_BYTES"]
    storage_name = secrets.token_hex(16)
    target = storage_dir() / storage_name
    digest, size, head = hashlib.sha256(), 0, b""
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(READ_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise ValidationFailed(f"{name} is larger than {limit // 1048576} MiB.",
                                           errors={"attachments": ["Too large."]})
                if len(head) < 8192:
                    head += chunk[:8192 - len(head)]
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise ValidationFailed(f"{name} is empty.", errors={"attachments": ["Empty file."]})
        kind = detect(target, head)
        extension = os.path.splitext(name)[1].lower()
        if kind is None or extension not in ALLOWED[kind][1]:
            raise ValidationFailed(
                f"{name} is not an allowed file type (or its name does not match its content). "
                f"Allowed: {', '.join(ALLOWED_EXTENSIONS)}.", errors={"attachments": ["File type not allowed."]})
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return StoredFile(filename=name, content_type=ALLOWED[kind][0], size=size, sha256=digest.hexdigest(),
                      storage_name=storage_name)


def path_of(storage_name: str) -> Path:
    return storage_dir() / storage_name


# A sandbox with nothing allowed, should a browser open the file anyway.
DOWNLOAD_CSP = "sandbox; default-src 'none'"


def download_response(item):
    """Always a download, never rendered by the browser: the detected type, no sniffing, no caching."""
    path = path_of(item.storage_name)
    if not path.is_file():
        raise NotFound(f"The file {item.filename} is missing from storage.")
    response = send_file(path, mimetype=item.content_type, as_attachment=True, download_name=item.filename,
                         max_age=0, etag=False, conditional=False)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = DOWNLOAD_CSP
    response.headers["Cache-Control"] = "private, no-store"
    return response


_PENDING_KEY = "itops_new_attachment_files"


def track_until_commit(session, storage_name: str) -> None:
    """Remember a file written for this transaction: if the transaction rolls back, the file goes too."""
    session.info.setdefault(_PENDING_KEY, []).append((Path(current_app.config["ITOPS_INSTANCE_DIR"]), storage_name))


def install_cleanup() -> None:
    """Session hooks (installed by the app factory): forget files on commit, delete them on rollback."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    if event.contains(Session, "after_rollback", _after_rollback):
        return
    event.listen(Session, "after_commit", _after_commit)
    event.listen(Session, "after_rollback", _after_rollback)


def _after_commit(session) -> None:
    session.info.pop(_PENDING_KEY, None)


def _after_rollback(session) -> None:
    for instance_dir, name in session.info.pop(_PENDING_KEY, []):
        (instance_dir / "attachments" / name).unlink(missing_ok=True)

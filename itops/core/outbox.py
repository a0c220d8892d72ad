"""The email outbox: messages are queued in the caller's transaction and sent later, with retry and backoff.

Queueing. A service calls queue() in the same transaction as the change it reports, so a
rolled-back change sends nothing and a committed one always has its message. Each row has one
recipient. A `dedup_key` (e.g. "ticket:42:reply:17:to:eve@example.org") makes queueing the same
notification twice a no-op: the insert is `INSERT ... ON CONFLICT (dedup_key) DO NOTHING`, which
is also right when two transactions queue the same key at once (the second waits for the first and
then does nothing, or inserts if the first rolled back).

Sending. send_due() is task-boundary code (the scheduler, or `flask itops outbox send`): it works
in its own session and commits as it goes, never the caller's transaction.

1. Claim: one UPDATE moves up to CLAIM_BATCH due rows to `sending` with a fresh claim token, and
   commits before any SMTP traffic. On PostgreSQL the candidate rows are picked with
   `FOR UPDATE SKIP LOCKED`, so two senders take different rows instead of queueing behind each
   other; on SQLite the single UPDATE is atomic (one writer at a time) and re-checks the due
   condition. Either way each sender then reads back only the rows carrying its own token, so no
   row is handed to two senders.
2. Send each claimed message over one SMTP connection per batch, and commit each outcome at once,
   so a crash after sending one message does not resend the others:
   - accepted: `sent`, with sent_at;
   - temporary failure (connection refused, timeout, TLS or login failure, disconnect, a 4xx
     reply, a refused sender): back to `pending` with exponential backoff and jitter (1, 2, 4 ...
     minutes, capped at one hour); the 10th failed attempt marks it `failed`;
   - permanent failure (a 5xx refusal of the recipient or of the message): `failed` at once.
   When the server cannot be reached, the rest of the batch is rescheduled and the run stops.
3. A message left in `sending` for more than STUCK_AFTER (its sender crashed or was killed between
   the claim and recording the outcome) is claimed again. Delivery is therefore at least once in
   that window: the crashed sender may have handed the message over just before it died. That is
   the right trade for notifications (a rare duplicate beats a lost message, and exactly-once is
   not possible over SMTP anyway: a connection lost after DATA leaves the outcome unknown too).
   The Message-ID is generated at queue time and reused on every attempt, so mail clients and
   servers that de-duplicate by Message-ID show one message. STUCK_AFTER must stay longer than
   one batch can take (CLAIM_BATCH messages at ITOPS_SMTP_TIMEOUT each).

Attempts are counted when a message is claimed, so a message that crashes its sender every time
still ends as `failed` after MAX_ATTEMPTS rather than looping for ever.

Without ITOPS_SMTP (no ITOPS_SMTP_HOST) nothing is sent: messages wait in the outbox and
send_due() logs that and returns. Message bodies and the SMTP password are never logged.
"""
from __future__ import annotations

import enum
import functools
import logging
import random
import re
import secrets
import smtplib
import ssl
import sys
import uuid
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from urllib.parse import urlsplit

import click
from flask import current_app, has_app_context
from flask.cli import AppGroup
from sqlalchemy import JSON, Index, String, Text, and_, func, or_, select, update
from sqlalchemy.orm import Mapped, Session, make_transient_to_detached, mapped_column

from itops.config import SmtpSettings
from itops.core.database import UTCDateTime, utcnow
from itops.core.errors import ValidationFailed
from itops.extensions import db

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
BACKOFF_FIRST_SECONDS = 60
BACKOFF_CAP_SECONDS = 3600
STUCK_AFTER = timedelta(minutes=10)
CLAIM_BATCH = 20  # messages per claim and per SMTP connection

SUBJECT_MAX = 500
ADDRESS_MAX = 254
DEDUP_KEY_MAX = 255
ERROR_MAX = 1000


class OutboxState(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class OutboxMessage(db.Model):
    __tablename__ = "outbox_messages"
    __table_args__ = (
        # The sender's query: pending rows whose next attempt is due (and stuck `sending` rows).
        Index("ix_outbox_messages_state_next", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    to_address: Mapped[str] = mapped_column(String(ADDRESS_MAX))
    subject: Mapped[str] = mapped_column(String(SUBJECT_MAX))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    headers: Mapped[dict | None] = mapped_column(JSON)  # extra headers: Reply-To, References, In-Reply-To ...
    dedup_key: Mapped[str | None] = mapped_column(String(DEDUP_KEY_MAX), unique=True)
    message_id: Mapped[str] = mapped_column(String(255), unique=True)  # reused on every attempt
    state: Mapped[str] = mapped_column(String(16), default=OutboxState.PENDING.value)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    claim_token: Mapped[str | None] = mapped_column(String(32), index=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


# ---------------------------------------------------------------------------------------------
# Queueing (services call this inside their transaction)
# ---------------------------------------------------------------------------------------------

# Control characters other than TAB; CR and LF would let a value start a header of its own.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# RFC 5322 field-name: printable ASCII except the colon.
_HEADER_NAME = re.compile(r"^[!-9;-~]{1,76}$")
# Headers the outbox sets itself or that would change who receives the message or how it is built.
RESERVED_HEADERS = frozenset({
    "from", "sender", "to", "cc", "bcc", "subject", "date", "message-id", "return-path", "mime-version",
})


def check_address(value) -> str:
    """A single addr-spec (`user@example.org`, no display name, no list) or ValueError."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("an email address is required")
    return _checked_address(value.strip())


@functools.lru_cache(maxsize=4096)
def _checked_address(address: str) -> str:
    # Cached: the same people and team addresses come back all the time, and parsing one costs more
    # than the rest of queueing its message. (A refusal raises, so it is not cached.)
    if _CONTROL.search(address):
        raise ValueError("an email address cannot contain line breaks or control characters")
    if len(address) > ADDRESS_MAX or not address.isascii():
        raise ValueError(f"an email address must be ASCII and at most {ADDRESS_MAX} characters")
    try:
        parsed = Address(addr_spec=address)
    except Exception:  # the email parser raises several kinds (ValueError, IndexError, defects)
        parsed = None
    if parsed is None or not parsed.username or not parsed.domain or parsed.addr_spec != address:
        raise ValueError(f"{address!r} is not a single email address")
    return parsed.addr_spec


def _check_headers(headers: dict | None, errors: dict) -> dict | None:
    if not headers:
        return None
    clean: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            errors.setdefault("headers", []).append(f"{name!r} is not a valid header name")
        elif name.lower() in RESERVED_HEADERS or name.lower().startswith("content-"):
            errors.setdefault("headers", []).append(f"{name} is set by the outbox and cannot be given")
        elif not isinstance(value, str) or _CONTROL.search(value):
            errors.setdefault("headers", []).append(f"{name} must be text on one line")
        elif name.lower() == "reply-to":
            try:
                clean[name] = check_address(value)
            except ValueError as exc:
                errors.setdefault("headers", []).append(f"Reply-To: {exc}")
        else:
            clean[name] = value
    return clean or None


def _message_id_domain() -> str:
    settings = current_app.config.get("ITOPS_SMTP") if has_app_context() else None
    if settings is not None:
        domain = parseaddr(settings.sender)[1].rpartition("@")[2]
        if domain:
            return domain
    if has_app_context():
        host = urlsplit(current_app.config.get("ITOPS_BASE_URL") or "").hostname
        if host:
            return host
    return "itops.invalid"


def message(to: str, subject: str, body: str, *, dedup_key: str | None = None, headers: dict | None = None,
            body_html: str | None = None) -> dict:
    """One message for one recipient, checked, as the row `queue`/`queue_many` write.

    Raises ValidationFailed for a bad address, a subject or header with a line break (header
    injection), or a reserved header.
    """
    errors: dict = {}
    address = None
    try:
        address = check_address(to)
    except ValueError as exc:
        errors["to"] = [str(exc)]
    if not isinstance(subject, str) or _CONTROL.search(subject):
        errors["subject"] = ["the subject must be text on one line"]
    elif len(subject) > SUBJECT_MAX:
        errors["subject"] = [f"the subject must be at most {SUBJECT_MAX} characters"]
    if not isinstance(body, str):
        errors["body"] = ["the body must be text"]
    if body_html is not None and not isinstance(body_html, str):
        errors["body_html"] = ["the HTML body must be text"]
    if dedup_key is not None and (not isinstance(dedup_key, str) or not dedup_key
                                  or len(dedup_key) > DEDUP_KEY_MAX):
        errors["dedup_key"] = [f"the dedup key must be 1 to {DEDUP_KEY_MAX} characters"]
    clean_headers = _check_headers(headers, errors)
    if errors:
        raise ValidationFailed("The email cannot be queued: " + "; ".join(
            text for texts in errors.values() for text in texts), errors=errors)

    now = utcnow()
    return dict(
        created_at=now, to_address=address, subject=subject.strip(), body_text=body, body_html=body_html,
        headers=clean_headers, dedup_key=dedup_key, state=OutboxState.PENDING.value, attempts=0,
        next_attempt_at=now, message_id=f"<{uuid.uuid4().hex}.outbox@{_message_id_domain()}>",
    )


def queue(to: str, subject: str, body: str, *, dedup_key: str | None = None, headers: dict | None = None,
          body_html: str | None = None) -> OutboxMessage | None:
    """Add one message for one recipient to the current transaction (and flush it).

    Returns the new message, or None when a message with `dedup_key` was queued before. Raises
    ValidationFailed as `message` does. The caller's boundary commits; a rollback drops the message.
    """
    values = message(to, subject, body, dedup_key=dedup_key, headers=headers, body_html=body_html)
    # Core, on the session's connection (so in its transaction): the ORM's execution and reading the
    # row back would cost three times the insert itself, twice for every new ticket.
    new_id = db.session.connection().execute(_insert_statement(db.engine.dialect.name), values).scalar_one_or_none()
    if new_id is None:
        log.debug("outbox: %s already queued, not queued again", values["dedup_key"])
        return None
    row = OutboxMessage(id=new_id, claim_token=None, claimed_at=None, last_error=None, sent_at=None, **values)
    make_transient_to_detached(row)  # the row as just written: persistent, without a SELECT
    db.session.add(row)
    return row


def queue_many(messages: list[dict]) -> None:
    """Add messages made by `message` to the current transaction in one statement (a batch of system
    work); one whose dedup key was queued before is left out, as `queue` does."""
    if messages:
        db.session.connection().execute(_insert_statement(db.engine.dialect.name, returning=False), messages)


@functools.cache
def _insert_statement(dialect: str, returning: bool = True):
    """INSERT ... ON CONFLICT (dedup_key) DO NOTHING [RETURNING id], built once per database kind."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(OutboxMessage).on_conflict_do_nothing(index_elements=["dedup_key"])
    return statement.returning(OutboxMessage.id) if returning else statement


def list_messages(*, state: str | None = None, limit: int = 50) -> list[OutboxMessage]:
    """The newest messages, optionally in one state."""
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if state:
        query = query.where(OutboxMessage.state == state)
    return list(db.session.scalars(query))


def count_waiting() -> int:
    """Messages that still wait to be sent (pending or being sent)."""
    return db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.state.in_([OutboxState.PENDING.value, OutboxState.SENDING.value])))


# ---------------------------------------------------------------------------------------------
# Sending (task boundary: commits its own work)
# ---------------------------------------------------------------------------------------------

def send_due(*, limit: int = 100, now: datetime | None = None, progress=None) -> dict:
    """Send up to `limit` due messages; returns counts {sent, retried, failed, skipped}.

    `skipped` is what is still due afterwards: everything when email is not configured, the rest
    when `limit` was reached or the server could not be reached. `progress` is optional and
    duck-typed like itops.core.jobs.Progress (set_total, advance). `now` lets tests move time.
    """
    settings: SmtpSettings | None = current_app.config.get("ITOPS_SMTP")
    now = now or utcnow()
    counts = {"sent": 0, "retried": 0, "failed": 0, "skipped": 0}
    # expire_on_commit=False: the claimed rows stay readable after each per-message commit.
    with Session(db.engine, expire_on_commit=False) as session:
        if settings is None:
            counts["skipped"] = _count_due(session, now)
            log.log(logging.WARNING if counts["skipped"] else logging.DEBUG,
                    "outbox: email is not configured (ITOPS_SMTP_HOST unset); %d due messages wait",
                    counts["skipped"])
            return counts
        counts["failed"] += _give_up_on_stuck(session, now)
        if progress is not None:
            progress.set_total(min(limit, _count_due(session, now)))
        remaining = limit
        while remaining > 0:
            batch = _claim(session, now, min(CLAIM_BATCH, remaining))
            if not batch:
                break
            remaining -= len(batch)
            if not _deliver(session, settings, batch, now, counts, progress):
                break  # the server cannot be reached: the rest waits for the next run
        counts["skipped"] = _count_due(session, now)
    if any(counts.values()):
        log.info("outbox: sent %(sent)d, retried %(retried)d, failed %(failed)d, still due %(skipped)d", counts)
    return counts


def backoff(attempts: int) -> timedelta:
    """Delay before the next attempt after `attempts` failed ones: 1, 2, 4 ... minutes (±10%), at most 1 h."""
    seconds = BACKOFF_FIRST_SECONDS * 2 ** min(max(attempts, 1) - 1, 16)
    return timedelta(seconds=min(BACKOFF_CAP_SECONDS, seconds * random.uniform(0.9, 1.1)))


def _due(now: datetime):
    return or_(
        and_(OutboxMessage.state == OutboxState.PENDING.value, OutboxMessage.next_attempt_at <= now),
        and_(OutboxMessage.state == OutboxState.SENDING.value, OutboxMessage.claimed_at < now - STUCK_AFTER,
             OutboxMessage.attempts < MAX_ATTEMPTS),
    )


def _count_due(session: Session, now: datetime) -> int:
    return session.scalar(select(func.count()).select_from(OutboxMessage).where(_due(now)))


def _give_up_on_stuck(session: Session, now: datetime) -> int:
    """Stuck messages that already used every attempt are not tried again."""
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.state == OutboxState.SENDING.value, OutboxMessage.claimed_at < now - STUCK_AFTER,
               OutboxMessage.attempts >= MAX_ATTEMPTS)
        .values(state=OutboxState.FAILED.value, claim_token=None, claimed_at=None,
                last_error=f"gave up after {MAX_ATTEMPTS} attempts; the sender stopped during the last one")
        .execution_options(synchronize_session=False))
    session.commit()
    return result.rowcount or 0


def _claim(session: Session, now: datetime, size: int) -> list[OutboxMessage]:
    """Mark up to `size` due messages as ours and commit, before any SMTP traffic."""
    token = secrets.token_hex(16)
    stuck = set(session.scalars(select(OutboxMessage.id).where(
        OutboxMessage.state == OutboxState.SENDING.value, OutboxMessage.claimed_at < now - STUCK_AFTER)))
    candidates = (select(OutboxMessage.id).where(_due(now))
                  .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(size))
    if session.get_bind().dialect.name == "postgresql":
        # Lock the candidates first and update them by id. (Not `id IN (SELECT ... SKIP LOCKED)` in
        # the UPDATE: PostgreSQL may run that subquery once per row, and as it skips the rows this
        # statement already changed, each run returns new ones and LIMIT no longer limits.)
        ids = list(session.scalars(candidates.with_for_update(skip_locked=True)))
        if not ids:
            session.commit()
            return []
        chosen = OutboxMessage.id.in_(ids)
    else:
        # One UPDATE with the candidates as a subquery: atomic, as SQLite has one writer at a time.
        chosen = OutboxMessage.id.in_(candidates)
    session.execute(
        update(OutboxMessage)
        # The due condition again, so that a row another sender claimed meanwhile is never taken.
        .where(chosen, _due(now))
        .values(state=OutboxState.SENDING.value, claim_token=token, claimed_at=now,
                attempts=OutboxMessage.attempts + 1)
        .execution_options(synchronize_session=False))
    session.commit()
    batch = list(session.scalars(select(OutboxMessage).where(OutboxMessage.claim_token == token)
                                 .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)))
    for message in batch:
        if message.id in stuck:
            log.warning("outbox: message %s was left in sending by a stopped sender; sending it again "
                        "with the same Message-ID", message.id)
    return batch


class _Outcome(enum.Enum):
    RETRY = "retry"          # temporary: try again later, the connection is still usable
    RETRY_RECONNECT = "reconnect"  # temporary, and the connection is gone
    FAIL = "fail"            # permanent: do not try again


def _reply_text(code: int, reply) -> str:
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", errors="replace")
    return f"{code} {reply}".strip()


def _classify(exc: BaseException) -> tuple[_Outcome, str]:
    """Map an smtplib/socket failure to what to do next, with a loggable error (no secrets)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(exc.recipients.values()), (0, b""))
        outcome = _Outcome.FAIL if 500 <= code < 600 else _Outcome.RETRY
        return outcome, "recipient refused: " + _reply_text(code, reply)
    if isinstance(exc, smtplib.SMTPSenderRefused):
        # A refused sender is a configuration problem (ITOPS_MAIL_FROM), not this message's: retry.
        return _Outcome.RETRY, "sender refused: " + _reply_text(exc.smtp_code, exc.smtp_error)
    if isinstance(exc, smtplib.SMTPDataError):
        outcome = _Outcome.FAIL if 500 <= exc.smtp_code < 600 else _Outcome.RETRY
        return outcome, "message refused: " + _reply_text(exc.smtp_code, exc.smtp_error)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return _Outcome.RETRY_RECONNECT, "login refused: " + _reply_text(exc.smtp_code, exc.smtp_error)
    if isinstance(exc, smtplib.SMTPResponseException):
        return _Outcome.RETRY_RECONNECT, _reply_text(exc.smtp_code, exc.smtp_error)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return _Outcome.RETRY_RECONNECT, f"server disconnected: {exc}"
    if isinstance(exc, TimeoutError):
        return _Outcome.RETRY_RECONNECT, "timed out"
    return _Outcome.RETRY_RECONNECT, f"{type(exc).__name__}: {exc}"


def _connect(settings: SmtpSettings) -> smtplib.SMTP:
    context = ssl.create_default_context()
    if settings.security == "tls":
        smtp = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout, context=context)
    else:
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    try:
        smtp.ehlo()
        if settings.security == "starttls":
            smtp.starttls(context=context)
            smtp.ehlo()
        if settings.username:
            smtp.login(settings.username, settings.password or "")
    except BaseException:
        smtp.close()
        raise
    return smtp


def _close(smtp: smtplib.SMTP | None) -> None:
    if smtp is None:
        return
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def build_email(message: OutboxMessage, sender: str) -> EmailMessage:
    email = EmailMessage()
    email["From"] = sender
    email["To"] = message.to_address
    email["Subject"] = message.subject
    # Date and Message-ID come from the row, so every attempt sends the same message.
    email["Date"] = format_datetime(message.created_at)
    email["Message-ID"] = message.message_id
    extra = message.headers or {}
    for name, value in extra.items():
        email[name] = value
    if not any(name.lower() == "auto-submitted" for name in extra):
        # RFC 3834: tells vacation responders not to answer, so notifications cannot start a mail loop.
        email["Auto-Submitted"] = "auto-generated"
    email.set_content(message.body_text)
    if message.body_html:
        email.add_alternative(message.body_html, subtype="html")
    return email


def _deliver(session: Session, settings: SmtpSettings, batch: list[OutboxMessage], now: datetime,
             counts: dict, progress) -> bool:
    """Send one claimed batch over one connection. Returns False when the server cannot be reached."""
    envelope_from = parseaddr(settings.sender)[1] or settings.sender
    smtp = None
    try:
        for index, message in enumerate(batch):
            if smtp is None:
                try:
                    smtp = _connect(settings)
                except Exception as exc:  # noqa: BLE001 - every failure to connect is retried later
                    _, error = _classify(exc)
                    log.warning("outbox: cannot reach %s:%s: %s", settings.host, settings.port, error)
                    for unsent in batch[index:]:
                        _record_failure(session, unsent, f"connect: {error}", now, counts, permanent=False)
                        _advance(progress)
                    return False
            try:
                smtp.send_message(build_email(message, settings.sender), from_addr=envelope_from,
                                  to_addrs=[message.to_address])
            except Exception as exc:  # noqa: BLE001 - classified below; nothing here is fatal to the run
                outcome, error = _classify(exc)
                if outcome is _Outcome.RETRY_RECONNECT:
                    smtp.close()
                    smtp = None
                if not isinstance(exc, (smtplib.SMTPException, OSError)):
                    log.error("outbox: unexpected %s while sending message %s", type(exc).__name__, message.id)
                _record_failure(session, message, error, now, counts, permanent=outcome is _Outcome.FAIL)
            else:
                _record_sent(session, message, now)
                counts["sent"] += 1
                log.debug("outbox: message %s sent", message.id)
            _advance(progress)
    finally:
        _close(smtp)
    return True


def _advance(progress) -> None:
    if progress is not None:
        progress.advance()


def _record_sent(session: Session, message: OutboxMessage, now: datetime) -> None:
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message.id, OutboxMessage.claim_token == message.claim_token)
        .values(state=OutboxState.SENT.value, sent_at=now, last_error=None, claim_token=None, claimed_at=None)
        .execution_options(synchronize_session=False))
    session.commit()


def _record_failure(session: Session, message: OutboxMessage, error: str, now: datetime, counts: dict, *,
                    permanent: bool) -> None:
    error = error[:ERROR_MAX]
    if permanent or message.attempts >= MAX_ATTEMPTS:
        values = dict(state=OutboxState.FAILED.value,
                      last_error=error if permanent else f"gave up after {message.attempts} attempts: {error}")
        counts["failed"] += 1
        log.warning("outbox: message %s failed: %s", message.id, values["last_error"])
    else:
        values = dict(state=OutboxState.PENDING.value, last_error=error,
                      next_attempt_at=now + backoff(message.attempts))
        counts["retried"] += 1
        log.info("outbox: message %s will be retried (attempt %d): %s", message.id, message.attempts, error)
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message.id, OutboxMessage.claim_token == message.claim_token)
        .values(claim_token=None, claimed_at=None, **values)
        .execution_options(synchronize_session=False))
    session.commit()


# ---------------------------------------------------------------------------------------------
# `flask itops outbox ...`
# ---------------------------------------------------------------------------------------------

outbox_cli = AppGroup("outbox", help="The email outbox: send due messages, list what is queued.")


class _CliProgress:
    """A click progress bar for send_due, shown only when there is more than one message."""

    def __init__(self, label: str):
        self.label = label
        self.bar = None

    def set_total(self, total: int) -> None:
        if total > 1 and self.bar is None:
            self.bar = click.progressbar(length=total, label=self.label, show_pos=True)
            self.bar.__enter__()

    def advance(self, steps: int = 1, message: str | None = None) -> None:
        if self.bar is not None:
            self.bar.update(steps)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@outbox_cli.command("send")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True,
              help="Send at most this many messages.")
def send_command(limit):
    """Send the messages that are due (what the scheduler does regularly)."""
    if current_app.config.get("ITOPS_SMTP") is None:
        waiting = count_waiting()
        db.session.rollback()
        click.secho(f"error: email is not configured (set ITOPS_SMTP_HOST); {waiting} message(s) wait "
                    "in the outbox", fg="red", err=True)
        sys.exit(1)
    bar = _CliProgress("sending email")
    try:
        counts = send_due(limit=limit, progress=bar)
    finally:
        bar.close()
    click.echo(", ".join(f"{name}: {count}" for name, count in counts.items()))


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


def _cut(text: str | None, width: int) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= width else text[:width - 1] + "…"


@outbox_cli.command("list")
@click.option("--state", type=click.Choice([s.value for s in OutboxState]), help="Only messages in this state.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
def list_command(state, limit):
    """The newest messages: recipient, subject, attempts, next attempt and last error."""
    messages = list_messages(state=state, limit=limit)
    if not messages:
        click.echo("no messages" + (f" in state {state}" if state else ""))
        return
    click.echo(f"{'id':>6}  {'state':8} {'to':30} {'subject':36} {'tries':>5}  {'next attempt':20} last error")
    for message in messages:
        next_attempt = message.next_attempt_at if message.state == OutboxState.PENDING else None
        click.echo(f"{message.id:>6}  {message.state:8} {_cut(message.to_address, 30):30} "
                   f"{_cut(message.subject, 36):36} {message.attempts:>5}  {_when(next_attempt):20} "
                   f"{_cut(message.last_error, 80)}")

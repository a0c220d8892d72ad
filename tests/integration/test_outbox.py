"""The email outbox against a real SMTP server (the aiosmtpd sink): queueing in the transaction,
delivery exactly once, retry with backoff while the server is down, permanent refusals,
concurrent senders, stuck messages, header injection, and the CLI."""
from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from itops.core import outbox
from itops.core.database import utcnow
from itops.core.errors import ValidationFailed
from itops.core.outbox import OutboxMessage, queue, send_due
from itops.extensions import db

from tests.peers.smtp import SENDER, settings_for


def rows() -> list[OutboxMessage]:
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def row_count() -> int:
    return db.session.scalar(select(func.count()).select_from(OutboxMessage))


def counts(sent=0, retried=0, failed=0, skipped=0) -> dict:
    return {"sent": sent, "retried": retried, "failed": failed, "skipped": skipped}


def test_a_queued_message_is_delivered_once_with_its_headers(mail):
    queued = queue("eve@example.org", "Ticket #42 for Zoë was updated", "Your ticket was closed.\n",
                   headers={"Reply-To": "helpdesk@example.org", "In-Reply-To": "<ticket-42@example.org>",
                            "References": "<ticket-42@example.org>"},
                   body_html="<p>Your ticket was <b>closed</b>.</p>")
    db.session.commit()
    assert queued.state == "pending" and queued.attempts == 0
    assert queued.message_id.startswith("<") and queued.message_id.endswith("@example.org>")

    assert send_due() == counts(sent=1)

    assert len(mail.messages) == 1
    received = mail.messages[0]
    assert received.mail_from == "helpdesk@example.org"
    assert received.rcpt_tos == ["eve@example.org"]
    message = received.message
    assert message["From"] == SENDER
    assert message["To"] == "eve@example.org"
    assert message["Subject"] == "Ticket #42 for Zoë was updated"
    assert message["Message-ID"] == queued.message_id
    assert message["Reply-To"] == "helpdesk@example.org"
    assert message["In-Reply-To"] == "<ticket-42@example.org>"
    assert message["References"] == "<ticket-42@example.org>"
    assert message["Date"]
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_body(("plain",)).get_content().rstrip() == "Your ticket was closed."
    assert "<b>closed</b>" in message.get_body(("html",)).get_content()

    [stored] = rows()
    assert stored.state == "sent" and stored.attempts == 1 and stored.sent_at is not None
    assert stored.last_error is None and stored.claim_token is None

    # Nothing is due any more: a second run (even much later) sends nothing.
    assert send_due(now=utcnow() + timedelta(days=1)) == counts()
    assert len(mail.messages) == 1


def test_a_dedup_key_makes_queueing_twice_a_no_op(mail):
    key = "ticket:42:reply:17:to:eve@example.org"
    first = queue("eve@example.org", "Reply on #42", "first", dedup_key=key)
    assert first is not None
    assert queue("eve@example.org", "Reply on #42 (again)", "second", dedup_key=key) is None
    db.session.commit()
    # Also across transactions, and after it was sent.
    assert queue("eve@example.org", "Reply on #42", "third", dedup_key=key) is None
    db.session.commit()
    assert send_due() == counts(sent=1)
    assert queue("eve@example.org", "Reply on #42", "fourth", dedup_key=key) is None
    # A different key is a different message.
    assert queue("eve@example.org", "Reply on #42", "other", dedup_key=key + ":x") is not None
    db.session.commit()
    assert row_count() == 2
    assert [r.message.get_content().rstrip() for r in mail.messages] == ["first"]


def test_two_transactions_queueing_the_same_key_at_once_make_one_message(app, mail):
    key = "ticket:7:created:to:ivy@example.org"
    first_queued, results, errors = threading.Event(), {}, []

    def first():
        try:
            with app.app_context():
                results["first"] = queue("ivy@example.org", "New ticket", "first", dedup_key=key) is not None
                first_queued.set()
                time.sleep(0.3)  # the second transaction tries while this one is still open
                db.session.commit()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
            first_queued.set()

    def second():
        try:
            with app.app_context():
                first_queued.wait(10)
                results["second"] = queue("ivy@example.org", "New ticket", "second", dedup_key=key) is not None
                db.session.commit()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert results == {"first": True, "second": False}
    assert row_count() == 1
    assert send_due() == counts(sent=1)
    assert [r.message.get_content().rstrip() for r in mail.messages] == ["first"]


def test_a_rolled_back_transaction_sends_nothing(mail, make_user):
    user = make_user(username="requester")
    user.display_name = "Changed, then rolled back"
    queue("eve@example.org", "You will never see this", "rolled back")
    db.session.rollback()

    assert row_count() == 0
    assert send_due(now=utcnow() + timedelta(hours=1)) == counts()
    assert mail.messages == []


def test_smtp_down_then_up_delivers_every_message_exactly_once(mail):
    queued = [queue(f"user{i}@example.org", f"Notice {i}", f"body {i}") for i in range(3)]
    db.session.commit()
    message_ids = {m.message_id for m in queued}

    mail.stop()
    before = utcnow()
    assert send_due() == counts(retried=3)
    for stored in rows():
        assert stored.state == "pending" and stored.attempts == 1
        assert stored.next_attempt_at > utcnow()
        # One minute of backoff, give or take the 10% jitter.
        assert before + timedelta(seconds=53) <= stored.next_attempt_at <= utcnow() + timedelta(seconds=67)
        assert "connect" in stored.last_error and "refused" in stored.last_error.lower()
        assert stored.claim_token is None

    # Not due yet: an immediate second run leaves them alone.
    assert send_due() == counts()
    assert {r.attempts for r in rows()} == {1}

    mail.start()
    assert send_due(now=utcnow() + timedelta(minutes=5)) == counts(sent=3)
    assert mail.by_message_id() == {message_id: 1 for message_id in message_ids}
    assert {(r.state, r.attempts) for r in rows()} == {("sent", 2)}
    assert send_due(now=utcnow() + timedelta(hours=3)) == counts()
    assert len(mail.messages) == 3


def test_backoff_doubles_and_is_capped_at_an_hour():
    for attempts, minutes in [(1, 1), (2, 2), (3, 4), (4, 8), (6, 32)]:
        delay = outbox.backoff(attempts).total_seconds()
        assert 0.9 * 60 * minutes <= delay <= 1.1 * 60 * minutes
    assert all(outbox.backoff(n).total_seconds() <= 3600 for n in range(7, 40))
    assert outbox.backoff(9).total_seconds() >= 3240


def test_after_the_last_attempt_a_message_is_failed(mail):
    queued = queue("eve@example.org", "Will give up", "body")
    db.session.commit()
    db.session.execute(update(OutboxMessage).where(OutboxMessage.id == queued.id)
                       .values(attempts=outbox.MAX_ATTEMPTS - 1))
    db.session.commit()
    mail.stop()
    assert send_due() == counts(failed=1)
    [stored] = rows()
    assert stored.state == "failed" and stored.attempts == outbox.MAX_ATTEMPTS
    assert stored.last_error.startswith(f"gave up after {outbox.MAX_ATTEMPTS} attempts")
    mail.start()
    assert send_due(now=utcnow() + timedelta(days=1)) == counts()
    assert mail.messages == []


def test_two_concurrent_senders_never_deliver_a_message_twice(app, mail):
    total = 3 * outbox.CLAIM_BATCH + 5  # several claims per sender
    message_ids = {queue(f"user{i}@example.org", f"Notice {i}", f"body {i}").message_id for i in range(total)}
    db.session.commit()
    mail.delay = 0.01

    start = threading.Barrier(2)
    results, errors = [], []

    def sender():
        try:
            with app.app_context():
                start.wait(10)
                results.append(send_due(limit=1000))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert len(results) == 2
    assert sum(r["sent"] for r in results) == total
    # The sink's delay keeps the first sender busy long enough that both really ran at once.
    assert all(r["sent"] > 0 for r in results), results
    assert sum(r["retried"] + r["failed"] for r in results) == 0
    assert mail.by_message_id() == {message_id: 1 for message_id in message_ids}
    assert {(r.state, r.attempts) for r in rows()} == {("sent", 1)}


def test_limit_caps_one_run_and_the_rest_stays_due(mail):
    for i in range(5):
        queue(f"user{i}@example.org", f"Notice {i}", "body")
    db.session.commit()
    assert send_due(limit=2) == counts(sent=2, skipped=3)
    assert len(mail.messages) == 2
    assert send_due(limit=100) == counts(sent=3)
    assert sorted(r.rcpt_tos[0] for r in mail.messages) == [f"user{i}@example.org" for i in range(5)]


def test_a_permanent_refusal_fails_at_once_and_a_temporary_one_is_retried(mail):
    mail.refuse.add("gone@example.org")
    mail.defer.add("busy@example.org")
    queue("gone@example.org", "For someone who left", "body")
    queue("busy@example.org", "For a full mailbox", "body")
    queue("eve@example.org", "For Eve", "body")
    db.session.commit()

    assert send_due() == counts(sent=1, retried=1, failed=1)
    gone, busy, eve = rows()
    assert gone.state == "failed" and gone.attempts == 1 and "550" in gone.last_error
    assert busy.state == "pending" and busy.attempts == 1 and "451" in busy.last_error
    assert busy.next_attempt_at > utcnow()
    assert eve.state == "sent"
    assert [r.rcpt_tos for r in mail.messages] == [["eve@example.org"]]

    mail.defer.clear()
    assert send_due(now=utcnow() + timedelta(hours=2)) == counts(sent=1)
    gone, busy, _ = rows()
    assert gone.state == "failed" and gone.attempts == 1  # never tried again
    assert busy.state == "sent" and busy.attempts == 2
    assert [r.rcpt_tos for r in mail.messages] == [["eve@example.org"], ["busy@example.org"]]


def test_a_message_stuck_in_sending_is_sent_again_with_the_same_message_id(mail):
    crashed = queue("eve@example.org", "Claimed by a sender that crashed", "body")
    busy = queue("ivy@example.org", "Claimed by a sender still working", "body")
    exhausted = queue("zoe@example.org", "Crashed on its last attempt", "body")
    db.session.commit()
    now = utcnow()
    for message, claimed_at, attempts in [(crashed, now - timedelta(minutes=11), 1),
                                          (busy, now - timedelta(minutes=1), 1),
                                          (exhausted, now - timedelta(minutes=30), outbox.MAX_ATTEMPTS)]:
        db.session.execute(update(OutboxMessage).where(OutboxMessage.id == message.id).values(
            state="sending", claim_token="a-crashed-sender", claimed_at=claimed_at, attempts=attempts))
    db.session.commit()

    assert send_due(now=now) == counts(sent=1, failed=1)
    by_id = {r.id: r for r in rows()}
    assert by_id[crashed.id].state == "sent" and by_id[crashed.id].attempts == 2
    assert by_id[busy.id].state == "sending"  # its sender may still be talking to the server
    assert by_id[exhausted.id].state == "failed"
    assert [r.message["Message-ID"] for r in mail.messages] == [crashed.message_id]

    assert send_due(now=now + outbox.STUCK_AFTER) == counts(sent=1)
    assert mail.by_message_id() == {crashed.message_id: 1, busy.message_id: 1}


@pytest.mark.parametrize("to, subject, headers, field", [
    ("eve@example.org", "Hello\r\nBcc: evil@example.net", None, "subject"),
    ("eve@example.org", "Hello\nX-Evil: 1", None, "subject"),
    ("eve@example.org\r\nBcc: evil@example.net", "Hello", None, "to"),
    ("eve@example.org, evil@example.net", "Hello", None, "to"),
    ("Eve <eve@example.org>", "Hello", None, "to"),
    ("not an address", "Hello", None, "to"),
    ("eve@example.org", "Hello", {"Bcc": "evil@example.net"}, "headers"),
    ("eve@example.org", "Hello", {"Content-Type": "text/html"}, "headers"),
    ("eve@example.org", "Hello", {"X-Note": "fine\r\nBcc: evil@example.net"}, "headers"),
    ("eve@example.org", "Hello", {"Bad Name": "x"}, "headers"),
    ("eve@example.org", "Hello", {"Reply-To": "a@example.org, evil@example.net"}, "headers"),
])
def test_header_injection_and_bad_addresses_are_refused(mail, to, subject, headers, field):
    with pytest.raises(ValidationFailed) as refused:
        queue(to, subject, "body", headers=headers)
    assert field in refused.value.errors
    db.session.commit()
    assert row_count() == 0
    assert send_due() == counts()
    assert mail.messages == []


def test_without_smtp_configured_messages_wait(app):
    assert app.config["ITOPS_SMTP"] is None
    queue("eve@example.org", "Waits", "body")
    db.session.commit()
    assert send_due() == counts(skipped=1)
    [stored] = rows()
    assert stored.state == "pending" and stored.attempts == 0 and stored.last_error is None


def test_neither_the_body_nor_the_password_is_logged(app, mail, caplog):
    # The sink offers no AUTH on a plain connection, so the login fails: a temporary error.
    app.config["ITOPS_SMTP"] = settings_for(mail, username="mailer", password="hunter2-do-not-log")
    queue("eve@example.org", "Secret-free subject", "BODY-MUST-NOT-BE-LOGGED")
    db.session.commit()
    with caplog.at_level(logging.DEBUG):
        assert send_due() == counts(retried=1)
        app.config["ITOPS_SMTP"] = settings_for(mail)
        mail.refuse.add("eve@example.org")
        assert send_due(now=utcnow() + timedelta(minutes=5)) == counts(failed=1)
    [stored] = rows()
    assert "550" in stored.last_error
    assert caplog.records, "the outbox logs its outcomes"
    for text in (caplog.text, stored.last_error, repr(settings_for(mail, password="hunter2-do-not-log"))):
        assert "hunter2-do-not-log" not in text
        assert "BODY-MUST-NOT-BE-LOGGED" not in text


def run_cli(app, *args):
    return app.test_cli_runner().invoke(args=["itops", "outbox", *args])


def test_cli_send_and_list(app, mail):
    queue("eve@example.org", "First notice", "body 1")
    queue("ivy@example.org", "Second notice", "body 2")
    db.session.commit()

    result = run_cli(app, "send")
    assert result.exit_code == 0, result.output
    assert "sending email" in result.output  # the progress bar's label: more than one message
    assert "sent: 2, retried: 0, failed: 0, skipped: 0" in result.output
    assert sorted(r.rcpt_tos[0] for r in mail.messages) == ["eve@example.org", "ivy@example.org"]

    mail.stop()
    queue("zoe@example.org", "Third notice", "body 3")
    db.session.commit()
    result = run_cli(app, "send", "--limit", "5")
    assert result.exit_code == 0, result.output
    assert "sending email" not in result.output  # one message: no bar
    assert "sent: 0, retried: 1, failed: 0, skipped: 0" in result.output

    pending = run_cli(app, "list", "--state", "pending")
    assert pending.exit_code == 0, pending.output
    assert "zoe@example.org" in pending.output and "Third notice" in pending.output
    assert "Connection refused" in pending.output or "refused" in pending.output.lower()
    assert "eve@example.org" not in pending.output
    everything = run_cli(app, "list")
    assert everything.exit_code == 0
    assert all(name in everything.output for name in ("eve@example.org", "ivy@example.org", "zoe@example.org"))
    assert run_cli(app, "list", "--state", "failed").output.strip() == "no messages in state failed"


def test_cli_send_without_smtp_configured_exits_1(app):
    queue("eve@example.org", "Waits", "body")
    db.session.commit()
    result = run_cli(app, "send")
    assert result.exit_code == 1
    assert "email is not configured" in result.output and "ITOPS_SMTP_HOST" in result.output
    assert "1 message(s) wait" in result.output
    [stored] = rows()
    assert stored.state == "pending" and stored.attempts == 0

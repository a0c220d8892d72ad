"""The helpdesk's email, end to end through the outbox to a real SMTP server (the aiosmtpd sink)."""
from collections import Counter
from datetime import timedelta

from itops.core.database import utcnow
from itops.core.outbox import send_due
from itops.core.policy import Role
from itops.extensions import db
from itops.tickets import services



def delivered(sink) -> list[tuple[str, str, str]]:
    return [(m.rcpt_tos[0], str(m.message["Subject"]), m.message.get_content()) for m in sink.messages]


def test_ticket_mail_reaches_the_right_people_once_and_never_carries_internal_notes(mail, make_user):
    eve = make_user(Role.EMPLOYEE, "eve", display_name="Eve Employee", email="eve@example.org")
    tess = make_user(Role.IT_STAFF, "tess", display_name="Tess Tech", email="tess@example.org")
    team = services.save_team("Desk", email="desk@example.org", member_ids=[tess.id], by=tess)
    category = services.save_category("Hardware", default_team_id=team.id, default_assignee_id=None, by=tess)
    ticket = services.create_ticket(eve, title="Dock not charging", body="The USB-C dock stopped charging.",
                                    category_id=category.id, impact="medium", urgency="medium", by=eve)
    db.session.commit()
    services.add_comment(ticket, tess, "Internal: dock firmware 1.2 is known bad", internal=True)
    services.add_comment(ticket, tess, "Please try the spare dock in room 2.14.")
    services.assign(ticket, assignee_id=tess.id, team_id=team.id, by=make_user(Role.IT_STAFF))
    services.change_status(ticket, "resolved", by=tess)
    db.session.commit()

    assert send_due()["sent"] == 5
    got = delivered(mail)
    subjects = Counter((to, subject.split("] ", 1)[1]) for to, subject, _ in got)
    assert subjects == Counter({("eve@example.org", "We have your request"): 1, ("desk@example.org", "New ticket"): 1,
                                ("eve@example.org", "New reply"): 1, ("tess@example.org", "Assigned to you"): 1,
                                ("eve@example.org", "Resolved"): 1})
    assert all(f"/tickets/{ticket.id}" in body for _, _, body in got)
    assert not any("firmware 1.2" in body for _, _, body in got)
    assert send_due()["sent"] == 0  # nothing twice


def test_while_smtp_is_down_ticket_mail_waits_then_goes_out_once(mail, make_user):
    eve = make_user(Role.EMPLOYEE, "eve", display_name="Eve Employee", email="eve@example.org")
    mail.stop()
    for n in range(3):
        services.create_ticket(eve, title=f"Problem {n}", body="details", category_id=None, impact="low",
                               urgency="low", by=eve)
    db.session.commit()
    down = send_due()
    assert down["sent"] == 0 and down["retried"] + down["skipped"] == 3
    mail.start()
    later = utcnow() + timedelta(hours=2)
    assert send_due(now=later)["sent"] == 3
    assert send_due(now=later + timedelta(hours=2))["sent"] == 0
    ids = Counter(m.message["Message-ID"] for m in mail.messages)
    assert len(ids) == 3 and set(ids.values()) == {1}

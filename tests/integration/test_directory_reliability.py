"""The fault test: slapd is killed in the middle of a batch of 1,000 leavers and restarted.

After the retries every account is disabled exactly once, every step is done, nothing is lost or
duplicated; running the same batch again changes nothing.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from datetime import timedelta

from ldap3 import SUBTREE

from itops.core.audit import AuditEntry
from itops.core.database import utcnow
from itops.demo.slapd import start_slapd
from itops.directory import services
from itops.directory.choices import ActionKind, ActionState, PersonState
from itops.directory.ldap import gateway
from itops.directory.models import DirectoryAction, GroupMapping, Person, UsernameInUse
from itops.extensions import db
from tests.integration import directory_support
from tests.integration.directory_support import ADMIN_PASSWORD, TODAY

LEAVERS = 1000

hr, own_slapd = directory_support.hr, directory_support.own_slapd  # this module's slapd and settings


def _seed(instance) -> list[Person]:
    """1,000 active people with matching accounts, all in the mapped group 'staff' (raw ldap3 adds)."""
    db.session.add(GroupMapping(department="Ops", title=None, groups=["staff"]))
    people = []
    for i in range(LEAVERS):
        username = f"leaver{i:04d}"
        person = Person(employee_number=f"L{i:04d}", given_name="Lea", family_name=f"Ver{i:04d}", department="Ops",
                        start_date=TODAY - timedelta(days=100), state=PersonState.ACTIVE.value, username=username,
                        dn=f"uid={username},{instance.people_dn}")
        db.session.add(person)
        db.session.add(UsernameInUse(username=username))
        people.append(person)
    db.session.commit()
    connection = instance.admin_connection()
    try:
        for person in people:
            desired = services.desired_account(person)
            attributes = {k: v for k, v in gateway().flavour.attributes(desired).items() if v}
            assert connection.add(person.dn, ["inetOrgPerson"], {"uid": person.username, **attributes,
                                                                 "userPassword": "x"}), connection.result
        assert connection.add(f"cn=staff,{instance.groups_dn}", ["groupOfNames"],
                              {"cn": "staff", "member": [p.dn for p in people]}), connection.result
    finally:
        connection.unbind()
    return people


def _kill(instance) -> None:
    os.kill(instance.pid(), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            import socket
            socket.create_connection(("127.0.0.1", instance.port), timeout=0.2).close()
            time.sleep(0.02)
        except OSError:
            return


def _count(query) -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(query.subquery()))


def test_slapd_killed_mid_batch_of_1000_leavers_every_account_disabled_exactly_once(app, hr):
    people = _seed(hr)
    for person in people:
        services.offboard(person, end_date=TODAY, by="hr", run_now=False)
    db.session.commit()

    held = services.run_due()  # 1,000 at once is far over the mass-change guard
    assert held.held == LEAVERS and held.done == 0
    services.approve_batch(services.get_batch(held.held_batch_id), by="admin-cli")
    db.session.commit()

    class KillMidway:
        """Progress hook: after 300 steps, SIGKILL slapd from another thread while the run goes on."""
        killed = threading.Event()

        def set_total(self, total):
            pass

        def advance(self, steps=1, message=None):
            self.done = getattr(self, "done", 0) + steps
            if self.done == 300:
                threading.Thread(target=lambda: (_kill(hr), self.killed.set()), daemon=True).start()

    first = services.run_due(progress=KillMidway())
    db.session.commit()
    assert KillMidway.killed.wait(10)
    assert first.unreachable and 300 <= first.done < LEAVERS
    assert _count(db.select(DirectoryAction).where(DirectoryAction.kind == ActionKind.OFFBOARD,
                                                   DirectoryAction.state == ActionState.PENDING)) > 0

    # Nothing is retried before its backoff while slapd is down; then slapd comes back.
    down = services.run_due(now=utcnow() + timedelta(hours=2))
    db.session.commit()
    assert down.unreachable and down.done == 0
    start_slapd(hr.workdir, port=hr.port, admin_password=ADMIN_PASSWORD)

    later = utcnow() + timedelta(hours=3)
    for _ in range(5):
        summary = services.run_due(now=later)
        db.session.commit()
        if summary.done + summary.retrying + summary.failed == 0:
            break
        later += timedelta(hours=1)

    offboards = db.select(DirectoryAction).where(DirectoryAction.kind == ActionKind.OFFBOARD)
    assert _count(offboards) == LEAVERS
    assert _count(offboards.where(DirectoryAction.state == ActionState.DONE)) == LEAVERS
    assert _count(db.select(DirectoryAction).where(DirectoryAction.kind == ActionKind.DELETE)) == LEAVERS
    assert _count(db.select(Person).where(Person.state == PersonState.DISABLED)) == LEAVERS
    assert _count(db.select(AuditEntry).where(AuditEntry.action == "directory.disabled")) == LEAVERS
    assert max(db.session.scalars(db.select(DirectoryAction.attempts).where(
        DirectoryAction.kind == ActionKind.OFFBOARD))) >= 2  # someone was retried

    connection = hr.admin_connection()
    try:
        connection.search(hr.disabled_dn, "(uid=leaver*)", SUBTREE, attributes=["uid", "pwdAccountLockedTime"],
                          paged_size=2000)
        disabled = connection.entries
        assert len(disabled) == LEAVERS and all(e.pwdAccountLockedTime.value for e in disabled)
        assert len({e.uid.value for e in disabled}) == LEAVERS
        connection.search(hr.people_dn, "(uid=leaver*)", SUBTREE, attributes=[])
        assert connection.entries == []
        connection.search(f"cn=staff,{hr.groups_dn}", "(objectClass=*)", attributes=["member"])
        assert [m for m in connection.entries[0].member.values if "leaver" in m] == []
    finally:
        connection.unbind()

    # The same batch again: every step converges to nothing to do, and nothing is added.
    done_steps = list(db.session.scalars(offboards))
    for step in done_steps:
        services.run_step(step, now=utcnow(), by="test")
    db.session.commit()
    assert all(step.result == {"ldap": []} and step.state == ActionState.DONE for step in done_steps)
    assert _count(db.select(DirectoryAction).where(DirectoryAction.kind == ActionKind.DELETE)) == LEAVERS
    assert _count(db.select(AuditEntry).where(AuditEntry.action == "directory.disabled")) == LEAVERS

"""Each peer fixture really starts its service and answers a real client."""

from pathlib import Path

from ldap3 import BASE, MODIFY_DELETE, MODIFY_REPLACE, NONE, Connection, Server
from sqlalchemy import create_engine, text

from itops.demo.slapd import ADMIN_LOCK_TIME, SlapdInstance, free_port, seed, start_slapd
from tests.peers.slapd import TEST_GROUPS, TEST_PEOPLE


def _bind(slapd: SlapdInstance, dn: str, password: str) -> bool:
    conn = Connection(Server(slapd.url, get_info=NONE), dn, password)
    try:
        return conn.bind()
    finally:
        conn.unbind()


def _snapshot(slapd: SlapdInstance) -> dict[str, dict]:
    """Every entry with its operational attributes (modifyTimestamp, entryCSN, ...)."""
    conn = slapd.admin_connection()
    try:
        conn.search(slapd.base_dn, "(objectClass=*)", attributes=["*", "+"])
        return {entry.entry_dn: entry.entry_attributes_as_dict for entry in conn.entries}
    finally:
        conn.unbind()


def test_slapd_active_person_binds(slapd):
    assert _bind(slapd, f"uid=ivy,{slapd.people_dn}", "ivy-pass-1")
    assert not _bind(slapd, f"uid=ivy,{slapd.people_dn}", "wrong")


def test_slapd_disabled_person_is_refused_because_of_the_lock(slapd):
    gone = f"uid=gone,{slapd.disabled_dn}"
    assert not _bind(slapd, gone, "gone-pass-1")
    conn = slapd.admin_connection()
    try:
        conn.search(gone, "(objectClass=*)", search_scope=BASE, attributes=["pwdAccountLockedTime"])
        assert conn.entries[0].pwdAccountLockedTime.value == ADMIN_LOCK_TIME
        assert conn.modify(gone, {"pwdAccountLockedTime": [(MODIFY_DELETE, [])]}), conn.result
        try:
            assert _bind(slapd, gone, "gone-pass-1")  # so the lock, not the password, refused her
        finally:
            assert conn.modify(gone, {"pwdAccountLockedTime": [(MODIFY_REPLACE, [ADMIN_LOCK_TIME])]}), conn.result
    finally:
        conn.unbind()


def test_slapd_member_of_and_non_ascii_names(slapd):
    conn = slapd.admin_connection()
    try:
        conn.search(f"uid=ivy,{slapd.people_dn}", "(objectClass=*)", search_scope=BASE, attributes=["memberOf"])
        assert set(conn.entries[0].memberOf.values) == {
            f"cn=itops-it,{slapd.groups_dn}", f"cn=staff,{slapd.groups_dn}"}
        conn.search(f"uid=zoe,{slapd.people_dn}", "(objectClass=*)", search_scope=BASE,
                    attributes=["cn", "displayName", "givenName", "sn"])
        zoe = conn.entries[0]
        assert (zoe.cn.value, zoe.displayName.value, zoe.sn.value) == ("Zoë Ødegård", "Zoë Ødegård", "Ødegård")
    finally:
        conn.unbind()
    assert _bind(slapd, f"uid=zoe,{slapd.people_dn}", "zoe-pass-1")


def test_slapd_seed_again_changes_nothing(slapd):
    before = _snapshot(slapd)
    seeded = {f"uid={p.uid},{slapd.disabled_dn if p.disabled else slapd.people_dn}" for p in TEST_PEOPLE}
    assert seeded | {f"cn={name},{slapd.groups_dn}" for name in TEST_GROUPS} <= before.keys()
    assert seed(slapd, TEST_PEOPLE, TEST_GROUPS) == []
    assert _snapshot(slapd) == before


def test_postgres_answers(postgres_url):
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("select 1")).scalar_one() == 1
            assert conn.execute(text("select current_database()")).scalar_one() == "itops_test"
    finally:
        engine.dispose()


def test_chromium_renders(page):
    page.set_content("<h1>hi</h1>")
    assert page.inner_text("h1") == "hi"


def test_slapd_stop_returns_only_once_the_daemon_has_exited_and_a_restart_keeps_its_pid(tmp_path):
    # A daemon still exiting when the stop returned removed its restarted successor's pid file as it went,
    # leaving a slapd on the port that nothing could stop.
    instance = start_slapd(tmp_path / "slapd", port=free_port(), admin_password="stop-test-pass")
    first = instance.pid()
    instance.stop()
    assert first is not None
    assert not _running(first)
    again = start_slapd(tmp_path / "slapd", port=instance.port, admin_password="stop-test-pass")
    try:
        assert again.pid() not in (None, first)
    finally:
        again.stop()
    assert again.pid() is None  # a clean shutdown removes its pid file


def _running(pid: int) -> bool:
    """Alive and not a zombie (init reaps a daemon in its own time)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False

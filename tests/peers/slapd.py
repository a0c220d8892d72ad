"""Session fixture `slapd`: a private slapd seeded with the TEST directory below."""

from collections.abc import Iterator

import pytest

from itops.demo.slapd import DirectoryPerson, SlapdError, SlapdInstance, free_port, seed, start_slapd
from tests.peers import peer_unavailable

ADMIN_PASSWORD = "test-admin-pass"

TEST_GROUPS: dict[str, str] = {
    "itops-admins": "itops administrators",
    "itops-it": "IT staff: inventory and tickets",
    "itops-hr": "HR: onboarding and offboarding",
    "staff": "Everyone employed",
}


def _person(uid: str, given: str, family: str, *groups: str, disabled: bool = False) -> DirectoryPerson:
    return DirectoryPerson(uid=uid, given_name=given, family_name=family, mail=f"{uid}@example.org",
                           password=f"{uid}-pass-1", disabled=disabled, groups=groups)


TEST_PEOPLE: tuple[DirectoryPerson, ...] = (
    _person("dirk", "Dirk", "Admin", "itops-admins", "staff"),
    _person("ivy", "Ivy", "Tech", "itops-it", "staff"),
    _person("hannah", "Hannah", "Human", "itops-hr", "staff"),
    _person("eve", "Eve", "Employee", "staff"),
    _person("zoe", "Zoë", "Ødegård", "staff"),  # non-ASCII on purpose
    _person("gone", "Gone", "Away", disabled=True),
)


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlapdInstance]:
    """One seeded slapd for the whole session; tests that change it must undo their changes."""
    try:
        instance = start_slapd(tmp_path_factory.mktemp("slapd"), port=free_port(), admin_password=ADMIN_PASSWORD)
    except (SlapdError, OSError) as exc:
        peer_unavailable("slapd", str(exc))
    try:
        seed(instance, TEST_PEOPLE, TEST_GROUPS)
        yield instance
    finally:
        instance.stop()

"""Directory pieces without a directory: usernames, field checks, the settings, the exact LDAP
operations each flavour produces (Active Directory has no server here, so it is tested at this level),
and how a batch's outcomes are gathered."""
from __future__ import annotations

import base64
import hashlib
import threading
from concurrent.futures import Future

import pytest
from ldap3.operation.add import add_operation
from ldap3.protocol.rfc4511 import LDAPMessage, MessageID, ProtocolOp
from pyasn1.codec.ber.encoder import encode as pyasn1_encode

from itops.config import ConfigError, LdapSettings, load_config
from itops.core.errors import ValidationFailed
from itops.directory import ldap_wire, planning, validation
from itops.directory.batching import WriterProcesses, first_error
from itops.directory.ldap import (
    Account, ActiveDirectoryFlavour, DesiredAccount, DirectoryRefused, Gateway, LdapOperation, ssha,
)
from itops.directory.planning import Target, Wanted

BASE = "dc=example,dc=org"


def _ldap(url="ldap://127.0.0.1:389") -> LdapSettings:
    return LdapSettings(url=url, base_dn=BASE, people_dn=f"ou=people,{BASE}", groups_dn=f"ou=groups,{BASE}",
                        bind_dn=f"cn=admin,{BASE}", bind_password="bind-secret", user_attribute="uid",
                        role_groups={}, default_role="employee", timeout=3)


def _settings(tmp_path, **env):
    return load_config({"ITOPS_INSTANCE_DIR": str(tmp_path), **env})["ITOPS_DIRECTORY"]


DESIRED = DesiredAccount(username="jdoe", given_name="John", family_name="Doe", display_name="John Doe",
                         email="jdoe@example.org", employee_number="E1", department="Sales", title=None,
                         location="Berlin", manager_dn=None)


@pytest.mark.parametrize("given, family, expected", [
    ("John", "Doe", "jdoe"), ("Zoë", "Ødegård", "zodegard"), ("Łukasz", "Wałęsa", "lwalesa"),
    ("Þóra", "Æsir-Straße", "taesirstrasse"), ("Đorđe", "Đoković", "ddokovic"), ("Mary Ann", "van der Berg", "mvanderberg"),
    ("Ana", "", "ana"), ("李", "Smith", "smith"), ("Jo*n", "Doe)(uid=*", "jdoeuid"),
])
def test_usernames_are_transliterated(given, family, expected):
    assert validation.username_base(given, family) == expected


@pytest.mark.parametrize("given, family", [("山田", "太郎"), ("Иван", "Петров"), ("", "123")])
def test_names_without_an_ascii_username_are_refused(given, family):
    with pytest.raises(ValidationFailed, match="No username"):
        validation.username_base(given, family)


def test_collisions_count_up():
    taken = {"jdoe", "jdoe2"}
    assert validation.derive_username("John", "Doe", taken.__contains__) == "jdoe3"


def test_long_names_leave_room_for_a_suffix():
    assert len(validation.username_base("A", "Wolfeschlegelsteinhausenbergerdorff")) == 17


def test_control_characters_and_bad_dates_are_refused():
    with pytest.raises(ValidationFailed, match="control character"):
        validation.clean_text({"title": "Boss\x00"}, "title")
    with pytest.raises(ValidationFailed, match="not a date"):
        validation.clean_date({"start_date": "31/12/2026"}, "start_date")
    assert validation.clean_text({"title": "  *)(uid=*\\  "}, "title") == "*)(uid=*\\"


def test_directory_settings_have_documented_defaults_and_refuse_nonsense(tmp_path):
    settings = _settings(tmp_path)
    assert (settings.flavour, settings.grace_days, settings.guard_accounts, settings.guard_percent) == (
        "openldap", 30, 10, 5.0)
    assert _settings(tmp_path, ITOPS_DIRECTORY_GRACE_DAYS="7", ITOPS_LDAP_FLAVOUR="AD").grace_days == 7
    with pytest.raises(ConfigError, match="ITOPS_LDAP_FLAVOUR"):
        _settings(tmp_path, ITOPS_LDAP_FLAVOUR="novell")
    with pytest.raises(ConfigError, match="GUARD_PERCENT"):
        _settings(tmp_path, ITOPS_DIRECTORY_GUARD_PERCENT="lots")


def test_ssha_is_a_salted_sha1_openldap_accepts():
    value = ssha("s3cret")
    raw = base64.b64decode(value[len("{SSHA}"):])
    assert value.startswith("{SSHA}") and hashlib.sha1(b"s3cret" + raw[20:]).digest() == raw[:20]


def test_operations_mask_passwords_when_shown(tmp_path):
    gateway = Gateway(_ldap(), _settings(tmp_path))
    add = gateway.flavour.add(f"uid=jdoe,ou=people,{BASE}", DESIRED, "initial-pass")
    assert add.as_dict()["attributes"]["userPassword"] == ["***"]
    assert "initial-pass" not in add.describe() and "{SSHA}" not in add.describe()
    assert "bind-secret" not in repr(gateway)


def test_openldap_plans_for_a_new_account_a_disable_and_a_delete(tmp_path):
    gateway = Gateway(_ldap(), _settings(tmp_path))
    people, disabled = f"ou=people,{BASE}", f"ou=disabled,{BASE}"
    ops = planning.plan(gateway, Wanted(Target.ACTIVE, DESIRED, frozenset({"sales"}), frozenset({"sales"}), "pw"),
                        None, {f"cn=sales,ou=groups,{BASE}"})
    assert [(o.kind, o.dn) for o in ops] == [("add", f"uid=jdoe,{people}"), ("modify", f"cn=sales,ou=groups,{BASE}")]
    assert ops[0].attributes["objectClass"] == ["inetOrgPerson"] and "title" not in ops[0].attributes

    account = Account(dn=f"uid=jdoe,{people}", username="jdoe", attributes={}, locked=False,
                      groups=frozenset({f"cn=sales,ou=groups,{BASE}", f"cn=vpn,ou=groups,{BASE}"}))
    ops = planning.plan(gateway, Wanted(Target.DISABLED, None), account)
    assert [(o.kind, o.dn) for o in ops] == [("modify", f"cn=sales,ou=groups,{BASE}"),
                                             ("modify", f"cn=vpn,ou=groups,{BASE}"),
                                             ("modify", f"uid=jdoe,{people}"), ("move", f"uid=jdoe,{people}")]
    assert ops[2].changes["pwdAccountLockedTime"] == ("replace", ["000001010000Z"])
    assert ops[3].new_superior == disabled and ops[0].last_member_placeholder == f"cn=admin,{BASE}"

    gone = Account(dn=f"uid=jdoe,{disabled}", username="jdoe", attributes={}, locked=True, groups=frozenset())
    assert planning.plan(gateway, Wanted(Target.DISABLED, None), gone) == []
    assert [o.kind for o in planning.plan(gateway, Wanted(Target.ABSENT, None), gone)] == ["delete"]


def test_an_account_of_another_employee_is_never_taken_over(tmp_path):
    gateway = Gateway(_ldap(), _settings(tmp_path))
    other = Account(dn=f"uid=jdoe,ou=people,{BASE}", username="jdoe", attributes={"employeeNumber": ["E9"]},
                    locked=False, groups=frozenset())
    with pytest.raises(DirectoryRefused, match="belongs to employee number E9"):
        planning.plan(gateway, Wanted(Target.ACTIVE, DESIRED), other)


def test_active_directory_is_refused_without_ldaps_or_starttls(tmp_path):
    with pytest.raises(DirectoryRefused, match="LDAPS or StartTLS|ldaps://"):
        Gateway(_ldap(), _settings(tmp_path, ITOPS_LDAP_FLAVOUR="ad"))
    assert Gateway(_ldap(), _settings(tmp_path, ITOPS_LDAP_FLAVOUR="ad", ITOPS_LDAP_START_TLS="true"))


def test_active_directory_operations(tmp_path):
    gateway = Gateway(_ldap("ldaps://dc1.example.org"), _settings(tmp_path, ITOPS_LDAP_FLAVOUR="ad",
                                                                  ITOPS_LDAP_DISABLED_DN=f"ou=Disabled,{BASE}"))
    flavour = gateway.flavour
    assert isinstance(flavour, ActiveDirectoryFlavour)
    ops = planning.plan(gateway, Wanted(Target.ACTIVE, DESIRED, password="Init-pass-1"), None)
    add = ops[0]
    assert add.dn == f"CN=jdoe,ou=people,{BASE}"
    assert add.attributes["objectClass"] == ["top", "person", "organizationalPerson", "user"]
    assert add.attributes["sAMAccountName"] == ["jdoe"]
    assert add.attributes["userPrincipalName"] == ["jdoe@example.org"]
    assert add.attributes["unicodePwd"] == ['"Init-pass-1"'.encode("utf-16-le")]
    assert add.attributes["userAccountControl"] == ["512"]
    assert add.as_dict()["attributes"]["unicodePwd"] == ["***"]

    account = Account(dn=f"CN=jdoe,ou=people,{BASE}", username="jdoe", attributes={}, locked=False,
                      groups=frozenset({f"cn=sales,ou=groups,{BASE}"}))
    ops = planning.plan(gateway, Wanted(Target.DISABLED, None), account)
    assert [(o.kind, o.dn) for o in ops] == [("modify", f"cn=sales,ou=groups,{BASE}"),
                                             ("modify", f"CN=jdoe,ou=people,{BASE}"),
                                             ("move", f"CN=jdoe,ou=people,{BASE}")]
    assert ops[1].changes["userAccountControl"] == ("replace", ["514"])
    assert ops[2] == LdapOperation("move", account.dn, new_rdn="CN=jdoe", new_superior=f"ou=Disabled,{BASE}")
    assert flavour.is_locked({"userAccountControl": ["514"]}) and not flavour.is_locked({"userAccountControl": ["512"]})


def test_new_people_are_written_managers_first_however_the_file_orders_them():
    from itops.directory.models import Person
    from itops.directory.services import _managers_first

    head = Person(employee_number="1")
    lead = Person(employee_number="2", manager=head)
    report = Person(employee_number="3", manager=lead)
    outside = Person(employee_number="4", manager=Person(employee_number="9"))  # a manager not in the batch
    ordered = _managers_first([report, outside, lead, head])
    numbers = [p.employee_number for p in ordered]
    assert sorted(numbers) == ["1", "2", "3", "4"]
    assert numbers.index("1") < numbers.index("2") < numbers.index("3")


def test_helping_out_gives_every_group_it_took_an_outcome_even_when_sending_breaks():
    """The batch waits for each group's future: a bug while this process sends must not leave one unset."""
    class BrokenGateway:
        def apply_pipelined(self, joiners, stopped):
            raise RuntimeError("bug while sending")

    writers = WriterProcesses(BrokenGateway())
    writers._stopped = threading.Event()
    taken = [Future() for _ in range(3)]
    running = Future()
    running.set_running_or_notify_cancel()  # a writer has this one: it is not taken
    writers._sent = [(running, Future(), [[]])] + [(Future(), future, [[]]) for future in taken]
    with pytest.raises(RuntimeError):
        writers.help_out()
    assert all(isinstance(future.exception(timeout=0), RuntimeError) for future in taken)
    assert len(writers._sent) == 1


def test_a_groups_outcome_is_its_first_error():
    refused, not_sent = ValueError("refused"), ValueError("not sent")
    assert first_error([None, None]) is None
    assert first_error([None, refused, not_sent]) is refused


def _ldap3_add_bytes(message_id: int, dn: str, attributes: dict) -> bytes:
    """What ldap3 2.9 encodes for an add (Connection.add -> add_operation -> AsyncStrategy.send)."""
    message = LDAPMessage()
    message["messageID"] = MessageID(message_id)
    message["protocolOp"] = ProtocolOp().setComponentByName("addRequest", add_operation(dn, attributes, True))
    return pyasn1_encode(message)


def _flavour_adds(tmp_path) -> list[LdapOperation]:
    openldap = Gateway(_ldap(), _settings(tmp_path)).flavour
    ad = Gateway(_ldap("ldaps://dc1.example.org"), _settings(tmp_path, ITOPS_LDAP_FLAVOUR="ad")).flavour
    zoe = DesiredAccount(username="zodegard", given_name="Zoë", family_name="Ødegård", display_name="Zoë Ødegård",
                         email="zoe@example.org", employee_number="E2", department="R&D (Oslo)", title="*)(uid=*\\",
                         location="Oslo", manager_dn=f"uid=jdoe,ou=people,{BASE}")
    return [flavour.add(f"uid={desired.username},ou=people,{BASE}", desired, "Init-pass-1")
            for flavour in (openldap, ad) for desired in (DESIRED, zoe)] + [
        flavour.add_group(f"cn=sales,ou=groups,{BASE}", "sales", f"uid=jdoe,ou=people,{BASE}")
        for flavour in (openldap, ad)]


def test_the_pipelined_add_encoding_is_the_bytes_ldap3_sends(tmp_path):
    for number, add in enumerate(_flavour_adds(tmp_path), start=1):
        assert ldap_wire.add_request(number, add.dn, add.attributes) == _ldap3_add_bytes(number, add.dn, add.attributes)
    # Lengths across the short and long forms, message ids across byte boundaries, bytes and several values.
    for size in (0, 1, 127, 128, 255, 256, 65535, 65536, 300_000):
        attributes = {"objectClass": ["inetOrgPerson", "top"], "description": ["é" * (size // 2) + "x" * (size % 2)],
                      "unicodePwd": [b"\x00\xff" * 3]}
        for message_id in (1, 127, 128, 255, 256, 32767, 32768, 2 ** 31 - 1):
            assert ldap_wire.add_request(message_id, f"cn=t{size},{BASE}", attributes) == \
                _ldap3_add_bytes(message_id, f"cn=t{size},{BASE}", attributes)


def test_the_pipelined_add_encoding_refuses_what_ldap_cannot_carry():
    with pytest.raises(ValueError, match="message id"):
        ldap_wire.add_request(0, BASE, {"cn": ["x"]})
    with pytest.raises(ValueError, match="message id"):
        ldap_wire.add_request(2 ** 31, BASE, {"cn": ["x"]})
    with pytest.raises(TypeError, match="str or bytes, not int"):
        ldap_wire.add_request(1, BASE, {"uidNumber": [1000]})

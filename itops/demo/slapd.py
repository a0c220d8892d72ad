"""A private OpenLDAP slapd on loopback, for the demo (`make run`) and the tests.

The directory gets its own cn=config (mdb with the dynlist, refint and ppolicy
overlays) inside a workdir, so it never touches the system slapd. memberOf comes
from dynlist, computed when read, as OpenLDAP 2.5 recommends in place of the
deprecated memberof overlay (which also wrote every member's entry on each join).
Stdlib and ldap3 only: no Flask, so test fixtures can import it cheaply.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ldap3 import BASE, MODIFY_ADD, NONE, SUBTREE, Connection, Server
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

BASE_DN = "dc=example,dc=org"

# OpenLDAP 2.5 ppolicy: this lock time means "locked until an admin removes it".
ADMIN_LOCK_TIME = "000001010000Z"

_START_TIMEOUT = 10.0
_POLL_INTERVAL = 0.05


class SlapdError(RuntimeError):
    """slapd could not be built, started, stopped or seeded."""


@dataclass(frozen=True)
class SlapdInstance:
    """A running (or stopped) slapd whose state lives in `workdir`."""

    workdir: Path
    port: int
    base_dn: str
    admin_dn: str
    admin_password: str

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def people_dn(self) -> str:
        return f"ou=people,{self.base_dn}"

    @property
    def groups_dn(self) -> str:
        return f"ou=groups,{self.base_dn}"

    @property
    def disabled_dn(self) -> str:
        return f"ou=disabled,{self.base_dn}"

    def pid(self) -> int | None:
        """The daemon's pid from slapd.pid, or None once slapd has removed the file."""
        try:
            return int((self.workdir / "slapd.pid").read_text().strip())
        except FileNotFoundError:
            return None

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM the daemon and wait until it has exited and its port is closed; SIGKILL it if it has not
        after `timeout` (slapd has hung in its shutdown with operations in flight; mdb survives a kill).

        Both are awaited: slapd closes its listener before it finishes shutting down, and a daemon still
        exiting beside a restarted one removes the new one's pid file when it goes.
        """
        pid = self.pid()
        if pid is not None and not _is_running_slapd(pid):
            pid = None  # a stale pid file (after a kill): that pid may belong to someone else now
        for signal_number in (signal.SIGTERM, signal.SIGKILL):
            if pid is not None:
                try:
                    os.kill(pid, signal_number)
                except ProcessLookupError:
                    pid = None  # gone already: only the port is left to wait for
            deadline = time.monotonic() + timeout
            while (pid is not None and _is_running_slapd(pid)) or _port_open(self.port):
                if time.monotonic() > deadline:
                    break
                time.sleep(_POLL_INTERVAL)
            else:
                return
        raise SlapdError(f"slapd (pid {pid}, port {self.port}) still runs {2 * timeout:g} s after stopping it")

    def admin_connection(self) -> Connection:
        """A SYNC connection bound as the root DN (not thread-safe: one per thread)."""
        server = Server(self.url, get_info=NONE, connect_timeout=5)
        return Connection(server, self.admin_dn, self.admin_password, auto_bind=True,
                          raise_exceptions=False, receive_timeout=10)


@dataclass(frozen=True)
class DirectoryPerson:
    """A person to seed; `disabled` people live under ou=disabled and are locked."""

    uid: str
    given_name: str
    family_name: str
    mail: str
    password: str
    disabled: bool = False
    groups: tuple[str, ...] = ()

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.family_name}"


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago (tiny race, fine for tests)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_slapd(workdir: Path, *, port: int, admin_password: str, base_dn: str = BASE_DN) -> SlapdInstance:
    """Start slapd on 127.0.0.1:`port`, building a fresh directory if `workdir` has none.

    An existing workdir/slapd.d is started as it is, so demo data survives restarts.
    """
    workdir = Path(workdir).resolve()
    workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    workdir.chmod(0o700)
    instance = SlapdInstance(workdir, port, base_dn, f"cn=admin,{base_dn}", admin_password)
    if not (workdir / "slapd.d").is_dir():
        _build(instance)

    log = workdir / "slapd-launch.log"
    with log.open("wb") as log_file:
        launch = subprocess.run(
            [_binary("slapd"), "-h", f"{instance.url}/", "-F", str(workdir / "slapd.d")],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, timeout=30, check=False)
    if launch.returncode != 0:
        raise SlapdError(_launch_failure(instance, log, f"slapd exited with {launch.returncode}"))
    try:
        _wait_until_answering(instance)
    except SlapdError as exc:
        instance.stop()
        raise SlapdError(_launch_failure(instance, log, str(exc))) from exc
    try:
        instance.admin_connection().unbind()
    except LDAPException as exc:
        instance.stop()
        raise SlapdError(f"admin bind failed ({exc}); an existing slapd.d keeps the admin password "
                         "it was built with") from exc
    return instance


def seed(instance: SlapdInstance, people: Iterable[DirectoryPerson], groups: Mapping[str, str]) -> list[str]:
    """Add the people and groups that are missing; return the DNs it added or changed.

    Existing entries are left alone wherever they are (a person the demo moved
    to ou=disabled stays there), so seeding again is a no-op. `groups` maps
    cn -> description. A new person is added to their existing groups; a group
    with no seeded member gets the admin DN as placeholder, because
    groupOfNames needs at least one member.
    """
    people = list(people)
    unknown = sorted({name for person in people for name in person.groups} - set(groups))
    if unknown:
        raise ValueError(f"people refer to groups that are not seeded: {unknown}")

    conn = instance.admin_connection()
    try:
        changed: list[str] = []
        dn_of: dict[str, str] = {}
        added: set[str] = set()
        for person in people:
            existing = _find_person(conn, instance, person.uid)
            if existing:
                dn_of[person.uid] = existing
                continue
            dn = _add_person(conn, instance, person)
            dn_of[person.uid] = dn
            added.add(person.uid)
            changed.append(dn)

        for name, description in groups.items():
            group_dn = f"cn={escape_rdn(name)},{instance.groups_dn}"
            members = [dn_of[p.uid] for p in people if name in p.groups]
            if not _exists(conn, group_dn):
                conn.add(group_dn, ["groupOfNames"], {"cn": name, "description": description,
                                                      "member": members or [instance.admin_dn]})
                _check(conn, f"add {group_dn}")
                changed.append(group_dn)
                continue
            new_members = [dn_of[p.uid] for p in people if name in p.groups and p.uid in added]
            if new_members:
                conn.modify(group_dn, {"member": [(MODIFY_ADD, new_members)]})
                _check(conn, f"add members to {group_dn}")
                changed.append(group_dn)
        return changed
    finally:
        conn.unbind()


def hash_password(password: str) -> str:
    """A {SSHA} userPassword value from slappasswd, fed on stdin so it never shows in `ps`."""
    done = subprocess.run([_binary("slappasswd"), "-T", "/dev/stdin"], input=password.encode(),
                          capture_output=True, timeout=10, check=False)
    if done.returncode != 0:
        raise SlapdError(f"slappasswd failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout.decode().strip()


def _add_person(conn: Connection, instance: SlapdInstance, person: DirectoryPerson) -> str:
    parent = instance.disabled_dn if person.disabled else instance.people_dn
    dn = f"uid={escape_rdn(person.uid)},{parent}"
    attributes = {
        "cn": person.display_name,
        "sn": person.family_name,
        "givenName": person.given_name,
        "displayName": person.display_name,
        "mail": person.mail,
        "uid": person.uid,
        "userPassword": hash_password(person.password),
    }
    if person.disabled:
        attributes["pwdAccountLockedTime"] = ADMIN_LOCK_TIME
    conn.add(dn, ["inetOrgPerson"], attributes)
    _check(conn, f"add {dn}")
    return dn


def _find_person(conn: Connection, instance: SlapdInstance, uid: str) -> str | None:
    conn.search(instance.base_dn, f"(&(objectClass=inetOrgPerson)(uid={escape_filter_chars(uid)}))",
                search_scope=SUBTREE, attributes=[])
    _check(conn, f"search uid={uid}")
    return conn.entries[0].entry_dn if conn.entries else None


def _exists(conn: Connection, dn: str) -> bool:
    conn.search(dn, "(objectClass=*)", search_scope=BASE, attributes=[])
    if conn.result["description"] == "noSuchObject":
        return False
    _check(conn, f"read {dn}")
    return True


def _check(conn: Connection, action: str) -> None:
    if conn.result["result"] != 0:
        raise SlapdError(f"{action} failed: {conn.result['description']} {conn.result['message']}".strip())


def _build(instance: SlapdInstance) -> None:
    """Create slapd.d (cn=config) and the base entries with slapadd; undo on failure."""
    config_dir, db_dir = instance.workdir / "slapd.d", instance.workdir / "db"
    config_dir.mkdir(mode=0o700)
    db_dir.mkdir(mode=0o700, exist_ok=True)
    try:
        _slapadd(0, config_dir, _config_ldif(instance, hash_password(instance.admin_password)))
        _slapadd(1, config_dir, _base_ldif(instance.base_dn))
    except BaseException:
        shutil.rmtree(config_dir)
        shutil.rmtree(db_dir)
        raise


def _slapadd(database: int, config_dir: Path, ldif: str) -> None:
    done = subprocess.run([_binary("slapadd"), "-q", "-n", str(database), "-F", str(config_dir)],
                          input=ldif.encode(), capture_output=True, timeout=30, check=False)
    if done.returncode != 0:
        output = (done.stdout + done.stderr).decode(errors="replace").strip()
        raise SlapdError(f"slapadd -n {database} failed: {output[-2000:]}")


def _config_ldif(instance: SlapdInstance, admin_password_hash: str) -> str:
    workdir, base_dn = instance.workdir, instance.base_dn
    return f"""\
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {workdir}/slapd.pid
olcArgsFile: {workdir}/slapd.args

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb
olcModuleLoad: dynlist
olcModuleLoad: refint
olcModuleLoad: ppolicy

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/nis.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif
include: file:///etc/ldap/schema/dyngroup.ldif

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend
olcSizeLimit: 500

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcRootDN: cn=admin,cn=config

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {base_dn}
olcRootDN: {instance.admin_dn}
olcRootPW: {admin_password_hash}
olcDbDirectory: {workdir}/db
olcDbMaxSize: 104857600
olcDbIndex: objectClass eq
olcDbIndex: cn,uid eq
olcDbIndex: member eq
olcAccess: to attrs=userPassword by self write by anonymous auth by * none
olcAccess: to * by * read

dn: olcOverlay={{0}}dynlist,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcDynamicList
olcOverlay: {{0}}dynlist
olcDynListAttrSet: groupOfURLs memberURL member+memberOf@groupOfNames

dn: olcOverlay={{1}}refint,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcRefintConfig
olcOverlay: {{1}}refint
olcRefintAttribute: member
olcRefintNothing: {instance.admin_dn}

dn: olcOverlay={{2}}ppolicy,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {{2}}ppolicy
olcPPolicyDefault: cn=default,ou=policies,{base_dn}
olcPPolicyUseLockout: TRUE
"""


def _base_ldif(base_dn: str) -> str:
    attribute, _, value = base_dn.split(",", 1)[0].partition("=")
    if attribute.strip().lower() != "dc":
        raise SlapdError(f"base DN must start with a dc= component, got {base_dn!r}")
    entries = [
        f"dn: {base_dn}\nobjectClass: dcObject\nobjectClass: organization\no: {value}\ndc: {value}\n",
        *(f"dn: ou={ou},{base_dn}\nobjectClass: organizationalUnit\nou: {ou}\n"
          for ou in ("people", "groups", "disabled", "policies")),
        f"dn: cn=default,ou=policies,{base_dn}\nobjectClass: pwdPolicy\nobjectClass: person\n"
        "cn: default\nsn: default\npwdAttribute: userPassword\npwdLockout: TRUE\n"
        "pwdMaxFailure: 3\npwdLockoutDuration: 0\n",
    ]
    return "\n".join(entries)


def _wait_until_answering(instance: SlapdInstance) -> None:
    """Poll with an anonymous rootDSE search until slapd answers."""
    server = Server(instance.url, get_info=NONE, connect_timeout=1)
    deadline = time.monotonic() + _START_TIMEOUT
    while True:
        try:
            conn = Connection(server, receive_timeout=2, raise_exceptions=False)
            conn.open()
            answered = conn.search("", "(objectClass=*)", search_scope=BASE, attributes=["namingContexts"])
            conn.unbind()
            if answered:
                return
        except LDAPException:
            pass
        if time.monotonic() > deadline:
            raise SlapdError(f"no rootDSE answer on {instance.url} within {_START_TIMEOUT} s")
        time.sleep(_POLL_INTERVAL)


def _is_running_slapd(pid: int) -> bool:
    """The process exists, is not a zombie (a daemon's parent is init, which may be slow to reap it) and is slapd."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rpartition(")")[2].split()[0]
    return state != "Z" and b"slapd" in command.split(b"\0", 1)[0]


def _port_open(port: int) -> bool:
    """Something listens on the port; a connection that times out (a busy daemon) counts as listening."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except TimeoutError:
        return True
    except OSError:
        return False


def _binary(name: str) -> str:
    """Find an OpenLDAP tool; they live in /usr/sbin, which a non-root PATH often lacks."""
    found = shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))
    if found is None:
        raise SlapdError(f"{name} not found (Debian package slapd)")
    return found


def _launch_failure(instance: SlapdInstance, log: Path, what: str) -> str:
    """Explain a failed launch: a daemonized slapd logs to syslog, so its own output is usually empty."""
    parts = [what]
    if _port_open(instance.port):
        parts.append(f"port {instance.port} is already in use")
    output = log.read_text(errors="replace").strip()
    if output:
        parts.append("output: " + "\n".join(output.splitlines()[-20:]))
    parts.append(f"details: slapd -d stats -h {instance.url}/ -F {instance.workdir / 'slapd.d'}")
    return "; ".join(parts)

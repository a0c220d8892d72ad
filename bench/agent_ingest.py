"""Sustained inventory-agent ingest: many simulated agents pushing gzip'd reports at the server.

Prepares a fresh instance (migrate, an IT staff user, an enrollment token), starts gunicorn (2 sync
workers) on a free loopback port, enrolls AGENTS simulated machines through POST /api/v1/agent/enroll, then
for DURATION seconds has CONCURRENCY threads push reports to POST /api/v1/agent/inventory round-robin over
the agents, as docs/agent-protocol.md describes (JSON, Content-Encoding: gzip, Bearer agent token).

Each machine has a unique hostname, serial and MAC and a real-shaped report: ~1,500 Debian-like packages
drawn from a shared pool of ~3,000, 2-4 disks, 2-3 interfaces, signed-in users. About 5% of reports carry
a change (a package upgraded, installed or removed, or the memory size), so the server does real diff
work; the rest are unchanged but for the collection time and disk usage, as from a real agent.

Prints enrollment and report rates, p50/p95/p99/max latency, errors by status and the target:
200 reports/s sustained on SQLite on 2 cores with p95 < 100 ms. Exit status 0 even when the target is
missed (this is a report); 1 when the server fails or answers anything but 200/201.

usage: .venv/bin/python bench/agent_ingest.py [--agents 1000] [--duration 30] [--concurrency 16]
                                              [--instance var/bench-agents] [--database-url URL]
"""
from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

from _common import (
    CREDENTIALS, GUNICORN_LOG, BenchError, Http, add_gunicorn_arguments, LoadResult, Server, default_instance, excerpt, flask,
    fresh_instance, instance_env, latency_summary, machine_load, run_against, run_load, show_problem,
    sigterm_as_interrupt,
    use_instance_in_process, write_private_json,
)

TARGET_RATE = 200          # reports/s sustained
P95_TARGET_MS = 100
POOL_SIZE = 3_000
PACKAGES_PER_AGENT = 1_500
CORE_PACKAGES = 600        # every machine has these; the rest are drawn per machine
CHANGE_SHARE = 0.05
ENROLL_PATH = "/api/v1/agent/enroll"
INVENTORY_PATH = "/api/v1/agent/inventory"

# --- the package pool ------------------------------------------------------------------------------

BASE_PACKAGES = (
    "adduser", "apt", "apt-utils", "base-files", "base-passwd", "bash", "bash-completion", "bsdutils", "bzip2",
    "ca-certificates", "coreutils", "cpio", "cron", "curl", "dash", "dbus", "debconf", "debian-archive-keyring",
    "debianutils", "diffutils", "dirmngr", "dmidecode", "dpkg", "e2fsprogs", "fdisk", "file", "findutils",
    "firefox-esr", "fontconfig", "gcc-12-base", "gdisk", "gettext-base", "git", "gnupg", "gpgv", "grep", "groff-base",
    "grub-common", "grub-efi-amd64", "gzip", "hostname", "htop", "ifupdown", "init", "init-system-helpers",
    "iproute2", "iputils-ping", "isc-dhcp-client", "kmod", "less", "libc-bin", "libc6", "linux-base",
    "linux-image-amd64", "locales", "login", "logrotate", "lsb-release", "lsof", "man-db", "mawk", "mount",
    "nano", "ncurses-base", "ncurses-bin", "netbase", "network-manager", "openssh-client", "openssh-server",
    "openssl", "passwd", "perl", "perl-base", "procps", "python3", "python3-minimal", "readline-common", "rsync",
    "rsyslog", "sed", "sensible-utils", "sudo", "systemd", "systemd-sysv", "sysvinit-utils", "tar", "tzdata",
    "udev", "unzip", "usbutils", "util-linux", "vim", "vim-common", "vim-tiny", "wget", "whiptail", "xz-utils",
    "zip", "zlib1g", "zstd", "libreoffice-core", "libreoffice-writer", "libreoffice-calc", "thunderbird",
    "gnome-shell", "gnome-terminal", "nautilus", "evince", "pipewire", "wireplumber", "cups", "cups-browsed",
    "avahi-daemon", "bluez", "pulseaudio-utils", "xserver-xorg-core", "xwayland", "gdm3", "plymouth",
)
STEMS = (
    "acl", "apparmor", "archive", "asound", "atk", "attr", "audit", "avahi", "blkid", "bluetooth", "boost", "brotli",
    "bsd", "cairo", "cap", "cdio", "colord", "crypt", "cryptsetup", "cups", "curl", "dav1d", "db", "dbus", "dconf",
    "drm", "dw", "edit", "elf", "enchant", "epoxy", "event", "exif", "expat", "fdisk", "ffi", "flac", "fontconfig",
    "freetype", "fribidi", "gbm", "gcrypt", "gdk-pixbuf", "geoclue", "gio", "gl", "glib", "gmp", "gnutls", "gpg-error",
    "graphene", "graphite", "gsound", "gstreamer", "gtk", "gudev", "harfbuzz", "hogweed", "hunspell", "icu", "idn",
    "ijs", "imagequant", "jansson", "jbig", "jpeg", "json-glib", "k5crypto", "keyutils", "krb5", "lcms", "ldap",
    "lmdb", "lz4", "lzma", "magic", "mbedtls", "mount", "mpc", "mpfr", "mtdev", "ncurses", "nettle", "newt", "nghttp",
    "nl", "nm", "notify", "nspr", "nss", "ogg", "opus", "orc", "p11-kit", "pam", "pango", "pcre", "pciaccess", "pcsc",
    "pipewire", "pixman", "png", "polkit", "popt", "poppler", "proxy", "psl", "pulse", "python", "qpdf", "raw",
    "readline", "rsvg", "rtmp", "sasl", "seccomp", "secret", "selinux", "semanage", "sepol", "smartcols", "sndfile",
    "soup", "speex", "sqlite", "ssh", "ssl", "stemmer", "systemd", "tasn", "tdb", "theora", "tiff", "tinfo", "udev",
    "unistring", "usb", "uuid", "v4l", "vorbis", "vpx", "vte", "wavpack", "wayland", "webp", "woff", "x11", "xau",
    "xcb", "xcomposite", "xcursor", "xdamage", "xdmcp", "xext", "xfixes", "xi", "xinerama", "xkbcommon", "xml2",
    "xmlsec", "xrandr", "xrender", "xshmfence", "xslt", "xtst", "xxf86vm", "yaml", "zstd", "aio", "bpf", "cbor",
    "fido2", "hidapi", "inih", "kmod", "mnl", "netfilter", "nftnl", "pcap", "sodium", "tirpc", "urcu", "wrap",
)
PATTERNS = (  # (name pattern, arch)
    ("lib{s}{n}", "amd64"), ("lib{s}-dev", "amd64"), ("lib{s}-common", "all"), ("lib{s}-data", "all"),
    ("python3-{s}", "all"), ("gir1.2-{s}-1.0", "amd64"), ("lib{s}-perl", "all"), ("node-{s}", "all"),
    ("ruby-{s}", "all"), ("fonts-{s}", "all"), ("{s}-utils", "amd64"), ("lib{s}-bin", "amd64"),
    ("lib{s}-doc", "all"), ("golang-{s}-dev", "all"), ("lib{s}{n}-plugins", "amd64"), ("{s}-tools", "amd64"),
)


def debian_version(rng: random.Random) -> str:
    version = f"{rng.randint(0, 12)}.{rng.randint(0, 40)}"
    if rng.random() < 0.6:
        version += f".{rng.randint(0, 30)}"
    if rng.random() < 0.1:
        version = f"{rng.randint(1, 3)}:{version}"
    version += f"-{rng.randint(1, 9)}"
    roll = rng.random()
    if roll < 0.15:
        version += f"+deb12u{rng.randint(1, 6)}"
    elif roll < 0.25:
        version += f"+b{rng.randint(1, 4)}"
    return version


def package_pool(rng: random.Random, size: int = POOL_SIZE) -> list[tuple[str, str, str]]:
    """(name, version, arch) for `size` distinct Debian-like packages; the first ones are the base system."""
    pool, seen = [], set()
    for name in BASE_PACKAGES:
        seen.add(name)
        pool.append((name, debian_version(rng), "all" if name.endswith(("-common", "-data")) else "amd64"))
    while len(pool) < size:
        pattern, arch = rng.choice(PATTERNS)
        name = pattern.format(s=rng.choice(STEMS), n=rng.choice(("", "0", "1", "2", "3", "6", "-1.0", "2.4")))
        if name not in seen:
            seen.add(name)
            pool.append((name, debian_version(rng), arch))
    return pool


def bump(version: str, rng: random.Random) -> str:
    """A newer Debian version string (a security update or a point release)."""
    if "+deb12u" in version:
        head, _, number = version.rpartition("+deb12u")
        return f"{head}+deb12u{int(number) + 1}"
    return version + ("+deb12u1" if rng.random() < 0.7 else "+b1")


# --- simulated machines ----------------------------------------------------------------------------

HARDWARE = (
    ("LENOVO", "21HD", "Intel(R) Core(TM) i7-1365U", 10, 12, 1800.0, "PF"),
    ("LENOVO", "20XW", "Intel(R) Core(TM) i7-1165G7", 4, 8, 2800.0, "PF"),
    ("Dell Inc.", "Latitude 5440", "13th Gen Intel(R) Core(TM) i5-1345U", 10, 12, 1600.0, ""),
    ("HP", "HP EliteBook 840 G10", "13th Gen Intel(R) Core(TM) i7-1355U", 10, 12, 1700.0, "5CG"),
    ("Dell Inc.", "OptiPlex 7010", "13th Gen Intel(R) Core(TM) i5-13500T", 14, 20, 1600.0, ""),
    ("LENOVO", "11JN", "13th Gen Intel(R) Core(TM) i7-13700T", 16, 24, 1400.0, "MJ"),
)
USERS = ("anna", "ben", "clara", "david", "elena", "felix", "greta", "jonas", "lena", "max", "nina", "oskar")
GIB = 1024 ** 3


class Agent:
    """One machine: its report state, the token it got, and its report as the bytes last sent."""

    def __init__(self, number: int, rng: random.Random, pool: list[tuple[str, str, str]], gzip_level: int):
        self.number, self.gzip_level, self.lock = number, gzip_level, threading.Lock()
        self.rng = random.Random(rng.random())
        manufacturer, model, cpu, cores, threads, mhz, prefix = self.rng.choice(HARDWARE)
        laptop = "Latitude" in model or "EliteBook" in model or model in ("21HD", "20XW")
        self.hostname = f"{'lt' if laptop else 'ws'}-{number:05d}"
        self.serial = f"{prefix}{number:06d}{self.rng.choice('ABCDEFGHJKLMNPQRSTUVWXYZ')}"
        high, low = number >> 8 & 0xff, number & 0xff  # unique MACs and addresses for up to 65,536 agents
        mac = f"{high:02x}:{low:02x}"
        network = [{"name": "enp0s31f6", "mac": f"8c:16:45:a0:{mac}",
                    "addresses": [f"10.20.{high}.{low}", f"fe80::8e16:45ff:fea0:{number:x}"]}]
        if laptop:
            network.append({"name": "wlp0s20f3", "mac": f"f4:b3:01:c2:{mac}", "addresses": []})
        if self.rng.random() < 0.5:
            network.append({"name": "docker0", "mac": f"02:42:{self.rng.randrange(256):02x}:00:{mac}",
                            "addresses": ["172.17.0.1"]})
        disks = [{"device": "/dev/nvme0n1p2", "mountpoint": "/", "fstype": "ext4",
                  "total_bytes": self.rng.choice((250, 500, 1000)) * 10 ** 9, "used_bytes": 0},
                 {"device": "/dev/nvme0n1p1", "mountpoint": "/boot/efi", "fstype": "vfat",
                  "total_bytes": 536_854_528, "used_bytes": 6_160_384}]
        for extra in self.rng.sample([("/dev/nvme0n1p3", "/home", "ext4"), ("/dev/sda1", "/data", "xfs")],
                                     self.rng.randint(0, 2)):
            disks.append({"device": extra[0], "mountpoint": extra[1], "fstype": extra[2],
                          "total_bytes": self.rng.choice((500, 1000, 2000)) * 10 ** 9, "used_bytes": 0})
        for disk in disks:
            disk["used_bytes"] = disk["used_bytes"] or int(disk["total_bytes"] * self.rng.uniform(0.1, 0.8))
        user = self.rng.choice(USERS) + f".{number % 97}"
        boot = datetime.now(timezone.utc) - timedelta(hours=self.rng.randint(1, 300))
        self.head = {
            "schema": 1, "agent_version": "1.0.0", "collected_at": "", "hostname": self.hostname,
            "fqdn": f"{self.hostname}.corp.example",
            "os": {"system": "Linux", "name": "Debian GNU/Linux", "version": "12", "kernel": "6.1.0-28-amd64",
                   "arch": "x86_64"},
            "boot_time": boot.isoformat(timespec="seconds"),
            "hardware": {"manufacturer": manufacturer, "model": model, "serial": self.serial},
            "cpu": {"model": cpu, "cores_physical": cores, "cores_logical": threads, "frequency_mhz": mhz},
            "memory": {"total_bytes": self.rng.choice((8, 16, 16, 32, 32, 64)) * GIB - 400 * 1024 ** 2},
            "disks": disks, "network": network,
            "users": [{"name": user, "terminal": "tty2", "host": None,
                       "started": (boot + timedelta(minutes=3)).isoformat(timespec="seconds")}]
            + ([{"name": user, "terminal": "pts/0", "host": "10.20.0.5", "started": boot.isoformat(timespec="seconds")}]
               if self.rng.random() < 0.2 else []),
            "last_user": user,
            "battery": {"percent": round(self.rng.uniform(20, 100), 1), "plugged": True, "seconds_left": None}
            if laptop else None,
        }
        chosen = pool[:CORE_PACKAGES] + self.rng.sample(pool[CORE_PACKAGES:], PACKAGES_PER_AGENT - CORE_PACKAGES)
        self.packages = {name: (version, arch) for name, version, arch in chosen}
        self.pool = pool
        self.token: str | None = None
        self._packages_json: str | None = None

    def change(self) -> str:
        """Apply one change a real machine sees between reports; what it was."""
        roll = self.rng.random()
        self._packages_json = None
        if roll < 0.6:
            names = self.rng.sample(sorted(self.packages), self.rng.randint(1, 3))
            for name in names:
                version, arch = self.packages[name]
                self.packages[name] = (bump(version, self.rng), arch)
            return "upgrade"
        if roll < 0.75:
            name, version, arch = self.rng.choice(self.pool)
            if name not in self.packages:
                self.packages[name] = (version, arch)
                return "install"
            return self.change()
        if roll < 0.9:
            del self.packages[self.rng.choice(sorted(self.packages))]
            return "remove"
        memory = self.head["memory"]["total_bytes"]
        self.head["memory"] = {"total_bytes": memory + 8 * GIB if memory < 60 * GIB else memory - 8 * GIB}
        return "memory"

    def body(self) -> bytes:
        """The report as the agent sends it now: a fresh collection time and disk usage, gzip'd JSON."""
        if self._packages_json is None:
            self._packages_json = json.dumps([{"name": n, "version": v, "arch": a}
                                              for n, (v, a) in sorted(self.packages.items())],
                                             separators=(",", ":"))
        self.head["collected_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        root = self.head["disks"][0]
        root["used_bytes"] = min(root["total_bytes"], root["used_bytes"] + self.rng.randint(-10 ** 7, 10 ** 7))
        head = json.dumps(self.head, separators=(",", ":"))
        text = (head[:-1] + ',"software":{"status":"ok","manager":"dpkg","packages":' + self._packages_json
                + ',"detail":null}}')
        return gzip.compress(text.encode(), compresslevel=self.gzip_level)

    def report(self) -> dict:
        """The same report as a dict (for checking the body builder)."""
        return json.loads(gzip.decompress(self.body()))


# --- setting up the instance ---------------------------------------------------------------------

def prepare(instance: Path, database_url: str | None, wipe: bool) -> str:
    """A fresh, migrated instance with an IT staff user; returns an enrollment token's secret."""
    fresh_instance(instance, database_url, wipe_database=wipe)
    env = instance_env(instance, database_url)
    password = "bench agent ingest " + str(random.SystemRandom().randrange(10 ** 12))
    flask(["itops", "users", "create", "bench.it", "--role", "it_staff", "--display-name", "Bench IT Staff",
           "--password-stdin"], env, stdin=password + "\n")
    secret = None
    help_text = flask(["itops", "assets", "--help"], env)
    if "enrollment-token" in help_text:
        output = flask(["itops", "assets", "enrollment-token", "bench agents"], env)
        secret = next((word for word in output.split() if word.startswith("itops_enr_")), None)
    if secret is None:  # no CLI command (yet): the service, as the CLI would call it
        use_instance_in_process(instance, database_url)
        from itops import create_app
        from itops.assets import services
        from itops.core.auth import services as auth_services
        from itops.extensions import db

        with create_app().app_context():
            secret = services.issue_enrollment_token("bench agents", by=auth_services.find_user("bench.it")).secret
            db.session.commit()
    write_private_json(instance / CREDENTIALS, {"username": "bench.it", "password": password,
                                                "enrollment_token": secret, "database_url": database_url})
    return secret


# --- the run ---------------------------------------------------------------------------------------

def print_latency(label: str, result: LoadResult, ok: int) -> None:
    stats = latency_summary(result.latencies_ms)
    print(f"{label}: {ok} in {result.wall_s:.1f} s = {ok / result.wall_s:.1f}/s; latency ms p50 {stats['p50']:.1f} "
          f"p95 {stats['p95']:.1f} p99 {stats['p99']:.1f} max {stats['max']:.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=1000, help="simulated machines (default 1000)")
    parser.add_argument("--duration", type=float, default=30, help="seconds of reports (default 30)")
    parser.add_argument("--concurrency", type=int, default=16, help="client threads (default 16)")
    parser.add_argument("--instance", type=Path, default=default_instance("bench-agents"),
                        help="instance folder, recreated (default var/bench-agents)")
    parser.add_argument("--database-url", help="a PostgreSQL URL instead of the instance's SQLite file")
    parser.add_argument("--wipe-database", action="store_true",
                        help="with --database-url: drop every table already in that database first")
    add_gunicorn_arguments(parser)
    parser.add_argument("--gzip-level", type=int, default=1,
                        help="compression level of the bodies (the agent uses 9; the server's work is the same, "
                             "a lower level leaves more of the shared CPU to the server)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--check-only", action="store_true",
                        help="build and check a few reports (schema, gzip, sizes) without a server")
    args = parser.parse_args()
    if not 1 <= args.agents <= 65_536:
        parser.error("--agents must be 1 to 65536 (each agent gets a unique MAC from its number)")
    sigterm_as_interrupt()
    rng = random.Random(args.seed)
    pool = package_pool(random.Random(args.seed))
    made = time.perf_counter()
    agents = [Agent(n + 1, rng, pool, args.gzip_level) for n in range(args.agents)]
    sizes = [len(agents[i].body()) for i in range(min(20, len(agents)))]
    raw = len(json.dumps(agents[0].report(), separators=(",", ":")))
    print(f"{len(agents)} simulated agents in {time.perf_counter() - made:.1f} s; pool of {len(pool)} packages, "
          f"{PACKAGES_PER_AGENT} each; a report is ~{raw // 1024} KiB of JSON, ~{sum(sizes) // len(sizes) // 1024} "
          f"KiB gzip'd (level {args.gzip_level})")
    if args.check_only:
        return self_check(agents)

    instance = args.instance.resolve()
    print(f"instance {instance}  database {args.database_url or 'SQLite (instance/itops.db)'}")
    try:
        enrollment_token = prepare(instance, args.database_url, args.wipe_database)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    server = Server(instance_env(instance, args.database_url), instance / GUNICORN_LOG,
                    workers=args.workers, threads=args.threads)
    def measure() -> bool:
        failed = False
        server.start()
        print(f"{server.description}; {args.concurrency} client threads; machine: {machine_load()}")
        gzip_headers = {"Content-Type": "application/json", "Content-Encoding": "gzip", "Accept": "application/json",
                        "User-Agent": "itops-agent/1.0.0 (bench)"}

        # Enrollment: each agent once, with the shared enrollment token.
        def enroll(client: Http, sequence: int) -> int:
            agent = agents[sequence]
            answer = client.request("POST", ENROLL_PATH, agent.body(),
                                    {**gzip_headers, "Authorization": f"Bearer {enrollment_token}"})
            if answer.status == 201:
                agent.token = answer.json()["agent_token"]
            elif len(enroll_refusals) < 3:
                enroll_refusals.append(f"{answer.status}: {excerpt(answer.body)}")
            return answer.status

        enroll_refusals: list[str] = []
        result = run_load(enroll, concurrency=args.concurrency, setup=lambda _n: Http(server.port),
                          teardown=Http.close, requests=len(agents))
        print_latency("enrolled", result, result.ok((201,)))
        if result.problems((201,)):
            failed = True
            print(f"  ! not 201: {result.problems((201,))}")
            for line in enroll_refusals + result.examples[:2]:
                print(f"    {line}")
        enrolled = [agent for agent in agents if agent.token]
        if not enrolled:
            raise BenchError("no agent could enroll\n" + "\n".join(map(show_problem, server.log_problems()[-1:])))

        # Reports: round-robin over the enrolled agents for DURATION seconds.
        outcomes: Counter = Counter()
        kinds: Counter = Counter()
        outcome_lock = threading.Lock()

        def push(client: Http, sequence: int) -> int:
            agent = enrolled[sequence % len(enrolled)]
            with agent.lock:
                changed = agent.change() if agent.rng.random() < CHANGE_SHARE else None
                body = agent.body()
            answer = client.request("POST", INVENTORY_PATH, body,
                                    {**gzip_headers, "Authorization": f"Bearer {agent.token}"})
            if answer.status == 200:
                server_changes = answer.json().get("changes", 0)
                with outcome_lock:
                    outcomes[(changed is not None, server_changes > 0)] += 1
                    if changed:
                        kinds[changed] += 1
            return answer.status

        cpu_before, server_before = time.process_time(), server.cpu_seconds()
        result = run_load(push, concurrency=args.concurrency, setup=lambda _n: Http(server.port),
                          teardown=Http.close, duration=args.duration)
        client_cpu = (time.process_time() - cpu_before) / result.wall_s * 100
        server_after = server.cpu_seconds()
        ok = result.ok((200,))
        stats = latency_summary(result.latencies_ms)
        print_latency("reports", result, ok)
        errors = {status: n for status, n in result.statuses.items() if status != 200}
        print("errors by status: " + (", ".join(f"{s}: {n}" for s, n in sorted(errors.items())) or "none")
              + ("; exceptions: " + ", ".join(f"{k}: {n}" for k, n in result.failures.items())
                 if result.failures else ""))
        for example in result.examples[:2]:
            print(f"    {example}")
        print(f"changed reports: {sum(kinds.values())} ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}); "
              f"server saw changes in {outcomes[(True, True)]} of them; unchanged reports it found changes in: "
              f"{outcomes[(False, True)]}")
        if server_before is not None and server_after is not None and result.count:
            used = server_after - server_before
            print(f"gunicorn CPU: {used / result.wall_s * 100:.0f}% of one core, {used / result.count * 1000:.1f} ms "
                  f"per report; load generator CPU: {client_cpu:.0f}% of one core (bodies, gzip, HTTP)")
        else:
            print(f"load generator CPU: {client_cpu:.0f}% of one core (bodies, gzip, HTTP)")
        rate = ok / result.wall_s if result.wall_s else 0
        print(f"target: {TARGET_RATE} reports/s sustained with p95 < {P95_TARGET_MS} ms: "
              f"{rate:.1f}/s {'PASS' if rate >= TARGET_RATE else 'MISS'}, p95 {stats['p95']:.1f} ms "
              f"{'PASS' if stats['p95'] < P95_TARGET_MS else 'MISS'}")
        if errors or result.failures:
            failed = True
        server.check_alive()
        return failed

    return run_against(server, measure)


def self_check(agents: list[Agent]) -> int:
    """Without a server: the reports pass the server's own report check, and changes change them."""
    from itops.assets import inventory

    started = time.perf_counter()
    for agent in agents[:50]:
        inventory.check_report(inventory.read_body(agent.body(), "gzip"))
    per_report = (time.perf_counter() - started) / min(50, len(agents)) * 1000
    agent = agents[0]
    before = agent.report()
    what = agent.change()
    after = agent.report()
    assert before["software"]["packages"] != after["software"]["packages"] or before["memory"] != after["memory"], what
    hostnames = {a.hostname for a in agents}
    serials = {a.serial for a in agents}
    macs = {n["mac"] for a in agents for n in a.head["network"]}
    assert len(hostnames) == len(serials) == len(agents), "hostnames and serials must be unique"
    assert len(macs) == sum(len(a.head["network"]) for a in agents), "MACs must be unique"
    started = time.perf_counter()
    for agent in agents[:200]:
        agent.body()
    build = (time.perf_counter() - started) / min(200, len(agents)) * 1000
    print(f"reports pass itops.assets.inventory.check_report ({per_report:.1f} ms each to read and check "
          f"in-process); a change ({what}) shows in the next report; hostnames, serials and MACs unique; "
          f"building a gzip'd body takes {build:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

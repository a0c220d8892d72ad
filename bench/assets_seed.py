"""Seed a bench instance with a realistic asset inventory, fast (bulk inserts), for bench/assets_bench.py.

Makes a fresh instance folder, migrates it (`flask db upgrade`), creates an IT staff user who can sign in
(password and a personal API token are written to <instance>/bench.json, mode 0600), ~2,000 employees
(directory accounts) and COUNT assets with 1-3 history events each. The rows are what the services would
write (tags IT-000042, search_text, event summaries and details, statuses that respect the lifecycle and
holders) but are inserted 5,000 at a time with session.execute(insert(...)), not one by one. Audit entries
are not written for the bulk rows. Prints a progress bar, the time taken and rows per second.

usage: .venv/bin/python bench/assets_seed.py [--count 100000] [--instance var/bench-assets]
                                             [--database-url postgresql://... [--wipe-database]] [--seed 1]
"""
from __future__ import annotations

import argparse
import random
import string
import sys
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
import click

from _common import CREDENTIALS, add_seed_arguments, prepare_seed_instance, write_private_json

BATCH = 5_000
EMPLOYEES = 2_000
IT_USERNAME = "bench.it"

FIRST_NAMES = (
    "anna", "ben", "clara", "david", "elena", "felix", "greta", "hannah", "ivan", "julia", "karim", "lena", "max",
    "nina", "oskar", "paula", "quentin", "rosa", "samuel", "tina", "umar", "vera", "walter", "xenia", "yusuf", "zoe",
    "amelie", "bruno", "chiara", "dominik", "emma", "fabian", "gabriel", "helena", "isabel", "jonas", "katharina",
    "lukas", "marie", "niklas", "olivia", "peter", "rania", "sophie", "thomas", "ulrike", "valentin", "wiebke",
    "aylin", "bastian", "carla", "deniz", "erik", "fatima", "georg", "hugo", "ines", "jan", "kemal", "laura",
    "moritz", "nora", "ole", "pia", "ralf", "sara", "tobias", "uwe", "victoria", "william", "yara", "zeynep",
)
LAST_NAMES = (
    "mueller", "schmidt", "schneider", "fischer", "weber", "meyer", "wagner", "becker", "schulz", "hoffmann",
    "koch", "richter", "klein", "wolf", "schroeder", "neumann", "schwarz", "braun", "zimmermann", "krueger",
    "hartmann", "lange", "werner", "krause", "lehmann", "koehler", "kaiser", "fuchs", "peters", "lang", "scholz",
    "moeller", "weiss", "jung", "hahn", "vogel", "friedrich", "keller", "guenther", "frank", "berger", "winkler",
    "roth", "beck", "lorenz", "baumann", "franke", "albrecht", "yilmaz", "kaya", "nowak", "kowalski", "rossi",
    "garcia", "martin", "dubois", "smith", "jones", "taylor", "brown", "jansen", "de.vries", "novak", "horvath",
)
OFFICES = (  # (code, site, floors): 42 locations in all
    ("ber", "Berlin HQ", 8), ("muc", "Munich", 5), ("ham", "Hamburg", 4), ("fra", "Frankfurt", 3),
    ("cgn", "Cologne", 2), ("lon", "London", 4), ("par", "Paris", 3), ("ams", "Amsterdam", 3), ("vie", "Vienna", 2),
    ("zrh", "Zurich", 2), ("mad", "Madrid", 2), ("waw", "Warsaw", 1),
)
FLOOR_LOCATIONS = [(code, f"{site}, floor {floor}") for code, site, floors in OFFICES for floor in range(1, floors + 1)]
STORE_LOCATIONS = [("ber", "Berlin HQ, IT storage room"), ("fra", "Central warehouse Frankfurt")]
DC_LOCATIONS = [("fra", "Frankfurt DC FRA1, hall A"), ("fra", "Frankfurt DC FRA1, hall B")]

ALNUM = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"  # no I or O, as most vendors print them
DIGITS = string.digits
HEX = "0123456789ABCDEF"

# (manufacturer, model, cost range EUR, warranty years, serial (prefix, alphabet, length), TAC or OUI, supplier)
CATALOG: dict[str, list[tuple]] = {
    "laptop": [
        ("Lenovo", "ThinkPad T14 Gen 4", (1150, 1650), 3, ("PF", ALNUM, 6), None, "Bechtle"),
        ("Lenovo", "ThinkPad X1 Carbon Gen 11", (1700, 2300), 3, ("PF", ALNUM, 6), None, "Bechtle"),
        ("Dell", "Latitude 5440", (950, 1350), 3, ("", ALNUM, 7), None, "Dell Technologies"),
        ("Dell", "Latitude 7440", (1300, 1800), 3, ("", ALNUM, 7), None, "Dell Technologies"),
        ("HP", "EliteBook 840 G10", (1100, 1600), 3, ("5CG", ALNUM, 7), None, "CANCOM"),
        ("Apple", "MacBook Pro 14\" M3", (2000, 2900), 1, ("", ALNUM, 10), None, "Apple Business"),
        ("Apple", "MacBook Air 13\" M2", (1200, 1600), 1, ("", ALNUM, 10), None, "Apple Business"),
    ],
    "desktop": [
        ("Dell", "OptiPlex 7010 Micro", (700, 1000), 3, ("", ALNUM, 7), None, "Dell Technologies"),
        ("HP", "EliteDesk 800 G9 Mini", (750, 1100), 3, ("CZC", ALNUM, 7), None, "CANCOM"),
        ("Lenovo", "ThinkCentre M90q Gen 4", (800, 1150), 3, ("MJ", ALNUM, 6), None, "Bechtle"),
        ("Apple", "Mac mini M2", (700, 1100), 1, ("", ALNUM, 10), None, "Apple Business"),
    ],
    "server": [
        ("Dell", "PowerEdge R660", (6500, 14000), 5, ("", ALNUM, 7), None, "Dell Technologies"),
        ("Dell", "PowerEdge R760", (8000, 22000), 5, ("", ALNUM, 7), None, "Dell Technologies"),
        ("HPE", "ProLiant DL380 Gen11", (7500, 20000), 5, ("CZ2", ALNUM, 7), None, "Computacenter"),
        ("Lenovo", "ThinkSystem SR650 V3", (7000, 18000), 5, ("J", ALNUM, 7), None, "Bechtle"),
    ],
    "mobile_phone": [
        ("Apple", "iPhone 15", (800, 950), 1, ("", ALNUM, 10), "35938437", "Telekom Business"),
        ("Apple", "iPhone 14", (650, 800), 1, ("", ALNUM, 10), "35328171", "Telekom Business"),
        ("Apple", "iPhone SE (3rd gen)", (450, 550), 1, ("", ALNUM, 10), "35067452", "Telekom Business"),
        ("Samsung", "Galaxy S23", (700, 900), 2, ("R5C", ALNUM, 8), "35160473", "Vodafone Business"),
        ("Samsung", "Galaxy A54 5G", (350, 450), 2, ("R5C", ALNUM, 8), "35421019", "Vodafone Business"),
        ("Google", "Pixel 8", (600, 750), 2, ("3", ALNUM, 13), "35739162", "Vodafone Business"),
    ],
    "desk_phone": [
        ("Cisco", "IP Phone 8841", (180, 260), 1, ("FCH", ALNUM, 8), "00:1b:54", "Computacenter"),
        ("Yealink", "SIP-T54W", (150, 210), 2, ("", DIGITS, 16), "80:5e:c0", "Bechtle"),
        ("Poly", "VVX 450", (170, 240), 1, ("", HEX, 12), "64:16:7f", "Bechtle"),
        ("Snom", "D785", (160, 220), 2, ("", DIGITS, 10), "00:04:13", "CANCOM"),
    ],
    "switch": [
        ("Cisco", "Catalyst 9300-48P", (4500, 8000), 5, ("FOC", ALNUM, 8), "cisco_xe", "Computacenter"),
        ("Cisco", "Catalyst 9200L-24P", (1800, 3200), 5, ("JAE", ALNUM, 8), "cisco_xe", "Computacenter"),
        ("Aruba", "CX 6300M 48G", (4000, 7000), 5, ("SG", ALNUM, 8), "aruba_aoscx", "Bechtle"),
        ("Juniper", "EX3400-48P", (3500, 6000), 5, ("NW", ALNUM, 10), "juniper_junos", "Computacenter"),
    ],
    "router": [
        ("Cisco", "ISR 4331", (2500, 4500), 5, ("FDO", ALNUM, 8), "cisco_ios", "Computacenter"),
        ("Juniper", "SRX340", (2000, 3500), 5, ("CW", ALNUM, 10), "juniper_junos", "Computacenter"),
        ("MikroTik", "CCR2004-16G-2S+", (450, 650), 1, ("", HEX, 12), "mikrotik_routeros", "Bechtle"),
    ],
    "access_point": [
        ("Aruba", "AP-515", (600, 900), 5, ("CN", ALNUM, 8), None, "Bechtle"),
        ("Cisco", "Catalyst 9120AXI", (800, 1200), 5, ("FJC", ALNUM, 8), None, "Computacenter"),
        ("Ubiquiti", "U6 Pro", (150, 200), 1, ("", HEX, 12), None, "CANCOM"),
    ],
    "printer": [
        ("HP", "LaserJet Enterprise M507dn", (450, 650), 1, ("PHB", ALNUM, 7), None, "CANCOM"),
        ("Brother", "HL-L6410DN", (400, 550), 3, ("E7", ALNUM, 8), None, "Bechtle"),
        ("Kyocera", "ECOSYS M3655idn", (900, 1300), 3, ("R4", ALNUM, 8), None, "Bechtle"),
        ("Canon", "imageRUNNER ADVANCE DX C5840i", (6000, 9000), 3, ("2", ALNUM, 8), None, "Canon Business"),
    ],
    "other": [
        ("Dell", "P2723DE monitor", (320, 420), 3, ("CN0", ALNUM, 9), None, "Dell Technologies"),
        ("Lenovo", "ThinkPad Universal USB-C Dock", (180, 260), 3, ("ZK", ALNUM, 8), None, "Bechtle"),
        ("Jabra", "Evolve2 65 headset", (180, 240), 2, ("", DIGITS, 12), None, "CANCOM"),
        ("Epson", "EB-L520U projector", (1800, 2600), 3, ("X9", ALNUM, 8), None, "CANCOM"),
        ("Logitech", "Rally Bar", (3500, 4500), 2, ("2", ALNUM, 9), None, "CANCOM"),
    ],
}
KIND_WEIGHTS = {"laptop": 30, "desktop": 12, "server": 4, "mobile_phone": 22, "desk_phone": 12, "switch": 3,
                "router": 1, "access_point": 4, "printer": 4, "other": 8}
# (status, with holder?) -> weight, per group of kinds. Deployed, pending return and (partly) in repair have a holder.
PERSONAL = {("deployed", True): 60, ("in_stock", False): 17, ("ordered", False): 4, ("in_repair", True): 1.5,
            ("in_repair", False): 1.5, ("pending_return", True): 3, ("retired", False): 9, ("disposed", False): 4}
DESK = {("deployed", True): 45, ("in_stock", False): 30, ("ordered", False): 3, ("in_repair", False): 2,
        ("pending_return", True): 1, ("retired", False): 13, ("disposed", False): 6}
INFRA = {("in_stock", False): 75, ("ordered", False): 4, ("in_repair", False): 3, ("retired", False): 12,
         ("disposed", False): 6}
PERSONAL_KINDS = ("laptop", "mobile_phone", "desktop")
STATUS_MIX = {"laptop": PERSONAL, "mobile_phone": PERSONAL, "desktop": DESK, "desk_phone": DESK, "other": DESK,
              "server": INFRA, "switch": INFRA, "router": INFRA, "access_point": INFRA, "printer": INFRA}
CARRIERS = (("Telekom", "894901", "+49151"), ("Vodafone", "894902", "+49162"), ("O2", "894907", "+49176"))
NOTES = ("Spare unit for new starters.", "Keyboard replaced under warranty.", "Battery swollen, see ticket.",
         "Loaner pool.", "Bought for the 2024 trade fair.", "Screen has a scratch on the left edge.")


def luhn_digit(digits: str) -> str:
    """The check digit that makes digits + it pass the Luhn check (IMEI, ICCID)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


class Generator:
    """Deterministic (for a given seed) asset rows and their history events."""

    def __init__(self, rng: random.Random, employees: list[tuple[int, str, str]],
                 actors: list[tuple[int, str]], credential_ids: list[int], today: date):
        self.rng, self.employees, self.actors, self.credential_ids = rng, employees, actors, credential_ids
        self.today = today
        self.now = datetime.now(timezone.utc)
        self.used: dict[str, set] = {"serial": set(), "imei": set(), "mac": set(), "phone": set()}
        self.kinds, self.kind_weights = list(KIND_WEIGHTS), list(KIND_WEIGHTS.values())
        self.counters: dict[str, int] = {}
        self.by_id = {person[0]: person for person in employees}

    def unique(self, space: str, make) -> str:
        used = self.used[space]
        while True:
            value = make()
            if value not in used:
                used.add(value)
                return value

    def random_text(self, alphabet: str, length: int) -> str:
        return "".join(self.rng.choices(alphabet, k=length))

    def serial(self, spec) -> str:
        prefix, alphabet, length = spec
        return self.unique("serial", lambda: prefix + self.random_text(alphabet, length))

    def number(self, key: str) -> int:
        self.counters[key] = self.counters.get(key, 0) + 1
        return self.counters[key]

    def moment(self, start: datetime, end: datetime) -> datetime:
        """A working-hours moment between start and end (UTC, whole seconds)."""
        share, hour, minute = self.rng.random(), self.rng.randint(7, 16), self.rng.randint(0, 59)  # always 3 draws
        if end <= start:
            return start
        moment = start + (end - start) * share
        if moment.hour < 7 or moment.hour > 17:
            candidate = moment.replace(hour=hour, minute=minute)
            moment = candidate if start <= candidate <= end else moment
        return moment.replace(microsecond=0)

    def asset(self, asset_id: int) -> tuple[dict, list[dict]]:
        rng = self.rng
        kind = rng.choices(self.kinds, self.kind_weights)[0]
        manufacturer, model, (low, high), warranty_years, serial_spec, extra, supplier = rng.choice(CATALOG[kind])
        mix = STATUS_MIX[kind]
        status, held = rng.choices(list(mix), list(mix.values()))[0]
        tag = f"IT-{asset_id:06d}"

        # Dates: bought over the last five years; what is ordered is recent, what is retired is old.
        if status == "ordered":
            purchase = self.today - timedelta(days=rng.randint(0, 30))
        elif status in ("retired", "disposed"):
            purchase = self.today - timedelta(days=rng.randint(3 * 365, 5 * 365))
        else:
            purchase = self.today - timedelta(days=rng.randint(0, 5 * 365))
        created_at = self.moment(datetime(purchase.year, purchase.month, purchase.day, tzinfo=timezone.utc)
                                 + timedelta(days=rng.randint(0, 14)), self.now)
        warranty_end = None
        if rng.random() > 0.05:
            years = max(1, warranty_years + rng.choice((0, 0, 0, 1, -1)))
            warranty_end = purchase.replace(year=purchase.year + years) if not (
                purchase.month == 2 and purchase.day == 29) else purchase + timedelta(days=365 * years)

        if kind in ("laptop", "desktop"):
            code = rng.choice(FLOOR_LOCATIONS)[0]
            name = f"{code}-{'lt' if kind == 'laptop' else 'ws'}-{self.number(kind + code):05d}"
        elif kind == "server":
            name = f"srv-fra1-{rng.choice(('app', 'db', 'web', 'k8s', 'vm', 'bkp'))}{self.number('srv'):04d}"
        elif kind in ("switch", "router", "access_point", "printer"):
            code = rng.choice(FLOOR_LOCATIONS)[0]
            short = {"switch": "sw", "router": "rtr", "access_point": "ap", "printer": "prn"}[kind]
            name = f"{code}-{short}-{self.number(short + code):04d}"
        else:
            name = f"{model} #{self.number(model):04d}"

        if held or status == "deployed":
            location = rng.choice(FLOOR_LOCATIONS)[1]
        elif kind in ("server", "switch", "router") and status == "in_stock":
            location = rng.choice(DC_LOCATIONS + FLOOR_LOCATIONS[:6])[1]
        elif kind in ("access_point", "printer", "desk_phone") and status == "in_stock":
            location = rng.choice(FLOOR_LOCATIONS)[1]
        else:
            location = rng.choice(STORE_LOCATIONS)[1]

        row = {
            "id": asset_id, "tag": tag, "kind": kind, "name": name, "serial": self.serial(serial_spec),
            "manufacturer": manufacturer, "model": model, "status": status, "location": location,
            "holder_id": None, "expected_return": None, "purchase_date": None if status == "ordered" and
            rng.random() < 0.5 else purchase,
            "cost": Decimal(rng.uniform(low, high)).quantize(Decimal("0.01")), "supplier": supplier,
            "warranty_end": warranty_end, "notes": rng.choice(NOTES) if rng.random() < 0.03 else None,
            "imei": None, "phone_number": None, "iccid": None, "carrier": None, "mac": None, "extension": None,
            "management_address": None, "device_type": None, "credential_id": None, "software_digest": None,
            "last_seen_at": None, "last_user": None, "agent_token_hash": None, "search_text": "",
            "created_at": created_at, "updated_at": created_at,
            # `facts` is left out: SQL NULL, as create_asset leaves it (None here would store JSON null).
        }
        if kind == "mobile_phone":
            row["imei"] = self.unique("imei", lambda: (body := extra + self.random_text(DIGITS, 6)) + luhn_digit(body))
            carrier, iccid_prefix, number_prefix = rng.choice(CARRIERS)
            if status not in ("retired", "disposed") or rng.random() < 0.3:
                row["carrier"] = carrier
                row["phone_number"] = self.unique("phone", lambda: number_prefix + self.random_text(DIGITS, 8))
                body = iccid_prefix + self.random_text(DIGITS, 13)
                row["iccid"] = body + luhn_digit(body)
        elif kind == "desk_phone":
            row["mac"] = self.unique("mac", lambda: extra + "".join(
                f":{rng.randrange(256):02x}" for _ in range(3)))
            row["extension"] = str(rng.randint(1000, 79999))
            row["name"] = f"Ext {row['extension']}"
        elif kind in ("switch", "router", "access_point"):
            row["management_address"] = f"10.{rng.randint(0, 63)}.{rng.randint(0, 255)}.{rng.randint(2, 254)}"
            row["device_type"] = extra
            if extra and self.credential_ids and rng.random() < 0.7:
                row["credential_id"] = rng.choice(self.credential_ids)

        events = self.history(row, status, held)
        row["updated_at"] = events[-1]["at"]
        holder = self.by_id.get(row["holder_id"])
        parts = [row["tag"], row["name"], row["serial"], row["imei"], row["mac"], row["phone_number"]]
        if holder is not None:
            parts += [holder[1], holder[2]]
        row["search_text"] = " ".join(p.lower() for p in parts if p)[:600]  # as services._search_text
        return row, events

    def history(self, row: dict, status: str, held: bool) -> list[dict]:
        """1-3 events that lead to `status` by the moves the services allow; sets the holder on `row`."""
        rng, kind_label = self.rng, KIND_LABELS[row["kind"]]
        steps: list[tuple] = []  # (event kind, summary maker, details, holder)

        def created(initial: str):
            steps.append(("created", f"{kind_label} {row['tag']} created ({LABEL[initial].lower()})", None, None))

        def move(current: str, target: str):
            steps.append(("status", f"{LABEL[current]} → {LABEL[target]}",
                          {"from": current, "to": target, "note": None}, None))

        def checkout(person, expected: date | None = None):
            steps.append(("checkout", f"checked out to {person[2]} ({person[1]})",
                          {"from": "in_stock", "expected_return": expected.isoformat() if expected else None,
                           "condition": None}, person))

        def checkin(person, target: str):
            steps.append(("checkin", f"checked in from {person[2]} ({person[1]}) to {LABEL[target].lower()}",
                          {"from": "deployed", "to": target, "condition": None}, person))

        person = rng.choice(self.employees)
        roll = rng.random()
        created("ordered" if status == "ordered" or (status == "in_stock" and roll < 0.2) else "in_stock")
        if status == "in_stock" and roll < 0.2:
            move("ordered", "in_stock")
        elif status == "in_stock" and roll < 0.45 and row["kind"] in PERSONAL_KINDS + ("desk_phone", "other"):
            checkout(person)
            checkin(person, "in_stock")
        elif status == "deployed":
            expected = None
            if row["kind"] == "laptop" and roll < 0.05:
                expected = self.today + timedelta(days=rng.randint(-30, 90))
                row["expected_return"] = expected
            checkout(person, expected)
        elif status in ("pending_return", "in_repair") and held:
            checkout(person)
            move("deployed", status)
        elif status == "in_repair":
            move("in_stock", "in_repair")
        elif status == "retired" and roll < 0.5 and row["kind"] in PERSONAL_KINDS:
            checkout(person)
            checkin(person, "retired")
        elif status in ("retired", "disposed"):
            move("in_stock", "retired")
            if status == "disposed":
                move("retired", "disposed")
        if held:
            row["holder_id"] = person[0]

        moments = [row["created_at"]] + sorted(self.moment(row["created_at"], self.now) for _ in steps[1:])
        actor_id, actor_label = rng.choice(self.actors)
        events = []
        for (kind, summary, details, holder), at in zip(steps, moments):
            events.append({"asset_id": row["id"], "at": at, "kind": kind, "actor_id": actor_id,
                           "actor_label": actor_label, "holder_id": holder[0] if holder else None,
                           "summary": summary[:500], "details": details})
        return events


KIND_LABELS: dict[str, str] = {}
LABEL: dict[str, str] = {}


def make_people(rng: random.Random, count: int) -> list[dict]:
    rows, seen = [], set()
    while len(rows) < count:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        username, suffix = f"{first}.{last}", 1
        while username in seen:
            suffix += 1
            username = f"{first}.{last}{suffix}"
        seen.add(username)
        display = f"{first.capitalize()} {' '.join(p.capitalize() for p in last.split('.'))}"
        rows.append({"username": username, "display_name": display, "email": f"{username}@example.org",
                     "role": "employee", "source": "directory", "password_hash": None,
                     "directory_dn": f"uid={username},ou=people,dc=example,dc=org", "active": True,
                     "session_version": 1})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_seed_arguments(parser, what="assets", default_count=100_000, instance_name="bench-assets")
    args = parser.parse_args()
    started = time.perf_counter()
    instance = prepare_seed_instance(args)
    if instance is None:
        return 1
    migrated = time.perf_counter()
    import secrets

    from sqlalchemy import insert, select, text

    from itops import create_app
    from itops.assets import services as asset_services
    from itops.assets.choices import AssetKind, Status
    from itops.assets.models import Asset, AssetEvent
    from itops.core.auth import services as auth_services
    from itops.core.auth.models import User
    from itops.extensions import db

    KIND_LABELS.update({kind.value: kind.label for kind in AssetKind})
    LABEL.update({status.value: status.label for status in Status})
    rng = random.Random(args.seed)
    app = create_app()
    with app.app_context():
        password = secrets.token_urlsafe(18)
        it_user = auth_services.create_local_user(IT_USERNAME, password, role="it_staff",
                                                  display_name="Bench IT Staff", email="bench.it@example.org",
                                                  by="bench")
        api_token = auth_services.issue_token(it_user, "bench", by="bench").secret
        colleagues = [{"username": f"it.{u['username']}", "display_name": u["display_name"],
                       "email": f"it.{u['email']}", "role": "it_staff", "source": "directory",
                       "password_hash": None, "directory_dn": u["directory_dn"].replace("uid=", "uid=it."),
                       "active": True, "session_version": 1} for u in make_people(random.Random(-args.seed), 4)]
        db.session.execute(insert(User), make_people(rng, EMPLOYEES) + colleagues)
        credential_ids = [asset_services.create_credential(name, user, secrets.token_urlsafe(16), by=it_user).id
                          for name, user in (("network-admin", "netadmin"), ("branch-routers", "rtradmin"),
                                             ("legacy-switches", "admin"))]
        db.session.commit()
        users = db.session.execute(select(User.id, User.username, User.display_name, User.role)).all()
        employees = [(u.id, u.username, u.display_name) for u in users if u.role == "employee"]
        actors = [(u.id, u.username) for u in users if u.role == "it_staff"]
        write_private_json(instance / CREDENTIALS, {
            "username": IT_USERNAME, "password": password, "api_token": api_token,
            "database_url": args.database_url, "assets": args.count, "employees": len(employees),
            "seed": args.seed})
        people_done = time.perf_counter()
        print(f"users: {IT_USERNAME} (IT staff, can sign in), {len(actors) - 1} more IT staff, "
              f"{len(employees)} employees in {people_done - migrated:.1f} s")
        print(f"password and API token for {IT_USERNAME}: {instance / CREDENTIALS}")

        generator = Generator(rng, employees, actors, credential_ids, date.today())
        first_id = (db.session.scalar(select(db.func.max(Asset.id))) or 0) + 1
        event_count, insert_s = 0, 0.0
        with click.progressbar(length=args.count, label="assets", show_eta=True, show_pos=True,
                               file=sys.stdout) as bar:
            for batch_start in range(0, args.count, BATCH):
                assets, events = [], []
                for offset in range(batch_start, min(batch_start + BATCH, args.count)):
                    row, history = generator.asset(first_id + offset)
                    assets.append(row)
                    events.extend(history)
                t0 = time.perf_counter()
                # render_nulls: every row has the same columns, so each batch is one multi-row INSERT
                # (without it the ORM leaves out each row's None values and splits the batch, ~5x slower).
                db.session.execute(insert(Asset).execution_options(render_nulls=True), assets)
                db.session.execute(insert(AssetEvent).execution_options(render_nulls=True), events)
                db.session.commit()
                insert_s += time.perf_counter() - t0
                event_count += len(events)
                bar.update(len(assets))
        if db.engine.dialect.name == "postgresql":
            # Explicit ids leave the sequence behind; a later create_asset must not collide. Autovacuum
            # would analyse the new rows within a minute; do it now so the bench does not race it.
            db.session.execute(text("SELECT setval(pg_get_serial_sequence('assets', 'id'), "
                                    "(SELECT max(id) FROM assets))"))
            db.session.commit()
            db.session.execute(text("ANALYZE"))
            db.session.commit()
        done = time.perf_counter()
        counts = db.session.execute(select(Asset.status, db.func.count()).group_by(Asset.status)).all()

    elapsed = done - people_done
    rows = args.count + event_count
    print(f"{args.count} assets and {event_count} history events in {elapsed:.1f} s "
          f"({args.count / elapsed:,.0f} assets/s, {rows / elapsed:,.0f} rows/s; "
          f"{insert_s:.1f} s of it in INSERT + COMMIT)")
    print("by status: " + ", ".join(f"{status} {count}" for status, count in sorted(counts)))
    print(f"total {done - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Seed a bench instance with a realistic helpdesk (1,000,000 tickets by default), fast, for bench/tickets_bench.py.

Makes a fresh instance folder, migrates it (`flask db upgrade`), creates ~2,000 employees (directory accounts),
30 IT staff in 4 teams, 12 categories with default teams (and a few default assignees), 3 canned responses and
some assets held by employees (assets_seed.py's generator), then COUNT tickets with about 2 comments each
(~20% of them internal notes) and the activity lines the services write (created, status moves, assignments,
SLA breaches). Credentials for an IT staff user and an employee (passwords and personal API tokens) go to
<instance>/bench.json (mode 0600), with the search words the bench uses.

The rows are what the services would have written (see README.md, "Ticket pages"), generated in worker
processes and inserted 5,000 tickets at a time. Prints a progress bar, the time of each phase, rows/s and
the size of the database.

usage: .venv/bin/python bench/tickets_seed.py [--count 1000000] [--instance var/bench-tickets]
                                              [--database-url postgresql://... [--wipe-database]] [--seed 1]
"""
from __future__ import annotations

import argparse
import importlib.util
import multiprocessing
import os
import random
import sys
import time
from bisect import bisect_left, bisect_right
from collections import Counter
from datetime import date, datetime, timedelta, timezone
import click

from _common import (
    CREDENTIALS, PROJECT_ROOT, BenchError, add_seed_arguments, human_bytes, prepare_seed_instance,
    sqlite_database_size, write_private_json,
)

BATCH = 5_000
EMPLOYEES = 2_000
IT_USERNAME = "bench.it"
EMPLOYEE_USERNAME = "bench.employee"
AUTOCLOSE_DAYS = 5          # what a resolved ticket waits before auto_close closes it (the default setting)
SPAN_DAYS = 730             # tickets are spread over two years up to now
OPEN_OLDEST, OPEN_NEWEST = 0.25, 0.65   # share of open tickets among the oldest and the newest: 45% on average

# --- words ---------------------------------------------------------------------------------------
# Three tiers. Function words (42% of body words) and ~1,650 helpdesk words (titles are only these) are drawn
# with a Zipf-Mandelbrot law, 1/(rank + 20)^s: the most common helpdesk words are in over half of all tickets
# (with their comments), the least common in a few per thousand. Then ~900 rare words (protocols, tools,
# model numbers), 0.1% of all words, each equally likely (~1e-6 per word): each is in ~0.015% of tickets.
# COMMON_WORD and RARE_WORD are the bench's searches.

FUNCTION_WORDS = """
the to and a i is it my in of on not for this that with be can you have we from when but are was at please as
an or do after since no me our now again still also if all so any there will would some just only out up one
because has had been does did could should which what how why who here then than other every each more most
very too yesterday today tomorrow morning afternoon evening week hello hi thanks thank regards best kind dear
sorry same already while before during about into over under between without through able unable cannot dont
doesnt isnt wont didnt them they their your us he she his her him its these those where whether both either
few many much several around until within across against per via instead though although however anyway
""".split()

VERBS = """
access add allow approve archive assign block boot break call cancel change charge check clean click close
configure connect copy crash create delete deploy disable disconnect display download drop enable encrypt enroll
expire export fail fix flash forward freeze hang help import install join launch load lock log lose map migrate
miss move need open order pair patch plug print reboot receive recover redirect refresh register reinstall
remove rename renew repair replace reply request reset resolve restart restore retry return run save scan
schedule search send set share shut sign start stop store submit support swap sync test transfer troubleshoot
type unlock update upgrade upload use verify view wipe work authenticate forget mount overheat ping provision
quarantine roll route stream trigger uninstall validate wake attach delay duplicate edit enter flicker format
generate grant ignore keep lag mirror notice prompt recognise reconnect reproduce respond revoke rotate select
show skip spin submit suspend time toggle track turn unplug wait warn zoom appear disappear drain expect
""".split()

IRREGULAR = {"break": ("breaks", "broke", "breaking", "broken"), "freeze": ("freezes", "froze", "freezing", "frozen"),
             "hang": ("hangs", "hung", "hanging"), "lose": ("loses", "lost", "losing"),
             "send": ("sends", "sent", "sending"), "set": ("sets", "setting"), "shut": ("shuts", "shutting"),
             "run": ("runs", "ran", "running"), "forget": ("forgets", "forgot", "forgetting", "forgotten"),
             "show": ("shows", "showed", "showing", "shown"), "keep": ("keeps", "kept", "keeping"),
             "spin": ("spins", "spun", "spinning"), "wake": ("wakes", "woke", "waking")}
DOUBLING = {"stop", "plug", "drop", "map", "swap", "log", "scan", "ship", "unplug", "lag", "skip", "flag"}

NOUNS = """
laptop desktop computer pc monitor screen display keyboard mouse dock station charger cable adapter headset
webcam camera microphone speaker printer scanner copier toner cartridge paper tray drum fuser phone smartphone
mobile tablet battery button port usb hdmi displayport ethernet wifi network router switch firewall proxy vpn
server storage disk drive ssd share folder file document backup database account password username login
credential token certificate authenticator code pin badge permission group role licence license subscription
software application app program tool browser extension plugin driver firmware bios update patch version
release installer package email mail mailbox inbox calendar meeting invitation room chat channel call video
conference site page link portal intranet website url domain address gateway subnet port socket outlet desk
floor building office location user employee colleague manager department reception warehouse contractor
intern starter leaver request ticket issue problem error message warning popup window icon menu setting option
profile signature template report invoice order purchase quote approval budget cost hardware device machine
system service cloud tenant directory policy rule alert notification reminder password sync connection signal
bandwidth speed latency outage downtime maintenance migration upgrade rollout image snapshot volume partition
memory ram cpu processor fan noise temperature screen keyboard trackpad touchpad stylus pen case bag sleeve
lock key card reader fingerprint face camera shortcut desktop taskbar start file folder drive attachment
spreadsheet presentation pdf form field column row cell macro formula chart table dashboard query export
import archive mailbox distribution list alias forward contact number extension voicemail headset handset
cord plug power supply ups rack cabinet patch panel jack wall ceiling access point antenna coverage guest
visitor hotspot tether roaming data plan sim esim contract carrier provider bill charge fee refund laptop
backpack loaner replacement spare warranty repair return shipment courier delivery parcel label serial tag
asset inventory holder owner admin administrator rights elevation install uninstall script command terminal
console shell log entry event crash dump trace screenshot recording step reproduce workaround fix solution
cause reason question answer feedback follow status priority urgency impact deadline project client customer
supplier vendor partner invoice contract quote order delivery payment salary payroll expense travel booking
shift rota holiday leave training course session webinar recording presentation slide video audio sound
volume mic mute echo feedback delay connection quality resolution brightness colour color cursor pointer
scroll wheel click key spacebar enter shift ctrl alt tab escape function fn caps numlock layout language
font size zoom scale night mode theme background wallpaper lockscreen screensaver timeout sleep hibernate
shutdown restart boot startup login logon logoff session profile cache cookie history bookmark favourite
homepage tab download upload sync conflict copy version history recycle bin trash quota space limit size
""".split()

ADJECTIVES = """
slow fast broken blank black blue frozen unresponsive intermittent random constant urgent important critical
new old shared personal remote local external internal wireless wired corporate main second spare temporary
permanent missing wrong correct expired locked disabled enabled encrypted full empty red green yellow orange
flashing loud quiet noisy hot warm cold sticky cracked damaged wet loose stuck strange weird different whole
entire entirely completely suddenly randomly constantly sometimes often always never usually properly correctly
anymore anywhere everywhere nothing something everything anything someone everyone nobody possible impossible
available unavailable offline online outdated latest previous next last first current daily weekly monthly
annual blurry dim bright dead faulty defective unstable stable secure insecure suspicious phishing spam junk
unknown invalid valid successful unsuccessful manual automatic automatically manually immediately urgently
quickly slowly finally recently currently apparently unfortunately basically actually really maybe probably
""".split()

PRODUCTS = """
windows macos linux ubuntu ios ipados android office word excel powerpoint onenote outlook teams sharepoint
onedrive exchange azure intune entra autopilot defender bitlocker filevault jamf okta duo citrix vmware
anyconnect globalprotect fortinet forticlient cisco meraki aruba ubiquiti juniper lenovo thinkpad dell latitude
optiplex hp elitebook zbook apple macbook imac surface samsung galaxy pixel yealink poly jabra logitech brother
kyocera canon ricoh xerox epson sap salesforce hubspot jira confluence slack zoom webex adobe acrobat photoshop
reader chrome firefox edge safari java python git github gitlab docker kubernetes sql oracle postgres mysql
datev lexware workday personio successfactors concur servicenow zendesk dropbox wetransfer notepad putty
teamviewer anydesk snagit visio autocad solidworks matlab tableau powerbi miro figma notion trello asana
lastpass bitwarden keepass onelogin crowdstrike sophos eset kaspersky veeam synology netapp nutanix proxmox
hyperv vsphere esxi vcenter ldap active directory gpo sccm wsus mdm authenticator yubikey smartcard
""".split()

RARE_WORDS = """
kerberos ldaps radius saml oauth openid scim smtp imap mapi activesync autodiscover cname spf dkim dmarc
tls cipher handshake mtu jumbo lacp stp bpdu qos dscp ospf bgp nat pat ipsec ikev2 wireguard openvpn l2tp
pptp sstp ntlm ntlmv2 gssapi spn keytab krbtgt tgt adfs pingfederate shibboleth webauthn fido2 passkey totp
hotp otp sms recovery seed entropy tpm uefi secureboot measured attestation pxe wds mdt ipxe grub efi
initramfs kernel panic bluescreen bsod bugcheck minidump kerneldata irql dpc watchdog thermal throttling
undervolt overclock firmware capsule microcode spectre meltdown rowhammer sandbox hypervisor enclave
deduplication defragmentation fragmentation trim raid5 raid6 raid10 parity rebuild hotspare iscsi fcoe zoning
lun multipath nfs smb3 cifs dfs robocopy rsync xcopy junction symlink hardlink acl inheritance sddl sacl dacl
ntfs refs apfs hfs exfat fat32 ext4 xfs btrfs zfs lvm mdadm luks veracrypt dmcrypt sysprep oobe dism sfc
chkdsk diskpart bcdedit regedit gpedit secpol lusrmgr compmgmt perfmon resmon procmon wireshark tcpdump
nmap traceroute mtr iperf netstat nslookup dig whois arp rarp lldp cdp snmp syslog netflow sflow ipfix
grafana prometheus zabbix nagios icinga splunk graylog kibana elasticsearch logstash fluentd loki
ansible puppet chef saltstack terraform packer vagrant consul vault nomad helm argocd flux tekton jenkins
bamboo teamcity octopus artifactory nexus sonarqube snyk dependabot renovate
plotter laminator shredder franking binder guillotine projector beamer whiteboard flipchart smartboard
lectern podium intercom doorbell turnstile dymo zebra labelwriter thermal barcode rfid nfc qr
kiosk signage touchscreen digitizer calibration pantone colorimeter densitometer
""".split()

COMMON_WORD = "outlook"     # placed 60th among the helpdesk words: in about a fifth of all tickets
RARE_WORD = "kerberos"      # a rare word: in about 150 of 1,000,000 tickets (and 15 of 100,000)
COMMON_RANK = 59

CANNED = (("Need more information", "Hello {requester_first_name},\n\ncould you tell us when this started and send a "
           "screenshot of the message? We keep {ticket_number} pending until then.\n\n{agent_name}"),
          ("Password reset done", "Hello {requester_first_name},\n\nyour password is reset; you will be asked to "
           "choose a new one at the next sign-in.\n\n{agent_name}"),
          ("Closing, no answer", "Hello {requester_name},\n\nwe have not heard back, so we resolve {ticket_number}. "
           "Reply within a week to reopen it.\n\n{agent_name}"))

TEAMS = (  # (name, email, members)
    ("Service Desk", "servicedesk@example.org", 12),
    ("Workplace", "workplace@example.org", 8),
    ("Network & Infrastructure", "netops@example.org", 6),
    ("Business Applications", "bizapps@example.org", 4),
)
CATEGORIES = (  # (name, team index, weight, has a default assignee)
    ("Account & password", 0, 14, False), ("Email & calendar", 0, 12, False), ("Access request", 0, 9, False),
    ("General question", 0, 6, False), ("Laptop & desktop", 1, 14, False), ("Printer & scanner", 1, 8, True),
    ("Mobile phone", 1, 6, True), ("Software installation", 1, 8, False), ("Network & Wi-Fi", 2, 7, False),
    ("VPN & remote access", 2, 7, False), ("Servers & storage", 2, 3, True), ("Business applications", 3, 6, True),
)
SOURCES = (("web", 70), ("email", 15), ("api", 10), ("monitoring", 4), ("directory", 1))
LEVELS = ("high", "medium", "low")
IMPACT_WEIGHTS = (12, 33, 55)
URGENCY_WEIGHTS = (18, 50, 32)
PRIORITY_SPEED = {"critical": 0.15, "high": 0.4, "medium": 1.0, "low": 1.6}   # how fast staff answer and fix
RATINGS = ((5, 45), (4, 30), (3, 12), (2, 7), (1, 6))
LABELS = {"new": "New", "open": "Open", "pending": "Pending on requester", "resolved": "Resolved", "closed": "Closed"}
PRIORITY_LABELS = {"critical": "Critical", "high": "High", "medium": "Medium", "low": "Low"}


def inflect(verb: str) -> tuple[str, ...]:
    if verb in IRREGULAR:
        return IRREGULAR[verb]
    stem = verb + verb[-1] if verb in DOUBLING else verb
    if verb.endswith("e"):
        return verb + "s", verb + "d", verb[:-1] + "ing"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ies", verb[:-1] + "ied", verb + "ing"
    if verb.endswith(("s", "sh", "ch", "x", "z")):
        return verb + "es", verb + "ed", verb + "ing"
    return verb + "s", stem + "ed", stem + "ing"


def plural(noun: str) -> str:
    if noun.endswith(("s", "sh", "ch", "x")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def vocabulary(seed: int) -> tuple[list[str], list[str], list[str]]:
    """(function words, helpdesk words by rank, rare words): every word once, the same for the same seed."""
    rng = random.Random(f"vocabulary-{seed}")
    seen: set[str] = set()

    def unique(words):
        out = []
        for word in words:
            if word not in seen:
                seen.add(word)
                out.append(word)
        return out

    function = unique(FUNCTION_WORDS)
    content = [w for v in VERBS for w in (v, *inflect(v))] + [w for n in NOUNS for w in (n, plural(n))]
    content += ADJECTIVES + PRODUCTS
    content = unique(content)
    content.remove(COMMON_WORD)
    rng.shuffle(content)
    content.insert(COMMON_RANK, COMMON_WORD)
    rare = unique(RARE_WORDS)
    # Model numbers as tickets quote them (m507dn, t14s, ccr2004): rare, and many.
    for family in ("m", "e", "t", "x", "p", "l", "c", "g", "z", "dx", "sr", "dl", "ex", "ccr", "vvx", "mx", "ws",
                   "ap", "ms", "rt", "sg", "tl", "dcs", "fs"):
        for _ in range(28):
            rare += unique([f"{family}{rng.randint(100, 9999)}{rng.choice(('', '', 'dn', 'dw', 'n', 's', 'i', 'g'))}"])
    rare.remove(RARE_WORD)
    rare.insert(0, RARE_WORD)
    return function, content, rare


TABLE_SIZE = 1 << 16      # words are drawn from tables of 65,536 slots (small enough to stay in the CPU cache)
RARE_SHARE = 0.001        # of all words: one of the rare words, each as likely as the others (~1e-6 per word)


def word_table(tiers: list[tuple[list[str], float, float]]) -> list[str]:
    """TABLE_SIZE slots: each tier (words, share, Zipf exponent) gets its share by 1/(rank + 20)^s (>= 1 slot)."""
    table: list[str] = []
    for words, share, exponent in tiers:
        weights = [1 / (rank + 20) ** exponent for rank in range(1, len(words) + 1)]
        total = sum(weights)
        for word, weight in zip(words, weights):
            table.extend([word] * max(1, round(weight / total * share * TABLE_SIZE)))
    table = table[:TABLE_SIZE]
    table.extend(table[i] for i in range(TABLE_SIZE - len(table)))  # rounding: pad with the most common words
    return table


def draw(rng: random.Random, table: list[str], count: int):
    """`count` words from `table`, all in C: random bytes -> 16-bit numbers -> words."""
    return map(table.__getitem__, memoryview(rng.randbytes(2 * count)).cast("H"))


# --- SLA due times -------------------------------------------------------------------------------

class DueClock:
    """itops.tickets.sla.add_business_minutes for one calendar, as a table of its opening intervals.

    The intervals come from the calendar itself (its windows, days, holidays and time zone, DST included), as
    epoch seconds; adding business minutes is then two bisects. Start times are whole seconds, so the results
    are exact; main() checks a few thousand of them against sla.add_business_minutes before seeding.
    """

    def __init__(self, calendar, first_day: date, last_day: date):
        self.calendar = calendar
        self.opens, self.cum_start, self.cum_end, self.closes = [], [], [], []
        total, day = 0, first_day
        while day <= last_day:
            for opens, closes in calendar._opening_hours(day):
                start, end = int(opens.timestamp()), int(closes.timestamp())
                self.opens.append(start)
                self.closes.append(end)
                self.cum_start.append(total)
                total += end - start
                self.cum_end.append(total)
            day += timedelta(days=1)

    def add(self, start: int, minutes: int) -> int:
        i = bisect_right(self.closes, start)          # the first interval that closes after start
        if i < len(self.opens):
            base = self.cum_start[i] + max(0, start - self.opens[i])
            target = base + minutes * 60
            j = bisect_left(self.cum_end, target, i)  # time running out at a closing time ends there
            if j < len(self.opens):
                return self.opens[j] + target - self.cum_start[j]
        from itops.tickets import sla                 # past the table: the real thing (slow, rare)
        due = sla.add_business_minutes(self.calendar, datetime.fromtimestamp(start, timezone.utc), minutes)
        return int(due.timestamp())


# --- the rows, generated in worker processes -------------------------------------------------------

CTX: dict = {}


def _init_worker(context: dict) -> None:
    CTX.clear()
    CTX.update(context)


def _time_formatter(dialect: str):
    """Epoch seconds -> what the database stores: on SQLite the text SQLAlchemy's DATETIME writes (checked in
    main() against the UTCDateTime bind processor); on PostgreSQL an aware datetime for the driver."""
    if dialect != "sqlite":
        return lambda s: None if s is None else datetime.fromtimestamp(s, timezone.utc)
    days: dict[int, str] = {}
    epoch = date(1970, 1, 1)
    clock = [f" {s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}.000000" for s in range(86400)]

    def as_text(s):
        if s is None:
            return None
        day, second = divmod(s, 86400)
        prefix = days.get(day)
        if prefix is None:
            prefix = days[day] = (epoch + timedelta(days=day)).isoformat()
        return prefix + clock[second]
    return as_text


def generate_batch(batch: int) -> tuple[list[tuple], list[tuple], list[tuple], Counter]:
    """Tickets [batch * BATCH, ...) with their comments and events; the same rows for the same seed and batch."""
    c = CTX
    rng = random.Random(c["seed"] * 1_000_003 + batch)
    rnd, randint, choices = rng.random, rng.randint, rng.choices
    ts = c.setdefault("formatter", _time_formatter(c["dialect"]))
    body_table, title_table, rare = c["body_table"], c["title_table"], c["rare"]
    clock, targets, now, n_total = c["clock"], c["targets"], c["now"], c["count"]
    cum, bucket_start = c["bucket_cum"], c["bucket_start"]
    employees, held, names = c["employees"], c["held_assets"], c["names"]
    categories, cat_weights = c["categories"], c["category_cum"]
    members, staff_label = c["team_members"], c["staff_label"]
    all_staff = c["all_staff"]
    first_id = c["first_id"]
    tickets, comments, events = [], [], []
    stats: Counter = Counter()

    def text(table, low, high, code=False):
        count = randint(low, high)
        words = " ".join(draw(rng, table, count))
        if rnd() < count * RARE_SHARE:
            words += " " + rare[int(rnd() * len(rare))]
        if code:
            words += f" error 0x8007{rng.getrandbits(16):04x}"
        return words[0].upper() + words[1:] + "."

    start_i = batch * BATCH
    for i in range(start_i, min(start_i + BATCH, n_total)):
        ticket_id = first_id + i
        # created: increasing with the id, denser on weekdays 8-18 (inverse of the hourly intensity's CDF)
        p = (i + rnd()) / n_total
        b = bisect_right(cum, p) - 1
        created = int(bucket_start[b] + 3600 * (p - cum[b]) / (cum[b + 1] - cum[b]))
        frac = i / n_total

        roll = rnd()
        if roll < 0.12 and held:
            asset_id, requester = held[int(rnd() * len(held))]
        else:
            asset_id, requester = None, employees[int(rnd() * len(employees))]
        cat = bisect_right(cat_weights, rnd() * cat_weights[-1])
        category_id, team_id, default_assignee = categories[cat] if cat < len(categories) else (None, None, None)
        if team_id is not None and rnd() < 0.05:
            team_id = rng.choice(list(members))
        impact = choices(LEVELS, IMPACT_WEIGHTS)[0]
        urgency = choices(LEVELS, URGENCY_WEIGHTS)[0]
        priority = c["matrix"][(impact, urgency)]
        rank = c["rank"][priority]
        speed = PRIORITY_SPEED[priority]
        response_target, resolution_target = targets[priority]
        source = choices(c["sources"], c["source_weights"])[0]

        # status: open tickets are more likely among the recent ones; recent open ones are more often new
        age = now - created
        if rnd() < OPEN_OLDEST + (OPEN_NEWEST - OPEN_OLDEST) * frac:
            pick = rnd()
            if age < 2 * 86400:
                status = "new" if pick < 0.5 else "open" if pick < 0.85 else "pending"
            else:
                status = "new" if pick < 0.08 else "open" if pick < 0.72 else "pending"
        else:
            status = "closed_direct" if rnd() < 0.05 else "resolved"

        # who works on it
        team_people = members.get(team_id) or all_staff
        if status == "new":
            assigned = rnd() < 0.5
        else:
            assigned = rnd() < (0.9 if status in ("open", "pending") else 0.97)
        assignee = None
        assigned_later = False
        if assigned:
            if default_assignee is not None and rnd() < 0.6:
                assignee = default_assignee
            else:
                assignee = team_people[int(rnd() * len(team_people))]
                assigned_later = True
        responder = assignee or team_people[int(rnd() * len(team_people))]

        # times (epoch seconds)
        first_response = resolved = closed = paused_at = None
        if status != "new":
            delay = min(rng.lognormvariate(8.8, 1.3) * speed, max(60, age * 0.5))   # median ~2 h
            first_response = created + max(60, int(delay))
        if status in ("resolved", "closed_direct"):
            work = rng.lognormvariate(11.2, 1.3) * speed                                # median ~20 h
            done = created + max(300, int(work))
            if done >= now:
                done = created + int((now - created) * (0.5 + 0.5 * rnd()))
            if first_response is not None and first_response > done:
                first_response = created + int((done - created) * rnd())
            if status == "closed_direct":
                closed, status = done, "closed"
            else:
                resolved = done
                if rnd() < 0.25:  # the requester closes it themselves
                    closed = resolved + int(rnd() * AUTOCLOSE_DAYS * 86400)
                elif now - resolved > AUTOCLOSE_DAYS * 86400:
                    closed = resolved + AUTOCLOSE_DAYS * 86400 + int(rnd() * 3600)
                if closed is not None and closed < now:
                    status = "closed"
                else:
                    closed = None
        end = closed or resolved or now
        if first_response is not None and first_response > end:
            first_response = created + int((end - created) * rnd())

        # comments: the first staff reply, then replies, requester answers and internal notes
        ticket_comments = []
        if first_response is not None:
            ticket_comments.append((first_response, responder, False))
        extra = choices((0, 1, 2, 3, 4), (30, 30, 20, 12, 8))[0] if status != "new" else choices((0, 1), (70, 30))[0]
        after = first_response or created
        for _ in range(extra):
            at = after + int((end - after) * rnd())
            kind = rnd()
            if kind < 0.32 or (status == "new" and kind < 0.6):
                ticket_comments.append((at, team_people[int(rnd() * len(team_people))], True))
            elif kind < 0.66 and status != "new":
                ticket_comments.append((at, responder, False))
            else:
                ticket_comments.append((at, requester, False))
        ticket_comments.sort()
        paused_minutes = 0
        if status == "pending":
            # paused when staff last asked the requester something
            asked = [at for at, who, internal in ticket_comments if not internal and who != requester]
            paused_at = asked[-1] if asked else first_response
            if rnd() < 0.1:
                paused_minutes = randint(30, 2000)
        elif status in ("resolved", "closed", "open") and rnd() < 0.12:
            paused_minutes = randint(30, 3000)  # an earlier wait on the requester pushed the due times back
        response_due = clock.add(created, response_target + paused_minutes)
        resolution_due = clock.add(created, resolution_target + paused_minutes)

        # breaches as the sweep flags them (it runs every few minutes, ignores pending tickets, never unflags)
        is_open = status in ("new", "open", "pending")
        checked_until = paused_at if status == "pending" else (resolved or closed or now)
        response_breached = (first_response if first_response is not None else checked_until) > response_due
        resolution_breached = checked_until > resolution_due

        updated = max([created, first_response or 0, resolved or 0, closed or 0, paused_at or 0]
                      + [at for at, _, _ in ticket_comments])
        rating = rating_comment = None
        if resolved is not None and rnd() < 0.35:
            rating = choices([r for r, _ in RATINGS], [w for _, w in RATINGS])[0]
            if rnd() < 0.3:
                rating_comment = text(title_table, 3, 12)
            updated = max(updated, resolved + int(rnd() * 86400))
            updated = min(updated, now)

        dedup_key = f"{source}:bench:{ticket_id}" if source in ("monitoring", "directory") else None
        tickets.append((
            ticket_id, text(title_table, 4, 10)[:-1], text(body_table, 20, 80, rnd() < 0.2), requester, assignee,
            team_id, category_id, asset_id, impact, urgency, priority, rank, status, is_open, source, dedup_key, None,
            ts(created), ts(updated), ts(first_response), ts(response_due), ts(resolution_due), ts(paused_at),
            paused_minutes, response_breached, resolution_breached, ts(resolved), ts(closed), rating, rating_comment))
        for at, author, internal in ticket_comments:
            comments.append((ticket_id, author, text(body_table, 8, 60), internal, ts(at)))
        stats["comments"] += len(ticket_comments)
        stats["internal"] += sum(1 for _, _, internal in ticket_comments if internal)

        # activity, as the services write it
        requester_name, requester_label = names[requester]
        events.append((ticket_id, ts(created), "created", requester, requester_label,
                       f"filed by {requester_name} ({PRIORITY_LABELS[priority]} priority)", True))
        if assigned_later:
            at = first_response or created + 60
            team_name = c["team_names"].get(team_id)
            events.append((ticket_id, ts(at), "assigned", responder, staff_label[responder],
                           f"assigned to {names[assignee][0]}" + (f" in {team_name}" if team_name else ""), False))
        if first_response is not None:
            events.append((ticket_id, ts(first_response), "status", responder, staff_label[responder],
                           "New → Open (opened by the first reply)", True))
        if paused_at is not None:
            events.append((ticket_id, ts(paused_at), "status", responder, staff_label[responder],
                           "Open → Pending on requester", True))
        if resolved is not None:
            events.append((ticket_id, ts(resolved), "status", responder, staff_label[responder],
                           "Open → Resolved", True))
        if closed is not None:
            if resolved is None:
                events.append((ticket_id, ts(closed), "status", responder, staff_label[responder],
                               "Open → Closed", True))
            elif closed - resolved >= AUTOCLOSE_DAYS * 86400:
                events.append((ticket_id, ts(closed), "status", None, "system",
                               "Resolved → Closed (closed automatically after resolution)", True))
            else:
                events.append((ticket_id, ts(closed), "status", requester, requester_label, "Resolved → Closed", True))
        if response_breached or resolution_breached:
            what = " and ".join(w for w, flag in (("first response", response_breached),
                                                  ("resolution", resolution_breached)) if flag)
            at = min(d for d, flag in ((response_due, response_breached), (resolution_due, resolution_breached))
                     if flag)
            events.append((ticket_id, ts(at + 300), "breached", None, "system", f"SLA breached: {what} overdue",
                           False))
        stats[status] += 1
        stats["breached_open"] += is_open and (response_breached or resolution_breached)
    return tickets, comments, events, stats


# --- setting up ------------------------------------------------------------------------------------

def load_migration(name: str):
    """A migration module by file name (its SQL is the one truth for the FTS tables and triggers)."""
    path = PROJECT_ROOT / "migrations" / "versions" / name
    spec = importlib.util.spec_from_file_location(f"bench_migration_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def hourly_buckets(start: int, hours: int) -> tuple[list[float], list[int]]:
    """Cumulative share of tickets per hour: weekdays 8-18 busy, nights and weekends quiet."""
    weights = []
    for h in range(hours):
        moment = datetime.fromtimestamp(start + 3600 * h, timezone.utc)
        if moment.weekday() >= 5:
            weights.append(0.4)
        elif 8 <= moment.hour < 18:
            weights.append(8.0)
        elif moment.hour in (7, 18):
            weights.append(3.0)
        else:
            weights.append(0.5)
    total, cum = sum(weights), [0.0]
    for w in weights:
        cum.append(cum[-1] + w / total)
    cum[-1] = 1.0
    return cum, [start + 3600 * h for h in range(hours)] + [start + 3600 * hours]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_seed_arguments(parser, what="tickets", default_count=1_000_000, instance_name="bench-tickets")
    parser.add_argument("--assets", type=int, default=5_000, help="assets to create first (some tickets link one)")
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1),
                        help="processes generating rows while this one inserts (default: cores - 1)")
    args = parser.parse_args()
    started = time.perf_counter()
    instance = prepare_seed_instance(args)
    if instance is None:
        return 1
    migrated = time.perf_counter()
    import secrets

    from sqlalchemy import insert, select, text

    import assets_seed
    from itops import create_app
    from itops.assets.choices import AssetKind, Status
    from itops.assets.models import Asset, AssetEvent
    from itops.core.auth import services as auth_services
    from itops.core.auth.models import User
    from itops.extensions import db
    from itops.tickets import services, sla
    from itops.tickets.choices import PRIORITY_MATRIX, Priority
    from itops.tickets.models import Ticket, TicketComment, TicketEvent

    rng = random.Random(args.seed)
    app = create_app()
    with app.app_context():
        dialect = db.engine.dialect.name
        # --- people, teams, categories, canned responses, assets ---
        it_password, employee_password = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
        it_user = auth_services.create_local_user(IT_USERNAME, it_password, role="it_staff",
                                                  display_name="Bench IT Staff", email="bench.it@example.org",
                                                  by="bench")
        employee = auth_services.create_local_user(EMPLOYEE_USERNAME, employee_password, role="employee",
                                                   display_name="Bench Employee",
                                                   email="bench.employee@example.org", by="bench")
        it_token = auth_services.issue_token(it_user, "bench", by="bench").secret
        employee_token = auth_services.issue_token(employee, "bench", by="bench").secret
        staff_rows = [{**u, "username": f"it.{u['username']}", "email": f"it.{u['email']}", "role": "it_staff",
                       "directory_dn": u["directory_dn"].replace("uid=", "uid=it.")}
                      for u in assets_seed.make_people(random.Random(-args.seed), sum(t[2] for t in TEAMS) - 1)]
        db.session.execute(insert(User), assets_seed.make_people(rng, EMPLOYEES) + staff_rows)
        db.session.flush()
        users = db.session.execute(select(User.id, User.username, User.display_name, User.role)).all()
        staff = [u for u in users if u.role == "it_staff"]
        staff_ids = [u.id for u in sorted(staff, key=lambda u: (u.username != IT_USERNAME, u.id))]
        teams, position = [], 0
        for name, email, size in TEAMS:
            teams.append(services.save_team(name, email=email, member_ids=staff_ids[position:position + size],
                                            by=it_user))
            position += size
        categories = []
        for name, team_index, _weight, has_default in CATEGORIES:
            team = teams[team_index]
            default = staff_ids[sum(t[2] for t in TEAMS[:team_index]) + 1] if has_default else None
            categories.append(services.save_category(name, default_team_id=team.id, default_assignee_id=default,
                                                     by=it_user))
        for title, body in CANNED:
            services.save_canned_response(title, body, by=it_user)
        db.session.commit()

        employees = [(u.id, u.username, u.display_name) for u in users if u.role == "employee"]
        assets_seed.KIND_LABELS.update({kind.value: kind.label for kind in AssetKind})
        assets_seed.LABEL.update({status.value: status.label for status in Status})
        generator = assets_seed.Generator(random.Random(args.seed + 1), employees, [(u.id, u.username) for u in staff],
                                          [], date.today())
        asset_rows, asset_events = [], []
        for asset_id in range(1, args.assets + 1):
            row, history = generator.asset(asset_id)
            asset_rows.append(row)
            asset_events.extend(history)
        for offset in range(0, len(asset_rows), BATCH):
            db.session.execute(insert(Asset).execution_options(render_nulls=True), asset_rows[offset:offset + BATCH])
        for offset in range(0, len(asset_events), BATCH):
            db.session.execute(insert(AssetEvent).execution_options(render_nulls=True),
                               asset_events[offset:offset + BATCH])
        if dialect == "postgresql" and asset_rows:
            db.session.execute(text("SELECT setval(pg_get_serial_sequence('assets', 'id'), (SELECT max(id) FROM assets))"))
        db.session.commit()
        held = [(row["id"], row["holder_id"]) for row in asset_rows if row["holder_id"] is not None]

        function, content, rare = vocabulary(args.seed)
        body_table = word_table([(function, 0.42, 1.0), (content, 0.58, 1.1)])
        title_table = word_table([(content, 1.0, 1.1)])
        now = int(time.time()) - 60
        start = now - SPAN_DAYS * 86400
        first_day = datetime.fromtimestamp(start, timezone.utc).date() - timedelta(days=7)
        calendar = services.calendar()
        clock = DueClock(calendar, first_day, datetime.fromtimestamp(now, timezone.utc).date() + timedelta(days=120))
        check = random.Random(7)
        for _ in range(3000):  # the table gives exactly what the SLA module gives
            moment, minutes = check.randint(start, now), check.choice((0, 1, 30, 120, 480, 960, 2400, 4800, 7000))
            expected = sla.add_business_minutes(calendar, datetime.fromtimestamp(moment, timezone.utc), minutes)
            if clock.add(moment, minutes) != int(expected.timestamp()):
                raise BenchError(f"due-time table disagrees with sla.add_business_minutes at {moment} + {minutes}")
        as_text = _time_formatter("sqlite")
        if dialect == "sqlite":  # the stored text is the one SQLAlchemy's UTCDateTime would write
            column_type = Ticket.__table__.c.created_at.type
            process = column_type.dialect_impl(db.engine.dialect).bind_processor(db.engine.dialect)
            sample = datetime.fromtimestamp(now, timezone.utc)
            if process(sample) != as_text(now):
                raise BenchError(f"datetime text {as_text(now)!r} differs from SQLAlchemy's {process(sample)!r}")
        bucket_cum, bucket_start = hourly_buckets(start, SPAN_DAYS * 24)
        names = {u.id: (u.display_name, u.username) for u in users}
        team_members = {team.id: [m.id for m in team.members] for team in teams}
        cum, total = [], 0.0
        for category, (_name, _team, weight, _default) in zip(categories, CATEGORIES):
            total += weight
            cum.append(total)
        cum.append(total * 1.03)   # 3% without a category
        context = {
            "seed": args.seed, "count": args.count, "dialect": dialect, "first_id": 1, "now": now,
            "body_table": body_table, "title_table": title_table, "rare": rare, "clock": clock,
            "targets": {p.value: t for p, t in services.sla_targets().items()},
            "matrix": {(i.value, u.value): p.value for (i, u), p in PRIORITY_MATRIX.items()},
            "rank": {p.value: p.rank for p in Priority},
            "bucket_cum": bucket_cum, "bucket_start": bucket_start,
            "employees": [e[0] for e in employees], "held_assets": held, "names": names,
            "categories": [(cat.id, cat.default_team_id, cat.default_assignee_id) for cat in categories],
            "category_cum": cum, "team_members": team_members, "all_staff": staff_ids,
            "team_names": {team.id: team.name for team in teams},
            "staff_label": {u.id: u.username for u in staff},
            "sources": [s for s, _ in SOURCES], "source_weights": [w for _, w in SOURCES],
        }
        write_private_json(instance / CREDENTIALS, {
            "username": IT_USERNAME, "password": it_password, "api_token": it_token,
            "employee_username": EMPLOYEE_USERNAME, "employee_password": employee_password,
            "employee_api_token": employee_token, "database_url": args.database_url, "tickets": args.count,
            "employees": len(employees), "it_staff": len(staff), "assets": args.assets,
            "common_word": COMMON_WORD, "rare_word": RARE_WORD, "seed": args.seed})
        people_done = time.perf_counter()
        print(f"users: {IT_USERNAME} (IT staff) and {EMPLOYEE_USERNAME} (employee) can sign in; {len(staff) - 1} more "
              f"IT staff in {len(teams)} teams, {len(employees) - 1} directory employees, {len(categories)} categories, "
              f"{len(asset_rows)} assets ({len(held)} held) in {people_done - migrated:.1f} s")
        print(f"vocabulary: {len(function)} function words, {len(content)} helpdesk words, {len(rare)} rare words; "
              f"searches: common {COMMON_WORD!r}, rare {RARE_WORD!r}")
        print(f"passwords and API tokens: {instance / CREDENTIALS}")

        # --- the tickets ---
        search = load_migration("0006_tickets_search.py")
        ticket_columns = [column.name for column in Ticket.__table__.columns]
        comment_columns = ["ticket_id", "author_id", "body", "internal", "created_at"]
        event_columns = ["ticket_id", "at", "kind", "actor_id", "actor_label", "summary", "public"]
        if len(ticket_columns) != 30:
            raise BenchError(f"the tickets table has changed ({len(ticket_columns)} columns); update the seed")
        phases: dict[str, float] = {}
        db.session.commit()
        db.session.close()
        batches = (args.count + BATCH - 1) // BATCH
        totals: Counter = Counter()
        insert_s = 0.0
        load_started = time.perf_counter()
        # One connection for the whole load: the PRAGMAs below are per connection.
        with db.engine.connect() as connection:
            if dialect == "sqlite":
                # The FTS triggers would index every row as it goes in (and rebuild a ticket's comment text at
                # each comment); the index is built once at the end instead. A big page cache for this
                # connection only; no fsync until the end of the load.
                for statement in search.DROP_TRIGGERS:
                    connection.exec_driver_sql(statement)
                connection.exec_driver_sql("PRAGMA cache_size=-1000000")
                connection.exec_driver_sql("PRAGMA synchronous=OFF")
                connection.commit()

            def insert_rows(model, columns, rows):
                if not rows:
                    return
                if dialect == "sqlite":
                    # Straight to the driver: the values are already what SQLAlchemy's types would store, and
                    # skipping their per-value processing makes the insert ~3x faster (see README.md).
                    connection.exec_driver_sql(f"INSERT INTO {model.__tablename__} ({', '.join(columns)}) "
                                               f"VALUES ({', '.join('?' * len(columns))})", rows)
                else:
                    connection.execute(insert(model).execution_options(render_nulls=True),
                                       [dict(zip(columns, row)) for row in rows])

            pool_context = multiprocessing.get_context("fork")
            with pool_context.Pool(args.workers, initializer=_init_worker, initargs=(context,)) as pool, \
                    click.progressbar(length=args.count, label="tickets", show_eta=True, show_pos=True,
                                      file=sys.stdout) as bar:
                pending, next_batch = [], 0
                while next_batch < batches or pending:
                    while next_batch < batches and len(pending) < 2 * args.workers + 1:
                        pending.append(pool.apply_async(generate_batch, (next_batch,)))
                        next_batch += 1
                    tickets, comments, events, stats = pending.pop(0).get()
                    t0 = time.perf_counter()
                    insert_rows(Ticket, ticket_columns, tickets)
                    insert_rows(TicketComment, comment_columns, comments)
                    insert_rows(TicketEvent, event_columns, events)
                    connection.commit()
                    insert_s += time.perf_counter() - t0
                    totals.update(stats)
                    totals["events"] += len(events)
                    bar.update(len(tickets))
            phases["tickets, comments, events"] = time.perf_counter() - load_started

            t0 = time.perf_counter()
            if dialect == "sqlite":
                for statement in [search.SQLITE_BACKFILL, *search.CREATE_TRIGGERS]:
                    connection.exec_driver_sql(statement)
                connection.commit()
                phases["FTS index of tickets and comments; triggers"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                connection.exec_driver_sql("PRAGMA synchronous=NORMAL")
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                connection.commit()
                phases["checkpoint"] = time.perf_counter() - t0
            else:
                connection.execute(text("SELECT setval(pg_get_serial_sequence('tickets', 'id'), "
                                        "(SELECT max(id) FROM tickets))"))
                connection.commit()
                connection.execute(text("ANALYZE"))
                connection.commit()
                phases["ANALYZE"] = time.perf_counter() - t0
        done = time.perf_counter()

        triggers = db.session.execute(text("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN "
                                           "('tickets', 'ticket_comments')")).scalar() if dialect == "sqlite" else None
        counts = {}
        if dialect == "sqlite":
            for word in (COMMON_WORD, RARE_WORD):
                counts[word] = db.session.execute(text(
                    f"SELECT count(*) FROM {search.SEARCH_TABLE} WHERE {search.SEARCH_TABLE} MATCH :w"),
                    {"w": f'"{word}"'}).scalar()

    elapsed = done - people_done
    rows = args.count + totals["comments"] + totals["events"]
    open_count = totals["new"] + totals["open"] + totals["pending"]
    print(f"{args.count:,} tickets, {totals['comments']:,} comments ({totals['comments'] / max(args.count, 1):.2f} "
          f"per ticket, {100 * totals['internal'] / max(totals['comments'], 1):.0f}% internal notes), "
          f"{totals['events']:,} activity events in {elapsed:.1f} s")
    print(f"  {args.count / elapsed:,.0f} tickets/s, {rows / elapsed:,.0f} rows/s; {insert_s:.1f} s of it in INSERT + "
          f"COMMIT, {args.workers} generating process(es)")
    for phase, seconds in phases.items():
        print(f"  {phase}: {seconds:.1f} s")
    print("by status: " + ", ".join(f"{s} {totals[s]:,}" for s in ("new", "open", "pending", "resolved", "closed"))
          + f"  ({100 * open_count / max(args.count, 1):.1f}% open, {totals['breached_open']:,} of the open ones "
            f"breaching their SLA)")
    if counts:
        print("search words: " + ", ".join(f"{word!r} in {n:,} tickets ({100 * n / max(args.count, 1):.2f}%)"
                                          for word, n in counts.items()))
    if triggers is not None:
        print(f"FTS triggers in place: {triggers} (migration 0006 creates {len(search.CREATE_TRIGGERS)})")
    if not args.database_url:
        print(f"database size: {human_bytes(sqlite_database_size(instance / 'itops.db'))}")
    print(f"total {done - started:.1f} s; machine load average now {os.getloadavg()[0]:.2f} "
          f"({os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

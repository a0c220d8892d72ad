"""Ticket statuses and moves, priorities from impact and urgency, SLA targets, sources."""
from __future__ import annotations

import enum


class TicketStatus(enum.StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"      # waiting on the requester: the SLA clock is paused
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def label(self) -> str:
        return "Pending on requester" if self is TicketStatus.PENDING else self.value.capitalize()

    @property
    def is_open(self) -> bool:
        return self in OPEN_STATUSES


OPEN_STATUSES = frozenset({TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING})

TRANSITIONS: dict[TicketStatus, tuple[TicketStatus, ...]] = {
    TicketStatus.NEW: (TicketStatus.OPEN, TicketStatus.PENDING, TicketStatus.RESOLVED, TicketStatus.CLOSED),
    TicketStatus.OPEN: (TicketStatus.PENDING, TicketStatus.RESOLVED, TicketStatus.CLOSED),
    TicketStatus.PENDING: (TicketStatus.OPEN, TicketStatus.RESOLVED, TicketStatus.CLOSED),
    TicketStatus.RESOLVED: (TicketStatus.OPEN, TicketStatus.CLOSED),
    TicketStatus.CLOSED: (),
}


class Level(enum.StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class Priority(enum.StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def label(self) -> str:
        return self.value.capitalize()

    @property
    def rank(self) -> int:
        """1 is the most urgent; lists sort on it."""
        return _RANK[self]


_RANK = {Priority.CRITICAL: 1, Priority.HIGH: 2, Priority.MEDIUM: 3, Priority.LOW: 4}

# The ITIL matrix: how many people it hurts (impact) and how soon it hurts (urgency).
PRIORITY_MATRIX: dict[tuple[Level, Level], Priority] = {
    (Level.HIGH, Level.HIGH): Priority.CRITICAL,
    (Level.HIGH, Level.MEDIUM): Priority.HIGH, (Level.MEDIUM, Level.HIGH): Priority.HIGH,
    (Level.HIGH, Level.LOW): Priority.MEDIUM, (Level.MEDIUM, Level.MEDIUM): Priority.MEDIUM,
    (Level.LOW, Level.HIGH): Priority.MEDIUM,
    (Level.MEDIUM, Level.LOW): Priority.LOW, (Level.LOW, Level.MEDIUM): Priority.LOW,
    (Level.LOW, Level.LOW): Priority.LOW,
}


def priority_for(impact: Level | str, urgency: Level | str) -> Priority:
    return PRIORITY_MATRIX[(Level(impact), Level(urgency))]


# Business minutes: (first response, resolution). ITOPS_SLA_TARGETS overrides them.
DEFAULT_SLA_TARGETS: dict[Priority, tuple[int, int]] = {
    Priority.CRITICAL: (30, 4 * 60),
    Priority.HIGH: (2 * 60, 16 * 60),
    Priority.MEDIUM: (8 * 60, 40 * 60),
    Priority.LOW: (16 * 60, 80 * 60),
}


class Source(enum.StrEnum):
    WEB = "web"
    API = "api"
    EMAIL = "email"
    MONITORING = "monitoring"
    DIRECTORY = "directory"


class EventKind(enum.StrEnum):
    """What the ticket's activity line shows besides comments."""
    CREATED = "created"
    STATUS = "status"
    ASSIGNED = "assigned"
    PRIORITY = "priority"
    MERGED = "merged"
    BREACHED = "breached"
    RATED = "rated"


class Queue(enum.StrEnum):
    """The staff's ready-made views of the ticket list."""
    UNASSIGNED = "unassigned"
    MINE = "mine"
    TEAM = "team"
    OPEN = "open"
    BREACHING = "breaching"
    ALL = "all"

    @property
    def label(self) -> str:
        return {"unassigned": "Unassigned", "mine": "Assigned to me", "team": "My teams",
                "open": "All open", "breaching": "Breaching SLA", "all": "All tickets"}[self.value]


SORTS = {
    "-created": "Newest first",
    "created": "Oldest first",
    "-updated": "Recently updated",
    "priority": "Priority",
    "due": "Resolution due",
}

TITLE_MAX = 200
BODY_MAX = 20_000

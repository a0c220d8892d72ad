"""Small pieces of ticket markup used on every row of the list and on the ticket page.

They are Python functions rather than Jinja macros because the list calls them 25 times per page, and a
macro call costs several times more than building the same few tags here. Everything interpolated is
either escaped (Markup.format) or comes from our own enums and datetimes.
"""
from __future__ import annotations

from datetime import datetime, timezone

from markupsafe import Markup

from itops.tickets.choices import Priority, TicketStatus

STATUS_LABELS = {status.value: status.label for status in TicketStatus}
PRIORITY_LABELS = {priority.value: priority.label for priority in Priority}

_STATUS_BADGES = {value: Markup(f'<span class="badge ticket-status ticket-status-{value}">{label}</span>')
                  for value, label in STATUS_LABELS.items()}
_PRIORITY_BADGES = {value: Markup(f'<span class="badge ticket-priority ticket-priority-{value}">{label}</span>')
                    for value, label in PRIORITY_LABELS.items()}


def status_badge(ticket) -> Markup:
    return _STATUS_BADGES[ticket.status]


def priority_badge(ticket) -> Markup:
    return _PRIORITY_BADGES[ticket.priority]


def breach_badge(ticket) -> Markup:
    """The SLA flag; its title says which target was missed, in words."""
    missed = [part for part, breached in (("first response", ticket.response_breached),
                                          ("resolution", ticket.resolution_breached)) if breached]
    title = " and ".join(missed).capitalize() + " overdue"
    return Markup('<span class="badge ticket-breach" title="{}"><span aria-hidden="true">⚠ </span>'
                  'SLA breached</span>').format(title)


def short_time(value: datetime | None) -> Markup | str:
    """A compact UTC date over time for table cells; the full time is in the title.

    Formatted by hand: three per row, 75 per list page, and strftime/isoformat cost several times more."""
    if value is None:
        return "—"
    if value.tzinfo is not None and value.tzinfo is not timezone.utc:
        value = value.astimezone(timezone.utc)
    day = f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
    hour = f"{value.hour:02d}:{value.minute:02d}"
    return Markup(f'<time datetime="{day}T{hour}:{value.second:02d}Z" title="{day} {hour} UTC">{day}'
                  f'<br><span class="text-body-secondary">{hour}</span></time>')


TEMPLATE_GLOBALS = {"status_badge": status_badge, "priority_badge": priority_badge,
                    "breach_badge": breach_badge, "short_time": short_time}

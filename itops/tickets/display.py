"""Small pieces of ticket markup used on every row of the list and on the ticket page.

They are Python functions rather than Jinja macros because the list calls them 25 times per page, and a
macro call costs several times more than building the same few tags here. Everything interpolated is
either escaped (Markup.format) or comes from our own enums and datetimes.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone

from markupsafe import Markup, escape

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


def _breach_badge_markup(response: bool, resolution: bool) -> Markup:
    missed = [part for part, breached in (("first response", response), ("resolution", resolution)) if breached]
    title = " and ".join(missed).capitalize() + " overdue"
    return Markup('<span class="badge ticket-breach" title="{}"><span aria-hidden="true">⚠ </span>'
                  'SLA breached</span>').format(title)


# Four possible badges, built once instead of through Markup.format on every flagged row.
_BREACH_BADGES = {(response, resolution): _breach_badge_markup(response, resolution)
                  for response in (False, True) for resolution in (False, True)}


def breach_badge(ticket) -> Markup:
    """The SLA flag; its title says which target was missed, in words."""
    return _BREACH_BADGES[bool(ticket.response_breached), bool(ticket.resolution_breached)]


def _time_html(value: datetime) -> str:
    if value.tzinfo is not None and value.tzinfo is not timezone.utc:
        value = value.astimezone(timezone.utc)
    day = f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
    hour = f"{value.hour:02d}:{value.minute:02d}"
    return (f'<time datetime="{day}T{hour}:{value.second:02d}Z" title="{day} {hour} UTC">{day}'
            f'<br><span class="text-body-secondary">{hour}</span></time>')


def short_time(value: datetime | None) -> Markup | str:
    """A compact UTC date over time for table cells; the full time is in the title.

    Formatted by hand: three per row, 75 per list page, and strftime/isoformat cost several times more."""
    return "—" if value is None else Markup(_time_html(value))


# A list row's columns in the order queries.ticket_query(rows=True) selects them (a test checks it): the rows
# are unpacked by position, several times cheaper than 16 attribute lookups on each of 25 rows.
ROW_FIELDS = ("id", "title", "status", "priority", "priority_rank", "is_open", "team_id", "category_id", "created_at",
              "updated_at", "resolution_due", "paused_at", "response_breached", "resolution_breached",
              "requester_name", "assignee_name")


def list_rows(tickets: Iterable, *, staff: bool, detail_url: str, team_names: dict, category_names: dict) -> Markup:
    """The list's <tr>s: one f-string per row instead of ~20 Jinja expressions (25 rows per page). Text
    from people (titles, names) is escaped; the rest is our own enums, numbers and times.

    `tickets` are queries.ticket_query(rows=True) rows (ROW_FIELDS)."""
    rows = []
    for (ticket_id, title, status, priority, _rank, is_open, team_id, category_id, created_at, updated_at,
         resolution_due, paused_at, response_breached, resolution_breached, requester_name, assignee_name) in tickets:
        flagged = (response_breached or resolution_breached) and is_open
        flag = f" {_BREACH_BADGES[bool(response_breached), bool(resolution_breached)]}" if flagged else ""
        title_cell = (f'<td class="text-nowrap">#{ticket_id}</td><td class="ticket-title-cell"><a href="{detail_url}'
                      f'{ticket_id}">{escape(title)}</a>{flag}</td><td>{_STATUS_BADGES[status]}</td>'
                      f'<td>{_PRIORITY_BADGES[priority]}</td>')
        times = (f'<td class="text-nowrap small">{"—" if created_at is None else _time_html(created_at)}</td>'
                 f'<td class="text-nowrap small">{"—" if updated_at is None else _time_html(updated_at)}</td>')
        if staff:
            team = team_names.get(team_id) if team_id else None
            assignee = escape(assignee_name) if assignee_name is not None else "—"
            team_line = f'<br><span class="small text-body-secondary">{escape(team)}</span>' if team else ""
            due = "—" if not is_open else (
                "paused" if paused_at else "—" if resolution_due is None else _time_html(resolution_due))
            row = (f'<td><input class="form-check-input" type="checkbox" name="ticket_id" value="{ticket_id}" '
                   f'aria-label="Select ticket #{ticket_id}"></td>{title_cell}<td>{escape(requester_name)}</td>'
                   f'<td>{assignee}{team_line}</td><td>{escape(category_names.get(category_id, "—"))}</td>{times}'
                   f'<td class="text-nowrap small">{due}</td>')
        else:
            row = title_cell + times
        rows.append(('<tr class="ticket-breached">' if flagged else "<tr>") + row + "</tr>")
    return Markup("\n".join(rows))


def detail_row(label, value) -> Markup:
    """One <dt>/<dd> pair of the ticket page's details (a dozen a page; a Jinja macro call costs several times
    more than this)."""
    return Markup(f'<dt class="col-5">{escape(label)}</dt><dd class="col-7">{escape(value)}</dd>')


TEMPLATE_GLOBALS = {"status_badge": status_badge, "priority_badge": priority_badge, "breach_badge": breach_badge,
                    "short_time": short_time, "ticket_rows": list_rows, "detail_row": detail_row}

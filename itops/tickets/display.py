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


def list_rows(tickets: Iterable, *, staff: bool, detail_url: str, team_names: dict, category_names: dict) -> Markup:
    """The list's <tr>s: one f-string per row instead of ~20 Jinja expressions (25 rows per page). Text
    from people (titles, names) is escaped; the rest is our own enums, numbers and times.

    `tickets` are queries.ticket_query(rows=True) rows: ticket columns, requester_name, assignee_name."""
    rows = []
    for ticket in tickets:
        flagged = (ticket.response_breached or ticket.resolution_breached) and ticket.is_open
        number = f"#{ticket.id}"
        cells = [f'<td><input class="form-check-input" type="checkbox" name="ticket_id" value="{ticket.id}" '
                 f'aria-label="Select ticket {number}"></td>'] if staff else []
        flag = f" {breach_badge(ticket)}" if flagged else ""
        cells += [f'<td class="text-nowrap">{number}</td>',
                  f'<td class="ticket-title-cell"><a href="{detail_url}{ticket.id}">{escape(ticket.title)}</a>{flag}</td>',
                  f"<td>{_STATUS_BADGES[ticket.status]}</td>", f"<td>{_PRIORITY_BADGES[ticket.priority]}</td>"]
        if staff:
            # Only f-strings here: `str + Markup` would escape the str (the tags) instead.
            team = team_names.get(ticket.team_id) if ticket.team_id else None
            assignee = escape(ticket.assignee_name) if ticket.assignee_name is not None else "—"
            team_line = f'<br><span class="small text-body-secondary">{escape(team)}</span>' if team else ""
            cells += [f"<td>{escape(ticket.requester_name)}</td>", f"<td>{assignee}{team_line}</td>",
                      f"<td>{escape(category_names.get(ticket.category_id, '—'))}</td>"]
        cells += [f'<td class="text-nowrap small">{short_time(ticket.created_at)}</td>',
                  f'<td class="text-nowrap small">{short_time(ticket.updated_at)}</td>']
        if staff:
            due = "—" if not ticket.is_open else ("paused" if ticket.paused_at else short_time(ticket.resolution_due))
            cells.append(f'<td class="text-nowrap small">{due}</td>')
        rows.append(('<tr class="ticket-breached">' if flagged else "<tr>") + "".join(cells) + "</tr>")
    return Markup("\n".join(rows))


TEMPLATE_GLOBALS = {"status_badge": status_badge, "priority_badge": priority_badge,
                    "breach_badge": breach_badge, "short_time": short_time, "ticket_rows": list_rows}

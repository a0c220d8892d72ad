"""Asset markup that pages repeat many times: list rows and the checkout box's people.

Built here rather than in Jinja loops because the list shows 50 rows of nine cells and the checkout box
offers 500 people, and a loop's attribute lookups, escapes and generator steps cost three to four times
more than the same markup built here. Everything from the database goes through escape(); kind and
status labels and CSS classes come from our own choices.
"""
from __future__ import annotations

import time
from collections.abc import Iterable

from flask import current_app
from markupsafe import Markup, escape

from itops.assets import services
from itops.assets.choices import AssetKind, Status

KIND_LABELS = {kind.value: kind.label for kind in AssetKind}
STATUS_LABELS = {status.value: status.label for status in Status}
_STATUS_BADGES = {value: f'<span class="badge status-{value}">{label}</span>' for value, label in STATUS_LABELS.items()}
_NOTHING = "—"


def list_rows(rows: Iterable, *, detail_url: str, selectable: bool) -> Markup:
    """The list's <tr>s for queries.LIST_ROW rows; `detail_url` + id is an asset's page, `selectable` adds
    the label-sheet checkbox."""
    html = []
    for row in rows:
        tag, holder = escape(row.tag), row.holder
        checkbox = (f'<td><input class="form-check-input" type="checkbox" name="id" value="{row.id}" '
                    f'aria-label="Select {tag}"></td>') if selectable else ""
        html.append(
            f'<tr>{checkbox}<td class="text-nowrap"><a href="{detail_url}{row.id}">{tag}</a></td>'
            f'<td>{escape(row.name)}</td><td>{KIND_LABELS[row.kind]}</td><td>{_STATUS_BADGES[row.status]}</td>'
            f'<td>{escape(holder.display_name) if holder else _NOTHING}</td>'
            f'<td>{escape(row.location or _NOTHING)}</td>'
            f'<td class="font-monospace small">{escape(row.serial or _NOTHING)}</td>'
            f'<td class="text-nowrap">{row.warranty_end or _NOTHING}</td></tr>\n')
    return Markup("".join(html))


PEOPLE_OPTIONS_SECONDS = 60


def people_options() -> Markup:
    """The <option>s of the checkout box's datalist, built at most once a minute per worker and app.

    Every checkout form offers the same people, which cost 1.5 ms a page to fetch and render. Someone
    added meanwhile can still be typed in, and checkout checks the username whatever the list says."""
    built_at, options = current_app.extensions.get("assets.people_options", (None, None))
    now = time.monotonic()
    if built_at is None or now - built_at >= PEOPLE_OPTIONS_SECONDS:
        options = Markup("".join(f'<option value="{escape(person.username)}">{escape(person.display_name)}</option>'
                                 for person in services.people_to_hold()))
        current_app.extensions["assets.people_options"] = (now, options)
    return options

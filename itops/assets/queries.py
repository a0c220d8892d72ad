"""The one asset query: the HTML list, /api/v1/assets and the CSV export all build their rows here."""
from __future__ import annotations

import functools
from collections import namedtuple
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta

from sqlalchemy import Select, literal_column, select, text
from sqlalchemy.orm import Bundle, aliased, defer, joinedload

from itops.assets.choices import SORTS, AssetKind, Status
from itops.assets.models import Asset
from itops.core.auth.models import User
from itops.core.errors import ValidationFailed
from itops.core.pagination import Page, keyset_page
from itops.extensions import db

DEFAULT_PAGE_SIZE = 50
EXPORT_BATCH = 200

_SORT_COLUMNS = {
    "tag": [(Asset.tag, False)],
    "name": [(Asset.name, False), (Asset.id, False)],
    "kind": [(Asset.kind, False), (Asset.id, False)],
    "status": [(Asset.status, False), (Asset.id, False)],
    "-updated": [(Asset.updated_at, True), (Asset.id, True)],
}


@dataclass(frozen=True)
class AssetFilters:
    q: str | None = None
    kind: str | None = None
    status: str | None = None
    location: str | None = None
    holder: str | None = None          # a username
    holder_id: int | None = None       # set by the caller for "only what I hold"
    warranty_days: int | None = None   # warranty ends within this many days (and has not ended)
    sort: str = "tag"

    def validated(self) -> AssetFilters:
        errors = {}
        if self.kind and self.kind not in AssetKind.__members__.values():
            errors["kind"] = [f"Unknown kind {self.kind!r}."]
        if self.status and self.status not in Status.__members__.values():
            errors["status"] = [f"Unknown status {self.status!r}."]
        if self.sort not in SORTS:
            errors["sort"] = [f"Sort by one of: {', '.join(SORTS)}."]
        if self.warranty_days is not None and not 0 <= self.warranty_days <= 3650:
            errors["warranty_days"] = ["0 to 3650 days."]
        if errors:
            raise ValidationFailed("Some filters are not valid.", errors=errors)
        return self

    def only_held_by(self, user: User) -> AssetFilters:
        return replace(self, holder=None, holder_id=user.id)

    def as_args(self) -> dict[str, str]:
        """The filters as query-string arguments (for pager, sort and export links)."""
        values = {"q": self.q, "kind": self.kind, "status": self.status, "location": self.location,
                  "holder": self.holder, "warranty_days": self.warranty_days,
                  "sort": None if self.sort == "tag" else self.sort}
        return {key: str(value) for key, value in values.items() if value not in (None, "")}


# Holders are joined under their own name, so that the holder filter's subquery on users stays uncorrelated.
HOLDER = aliased(User, name="holder")


@functools.cache
def _row_class(labels: tuple[str, ...]) -> type:
    return namedtuple("AssetRow", labels)


class _NamedRows(Bundle):
    """A bundle whose rows are named tuples: their attributes read ten times faster than SQLAlchemy
    Rows', which shows at 50 rows x 30 fields."""

    def create_row_processor(self, query, procs, labels):
        make = _row_class(tuple(labels))._make
        return lambda row: make([proc(row) for proc in procs])


class _Person(_NamedRows):
    """A person's columns as one nested row (`row.holder.display_name`), or None when the join found nobody."""

    def create_row_processor(self, query, procs, labels):
        make = super().create_row_processor(query, procs, labels)

        def person_or_none(row):
            person = make(row)
            return None if person.id is None else person
        return person_or_none


def row_shape(*asset_columns: str, holder: tuple[str, ...] = ()) -> Bundle:
    """A light row of these asset columns (and the holder's id and `holder` columns) for asset_query().

    Loading 50 of these costs about a third of loading 50 Asset objects with their holders. A shape used
    for paging must carry the sort columns: the keyset cursor reads them from the row."""
    columns = [getattr(Asset, name) for name in asset_columns]
    if holder:
        names = ("id", *(name for name in holder if name != "id"))  # the id tells a holder from nobody
        columns.append(_Person("holder", *(getattr(HOLDER, name) for name in names)))
    return _NamedRows("asset", *columns)


# What the HTML list shows and sorts by.
LIST_ROW = row_shape("id", "tag", "name", "kind", "status", "location", "serial", "warranty_end", "updated_at",
                     holder=("display_name",))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _text_match(term: str):
    """Substring match on search_text. SQLite answers terms of 3+ characters from its FTS5 trigram
    index; PostgreSQL's pg_trgm index serves the LIKE itself. Shorter terms fall back to LIKE."""
    like = Asset.search_text.like(f"%{_escape_like(term)}%", escape="\\")
    if len(term) < 3 or db.engine.dialect.name != "sqlite":
        return like
    phrase = '"' + term.replace('"', '""') + '"'  # one quoted string: no FTS5 operators from users
    matching = select(literal_column("rowid")).select_from(text("fts_assets")).where(
        text("fts_assets MATCH :asset_match").bindparams(asset_match=phrase))
    return Asset.id.in_(matching)


@functools.cache
def _base_query(shape: Bundle | None) -> Select:
    """Built once per shape (statements are immutable; filters add to a copy): coercing 30 columns into
    a select costs a tenth of a millisecond."""
    if shape is None:
        # The agent's facts (kilobytes of JSON per computer) are not shown in lists or exports: not loaded.
        return select(Asset).options(joinedload(Asset.holder), defer(Asset.facts))
    return select(shape).select_from(Asset).outerjoin(HOLDER, HOLDER.id == Asset.holder_id)


def asset_query(filters: AssetFilters, shape: Bundle | None = None) -> Select:
    """Assets matching `filters`, with their holder loaded in the same query. Unordered; callers sort.

    Without `shape`, Asset objects; with one (see row_shape()), light rows of just those columns."""
    query = _base_query(shape)
    if filters.q and filters.q.strip():
        query = query.where(_text_match(filters.q.strip().lower()))
    if filters.kind:
        query = query.where(Asset.kind == filters.kind)
    if filters.status:
        query = query.where(Asset.status == filters.status)
    if filters.location and filters.location.strip():
        query = query.where(Asset.location == filters.location.strip())
    if filters.holder_id is not None:
        query = query.where(Asset.holder_id == filters.holder_id)
    elif filters.holder and filters.holder.strip():
        holder_ids = select(User.id).where(User.username == filters.holder.strip().lower())
        query = query.where(Asset.holder_id.in_(holder_ids.scalar_subquery()))
    if filters.warranty_days is not None:
        today = date.today()
        query = query.where(Asset.warranty_end >= today,
                            Asset.warranty_end <= today + timedelta(days=filters.warranty_days))
    return query


def sort_of(filters: AssetFilters):
    return _SORT_COLUMNS[filters.sort]


def asset_page(filters: AssetFilters, *, cursor: str | None = None, limit: int = DEFAULT_PAGE_SIZE,
               shape: Bundle | None = None) -> Page:
    filters = filters.validated()
    return keyset_page(asset_query(filters, shape), sort_of(filters), cursor=cursor, limit=limit,
                       key=lambda asset: [getattr(asset, column.key) for column, _ in sort_of(filters)])


def iter_assets(filters: AssetFilters, batch: int = EXPORT_BATCH) -> Iterator[Asset]:
    """Every matching asset, fetched a keyset page at a time so an export of 100,000 rows stays small in memory."""
    cursor = None
    while True:
        page = asset_page(filters, cursor=cursor, limit=batch)
        yield from page.items
        for asset in page.items:  # rows already streamed out need not stay in the session's identity map
            db.session.expunge(asset)
        if page.next_cursor is None:
            return
        cursor = page.next_cursor

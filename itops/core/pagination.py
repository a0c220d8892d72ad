"""Keyset (cursor) pagination: pages stay fast at any depth, unlike OFFSET.

A sort is a list of (column, descending) pairs ending in a unique column (usually the id). The
cursor is an opaque, URL-safe encoding of the last row's sort values.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import and_, or_
from sqlalchemy.sql import ColumnElement, Select

from itops.core.errors import ValidationFailed
from itops.extensions import db

MAX_PAGE_SIZE = 200


@dataclass
class Page:
    items: list
    next_cursor: str | None
    limit: int


def _encode(values: Sequence[Any]) -> str:
    plain = [{"dt": v.isoformat()} if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(cursor: str, width: int) -> list:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(values, list) or len(values) != width:
            raise ValueError
        return [datetime.fromisoformat(v["dt"]) if isinstance(v, dict) else v for v in values]
    except (ValueError, TypeError, KeyError):
        raise ValidationFailed("The page cursor is not valid; start again from the first page.",
                               errors={"cursor": ["Not a valid cursor."]}) from None


def _after(sort: Sequence[tuple[ColumnElement, bool]], values: list):
    """Rows strictly after `values` in the sort order, for any mix of directions."""
    clauses = []
    for i, (column, descending) in enumerate(sort):
        equal_before = [sort[j][0] == values[j] for j in range(i)]
        step = column < values[i] if descending else column > values[i]
        clauses.append(and_(*equal_before, step))
    return or_(*clauses)


def keyset_page(query: Select, sort: Sequence[tuple[ColumnElement, bool]], *, cursor: str | None,
                limit: int, key=None, rows: bool = False) -> Page:
    """Fetch one page of `query` ordered by `sort`. `key(row)` gives a row's sort values.

    Items are the query's first column (an entity), or whole rows with `rows`."""
    limit = max(1, min(int(limit), MAX_PAGE_SIZE))
    if cursor:
        query = query.where(_after(sort, _decode(cursor, len(sort))))
    query = query.order_by(*[(c.desc() if d else c.asc()) for c, d in sort]).limit(limit + 1)
    items = db.session.execute(query).all() if rows else list(db.session.scalars(query))
    has_more = len(items) > limit
    items = items[:limit]
    next_cursor = None
    if has_more and items:
        last = items[-1]
        values = key(last) if key else [getattr(last, c.key) for c, _ in sort]
        next_cursor = _encode(values)
    return Page(items=items, next_cursor=next_cursor, limit=limit)

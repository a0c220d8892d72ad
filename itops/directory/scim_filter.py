"""SCIM filters and attribute paths (RFC 7644 §3.4.2.2, §3.5.2): parse, evaluate in Python, translate to SQL.

One parser serves three callers: `filter=` on list requests (translated to a where-clause over the
people table, so paging and counting stay in the database), value filters inside PATCH paths such
as `emails[type eq "work"].value` (evaluated on the resource's JSON), and the group list (also
evaluated in Python: groups come from the admin's mappings, not from a table).

Attribute names and operators are case-insensitive; `and` binds tighter than `or`; `not` needs
parentheses, as the RFC's grammar says.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import and_, false, func, not_, or_, true

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
COMPARE_OPS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})
MAX_FILTER_LENGTH = 2000
MAX_DEPTH = 30
MAX_ROW_ID = 2**31 - 1


class ScimError(Exception):
    """A SCIM error response (RFC 7644 §3.12): an HTTP status, an optional scimType and a detail."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None):
        super().__init__(detail)
        self.status, self.detail, self.scim_type = status, detail, scim_type


def invalid_filter(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidFilter")


# --- the tree ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AttrPath:
    """`name.givenName` or `urn:...:enterprise:2.0:User:manager.value`; `urn` is None for core attributes."""
    urn: str | None
    attr: str
    sub: str | None = None

    @property
    def key(self) -> str:
        """The canonical lower-case key the attribute tables use."""
        name = self.attr if self.sub is None else f"{self.attr}.{self.sub}"
        return (f"{self.urn}:{name}" if self.urn else name).lower()

    def __str__(self) -> str:
        name = self.attr if self.sub is None else f"{self.attr}.{self.sub}"
        return f"{self.urn}:{name}" if self.urn else name


@dataclass(frozen=True)
class Compare:
    path: AttrPath
    op: str
    value: Any


@dataclass(frozen=True)
class Present:
    path: AttrPath


@dataclass(frozen=True)
class And:
    left: Any
    right: Any


@dataclass(frozen=True)
class Or:
    left: Any
    right: Any


@dataclass(frozen=True)
class Not:
    inner: Any


@dataclass(frozen=True)
class ValuePath:
    """`emails[type eq "work"]`: the inner filter's paths are sub-attributes of `path`."""
    path: AttrPath
    inner: Any


@dataclass(frozen=True)
class PatchPath:
    """A PATCH `path`: an attribute, optionally a value filter on it, optionally a sub-attribute after the filter."""
    attr: AttrPath
    value_filter: Any = None
    sub: str | None = None


# --- tokens and parsing ----------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<punct>[()\[\]])
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w:]))
  | (?P<subattr>\.[A-Za-z$][\w$-]*)
  | (?P<word>[A-Za-z$][\w:.$-]*)
""", re.VERBOSE)


def _tokens(text: str) -> list[tuple[str, str]]:
    found, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise invalid_filter(f"Unexpected character {text[position]!r} at position {position + 1}.")
        if match.lastgroup != "space":
            found.append((match.lastgroup, match.group()))
        position = match.end()
    return found


def parse_attr_path(text: str, *, default_urn: str | None = CORE_USER) -> AttrPath:
    """`userName`, `name.givenName`, or a URN-qualified path; the core schema's own URN is dropped."""
    urn = None
    if text.lower().startswith("urn:"):
        urn, _, text = text.rpartition(":")
        if not urn or not text:
            raise invalid_filter(f"{urn}:{text} is not an attribute path.")
        if default_urn and urn.lower() == default_urn.lower():
            urn = None
    attr, _, sub = text.partition(".")
    if not re.fullmatch(r"[A-Za-z$][\w$-]*", attr) or (sub and not re.fullmatch(r"[A-Za-z$][\w$-]*", sub)):
        raise invalid_filter(f"{text!r} is not an attribute path.")
    return AttrPath(urn, attr, sub or None)


class _Parser:
    def __init__(self, text: str, default_urn: str | None):
        if len(text) > MAX_FILTER_LENGTH:
            raise invalid_filter(f"The filter is longer than {MAX_FILTER_LENGTH} characters.")
        self.tokens = _tokens(text)
        self.position = 0
        self.depth = 0
        self.default_urn = default_urn

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        index = self.position + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise invalid_filter("The filter ends too early.")
        self.position += 1
        return token

    def expect(self, text: str) -> None:
        kind, value = self.take()
        if value != text:
            raise invalid_filter(f"Expected {text!r} but found {value!r}.")

    def keyword(self, *words: str) -> str | None:
        token = self.peek()
        if token and token[0] == "word" and token[1].lower() in words:
            self.position += 1
            return token[1].lower()
        return None

    def parse(self):
        node = self.expression()
        if self.peek() is not None:
            raise invalid_filter(f"Unexpected {self.peek()[1]!r} after the end of the filter.")
        return node

    def expression(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise invalid_filter("The filter is nested too deeply.")
        node = self.conjunction()
        while self.keyword("or"):
            node = Or(node, self.conjunction())
        self.depth -= 1
        return node

    def conjunction(self):
        node = self.factor()
        while self.keyword("and"):
            node = And(node, self.factor())
        return node

    def factor(self):
        token = self.peek()
        if token and token[0] == "word" and token[1].lower() == "not" and self.peek(1) == ("punct", "("):
            self.position += 1
            return Not(self.grouped())
        if token == ("punct", "("):
            return self.grouped()
        return self.attribute_expression()

    def grouped(self):
        self.expect("(")
        node = self.expression()
        self.expect(")")
        return node

    def attribute_expression(self):
        kind, text = self.take()
        if kind != "word":
            raise invalid_filter(f"Expected an attribute name but found {text!r}.")
        path = parse_attr_path(text, default_urn=self.default_urn)
        if self.peek() == ("punct", "["):
            self.position += 1
            inner = self.expression()
            self.expect("]")
            return ValuePath(path, inner)
        operator = self.keyword("pr", *COMPARE_OPS)
        if operator is None:
            following = self.peek()
            raise invalid_filter(f"Expected an operator after {text} but found "
                                 f"{following[1] if following else 'the end'!r}.")
        if operator == "pr":
            return Present(path)
        return Compare(path, operator, self.literal())

    def literal(self):
        kind, text = self.take()
        if kind in ("string", "number"):
            try:
                value = json.loads(text)
            except ValueError:
                raise invalid_filter(f"{text} is not a valid value.") from None
            if isinstance(value, str) and "\x00" in value:
                raise invalid_filter("A filter value cannot contain NUL.")  # no stored text can either
            return value
        if kind == "word" and text.lower() in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[text.lower()]
        raise invalid_filter(f"{text!r} is not a value: quote strings, e.g. \"{text}\".")


def parse_filter(text: str, *, default_urn: str | None = CORE_USER):
    if not text or not text.strip():
        raise invalid_filter("The filter is empty.")
    return _Parser(text, default_urn).parse()


def parse_patch_path(text: str, *, default_urn: str | None = CORE_USER) -> PatchPath:
    """`members`, `name.familyName`, `emails[type eq "work"].value`, `urn:...:User:department`."""
    try:
        parser = _Parser(text or "", default_urn)
        kind, word = parser.take()
        if kind != "word":
            raise invalid_filter(f"{text!r} is not an attribute path.")
        attr = parse_attr_path(word, default_urn=default_urn)
        value_filter = sub = None
        if parser.peek() == ("punct", "["):
            if attr.sub is not None:
                raise invalid_filter("A value filter applies to an attribute, not a sub-attribute.")
            parser.position += 1
            value_filter = parser.expression()
            parser.expect("]")
            if parser.peek() and parser.peek()[0] == "subattr":
                sub = parser.take()[1][1:]
        if parser.peek() is not None:
            raise invalid_filter(f"Unexpected {parser.peek()[1]!r} in the path.")
    except ScimError as exc:
        raise ScimError(400, f"Invalid path {text!r}: {exc.detail}", "invalidPath") from None
    return PatchPath(attr, value_filter, sub)


# --- evaluation on JSON resources ----------------------------------------------------------------

def get_attribute(mapping: dict, name: str):
    """A JSON attribute by case-insensitive name."""
    if not isinstance(mapping, dict):
        return None
    for key, value in mapping.items():
        if key.lower() == name.lower():
            return value
    return None


def values_at(resource: dict, path: AttrPath) -> list:
    """Every value the path reaches; a multi-valued attribute contributes each of its elements."""
    container = get_attribute(resource, path.urn) if path.urn else resource
    top = get_attribute(container, path.attr) if container is not None else None
    items = top if isinstance(top, list) else [top]
    if path.sub is not None:
        items = [get_attribute(item, path.sub) for item in items]
    return [item for item in items if item is not None]


def _relative(path: AttrPath, parent: AttrPath) -> AttrPath:
    return AttrPath(parent.urn, parent.attr, path.attr)


def _compare_python(actual, op: str, expected) -> bool:
    if isinstance(actual, str) and isinstance(expected, str):
        actual, expected = actual.lower(), expected.lower()
    if op == "eq":
        return actual == expected
    if op == "ne":
        return actual != expected
    if op in ("co", "sw", "ew"):
        if not (isinstance(actual, str) and isinstance(expected, str)):
            return False
        return {"co": expected in actual, "sw": actual.startswith(expected), "ew": actual.endswith(expected)}[op]
    if isinstance(actual, bool) or isinstance(expected, bool) or type(actual) is not type(expected):
        if not (isinstance(actual, (int, float)) and isinstance(expected, (int, float))):
            return False
    return {"gt": actual > expected, "ge": actual >= expected, "lt": actual < expected, "le": actual <= expected}[op]


def matches(node, resource: dict) -> bool:
    """Whether a JSON resource (or one element of a multi-valued attribute) satisfies the filter."""
    if isinstance(node, And):
        return matches(node.left, resource) and matches(node.right, resource)
    if isinstance(node, Or):
        return matches(node.left, resource) or matches(node.right, resource)
    if isinstance(node, Not):
        return not matches(node.inner, resource)
    if isinstance(node, Present):
        return any(v not in ("", [], {}) for v in values_at(resource, node.path))
    if isinstance(node, ValuePath):
        elements = values_at(resource, AttrPath(node.path.urn, node.path.attr))
        return any(matches(node.inner, element) for element in elements if isinstance(element, dict))
    found = values_at(resource, node.path)
    if node.op == "ne":
        return not any(_compare_python(v, "eq", node.value) for v in found)
    return any(_compare_python(v, node.op, node.value) for v in found)


# --- translation to SQL --------------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    """How one filterable attribute reads in SQL: a column, its kind, and (for `bool`) a clause factory."""
    expression: Any = None
    kind: str = "string"          # string | exact (case-sensitive string) | int | datetime | bool
    clause: Callable[[], Any] | None = None   # bool attributes: the SQL condition that means true


def _like_pattern(value: str, op: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return {"co": f"%{escaped}%", "sw": f"{escaped}%", "ew": f"%{escaped}"}[op]


def _ordered(expression, op: str, value):
    return {"eq": expression == value, "ne": expression != value, "gt": expression > value,
            "ge": expression >= value, "lt": expression < value, "le": expression <= value}[op]


def _compare_sql(column: Column, node: Compare):
    op, value, name = node.op, node.value, str(node.path)
    if column.kind == "bool":
        if not isinstance(value, bool) or op not in ("eq", "ne"):
            raise invalid_filter(f"{name} is a boolean: use eq or ne with true or false.")
        wanted = value if op == "eq" else not value
        return column.clause() if wanted else not_(column.clause())
    if value is None:
        if op not in ("eq", "ne"):
            raise invalid_filter(f"null only compares with eq or ne ({name}).")
        return column.expression.is_(None) if op == "eq" else column.expression.is_not(None)
    if column.kind == "int":
        if op in ("co", "sw", "ew"):
            raise invalid_filter(f"{op} does not apply to {name}.")
        try:
            number = int(value)
        except (TypeError, ValueError):
            if op not in ("eq", "ne"):
                raise invalid_filter(f"{name} takes a number.") from None
            return false() if op == "eq" else true()  # ids are numbers: no other id matches
        if abs(number) > MAX_ROW_ID:
            # Beyond any row id (PostgreSQL would refuse the comparison): clamp, and nothing equals it.
            if op in ("eq", "ne"):
                return false() if op == "eq" else true()
            number = MAX_ROW_ID if number > 0 else -MAX_ROW_ID
        return _ordered(column.expression, op, number)
    if column.kind == "datetime":
        if op in ("co", "sw", "ew") or not isinstance(value, str):
            raise invalid_filter(f"{name} is a dateTime: compare it with eq, ne, gt, ge, lt or le and a quoted "
                                 "ISO 8601 time.")
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise invalid_filter(f"{value!r} is not an ISO 8601 dateTime.") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)  # SCIM times without an offset are read as UTC
        return _ordered(column.expression, op, when)
    if not isinstance(value, str):
        raise invalid_filter(f"{name} is a string: quote the value.")
    expression = column.expression
    if column.kind == "string":
        expression, value = func.lower(expression), value.lower()
    if op in ("co", "sw", "ew"):
        return expression.like(_like_pattern(value, op), escape="\\")
    if op == "ne":
        return or_(expression != value, column.expression.is_(None))
    return _ordered(expression, op, value)


def to_sql(node, columns: dict[str, Column], *, prefix: AttrPath | None = None):
    """The where-clause for a parsed filter; an attribute not in `columns` is an invalidFilter error."""
    if isinstance(node, And):
        return and_(to_sql(node.left, columns, prefix=prefix), to_sql(node.right, columns, prefix=prefix))
    if isinstance(node, Or):
        return or_(to_sql(node.left, columns, prefix=prefix), to_sql(node.right, columns, prefix=prefix))
    if isinstance(node, Not):
        return not_(to_sql(node.inner, columns, prefix=prefix))
    if isinstance(node, ValuePath):
        if prefix is not None or node.path.sub is not None:
            raise invalid_filter("Value filters do not nest.")
        return to_sql(node.inner, columns, prefix=node.path)
    path = _relative(node.path, prefix) if prefix is not None else node.path
    column = columns.get(path.key) or (columns.get(f"{path.key}.value") if path.sub is None else None)
    if column is None:
        raise invalid_filter(f"Filtering on {path} is not supported.")
    if isinstance(node, Present):
        if column.kind == "bool":
            return true()
        present = column.expression.is_not(None)
        return and_(present, column.expression != "") if column.kind in ("string", "exact") else present
    return _compare_sql(column, node)

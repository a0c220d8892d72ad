"""The package list of an agent report: the quick whole-list check agrees with the full one, entry by entry."""
from __future__ import annotations

import hashlib

import pytest

from itops.assets import inventory

CHECK = inventory.REPORT_PACKAGES


def check(entries):
    errors = inventory._Errors()
    return CHECK(entries, "software.packages", errors), dict(errors)


def test_plain_list_comes_out_as_columns_with_missing_arch_as_empty():
    packages, errors = check([{"name": "bash", "version": "5.2", "arch": "amd64"},
                              {"name": "tzdata", "version": "2024b", "arch": None}])
    assert errors == {} and len(packages) == 2
    assert (packages.names, packages.archs, packages.versions) == (["bash", "tzdata"], ["amd64", ""], ["5.2", "2024b"])
    assert packages.versions_by_package() == {("bash", "amd64"): "5.2", ("tzdata", ""): "2024b"}
    assert check([]) == (inventory.NO_PACKAGES, {})


@pytest.mark.parametrize("entry, path, message", [
    ({"name": "x", "version": "1"}, "software.packages[1].arch", "Missing."),
    ({"name": "x", "version": "1", "arch": "all", "extra": 1}, "software.packages[1].extra", "Unknown field."),
    ({"name": 7, "version": "1", "arch": "all"}, "software.packages[1].name", "Must be a string."),
    ({"name": "x", "version": "1", "arch": False}, "software.packages[1].arch", "Must be a string."),
    ({"name": "x", "version": "1", "arch": 0}, "software.packages[1].arch", "Must be a string."),
    ({"name": "x", "version": "1\x00", "arch": "all"}, "software.packages[1].version",
     "Must not contain NUL characters."),
    ({"name": "x" * 256, "version": "1", "arch": "all"}, "software.packages[1].name", "At most 255 characters."),
    ({"name": "x", "version": "1", "arch": "a" * 33}, "software.packages[1].arch", "At most 32 characters."),
    (["x", "1", "all"], "software.packages[1]", "Must be an object."),
    ("bash", "software.packages[1]", "Must be an object."),
    (None, "software.packages[1]", "Must be an object."),
])
def test_an_entry_that_is_not_plainly_valid_is_named(entry, path, message):
    packages, errors = check([{"name": "ok", "version": "1", "arch": "all"}, entry])
    assert errors == {path: [message]} and len(packages) == 0


def test_digest_ignores_order_and_matches_the_stored_form():
    entries = [{"name": "b", "version": "2", "arch": "amd64"}, {"name": "a", "version": "1", "arch": None}]
    forward, _ = check(entries)
    backward, _ = check(entries[::-1])
    lines = "a\t\t1\nb\tamd64\t2"  # what digests stored by earlier versions were made from
    assert forward.digest() == backward.digest() == hashlib.sha256(lines.encode()).hexdigest()

"""Keyset pagination over mixed sort directions."""
import pytest
from sqlalchemy import select

from itops.core.auth.models import User
from itops.core.errors import ValidationFailed
from itops.core.pagination import keyset_page
from itops.core.policy import Role


def test_pages_cover_every_row_once_in_order(make_user):
    roles = [Role.EMPLOYEE, Role.HR, Role.ADMIN, Role.IT_STAFF]
    for n in range(11):
        make_user(roles[n % 4], username=f"u{n:02}")
    sort = [(User.role, True), (User.id, False)]
    seen, cursor = [], None
    while True:
        page = keyset_page(select(User), sort, cursor=cursor, limit=3)
        seen.extend(page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    expected = sorted(seen, key=lambda u: u.id)
    expected.sort(key=lambda u: u.role, reverse=True)
    assert [u.id for u in seen] == [u.id for u in expected] and len(seen) == 11


def test_a_tampered_cursor_is_a_validation_error():
    with pytest.raises(ValidationFailed):
        keyset_page(select(User), [(User.id, False)], cursor="bm90IGEgbGlzdA", limit=5)

"""Query counts of every portal list page are pinned, so an N+1 cannot creep in.

Each page is measured with the shared data set, then again after adding 15 more of every
row it lists: both counts must equal the pinned number.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from redemption import selectors
from tests.e2e.helpers import more_rows, populate

pytestmark = pytest.mark.django_db

# Per-state counts are one query over trigger-kept counters on PostgreSQL, two GROUP BYs
# (codes and shared redemptions) on SQLite.
COUNTS = 1 if connection.vendor == "postgresql" else 2

# Page -> the queries it runs for a superuser (2 of them load the session and the user).
PAGES = {
    "dashboard": (lambda d: reverse("redemption:dashboard"), 5 + COUNTS),
    # One page of types, the counts of its types, and the totals by state of every type.
    "inventory": (lambda d: reverse("redemption:inventory"), 3 + 2 * COUNTS),
    "inventory-filtered": (
        lambda d: (
            reverse("redemption:inventory")
            + "?search=a&use_type=SINGLE&disabled=false&has_webhook=true&archived=any&per_page=2"
        ),
        3 + 2 * COUNTS,
    ),
    "inventory-page-2": (
        lambda d: (
            reverse("redemption:inventory")
            + "?per_page=1&after="
            + selectors.code_types_page(limit=1).next_cursor
        ),
        3 + 2 * COUNTS,
    ),
    "type": (lambda d: reverse("redemption:code_type_detail", args=[d["ct"].name]), 6 + COUNTS),
    "type-filtered": (
        lambda d: (
            reverse("redemption:code_type_detail", args=[d["ct"].name])
            + "?state=Failed&prefix=TEST&created_from=2000-01-01"
        ),
        6 + COUNTS,
    ),
    "shared-type": (
        lambda d: reverse("redemption:code_type_detail", args=[d["shared"].name]),
        5 + COUNTS,
    ),
    "code": (lambda d: reverse("redemption:code_detail", args=[d["failed"].canonical]), 5),
    # A keyset page of codes and one of shared redemptions, a count of each, the attempts,
    # the code types of the filter.
    "profile": (lambda d: reverse("redemption:user_monitoring") + "?profile=p-42", 8),
    # The same for one type: its row, and the counts again for that type alone.
    "profile-one-type": (
        lambda d: reverse("redemption:user_monitoring") + "?profile=p-42&code_type=freestuff",
        11,
    ),
    # Profiles by the start of an id or a name: four bounded reads of the prefix indexes.
    "profile-search": (lambda d: reverse("redemption:user_monitoring") + "?profile=nob", 9),
    "jobs": (lambda d: reverse("redemption:job_list"), 3),
    "job": (lambda d: reverse("redemption:job_detail", args=[d["job"].pk]), 3),
    "audit": (lambda d: reverse("redemption:audit_log"), 3),
    "audit-filtered": (
        lambda d: reverse("redemption:audit_log") + "?action=code.invalidate&date_from=2000-01-01",
        3,
    ),
    "server-keys": (lambda d: reverse("redemption:server_keys"), 3),
    "lookup": (lambda d: reverse("redemption:lookup"), 3),
}


def _count(client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(ctx.captured_queries)


@pytest.mark.parametrize("name", sorted(PAGES))
def test_list_page_queries_do_not_grow_with_rows(
    name, client, admin_user, django_assert_num_queries
):
    data = populate()
    url_of, expected = PAGES[name]
    client.force_login(admin_user)
    url = url_of(data)
    before = _count(client, url)
    more_rows(data, 15)
    _make_keys(admin_user, 15)
    assert before == expected
    with django_assert_num_queries(expected):
        client.get(url)


def _make_keys(user, n: int) -> None:
    from redemption.actors import Actor
    from redemption.services import keys

    for i in range(n):
        keys.server_key_create(actor=Actor.staff(user), name=f"key {i}")


def test_the_code_list_never_counts_the_codes(client, viewer_user):
    data = populate()
    client.force_login(viewer_user)
    url = reverse("redemption:code_type_detail", args=[data["ct"].name])
    with CaptureQueriesContext(connection) as ctx:
        client.get(url)
    code_queries = [q["sql"] for q in ctx.captured_queries if '"redemption_code"' in q["sql"]]
    listing = [q for q in code_queries if "LIMIT 51" in q]
    assert len(listing) == 1
    # The only COUNT on codes is the per-state GROUP BY of the tiles (an index-only count).
    assert all("GROUP BY" in q for q in code_queries if "COUNT(" in q)

"""Bounded reads over the API: limit + opaque cursor -> nextCursor on every list that can grow."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from redemption import selectors
from redemption.models import SharedRedemption, State
from tests.factories import CodeFactory, CodeTypeFactory, SharedCodeTypeFactory

pytestmark = pytest.mark.django_db

CLIENT_LIST = "/api/v1/client/redeemed-codes"
SERVER_LIST = "/api/v1/server/profiles/p-42/redeemed-codes"
TYPES = "/api/v1/server/code-types"
T0 = timezone.now().replace(microsecond=0) - timedelta(days=1)


def _fields(response) -> dict[str, str]:
    assert (response.status, response.code) == (400, "INVALID_PARAMETER_VALUE"), response.json()
    return response.error["details"]["fields"]


def _profile_records(n_personal: int, n_shared: int, *, profile: str = "p-42", state="Redeemed"):
    """Records of one profile, one per second, personal and shared interleaved; newest first."""
    made = []
    for i in range(n_personal + n_shared):
        at = T0 + timedelta(seconds=i)
        if i % 3 == 2 and n_shared:
            n_shared -= 1
            made.append(
                SharedRedemption.objects.create(
                    code_type=SharedCodeTypeFactory(),
                    profile_id=profile,
                    state=state,
                    created_at=at,
                    redeemed_at=at if state == "Redeemed" else None,
                    updated_at=at,
                )
            )
        else:
            made.append(
                CodeFactory(
                    state=state,
                    redeemed_by_profile_id=profile,
                    redeemed_at=at if state == "Redeemed" else None,
                    updated_at=at,
                )
            )
    return [str(r.pk) for r in reversed(made)]


def _walk(client, path: str, limit: int) -> tuple[list[str], int]:
    seen, pages, url = [], 0, f"{path}?limit={limit}"
    while url:
        body = client.get(url).json()
        pages += 1
        seen += [c["redemptionCodeId"] for c in body["codes"]]
        url = f"{path}?limit={limit}&cursor={body['nextCursor']}" if body["nextCursor"] else None
        assert pages < 100
    return seen, pages


@pytest.mark.parametrize("limit", [1, 4, 7, 500])
def test_a_profile_list_pages_newest_first_across_codes_and_shared_redemptions(server_api, limit):
    expected = _profile_records(10, 5)

    seen, pages = _walk(server_api, SERVER_LIST, limit)

    assert seen == expected
    assert pages == max(1, -(-len(expected) // limit))


def test_the_client_list_pages_its_redeemed_codes_only(user_api):
    expected = _profile_records(6, 3)
    CodeFactory(state=State.FAILED, redeemed_by_profile_id="p-42", current_attempt=1)
    _profile_records(3, 0, profile="someone-else")

    seen, pages = _walk(user_api, CLIENT_LIST, 4)

    assert (seen, pages) == (expected, 3)


def test_the_default_page_is_100_and_the_last_page_says_so(server_api):
    expected = _profile_records(101, 0)

    first = server_api.get(SERVER_LIST).json()
    last = server_api.get(f"{SERVER_LIST}?cursor={first['nextCursor']}").json()

    assert [c["redemptionCodeId"] for c in first["codes"]] == expected[:100]
    assert [c["redemptionCodeId"] for c in last["codes"]] == expected[100:]
    assert last["nextCursor"] is None


def test_records_with_the_same_time_page_without_loss(server_api):
    same = [
        CodeFactory(state=State.REDEEMED, redeemed_by_profile_id="p-42", redeemed_at=T0)
        for _ in range(4)
    ] + [
        SharedRedemption.objects.create(
            code_type=SharedCodeTypeFactory(),
            profile_id="p-42",
            state=State.REDEEMED,
            created_at=T0,
            redeemed_at=T0,
            updated_at=T0,
        )
        for _ in range(3)
    ]

    seen, _ = _walk(server_api, SERVER_LIST, 2)

    assert sorted(seen) == sorted(str(r.pk) for r in same)
    assert seen == sorted(seen, reverse=True)  # ties broken by id, newest id first


def test_a_cursor_is_stable_under_concurrent_inserts(server_api):
    expected = _profile_records(8, 4)
    first = server_api.get(f"{SERVER_LIST}?limit=5").json()
    newer = CodeFactory(
        state=State.REDEEMED, redeemed_by_profile_id="p-42", redeemed_at=timezone.now()
    )
    newest = SharedRedemption.objects.create(
        code_type=SharedCodeTypeFactory(),
        profile_id="p-42",
        state=State.REDEEMED,
        created_at=timezone.now(),
        redeemed_at=timezone.now(),
        updated_at=timezone.now(),
    )

    rest, _ = _walk_from(server_api, SERVER_LIST, 5, first["nextCursor"])

    assert [c["redemptionCodeId"] for c in first["codes"]] + rest == expected
    now_first = server_api.get(f"{SERVER_LIST}?limit=2").json()["codes"]
    assert [c["redemptionCodeId"] for c in now_first] == [str(newest.pk), str(newer.pk)]


def _walk_from(client, path: str, limit: int, cursor: str) -> tuple[list[str], int]:
    seen, pages = [], 0
    while cursor:
        body = client.get(f"{path}?limit={limit}&cursor={cursor}").json()
        seen += [c["redemptionCodeId"] for c in body["codes"]]
        cursor, pages = body["nextCursor"], pages + 1
    return seen, pages


@pytest.mark.parametrize("path", [CLIENT_LIST, SERVER_LIST, TYPES])
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=501", "limit"),
        ("limit=0", "limit"),
        ("limit=-3", "limit"),
        ("limit=ten", "limit"),
        ("limit=1.5", "limit"),
        ("limit=%2010", "limit"),
        ("limit=99999999999999999999999", "limit"),
        ("cursor=garbage", "cursor"),
        ("cursor=", "cursor"),
        ("cursor=WyIyMDI2LTAxLTAxIl0:forged", "cursor"),
        ("cursor=" + "A" * 501, "cursor"),
    ],
)
def test_limits_and_cursors_no_list_gave_out_are_400(server_api, user_api, path, query, field):
    client = user_api if path == CLIENT_LIST else server_api

    assert field in _fields(client.get(f"{path}?{query}"))


def test_a_cursor_of_one_list_is_refused_by_another(server_api):
    _profile_records(3, 0)
    CodeTypeFactory(name="a1")
    CodeTypeFactory(name="a2")
    profile_cursor = server_api.get(f"{SERVER_LIST}?limit=1").json()["nextCursor"]
    types_cursor = server_api.get(f"{TYPES}?limit=1").json()["nextCursor"]

    assert _fields(server_api.get(f"{TYPES}?cursor={profile_cursor}")) == {
        "cursor": "is not a cursor this list handed out"
    }
    assert "cursor" in _fields(server_api.get(f"{SERVER_LIST}?cursor={types_cursor}"))


def test_a_tampered_cursor_is_refused(server_api):
    _profile_records(3, 0)
    cursor = server_api.get(f"{SERVER_LIST}?limit=1").json()["nextCursor"]
    payload, signature = cursor.split(":", 1)
    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + ":" + signature

    assert "cursor" in _fields(server_api.get(f"{SERVER_LIST}?cursor={forged}"))


# --- code types ---------------------------------------------------------------------------------


def test_code_types_page_by_name(server_api):
    names = [f"type-{i:02d}" for i in range(7)]
    for name in reversed(names):
        CodeTypeFactory(name=name)

    seen, cursor = [], None
    while True:
        url = f"{TYPES}?limit=3" + (f"&cursor={cursor}" if cursor else "")
        body = server_api.get(url).json()
        seen += [t["codeType"] for t in body["codeTypes"]]
        cursor = body["nextCursor"]
        if cursor is None:
            break

    assert seen == names


def test_code_types_filter_by_search_use_type_and_disabled(server_api):
    CodeTypeFactory(name="xmas-2026", description="Gift cards")
    CodeTypeFactory(name="summer", description="XMAS in July", is_disabled=True)
    SharedCodeTypeFactory(name="free-stuff", description="For everyone")
    CodeTypeFactory(name="spring", description="100% off_")

    def names(query: str) -> list[str]:
        return [t["codeType"] for t in server_api.get(f"{TYPES}?{query}").json()["codeTypes"]]

    assert names("search=XmAs") == ["summer", "xmas-2026"]
    assert names("search=gift") == ["xmas-2026"]
    assert names("search=%25") == ["spring"]  # a literal %, not a wildcard
    assert names("search=f_") == ["spring"]  # a literal _, not a wildcard
    assert names("useType=MULTI") == ["free-stuff"]
    assert names("useType=SINGLE&disabled=false") == ["spring", "xmas-2026"]
    assert names("disabled=true") == ["summer"]
    assert names("search=xmas&disabled=false&limit=1") == ["xmas-2026"]
    assert _fields(server_api.get(f"{TYPES}?useType=BOTH")) == {
        "useType": "must be one of SINGLE, MULTI"
    }
    assert _fields(server_api.get(f"{TYPES}?disabled=yes")) == {"disabled": "must be true or false"}
    assert "search" in _fields(server_api.get(f"{TYPES}?search=" + "x" * 201))


def test_code_type_list_counts_only_the_page(server_api, django_assert_max_num_queries):
    for i in range(30):
        CodeTypeFactory(name=f"t{i:02d}")

    with CaptureQueriesContext(connection) as ctx:
        body = server_api.get(f"{TYPES}?limit=5").json()

    assert len(body["codeTypes"]) == 5
    assert len(ctx.captured_queries) <= 6  # key + types page + counts, whatever the total


# --- query plans: a page starts at its cursor and is never sorted as a whole ------------------


def _plan(sql: str) -> str:
    prefix = "EXPLAIN " if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN "
    with connection.cursor() as cursor:
        cursor.execute(prefix + sql)
        return "\n".join(" ".join(str(c) for c in row) for row in cursor.fetchall())


def test_a_profile_page_reads_its_index_from_the_cursor_without_sorting():
    profile = "p-plan"
    _profile_records(60, 20, profile=profile)
    _profile_records(60, 0, profile="p-other")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ANALYZE redemption_code")
            cursor.execute("ANALYZE redemption_sharedredemption")
            # Tiny tables: forbid the plans that only pay off on them. A Sort can still be
            # chosen, at any price, when no index delivers the order: that is what is checked.
            for knob in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
                cursor.execute(f"SET LOCAL {knob} = off")
        else:
            cursor.execute("ANALYZE")
    first = selectors.profile_records_page(profile, redeemed_only=False, limit=5)

    with CaptureQueriesContext(connection) as ctx:
        selectors.profile_records_page(
            profile, redeemed_only=False, limit=5, cursor=first.next_cursor
        )

    code_sql, shared_sql = (q["sql"] for q in ctx.captured_queries)
    code_plan, shared_plan = _plan(code_sql), _plan(shared_sql)
    assert "code_profile_recent" in code_plan, code_plan
    assert "shared_profile_recent" in shared_plan, shared_plan
    for plan in (code_plan, shared_plan):
        assert "Sort" not in plan and "TEMP B-TREE" not in plan, plan

"""Campaigns at scale in the portal and the services (#16 items 4, 5, 6, 9): the inventory's
search, filters and pages; archive, unarchive and delete of a code type; disabled and archived
types refuse new use but not invalidation or reset; activate with new custom info; the error
for deleting a shared redemption of a personal type."""

import io

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from redemption import exceptions as exc
from redemption import selectors
from redemption.actors import Profile
from redemption.models import AuditEvent, Code, CodeType, State
from redemption.services import (
    bulk,
    code_activate,
    code_add,
    code_invalidate,
    code_reset,
    code_type_archive,
    code_type_delete,
    code_update_custom_info,
    redeem,
    shared_redemption_delete,
)
from tests.factories import CodeFactory, CodeTypeFactory, SharedCodeTypeFactory

pytestmark = pytest.mark.django_db

INVENTORY = "redemption:inventory"


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def _names(response) -> list[str]:
    return [row["name"] for row in response.context["type_rows"]]


# --- the one selector ---------------------------------------------------------------------------


def test_the_selector_filters_and_pages_both_ways():
    for i in range(7):
        CodeTypeFactory(name=f"t{i}", fulfillment_url="https://x.example/" if i % 2 else "")
    CodeTypeFactory(name="t9", archived_at="2026-01-01T00:00Z")

    first = selectors.code_types_page(limit=3)
    second = selectors.code_types_page(limit=3, cursor=first.next_cursor)
    third = selectors.code_types_page(limit=3, cursor=second.next_cursor)
    back = selectors.code_types_page(limit=3, before=third.previous_cursor)
    home = selectors.code_types_page(limit=3, before=back.previous_cursor)

    def names(p):
        return [r["code_type"].name for r in p.rows]

    assert [names(p) for p in (first, second, third)] == [
        ["t0", "t1", "t2"],
        ["t3", "t4", "t5"],
        ["t6"],
    ]
    assert first.previous_cursor is None and third.next_cursor is None
    assert names(back) == ["t3", "t4", "t5"] and back.previous_cursor is not None
    assert names(home) == ["t0", "t1", "t2"] and home.previous_cursor is None
    assert names(selectors.code_types_page(has_webhook=True)) == ["t1", "t3", "t5"]
    assert names(selectors.code_types_page(has_webhook=False, limit=2)) == ["t0", "t2"]
    assert names(selectors.code_types_page(archived=True)) == ["t9"]
    assert len(selectors.code_types_page(archived=None).rows) == 8


def test_with_totals_adds_up_every_type_from_the_same_counts():
    a, b = CodeTypeFactory(name="a"), CodeTypeFactory(name="b")
    CodeFactory(code_type=a, state=State.AVAILABLE)
    CodeFactory(code_type=b, state=State.INVALIDATED)

    found = selectors.code_types_page(limit=1, with_totals=True)

    assert [r["code_type"].name for r in found.rows] == ["a"]
    assert found.rows[0]["total"] == 1
    assert found.totals is not None
    assert (found.totals["Available"], found.totals["Invalidated"]) == (1, 1)


def test_totals_by_state_agree_with_the_per_type_counts(ops, system_actor):
    a, b = CodeTypeFactory(name="a"), SharedCodeTypeFactory(name="b", scan_code="SHAREDB")
    for state in (State.AVAILABLE, State.AVAILABLE, State.INACTIVE, State.INVALIDATED):
        CodeFactory(code_type=a, state=state)
    redeem(actor=system_actor, profile=Profile("p"), scan_code="SHAREDB")
    code_type_archive(actor=ops, name="a")

    expected = selectors.empty_counts()
    for per_type in selectors.state_counts_by_type([a, b]).values():
        for state, n in per_type.items():
            expected[state] += n

    assert selectors.totals_by_state() == expected
    assert (expected["Available"], expected["Redeemed"]) == (2, 1)


# --- archive, unarchive, delete: services -----------------------------------------------------


def test_an_archived_type_refuses_every_new_use_but_not_invalidation_or_reset(
    ops, support, system_actor
):
    ct = CodeTypeFactory(name="old")
    available = CodeFactory(code_type=ct, state=State.AVAILABLE)
    inactive = CodeFactory(code_type=ct, state=State.INACTIVE)
    shared = SharedCodeTypeFactory(name="old-shared", scan_code="OLDSHARED")
    for name in (ct.name, shared.name):
        code_type_archive(actor=ops, name=name)

    refusals = [
        lambda: redeem(actor=system_actor, profile=Profile("p"), scan_code=available.scan_code),
        lambda: redeem(actor=system_actor, profile=Profile("p"), scan_code="OLDSHARED"),
        lambda: code_add(actor=ops, code_type_name="old", scan_code="NEWCODE1"),
        lambda: code_activate(actor=support, scan_code=inactive.scan_code),
        lambda: code_update_custom_info(
            actor=support, scan_code=available.scan_code, version=1, custom_code_info={}
        ),
        lambda: bulk.codes_generate_inline(actor=ops, code_type_name="old", quantity=1),
        lambda: bulk.job_import_start(
            actor=ops, code_type_name="old", upload=io.BytesIO(b"ABCD-EFGH\n")
        ),
    ]
    for attempt in refusals:
        with pytest.raises(exc.CodeTypeDisabledError) as caught:
            attempt()
        assert caught.value.details["archived"] is True
        assert "archived" in caught.value.message

    assert code_invalidate(actor=support, scan_code=available.scan_code).state == "Invalidated"
    assert code_reset(actor=support, scan_code=available.scan_code).state == State.INACTIVE
    assert Code.objects.filter(code_type=ct, is_shared_anchor=False).count() == 2


def test_archiving_is_audited_once_and_undone_by_unarchive(ops, system_actor):
    ct = CodeTypeFactory(name="seasonal")
    code = CodeFactory(code_type=ct, state=State.AVAILABLE)

    archived = code_type_archive(actor=ops, name="seasonal")
    code_type_archive(actor=ops, name="seasonal")
    back = code_type_archive(actor=ops, name="seasonal", archived=False)

    assert archived.archived_at is not None and archived.version == 2
    assert back.archived_at is None and back.version == 3
    actions = list(
        AuditEvent.objects.filter(code_type_name="seasonal")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["code_type.archive", "code_type.unarchive"]
    assert redeem(actor=system_actor, profile=Profile("p"), scan_code=code.scan_code)


def test_only_ops_archives_or_deletes(support):
    CodeTypeFactory(name="kept")
    with pytest.raises(exc.PermissionDeniedError):
        code_type_archive(actor=support, name="kept")
    with pytest.raises(exc.PermissionDeniedError):
        code_type_delete(actor=support, name="kept")
    assert CodeType.objects.get(name="kept").archived_at is None


def test_delete_refuses_a_type_with_any_code_or_shared_redemption(ops, system_actor):
    personal = CodeTypeFactory(name="personal")
    CodeFactory(code_type=personal, state=State.INVALIDATED)
    SharedCodeTypeFactory(name="shared", scan_code="SHAREDONE")
    redeem(actor=system_actor, profile=Profile("p"), scan_code="SHAREDONE")

    for name in ("personal", "shared"):
        with pytest.raises(exc.CodeTypeNotEmptyError):
            code_type_delete(actor=ops, name=name)

    assert CodeType.objects.filter(name__in=["personal", "shared"]).count() == 2
    assert not AuditEvent.objects.filter(action="code_type.delete").exists()


def test_delete_of_an_empty_type_removes_it_and_its_scan_code_reservation(ops):
    CodeTypeFactory(name="empty")
    SharedCodeTypeFactory(name="empty-shared", scan_code="NOBODYYET")

    code_type_delete(actor=ops, name="empty")
    code_type_delete(actor=ops, name="empty-shared")

    assert not CodeType.objects.filter(name__in=["empty", "empty-shared"]).exists()
    assert not Code.objects.filter(canonical="NOBODYYET").exists()
    assert AuditEvent.objects.filter(action="code_type.delete").count() == 2


# --- disabled types (item 5) --------------------------------------------------------------------


def test_a_disabled_type_refuses_add_and_activate_but_not_invalidate_or_reset(ops, support):
    ct = CodeTypeFactory(name="off", is_disabled=True)
    inactive = CodeFactory(code_type=ct, state=State.INACTIVE)
    available = CodeFactory(code_type=ct, state=State.AVAILABLE)

    with pytest.raises(exc.CodeTypeDisabledError):
        code_add(actor=ops, code_type_name="off", scan_code="NEWCODE1")
    with pytest.raises(exc.CodeTypeDisabledError):
        code_activate(actor=support, scan_code=inactive.scan_code)

    inactive.refresh_from_db()
    assert inactive.state == State.INACTIVE
    assert not Code.objects.filter(canonical="NEWC0DE1").exists()
    assert code_invalidate(actor=support, scan_code=available.scan_code).state == "Invalidated"
    assert code_reset(actor=support, scan_code=available.scan_code, state="Available").state == (
        "Available"
    )


# --- wrong error name (item 9) ------------------------------------------------------------------


def test_deleting_a_shared_redemption_of_a_personal_type_is_a_code_use_error(ops):
    CodeTypeFactory(name="personal")

    with pytest.raises(exc.CodeUseTypeError) as caught:
        shared_redemption_delete(actor=ops, code_type_name="personal", profile_id="p")

    assert (caught.value.code, caught.value.reason_code, caught.value.http_status) == (
        "REDEMPTION_CODE_TYPE_CODE_USE_ERROR",
        40775,
        409,
    )


def test_the_portal_names_the_code_use_error(client, ops_user):
    CodeTypeFactory(name="personal")
    client.force_login(ops_user)

    response = client.post(
        reverse("redemption:shared_redemption_delete"),
        {"code_type": "personal", "profile": "p-1", "confirm": "yes"},
        follow=True,
    )

    assert any("Only shared (MULTI) code types" in m for m in _messages(response))


# --- the inventory page ---------------------------------------------------------------------------


@pytest.fixture
def campaigns():
    CodeTypeFactory(name="easter-2026", description="Eggs")
    CodeTypeFactory(name="summer", description="Beach EGGS", is_disabled=True)
    CodeTypeFactory(name="hooked", fulfillment_url="https://shop.example/hook")
    SharedCodeTypeFactory(name="promo", description="Shared promo")
    CodeTypeFactory(name="attic", description="eggs", archived_at="2026-01-01T00:00Z")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["easter-2026", "hooked", "promo", "summer"]),
        ({"search": "eggs"}, ["easter-2026", "summer"]),
        ({"use_type": "MULTI"}, ["promo"]),
        ({"disabled": "true"}, ["summer"]),
        ({"disabled": "false", "has_webhook": "false"}, ["easter-2026", "promo"]),
        ({"has_webhook": "true"}, ["hooked"]),
        ({"archived": "only"}, ["attic"]),
        ({"archived": "any", "search": "eggs"}, ["attic", "easter-2026", "summer"]),
    ],
)
def test_the_inventory_searches_and_filters(client, viewer_user, campaigns, query, expected):
    client.force_login(viewer_user)
    response = client.get(reverse(INVENTORY), query)
    assert response.status_code == 200
    assert _names(response) == expected


def test_the_inventory_pages_forward_and_back_keeping_its_filters(client, viewer_user):
    for i in range(5):
        CodeTypeFactory(name=f"camp-{i}", description="sale")
    CodeTypeFactory(name="other")
    client.force_login(viewer_user)

    first = client.get(reverse(INVENTORY), {"search": "sale", "per_page": "2"})
    keyset = first.context["keyset"]
    second = client.get(
        reverse(INVENTORY), {"search": "sale", "per_page": "2", "after": keyset.after}
    )
    back = client.get(
        reverse(INVENTORY),
        {"search": "sale", "per_page": "2", "before": second.context["keyset"].before},
    )

    assert _names(first) == ["camp-0", "camp-1"] and keyset.is_first
    assert _names(second) == ["camp-2", "camp-3"]
    assert 'rel="next"' in second.content.decode() and 'rel="prev"' in second.content.decode()
    assert _names(back) == ["camp-0", "camp-1"] and back.context["keyset"].is_first
    # The tiles add up every code type whatever the page shows.
    assert first.context["grand_total"] == 0


def test_a_made_up_page_link_or_filter_is_a_message_not_a_500(client, viewer_user, campaigns):
    client.force_login(viewer_user)

    stale = client.get(reverse(INVENTORY), {"after": "made-up"})
    bad_choice = client.get(reverse(INVENTORY), {"use_type": "BOTH", "search": "x" * 201})

    assert stale.status_code == 200 and _names(stale)[0] == "easter-2026"
    assert any("no longer valid" in m for m in _messages(stale))
    assert bad_choice.status_code == 200 and _names(bad_choice) == []
    assert set(bad_choice.context["filter"].form.errors) == {"use_type", "search"}


def test_an_empty_inventory_invites_ops_to_create_a_type(client, ops_user):
    client.force_login(ops_user)
    body = client.get(reverse(INVENTORY)).content.decode()
    assert "No code types yet" in body


def test_a_filter_that_matches_nothing_says_so(client, viewer_user, campaigns):
    client.force_login(viewer_user)
    body = client.get(reverse(INVENTORY), {"search": "nothing-like-this"}).content.decode()
    assert "No code type matches" in body


# --- archive and delete in the portal, per role -------------------------------------------------


def _post_actions(name: str) -> list[str]:
    return [
        reverse("redemption:code_type_archive", args=[name]),
        reverse("redemption:code_type_unarchive", args=[name]),
        reverse("redemption:code_type_delete", args=[name]),
    ]


@pytest.mark.parametrize("user_fixture", ["viewer_user", "support_user"])
def test_below_ops_archive_and_delete_are_403(client, request, user_fixture):
    CodeTypeFactory(name="kept")
    client.force_login(request.getfixturevalue(user_fixture))

    for url in _post_actions("kept"):
        assert client.post(url).status_code == 403, url
    assert client.get(reverse("redemption:code_type_delete", args=["kept"])).status_code == 403
    assert CodeType.objects.get(name="kept").archived_at is None
    assert not AuditEvent.objects.exists()
    page = client.get(reverse("redemption:code_type_detail", args=["kept"])).content.decode()
    assert "Archive</button>" not in page and "Delete code type" not in page


def test_ops_archives_and_unarchives_from_the_type_page(client, ops_user):
    CodeTypeFactory(name="seasonal")
    client.force_login(ops_user)
    detail = reverse("redemption:code_type_detail", args=["seasonal"])
    assert "Archive</button>" in client.get(detail).content.decode()

    archived = client.post(reverse("redemption:code_type_archive", args=["seasonal"]), follow=True)
    assert any("is archived" in m for m in _messages(archived))
    assert 'data-testid="archived-note"' in archived.content.decode()
    assert "seasonal" not in _names(client.get(reverse(INVENTORY)))
    assert "seasonal" in _names(client.get(reverse(INVENTORY), {"archived": "only"}))

    back = client.post(reverse("redemption:code_type_unarchive", args=["seasonal"]), follow=True)
    assert any("back in use" in m for m in _messages(back))
    assert CodeType.objects.get(name="seasonal").archived_at is None
    assert archived.redirect_chain[-1][0] == detail


def test_archive_needs_post_and_a_csrf_token(ops_user):
    CodeTypeFactory(name="seasonal")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(ops_user)
    url = reverse("redemption:code_type_archive", args=["seasonal"])

    assert strict.get(url).status_code == 405
    assert strict.post(url).status_code == 403
    assert CodeType.objects.get(name="seasonal").archived_at is None


def test_ops_deletes_an_empty_type_after_confirming(client, ops_user):
    CodeTypeFactory(name="typo-campaign")
    client.force_login(ops_user)
    url = reverse("redemption:code_type_delete", args=["typo-campaign"])

    confirm = client.get(url)
    done = client.post(url, follow=True)

    assert "Delete “typo-campaign”" in confirm.content.decode()
    assert CodeType.objects.filter(name="typo-campaign").exists() is False
    assert done.redirect_chain[-1][0] == reverse(INVENTORY)
    assert any("deleted" in m for m in _messages(done))


def test_a_type_with_codes_is_not_deleted_and_the_page_says_why(client, ops_user):
    ct = CodeTypeFactory(name="busy")
    CodeFactory(code_type=ct)
    client.force_login(ops_user)
    url = reverse("redemption:code_type_delete", args=["busy"])

    confirm = client.get(url).content.decode()
    refused = client.post(url, follow=True)

    assert 'data-testid="not-empty"' in confirm and "Archive it instead" in confirm
    assert any("still has codes" in m for m in _messages(refused))
    assert CodeType.objects.filter(name="busy").exists()
    assert not AuditEvent.objects.filter(action="code_type.delete").exists()


# --- activate with new custom info in the portal (item 6) ---------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("", {"sku": "A"}), ("{}", {}), ('{"sku": "B"}', {"sku": "B"})],
)
def test_support_activates_with_or_without_new_custom_info(client, support_user, typed, expected):
    code = CodeFactory(state=State.INACTIVE, custom_code_info={"sku": "A"})
    client.force_login(support_user)

    response = client.post(
        reverse("redemption:code_activate", args=[code.canonical]),
        {"custom_code_info": typed},
        follow=True,
    )

    code.refresh_from_db()
    assert (code.state, code.custom_code_info) == (State.AVAILABLE, expected)
    assert any("is now Available" in m for m in _messages(response))


def test_activate_with_bad_json_changes_nothing(client, support_user):
    code = CodeFactory(state=State.INACTIVE, custom_code_info={"sku": "A"})
    client.force_login(support_user)

    response = client.post(
        reverse("redemption:code_activate", args=[code.canonical]),
        {"custom_code_info": "[1, 2"},
        follow=True,
    )

    code.refresh_from_db()
    assert (code.state, code.custom_code_info) == (State.INACTIVE, {"sku": "A"})
    assert any(m.startswith("Not activated") for m in _messages(response))
    assert 'name="custom_code_info"' in response.content.decode()


def test_activating_a_code_of_a_disabled_type_in_the_portal_is_refused(client, support_user):
    code = CodeFactory(state=State.INACTIVE, code_type=CodeTypeFactory(is_disabled=True))
    client.force_login(support_user)

    response = client.post(
        reverse("redemption:code_activate", args=[code.canonical]), {}, follow=True
    )

    code.refresh_from_db()
    assert code.state == State.INACTIVE
    assert any("disabled" in m for m in _messages(response))


def test_adding_a_code_to_a_disabled_type_in_the_portal_is_refused(client, ops_user):
    CodeTypeFactory(name="off", is_disabled=True)
    client.force_login(ops_user)

    response = client.post(
        reverse("redemption:code_add", args=["off"]),
        {"scan_code": "ABCD-1234", "state": "Inactive"},
        follow=True,
    )

    assert response.status_code == 200
    assert any("disabled" in m for m in _messages(response))
    assert not Code.objects.filter(canonical="ABCD1234").exists()


def test_the_inventory_query_count_does_not_grow_with_code_types(client, admin_user):
    def add_types(start: int, n: int) -> None:
        for i in range(start, start + n):
            ct = CodeTypeFactory(name=f"grow-{i:03d}", fulfillment_url="https://x.example/")
            CodeFactory(code_type=ct, state=State.AVAILABLE)
            CodeFactory(code_type=ct, state=State.INVALIDATED)

    client.force_login(admin_user)
    url = reverse(INVENTORY) + "?search=grow&has_webhook=true&per_page=200"
    add_types(0, 3)
    with CaptureQueriesContext(connection) as few:
        assert len(_names(client.get(url))) == 3
    add_types(3, 40)
    with CaptureQueriesContext(connection) as many:
        assert len(_names(client.get(url))) == 43

    assert len(many.captured_queries) == len(few.captured_queries)


def test_a_type_with_a_queued_job_is_not_deleted(ops):
    CodeTypeFactory(name="busy-soon")
    job = bulk.job_generate_start(actor=ops, code_type_name="busy-soon", quantity=5)

    with pytest.raises(exc.CodeTypeNotEmptyError) as caught:
        code_type_delete(actor=ops, name="busy-soon")

    assert caught.value.details["jobInProgress"] is True
    bulk.run_job(job.pk)
    with pytest.raises(exc.CodeTypeNotEmptyError):  # now it has the five codes
        code_type_delete(actor=ops, name="busy-soon")


def test_when_every_type_is_archived_the_inventory_says_where_they_are(client, viewer_user):
    CodeTypeFactory(name="attic", archived_at="2026-01-01T00:00Z")
    client.force_login(viewer_user)

    body = client.get(reverse(INVENTORY)).content.decode()

    assert 'data-testid="all-archived"' in body
    assert (
        'data-testid="all-archived"'
        not in client.get(reverse(INVENTORY), {"search": "nothing"}).content.decode()
    )

"""User Monitoring: find a profile by id or the start of its id or name, filter by code type,
see custom redemption info as JSON, open one shared redemption and delete it (Ops)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from redemption import selectors
from redemption.models import Attempt, AuditEvent, SharedRedemption, State
from tests.e2e.helpers import HOSTILE, populate
from tests.factories import CodeFactory, SharedRedemptionFactory

pytestmark = pytest.mark.django_db

URL = "redemption:user_monitoring"


@pytest.fixture
def data():
    d = populate(hostile=HOSTILE)
    d["redeemed"].custom_redemption_info = {"platform": "ios", "note": HOSTILE}
    d["redeemed"].save(update_fields=["custom_redemption_info"])
    return d


def _get(client, user, **params):
    client.force_login(user)
    return client.get(reverse(URL), params)


def _records(response):
    return [r.record for r in response.context["records_table"].rows]


def test_a_profile_page_filters_by_code_type(client, viewer_user, data):
    every = _get(client, viewer_user, profile="p-42")
    assert len(_records(every)) == 3
    shared = _get(client, viewer_user, profile="p-42", code_type="freestuff")
    assert [r.code_type.name for r in _records(shared)] == ["freestuff"]
    assert shared.context["record_count"] == 1
    assert shared.context["attempts"]["rows"] == []  # the failed attempt is xmas-2026
    personal = _get(client, viewer_user, profile="p-42", code_type="xmas-2026")
    assert {r.code_type.name for r in _records(personal)} == {"xmas-2026"}
    assert len(personal.context["attempts"]["rows"]) == 1


def test_an_unknown_code_type_is_an_error_on_the_form(client, viewer_user, data):
    response = _get(client, viewer_user, profile="p-42", code_type="nope")
    assert response.status_code == 200
    assert "code_type" in response.context["form"].errors
    assert "records_table" not in response.context


def test_custom_redemption_info_shows_as_escaped_pretty_json(client, viewer_user, data):
    body = _get(client, viewer_user, profile="p-42").content.decode()
    assert '<pre class="json cell-json">{\n  &quot;note&quot;: &quot;&lt;script&gt;' in body
    assert "&quot;platform&quot;: &quot;ios&quot;" in body
    assert "<script>window.__xss" not in body


@pytest.mark.parametrize(
    ("typed", "found"),
    [
        ("p-4", ["p-42", "p-43"]),  # the start of an id
        ("ann", ["p-42", "p-43"]),  # the start of a name, in any case
        ("BOB", ["p-7"]),
    ],
)
def test_profiles_are_found_by_the_start_of_their_id_or_name(
    client, viewer_user, data, typed, found
):
    SharedRedemptionFactory(code_type=data["shared"], profile_id="p-43", profile_name="Annie")
    CodeFactory(
        code_type=data["ct"],
        state=State.REDEEMED,
        redeemed_by_profile_id="p-7",
        redeemed_by_profile_name="Bobby",
        redeemed_at=timezone.now(),
    )
    response = _get(client, viewer_user, profile=typed)
    if len(found) == 1:
        assert response.status_code == 302
        assert response["Location"] == reverse(URL) + f"?profile={found[0]}"
        return
    assert [m.profile_id for m in response.context["matches"]] == found
    body = response.content.decode()
    assert f'href="{reverse(URL)}?profile=p-43"' in body
    assert "<script>window.__xss" not in body  # Ann's hostile name is escaped


def test_a_search_that_matches_nobody_says_so(client, viewer_user, data):
    response = _get(client, viewer_user, profile="zz")
    assert response.context["matches"] == []
    assert b'data-testid="no-matches"' in response.content


def test_a_prefix_is_literal_not_a_pattern(data):
    assert selectors.profiles_matching("p_4")[0] == []
    assert selectors.profiles_matching("%")[0] == []


def test_a_search_reads_a_bounded_number_of_rows(data, monkeypatch):
    monkeypatch.setattr("redemption.selectors.redemptions.PROFILE_SEARCH_ROWS", 2)
    for i in range(3):
        SharedRedemptionFactory(code_type=data["shared"], profile_id=f"p-5{i}")
    with CaptureQueriesContext(connection) as ctx:
        found, more = selectors.profiles_matching("p-5", limit=50)
    assert len(ctx.captured_queries) == 4
    assert all("LIMIT 2" in q["sql"] for q in ctx.captured_queries)
    assert more and len(found) == 2


@pytest.mark.postgres
def test_the_prefix_searches_use_their_indexes_on_postgresql(data):
    """EXPLAIN each read with sequential scans off: a plan without the index would still be
    chosen if no index could answer the LIKE."""
    reads = {
        "code_profile_id_prefix": "SELECT 1 FROM redemption_code WHERE "
        "redeemed_by_profile_id::text LIKE 'p-4%%'",
        "code_profile_name_prefix": "SELECT 1 FROM redemption_code WHERE "
        "UPPER(redeemed_by_profile_name::text) LIKE UPPER('ann%%')",
        "shared_profile_id_prefix": "SELECT 1 FROM redemption_sharedredemption WHERE "
        "profile_id::text LIKE 'p-4%%'",
        "shared_profile_name_prefix": "SELECT 1 FROM redemption_sharedredemption WHERE "
        "UPPER(profile_name::text) LIKE UPPER('ann%%')",
    }
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        for index, sql in reads.items():
            cursor.execute("EXPLAIN " + sql)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert index in plan, plan


def test_the_django_lookups_are_the_sql_the_indexes_answer(data):
    """The EXPLAIN test above checks hand-written SQL; this holds Django's SQL to it."""
    qs = selectors.redemptions.Code.objects.filter(redeemed_by_profile_name__istartswith="ann")
    sql = str(qs.query)
    if connection.vendor == "postgresql":
        assert 'UPPER("redemption_code"."redeemed_by_profile_name"::text) LIKE UPPER(' in sql
    else:
        assert "LIKE" in sql


# --- one shared redemption ---------------------------------------------------------------------


@pytest.fixture
def shared_one(data):
    sr = SharedRedemption.objects.get(profile_id="p-42")
    sr.custom_redemption_info = {"device": HOSTILE}
    sr.state = State.FAILED
    sr.current_attempt = 1
    sr.redeemed_at = None
    sr.save()
    now = timezone.now()
    Attempt.objects.create(
        shared=sr,
        attempt=1,
        profile_id="p-42",
        state=State.FAILED,
        started_at=now - timedelta(minutes=1),
        deadline_at=now,
        finished_at=now,
        error_code="REDEMPTION_FAILED",
        error_msg="no stock",
    )
    AuditEvent.objects.create(
        at=now,
        actor_kind="system",
        action="shared.fulfilment",
        code_type_name="freestuff",
        target_id=str(sr.pk),
        profile_id="p-42",
        details={"attempt": 1, "state": "Failed"},
    )
    return sr


@pytest.mark.parametrize("user_fixture", ["viewer_user", "support_user", "ops_user"])
def test_every_role_reads_a_shared_redemption_with_its_attempts_and_history(
    client, request, shared_one, user_fixture
):
    client.force_login(request.getfixturevalue(user_fixture))
    response = client.get(reverse("redemption:shared_redemption_detail", args=[shared_one.pk]))
    assert response.status_code == 200
    assert [a["error_msg"] for a in response.context["attempts"]["rows"]] == ["no stock"]
    assert [e["action"] for e in response.context["history"]] == ["shared.fulfilment"]
    body = response.content.decode()
    assert "FREESTUFF" in body
    assert "&quot;device&quot;: &quot;&lt;script&gt;" in body
    assert "<script>window.__xss" not in body
    offers_delete = "Delete redemption…" in body
    assert offers_delete == (user_fixture == "ops_user")


def test_the_profile_page_and_the_type_page_link_to_the_shared_redemption(
    client, ops_user, shared_one
):
    detail = reverse("redemption:shared_redemption_detail", args=[shared_one.pk])
    assert detail in _get(client, ops_user, profile="p-42").content.decode()
    type_page = client.get(reverse("redemption:code_type_detail", args=["freestuff"]))
    assert detail in type_page.content.decode()


def test_ops_deletes_from_the_detail_page_through_the_confirm_page(client, ops_user, shared_one):
    client.force_login(ops_user)
    detail = client.get(reverse("redemption:shared_redemption_detail", args=[shared_one.pk]))
    confirm_url = reverse("redemption:shared_redemption_delete") + (
        "?code_type=freestuff&amp;profile=p-42"
    )
    assert confirm_url in detail.content.decode()
    done = client.post(
        reverse("redemption:shared_redemption_delete"),
        {"code_type": "freestuff", "profile": "p-42", "confirm": "yes"},
    )
    assert done.status_code == 302
    assert not SharedRedemption.objects.filter(pk=shared_one.pk).exists()
    assert AuditEvent.objects.filter(action="shared_redemption.delete", profile_id="p-42").exists()
    gone = client.get(reverse("redemption:shared_redemption_detail", args=[shared_one.pk]))
    assert gone.status_code == 404


def test_support_may_read_but_not_delete_a_shared_redemption(client, support_user, shared_one):
    client.force_login(support_user)
    refused = client.post(
        reverse("redemption:shared_redemption_delete"),
        {"code_type": "freestuff", "profile": "p-42", "confirm": "yes"},
    )
    assert refused.status_code == 403
    assert SharedRedemption.objects.filter(pk=shared_one.pk).exists()


def test_an_unknown_shared_redemption_is_a_404_and_anonymous_visitors_sign_in(client, viewer_user):
    url = reverse(
        "redemption:shared_redemption_detail", args=["0190f0f0-0000-7000-8000-000000000000"]
    )
    assert client.get(url).status_code == 302
    client.force_login(viewer_user)
    assert client.get(url).status_code == 404
